"""Who is asking, and may they: sign-in, sessions, and the access check before every view.

Web pages know people by a session cookie (random, kept hashed, idle time-out); the JSON API
knows them only by ``Authorization: Bearer`` tokens, never cookies. Before any view runs,
``check_access`` applies the route's ``@requires`` rule (see ``access``): anonymous visitors
are sent to sign in (or get 401 from the API), others without the right get 403.
"""

from __future__ import annotations

import logging
import math
import re
from datetime import timedelta

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from trialnotary.db import utcnow, write_session
from trialnotary.people import access, accounts, directory, sessions, signin, user_tokens
from trialnotary.people.access import ANONYMOUS, Principal, requires
from trialnotary.people.states import SignInProblem
from trialnotary.validation import ValidationError
from trialnotary.web.context import db_session, services
from trialnotary.web.security import rate_limiter

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)
SESSION_COOKIE = "tn_session"
API_PREFIX = "/api/"


def current_principal() -> Principal:
    return g.get("principal", ANONYMOUS)


# --- who is asking -------------------------------------------------------------------

def _load_principal() -> None:
    """Set ``g.principal`` from the session cookie (pages) or a user token (API)."""
    g.principal = ANONYMOUS
    if request.endpoint == "static":
        return
    if request.path.startswith(API_PREFIX):
        g.principal = _token_principal()
        return
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return
    idle = timedelta(minutes=services().settings.session_idle_minutes)
    sql = db_session()
    found = sessions.resume_session(sql, token, idle=idle)
    principal = accounts.principal_of(sql, found.user) if found.user else ANONYMOUS
    if found.expired or found.touch:
        with write_session(services().engine) as writer:
            sessions.note_session(writer, token, ended=found.expired)
            writer.commit()
    if found.expired:
        g.clear_session_cookie = True
        flash(f"You were signed out after {services().settings.session_idle_minutes:g} "
              "minutes without activity. Please sign in again.", "info")
    elif found.user is None:
        g.clear_session_cookie = True
    g.principal = principal


def _token_principal() -> Principal:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(user_tokens.USER_TOKEN_PREFIX):
        return ANONYMOUS
    sql = db_session()
    found = user_tokens.authenticate_user_token(sql, token)
    if found.user is None:
        return ANONYMOUS
    principal = accounts.principal_of(sql, found.user)
    if found.touch:
        with write_session(services().engine) as writer:
            user_tokens.note_token_use(writer, found.token_id)
            writer.commit()
    return principal


def _clear_stale_cookie(response):
    if g.get("clear_session_cookie"):
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- secrets shown once after a redirect ---------------------------------------------

SHOWN_ONCE = "shown_once"


def show_after_redirect(sql, secret: str, kind: str, **context) -> None:
    """Keep a new token or password for the page this form redirects to (in ``sql``'s
    transaction): never in the URL, never whole in the database or the cookie."""
    key, pad = sessions.keep_to_show_once(sql, current_principal().user_id, secret)
    waiting = [item for item in session.get(SHOWN_ONCE, []) if isinstance(item, dict)]
    session[SHOWN_ONCE] = [*waiting[-4:], {"kind": kind, "key": key, "pad": pad, **context}]


def take_shown_once(kind: str, **match) -> list[dict]:
    """The secrets of ``kind`` (whose context has ``match``) waiting for this page, each as
    its context plus ``secret``; once taken, a reload shows them no more."""
    waiting = [item for item in session.get(SHOWN_ONCE, []) if isinstance(item, dict)]
    mine = [item for item in waiting if item.get("kind") == kind
            and all(item.get(name) == value for name, value in match.items())]
    if not mine:
        return []
    session[SHOWN_ONCE] = [item for item in waiting if item not in mine]
    shown = []
    with write_session(services().engine) as sql:
        for item in mine:
            secret = sessions.take_shown_once(sql, current_principal().user_id,
                                              str(item.get("key")), str(item.get("pad")))
            if secret is not None:
                shown.append({**item, "secret": secret})
        sql.commit()
    return shown


# --- may they ------------------------------------------------------------------------

def check_access():
    """The one gate: every view declares a rule; a view without one is refused."""
    if request.endpoint is None or request.endpoint == "static":
        return None
    view = current_app.view_functions[request.endpoint]
    rule = access.rule_of(view)
    principal = current_principal()
    if rule is None:
        log.error("route %s declares no access rule: refused", request.endpoint)
        abort(403)
    if principal.must_change_password and request.endpoint not in (
            "auth.change_password", "auth.logout"):
        if request.path.startswith(API_PREFIX):
            abort(403, description="this account's password was reset: sign in and choose "
                                   "a new one before its tokens work again")
        return redirect(url_for("auth.change_password"))
    scope = _scope_value(rule)
    kind = access.scope_kind(rule.permission)
    if access.can(principal, rule.permission, trial=scope if kind == "trial" else None,
                  site=scope if kind == "site" else None):
        return None
    if not principal.signed_in:
        if request.path.startswith(API_PREFIX):
            abort(401, description="this call needs a sponsor's or admin's live user token: "
                                   "Authorization: Bearer tn_user_…")
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    abort(403)


