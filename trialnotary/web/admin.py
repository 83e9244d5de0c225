"""Admin pages: trials, sites and enrolment, people and their grants, tokens, sign-ins and
lock-outs, batches and anchors, the anchoring account, and the audit trail.

Every page requires the admin role; every change goes through the domain modules, which
write the audit trail in the same transaction.
"""

from __future__ import annotations

import json
from functools import partial

from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)

from trialnotary.db import utcnow, write_session
from trialnotary.notary import admin_view, anchor_overview, anchoring, audit_check, batches
from trialnotary.notary.overview import batch_detail
from trialnotary.people import access, accounts, audit, directory, passwords, signin, sites
from trialnotary.people.access import requires
from trialnotary.people.models import User
from trialnotary.people.states import ROLES
from trialnotary.people.user_tokens import tokens_of_user
from trialnotary.proof.receipt import rfc3339_ms
from trialnotary.validation import ValidationError
from trialnotary.web import query
from trialnotary.web.auth import current_principal, show_after_redirect, take_shown_once
from trialnotary.web.context import db_session, services
from trialnotary.web.documents.tables import to_csv
from trialnotary.web.responses import download, wants_bom

bp = Blueprint("admin", __name__, url_prefix="/admin")
AUDIT_PAGE = 100
BATCH_PAGE = 100
BATCHES_LISTED = 200


def _change(action, done: str, back: str, **back_args):
    """Run ``action(session, actor)`` in a write transaction; flash what happened."""
    try:
        with write_session(services().engine) as session:
            result = action(session, actor=current_principal().actor)
            session.commit()
    except ValidationError as exc:
        flash(f"{exc.field + ': ' if exc.field else ''}{exc.message}", "error")
        return redirect(url_for(back, **back_args)), None
    if done:
        flash(done, "success")
    return redirect(url_for(back, **back_args)), result


def _redirect_after(action, done: str, back: str, **back_args):
    """``_change`` where the page needs only its redirect."""
    return _change(action, done, back, **back_args)[0]


# --- overview ------------------------------------------------------------------------

@bp.get("/")
@requires(access.ADMIN)
def overview():
    session = db_session()
    counts = {**directory.counts(session), "pending": batches.pending_count(session)}
    states = admin_view.batch_state_counts(session)
    chain = services().chain
    health = chain.health()  # a dead node is not asked again for the balance
    settings = services().settings
    rows = anchor_overview.anchor_rows(session, settings.anchors,
                                       settings.seal_interval_seconds, services().chains,
                                       utcnow().date())
    return render_template("admin/overview.html", counts=counts, states=states,
                           health=health,
                           funding=chain.funding() if health["reachable"] else {},
                           anchorer=anchoring.chain_status(
                               session, among=[spec.name for spec in settings.anchors]),
                           anchors=rows, settings=settings)


# --- trials and sites ----------------------------------------------------------------

@bp.route("/trials", methods=["GET", "POST"])
@requires(access.ADMIN)
def trials():
    if request.method == "POST":
        form = request.form
        trial = form.get("trial", "")
        return _redirect_after(
            partial(sites.add_trial, registry_id=trial, title=form.get("title") or None,
                    protocol_id=form.get("protocol_id") == "on"),
            f"Trial {trial.strip().upper()} created.", "admin.trials")
    return render_template("admin/trials.html",
                           rows=directory.trials_with_site_counts(db_session()))


@bp.route("/sites", methods=["GET", "POST"])
@requires(access.ADMIN)
def sites_page():
    if request.method == "POST":
        form = request.form
        trial, site = form.get("trial", ""), form.get("site", "").strip()
        return _redirect_after(
            partial(sites.add_site, registry_id=trial, code=site, name=form.get("name") or None),
            f"Site {site} is enrolled in {trial.strip().upper()}.", "admin.sites_page")
    session = db_session()
    return render_template("admin/sites.html", enrolled=directory.sites_with_trials(session),
                           trial_ids=directory.trial_ids(session))


# --- people --------------------------------------------------------------------------

@bp.route("/users", methods=["GET", "POST"])
@requires(access.ADMIN)
def users():
    session = db_session()
    if request.method == "POST":
        form = request.form

        def create(s, actor):
            user, password = accounts.create_user(
                s, form.get("email", ""), form.get("role", ""), name=form.get("name") or None,
                actor=actor)
            show_after_redirect(s, password, "password", user_id=user.id, reset=False)
            return user.id, f"{user.email} is created as {user.role}. Give them the " \
                            "temporary password below; they choose their own at first sign-in."
        response, created = _change(create, "", "admin.users")
        if created is None:
            return response
        user_id, message = created
        flash(message, "success")
        return redirect(url_for("admin.user", user_id=user_id))
    people = directory.users(session)
    grants = {user.id: accounts.grants_of(session, user.id) for user in people}
    return render_template("admin/users.html", people=people, grants=grants,
                           roles=ROLES)


def _user_or_404(session, user_id: int) -> User:
    user = directory.user(session, user_id)
    if user is None:
        abort(404)
    return user


@bp.get("/users/<int:user_id>")
@requires(access.ADMIN)
def user(user_id: int):
    session = db_session()
    person = _user_or_404(session, user_id)
    trials_granted, sites_granted = accounts.grants_of(session, person.id)
    return render_template(
        "admin/user.html", person=person, roles=ROLES,
        trials_granted=sorted(trials_granted), sites_granted=sorted(sites_granted),
        trial_ids=directory.trial_ids(session), site_codes=directory.site_codes(session),
        throttled=signin.throttled_clients(session, [person.email]),
        endings=accounts.token_endings(session, person),
        passwords=take_shown_once("password", user_id=person.id),
        myself=person.id == current_principal().user_id)


def _ended(tokens: list) -> str:
    """The part of a message that names the site tokens a change ended, if any."""
    if not tokens:
        return ""
    return (f" {len(tokens)} site token{'s' if len(tokens) > 1 else ''} ended: "
            f"{', '.join(item.token.prefix + '…' for item in tokens)}. The API refuses them "
            "from now on, whatever changes later.")


@bp.post("/users/<int:user_id>")
@requires(access.ADMIN)
def update_user(user_id: int):
    """One change to a person (``action``); says what it did."""
    form = request.form
    what = form.get("action")

    def act(session, actor) -> str:
        person = _user_or_404(session, user_id)
        if person.id == current_principal().user_id and what in ("disable", "role",
                                                                  "reset-password"):
            raise ValidationError(None, "you cannot change your own role, disable yourself "
                                        "or reset your own password here (change it under "
                                        "Change password)")
        email = person.email
        if what == "role":
            before = person.role
            change = accounts.update_user(session, person, role=form.get("role"),
                                          actor=actor)
            if person.role == before:
                return f"{email} is already {before}: nothing changed."
            dropped = change.dropped_grants
            return f"{email} is now {person.role} (was {before})." + (
                f" Grants of the old role removed: {', '.join(dropped)}." if dropped else "") \
                + _ended(change.ended_tokens)
        if what in ("disable", "enable"):
            change = accounts.update_user(session, person, disabled=what == "disable",
                                          actor=actor)
            return (f"{email} is disabled: their sessions ended and they cannot sign in."
                    if what == "disable" else f"{email} is enabled: they can sign in again.") \
                + _ended(change.ended_tokens)
        if what in ("grant", "revoke-grant"):
            trial, site = form.get("trial") or None, form.get("site") or None
            scope = f"trial {trial}" if trial else f"site {site}"
            if what == "grant":
                accounts.grant(session, person, trial=trial, site=site, actor=actor)
                return f"{email} is granted {scope}."
            ended = accounts.revoke_grant(session, person, trial=trial, site=site, actor=actor)
            return f"{email} no longer has {scope}." + _ended(ended)
        if what == "reset-password":
            password = passwords.generated_password()
            accounts.set_password(session, person, password, actor=actor, temporary=True)
            show_after_redirect(session, password, "password", user_id=person.id, reset=True)
            return f"{email} has a new temporary password, shown below once. Their " \
                   "sessions ended; they choose their own password at sign-in."
        if what == "unlock":
            signin.unlock(session, email, actor=actor)
            return f"{email} can sign in again from every address."
        raise ValidationError("action", "is not one this page knows")

    response, message = _change(act, "", "admin.user", user_id=user_id)
    if message:
        flash(message, "success")
    return response