def _scope_value(rule: access.Rule) -> str | None:
    """The trial or site a request is about, read where the view reads it: a view
    argument, else the form of a POST, else the query, so the check and the view can never
    be about different scopes."""
    if rule.scope_arg is None:
        return None
    value = (request.view_args or {}).get(rule.scope_arg)
    if value is None:
        source = request.form if request.method == "POST" else request.args
        value = source.get(rule.scope_arg)
    if value is None:
        return None
    return str(value).replace(" ", "").upper() if rule.scope_arg == "trial" else str(value)


# --- pages ---------------------------------------------------------------------------

# A path on this site in printable ASCII: "/" not followed by "/" (``//host`` is another
# site), no backslash (browsers read ``/\host`` as ``//host``), no space or control
# character (CR/LF would split the Location header).
_LOCAL_PATH = re.compile(r"/(?!/)[\x21-\x5b\x5d-\x7e]*")


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: only a path on this site; anything else, the home
    page, so that sign-in can neither redirect away nor fail on an odd value."""
    if not target or not _LOCAL_PATH.fullmatch(target):
        return url_for("web.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
@requires(access.PUBLIC)
def login():
    if request.method == "GET":
        return render_template("login.html", next=request.args.get("next", ""))
    settings = services().settings
    wait = rate_limiter().hit(settings.login_rate_limit, "login", request.remote_addr or "-")
    if wait is not None:
        response = current_app.make_response((render_template(
            "login.html", next=request.form.get("next", ""),
            error=f"Too many sign-in attempts from your address. Try again in "
                  f"{int(wait)} seconds."), 429))
        response.headers["Retry-After"] = str(int(wait))
        return response
    email, password = request.form.get("email", ""), request.form.get("password", "")
    with write_session(services().engine) as sql:
        outcome = signin.sign_in(sql, email, password, ip=request.remote_addr)
        token = sessions.start_session(sql, outcome.user) if outcome.user else None
        if token and request.cookies.get(SESSION_COOKIE):
            sessions.end_session(sql, request.cookies[SESSION_COOKIE])  # one browser, one
        sql.commit()
    if token is None:
        error, status, headers = "The e-mail address or the password is not right.", 401, {}
        if outcome.problem == SignInProblem.THROTTLED:
            wait = _seconds_until(outcome.retry_at)
            throttled = ("Too many failed sign-ins to this account from your address: try "
                         f"again in {wait} seconds, or ask an administrator to unlock it.")
            # The attempt that started the wait was checked; those during it are not.
            error, status = (f"{error} {throttled}", 401) if outcome.checked \
                else (throttled, 429)
            headers = {"Retry-After": str(wait)}
        return render_template("login.html", next=request.form.get("next", ""), error=error,
                               email=email), status, headers
    session.clear()  # no state from before signing in carries over
    response = redirect(_safe_next(request.form.get("next")))
    return _with_session_cookie(response, token)


def _with_session_cookie(response, token: str):
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Lax", path="/",
                        secure=services().settings.secure_cookies)
    return response


def _seconds_until(moment) -> int:
    return max(1, math.ceil((moment - utcnow()).total_seconds()))


@bp.post("/logout")
@requires(access.PUBLIC)
def logout():
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with write_session(services().engine) as sql:
            sessions.end_session(sql, token)
            sql.commit()
    session.clear()
    flash("You are signed out.", "info")
    response = redirect(url_for("auth.login"))
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@bp.route("/account/password", methods=["GET", "POST"])
@requires(access.SIGNED_IN)
def change_password():
    principal = current_principal()
    if request.method == "GET":
        return render_template("password.html")
    current, new = request.form.get("current", ""), request.form.get("new", "")
    with write_session(services().engine) as sql:
        user = directory.user(sql, principal.user_id)
        outcome = signin.sign_in(sql, user.email, current, ip=request.remote_addr)
        if not outcome.user:
            sql.commit()  # the failed attempt counts towards the throttle
            error = "Your current password is not right."
            if outcome.problem == SignInProblem.THROTTLED:
                wait = ("Too many wrong passwords from your address: try again in "
                        f"{_seconds_until(outcome.retry_at)} seconds.")
                error = f"{error} {wait}" if outcome.checked else wait
            return render_template("password.html", error=error), 400
        try:
            if new != request.form.get("repeat", ""):
                raise ValidationError("repeat", "the two new passwords differ")
            accounts.set_password(sql, user, new, actor=principal.actor)
        except ValidationError as exc:
            sql.rollback()
            return render_template("password.html", error=f"New password {exc.message}."), 400
        token = sessions.start_session(sql, user)
        sql.commit()
    flash("Your password is changed.", "success")
    response = redirect(url_for("web.index"))
    return _with_session_cookie(response, token)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.before_request(_load_principal)
    app.before_request(check_access)
    app.after_request(_clear_stale_cookie)

    @app.context_processor
    def _principal():
        principal = current_principal()
        return {"current_user": principal if principal.signed_in else None,
                "principal": principal}