@bp.get("/logins")
@requires(access.ADMIN)
def logins():
    session = db_session()
    attempts = signin.recent_attempts(session)
    throttled = signin.throttled_clients(session, {attempt.email for attempt in attempts})
    return render_template("admin/logins.html", attempts=attempts, throttled=throttled)


@bp.post("/logins/unlock")
@requires(access.ADMIN)
def unlock():
    email = request.form.get("email", "")
    return _redirect_after(partial(signin.unlock, email=email),
                           f"{email} can sign in again from every address.", "admin.logins")


# --- tokens --------------------------------------------------------------------------

@bp.get("/tokens")
@requires(access.ADMIN)
def tokens():
    session = db_session()
    return render_template("admin/tokens.html", site_tokens=sites.tokens_of_sites(session, None),
                           user_tokens=tokens_of_user(session, None),
                           owners=directory.emails_by_id(session),
                           site_codes=directory.site_codes(session))


# --- batches and the audit trail -----------------------------------------------------

@bp.get("/batches")
@requires(access.ADMIN)
def batches_page():
    session = db_session()
    rows, anchors = admin_view.newest_batches(session, limit=BATCHES_LISTED)
    return render_template("admin/batches.html", rows=rows, anchors=anchors,
                           pending=batches.pending_count(session))


@bp.get("/batches/<int:batch_id>")
@requires(access.ADMIN)
def batch(batch_id: int):
    """One batch: its root, every anchor attempt, and its registrations, a page at a time."""
    page = query.integer("page", low=1, high=query.DB_INT_MAX) or 1
    found = batch_detail(db_session(), batch_id, page=page, page_size=BATCH_PAGE)
    if found is None:
        abort(404)
    return render_template("admin/batch.html", **found, page=page, page_size=BATCH_PAGE)


def _audit_filters() -> audit.Filters:
    """The audit trail's filters from the query (a bad one is a 400 naming it)."""
    date_from, date_to = query.day("from"), query.day("to")
    return audit.Filters(actor=query.text("actor", max_chars=300),
                         action=query.text("action", max_chars=64),
                         entity=query.text("entity", max_chars=32),
                         date_from=date_from.isoformat() if date_from else None,
                         date_to=date_to.isoformat() if date_to else None)


@bp.get("/audit")
@requires(access.ADMIN)
def audit_trail():
    session = db_session()
    filters = _audit_filters()
    before = query.integer("before", low=1, high=query.DB_INT_MAX)
    after = query.integer("after", low=1, high=query.DB_INT_MAX)
    page = audit.page(session, filters, before=before, after=after, size=AUDIT_PAGE)
    for entry in page.entries:
        entry["changes"] = audit.changes(entry["old"], entry["new"])
    # Reading every entry takes a while on a long trail: only when asked.
    check = audit_check.verify_chain(session) if request.args.get("check") else None
    actions, entities = audit.kinds(session)
    kept = {key: value for key, value in request.args.items()
            if key in ("actor", "action", "entity", "from", "to") and value}
    return render_template("admin/audit.html", page=page, check=check,
                           anchored=check.anchored() if check else None, filters=filters,
                           kept=kept, actions=actions, entities=entities,
                           families=sorted({a.split(".")[0] + "." for a in actions if "." in a}))


AUDIT_COLUMNS = ("seq", "at", "actor", "action", "entity", "entityId", "old", "new", "reason",
                 "prev", "hash")


@bp.get("/audit.<fmt>")
@requires(access.ADMIN)
def audit_export(fmt: str):
    """The trail (or the entries the filters keep) as CSV or JSON."""
    if fmt not in ("csv", "json"):
        abort(404)
    filters = _audit_filters()
    entries = audit.entries(db_session(), filters=filters)
    name = f"audit-trail_{rfc3339_ms(utcnow())[:10]}.{fmt}"
    if fmt == "json":
        return download(json.dumps({"generatedAt": rfc3339_ms(utcnow()), "entries": entries},
                                   indent=2), "application/json", name)
    lines = ([json.dumps(entry[c]) if c in ("old", "new") and entry[c] is not None
              else entry[c] for c in AUDIT_COLUMNS] for entry in entries)
    return download(to_csv([AUDIT_COLUMNS, *lines], bom=wants_bom()), "text/csv", name)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
