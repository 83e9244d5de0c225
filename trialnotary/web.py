"""Server-rendered pages for coordinators, sponsors and anonymous reviewers.

Views are thin: they read the request, call the domain modules, render a template. Each
declares who may reach it with ``@requires`` (checked in ``auth.check_access``); lists
are narrowed to the principal's grants by ``overview``.
"""

from __future__ import annotations

import io
import json
import re
from datetime import date

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_wtf.csrf import CSRFError

from . import access, accounts, overview, registrations, reports, sites
from .access import requires
from .api import ApiError, bundle_response, read_json_body
from .auth import current_principal
from .context import db_session, services
from .db import write_session
from .models import SiteToken, User, UserToken, rfc3339_ms, utcnow
from .receipt import chain_name, receipt_filename, safe_filename
from .security import UnknownHost, anonymous_lookup_wait
from .validation import KINDS, ValidationError

bp = Blueprint("web", __name__)
KIND_LABELS = {"dataset": "Dataset", "protocol": "Protocol", "sap": "Statistical analysis plan",
               "consent-form": "Consent form", "report": "Report", "other": "Other"}
STATUSES = ("pending", "sealed", "sent", "confirmed")


# --- anyone --------------------------------------------------------------------------

@bp.get("/")
@requires(access.PUBLIC)
def index():
    return render_template("index.html")


@bp.get("/verify")
@requires(access.PUBLIC)
def verify():
    """The reviewer's page: every check runs in the browser, which asks a chain node
    directly; the page needs nothing from us but itself."""
    g.csp_connect = "'self' http: https:"
    settings = services().settings
    default_rpc = settings.rpc_urls[0] if settings.chain == "local" else ""
    return render_template("verify.html", default_rpc=default_rpc, chain_id=settings.chain_id,
                           submission_id=request.args.get("id", ""))


@bp.get("/lookup")
@requires(access.PUBLIC)
def lookup():
    sha256, found, error = request.args.get("sha256", "").strip(), None, None
    if sha256:
        wait = anonymous_lookup_wait(services().settings, current_principal().signed_in)
        if wait is not None:
            error = f"Too many look-ups from your address. Try again in {wait} seconds."
            return render_template("lookup.html", sha256=sha256, found=None, error=error), \
                429, {"Retry-After": str(wait)}
        try:
            found = registrations.find_by_sha256(db_session(), sha256)
        except ValidationError as exc:
            error = f"A SHA-256 {exc.message}."
    return render_template("lookup.html", sha256=sha256, found=found, error=error), \
        400 if error else 200


def _registration(submission_id: str) -> dict:
    view = registrations.status_of(db_session(), submission_id)
    if view is None:
        abort(404)
    return view


def public_url(submission_id: str) -> str:
    base = services().settings.public_url or request.url_root.rstrip("/")
    return base + url_for("web.registration", submission_id=submission_id)


@bp.get("/r/<submission_id>")
@requires(access.PUBLIC)
def registration(submission_id: str):
    """One registration, by its unguessable id (a capability URL): status, record, anchor,
    receipt. Anyone holding the id may see it, as with the API."""
    view = _registration(submission_id)
    session = db_session()
    corrected_by = registrations.corrections_of(session, view["id"])
    principal = current_principal()
    record = view["record"]
    can_correct = access.can(principal, access.REGISTER, site=record["site"])
    # Reasons are free text for the people of the trial, not for whoever holds the id.
    show_reasons = access.can(principal, access.READ_SITE, site=record["site"]) or \
        access.can(principal, access.READ_TRIAL, trial=record["trial"])
    return render_template("registration.html", view=view, corrected_by=corrected_by,
                           can_correct=can_correct, show_reasons=show_reasons,
                           qr=reports.qr_svg(public_url(view["id"])),
                           public_url=public_url(view["id"]), kinds=KIND_LABELS,
                           explorer=_explorer(view))


def _explorer(view: dict) -> str | None:
    anchor = view.get("anchor") or {}
    return overview.explorer_url(anchor.get("chainId"), anchor.get("txHash"))


def _receipt_or_404(submission_id: str) -> tuple[dict, dict]:
    view = _registration(submission_id)
    found = registrations.receipt_of(db_session(), view["id"])
    return view, (found.receipt if found else None)


@bp.get("/r/<submission_id>/print")
@requires(access.PUBLIC)
def registration_print(submission_id: str):
    view, receipt = _receipt_or_404(submission_id)
    return render_template("receipt_print.html", view=view, receipt=receipt,
                           qr=reports.qr_svg(public_url(view["id"])),
                           public_url=public_url(view["id"]), explorer=_explorer(view),
                           chain_label=_chain_label(receipt))


@bp.get("/r/<submission_id>/receipt.pdf")
@requires(access.PUBLIC)
def registration_pdf(submission_id: str):
    view, receipt = _receipt_or_404(submission_id)
    if receipt is None:
        flash("The receipt exists once the anchor is confirmed; this one is "
              f"{view['status']}.", "info")
        return redirect(url_for("web.registration", submission_id=view["id"]))
    pdf = reports.receipt_pdf(receipt, public_url=public_url(view["id"]),
                              explorer_url=_explorer(view))
    name = receipt_filename(view["record"]["trial"], view["record"]["dataset"],
                            view["id"]).removesuffix(".json") + ".pdf"
    return send_file(io.BytesIO(pdf), mimetype="application/pdf", download_name=name)


def _chain_label(receipt: dict | None) -> str | None:
    if not receipt:
        return None
    anchor = receipt["anchors"][0]
    return f"{anchor['chain']} (chain {anchor['chainId']})"


# --- coordinators --------------------------------------------------------------------

@bp.get("/register")
@requires(access.REGISTER)
def register():
    principal = current_principal()
    session = db_session()
    pairs = sites.enrolments_of(session, principal.sites)
    supersedes = None
    if request.args.get("supersedes"):
        supersedes = registrations.status_of(session, request.args["supersedes"])
        if supersedes and supersedes["record"]["site"] not in principal.sites:
            supersedes = None
    return render_template("register.html", pairs=pairs, kinds=KIND_LABELS,
                           supersedes=supersedes)


@bp.post("/register")
@requires(access.REGISTER)
def register_files():
    """The register page's one request: its files' hashes (never their contents), as the
    bulk API takes them, plus ``reason`` for corrections. JSON in, JSON out; the form's
    CSRF token travels in the ``X-CSRFToken`` header."""
    principal = current_principal()
    try:
        payload = read_json_body()
    except ApiError as exc:
        return _json_error(exc.status, exc.code, exc.message, exc.field)
    identity = registrations.UserRegistrant(principal.user_id, principal.email,
                                            principal.sites)
    try:
        records = registrations.register_as_user(services().engine, identity, payload)
    except ValidationError as exc:
        return _json_error(422, "validation_error", exc.message, exc.field)
    except registrations.Forbidden as exc:
        return _json_error(403, "forbidden", exc.message, exc.field)
    return jsonify({"submissions": [{
        "id": record["id"], "status": "pending", "record": record,
        "links": {"page": url_for("web.registration", submission_id=record["id"])},
    } for record in records]}), 201


def _json_error(status: int, code: str, message: str, field: str | None):
    return jsonify({"error": {"code": code, "message": message, "field": field}}), status


def _filters() -> overview.Filters:
    args = request.args

    def day(name: str) -> str | None:
        value = args.get(name, "").strip()
        if not value:
            return None
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            flash(f"{name.replace('_', ' ')} must be a date like 2026-11-23", "error")
            return None

    return overview.Filters(
        trial=args.get("trial", "").strip().upper() or None, site=args.get("site") or None,
        kind=args.get("kind") if args.get("kind") in KINDS else None,
        label=args.get("label", "").strip() or None,
        status=args.get("status") if args.get("status") in STATUSES else None,
        date_from=day("date_from"), date_to=day("date_to"))


def _page() -> int:
    try:
        return max(1, int(request.args.get("page", 1)))
    except ValueError:
        return 1


@bp.get("/registrations")
@requires(access.READ_SITE)
def my_registrations():
    principal = current_principal()
    filters = _filters()
    rows, total = overview.list_registrations(db_session(), principal, filters, page=_page())
    site_choices = sorted(principal.sites) if principal.role == "coordinator" else []
    return render_template("registrations.html", rows=rows, total=total, filters=filters,
                           page=_page(), page_size=overview.PAGE_SIZE, kinds=KIND_LABELS,
                           statuses=STATUSES, site_choices=site_choices)


@bp.get("/registrations/status")
@requires(access.SIGNED_IN)
def registration_statuses():
    """Live status for the lists: ``?ids=a,b,c`` (only those the principal may see)."""
    ids = [i for i in request.args.get("ids", "").split(",") if i][:500]
    return jsonify(overview.statuses(db_session(), current_principal(), ids))


# --- sponsors (and admins) -----------------------------------------------------------

@bp.get("/trials")
@requires(access.READ_TRIAL)
def trials():
    return render_template("trials.html",
                           trials=overview.visible_trials(db_session(), current_principal()))


def _trial_or_404(trial: str):
    found = sites.find_trial(db_session(), trial)
    if found is None:
        abort(404)
    return found


@bp.get("/trials/<trial>")
@requires(access.READ_TRIAL, "trial")
def trial_dashboard(trial: str):
    found = _trial_or_404(trial)
    filters = overview.Filters(trial=found.registry_id, site=request.args.get("site") or None,
                               kind=request.args.get("kind") if request.args.get("kind")
                               in KINDS else None,
                               label=request.args.get("q", "").strip() or None,
                               status=request.args.get("status") if request.args.get("status")
                               in STATUSES else None)
    search = request.args.get("q", "").strip()
    if re.fullmatch(r"[0-9a-fA-F]{64}", search):
        filters = overview.Filters(trial=found.registry_id, sha256=search)
    session = db_session()
    rows, total = overview.list_registrations(session, current_principal(), filters,
                                              page=_page())
    return render_template("trial.html", trial=found,
                           stats=overview.trial_dashboard(session, found.registry_id),
                           rows=rows, total=total, page=_page(),
                           page_size=overview.PAGE_SIZE, search=search, kinds=KIND_LABELS,
                           statuses=STATUSES, filters=filters)


@bp.get("/trials/<trial>/receipts.zip")
@requires(access.READ_TRIAL, "trial")
def trial_bundle(trial: str):
    return bundle_response(_trial_or_404(trial).registry_id)


@bp.get("/trials/<trial>/report")
@requires(access.READ_TRIAL, "trial")
def trial_report(trial: str):
    found = _trial_or_404(trial)
    rows = overview.report_rows(db_session(), found.registry_id)
    return render_template("report.html", trial=found, rows=rows,
                           generated_at=rfc3339_ms(utcnow()), kinds=KIND_LABELS)


@bp.get("/trials/<trial>/report.<fmt>")
@requires(access.READ_TRIAL, "trial")
def trial_report_file(trial: str, fmt: str):
    found = _trial_or_404(trial)
    rows = overview.report_rows(db_session(), found.registry_id)
    generated_at = rfc3339_ms(utcnow())
    name = safe_filename(f"{found.registry_id}_audit-report_{generated_at[:10]}")
    if fmt == "csv":
        body, mimetype = reports.report_csv(rows), "text/csv; charset=utf-8"
    elif fmt == "json":
        body = json.dumps(reports.report_json(trial=found.registry_id, title=found.title,
                                              generated_at=generated_at, rows=rows), indent=2)
        mimetype = "application/json"
    elif fmt == "pdf":
        body = reports.report_pdf(trial=found.registry_id, title=found.title,
                                  generated_at=generated_at, chain=_chain_text(), rows=rows)
        mimetype = "application/pdf"
    else:
        abort(404)
    return Response(body, mimetype=mimetype, headers={
        "Content-Disposition": f"attachment; filename={name}.{fmt}"})


def _chain_text() -> str:
    settings = services().settings
    return f"{chain_name(settings.chain_id)} (chain {settings.chain_id})"


# --- tokens --------------------------------------------------------------------------

@bp.get("/tokens")
@requires(access.SIGNED_IN)
def tokens():
    return _tokens_page()


def _tokens_page(new_token: str | None = None, new_scope: str | None = None):
    """The principal's tokens (never their values); a new token is shown this once only,
    and pages of signed-in people are never cached."""
    principal = current_principal()
    session = db_session()
    site_tokens = sites.tokens_of_sites(session, principal.sites) \
        if principal.role == "coordinator" else []
    user_tokens = accounts.tokens_of_user(session, principal.user_id) \
        if access.can(principal, access.MANAGE_USER_TOKENS) else []
    return render_template("tokens.html", site_tokens=site_tokens, user_tokens=user_tokens,
                           sites=sorted(principal.sites), new_token=new_token,
                           new_scope=new_scope,
                           site_token_days=services().settings.site_token_days)


def _expiry_days() -> float | None:
    raw = request.form.get("expires_in_days", "").strip()
    if not raw:
        return None
    try:
        days = float(raw)
    except ValueError:
        days = 0
    if not 0 < days <= 3650:
        raise ValidationError("expires_in_days", "must be a number of days from 1 to 3650")
    return days


@bp.post("/tokens/site")
@requires(access.MANAGE_SITE_TOKENS, "site")
def create_site_token():
    principal = current_principal()
    try:
        with write_session(services().engine) as session:
            token = sites.create_token(session, request.form.get("site", ""),
                                       expires_in_days=_expiry_days()
                                       or services().settings.site_token_days,
                                       name=request.form.get("name") or None,
                                       created_by_id=principal.user_id, actor=principal.actor)
            session.commit()
    except ValidationError as exc:
        flash(f"{exc.field}: {exc.message}", "error")
        return redirect(url_for("web.tokens"))
    return _tokens_page(token, f"site {request.form.get('site')}")


@bp.post("/tokens/site/<int:token_id>/revoke")
@requires(access.MANAGE_SITE_TOKENS)
def revoke_site_token(token_id: int):
    principal = current_principal()
    with write_session(services().engine) as session:
        token = session.get(SiteToken, token_id)
        site = sites.site_code_of(session, token.site_id) if token else None
        if site is None or not access.can(principal, access.MANAGE_SITE_TOKENS, site=site):
            abort(404)
        sites.revoke_token(session, token_id, actor=principal.actor)
        session.commit()
    flash(f"Token {token.prefix}… is revoked: the API refuses it from now on.", "success")
    return redirect(request.form.get("back") == "admin" and url_for("admin.tokens")
                    or url_for("web.tokens"))


@bp.post("/tokens/user")
@requires(access.MANAGE_USER_TOKENS)
def create_user_token():
    principal = current_principal()
    try:
        with write_session(services().engine) as session:
            user = session.get(User, principal.user_id)
            token = accounts.create_user_token(session, user,
                                               name=request.form.get("name") or None,
                                               expires_in_days=_expiry_days(),
                                               actor=principal.actor)
            session.commit()
    except ValidationError as exc:
        flash(f"{exc.field}: {exc.message}", "error")
        return redirect(url_for("web.tokens"))
    return _tokens_page(token, "reading your trials through the API")


@bp.post("/tokens/user/<int:token_id>/revoke")
@requires(access.MANAGE_USER_TOKENS)
def revoke_user_token(token_id: int):
    principal = current_principal()
    with write_session(services().engine) as session:
        token = session.get(UserToken, token_id)
        if token is None or (token.user_id != principal.user_id
                             and not access.can(principal, access.ADMIN)):
            abort(404)
        accounts.revoke_user_token(session, token_id, actor=principal.actor)
        session.commit()
    flash(f"Token {token.prefix}… is revoked.", "success")
    return redirect(url_for("web.tokens"))


# --- errors and filters --------------------------------------------------------------

ERROR_TEXT = {
    400: ("Bad request", "The request could not be understood."),
    403: ("Not allowed", "Your account may not open this page. Ask an administrator if you "
                         "need access."),
    404: ("Not found", "There is nothing here. Check the address, or the id you followed."),
    405: ("Not allowed", "This page does not take that kind of request."),
    413: ("Too large", "The request is larger than this server accepts."),
    429: ("Slow down", "Too many requests; wait a moment and try again."),
    500: ("Something went wrong", "This is our fault, not yours; it has been logged."),
    503: ("Busy", "The server is busy; nothing was changed. Try again in a few seconds."),
}


def error_page(exc):
    """HTML error pages outside the API (the API answers JSON: see ``api``)."""
    status = getattr(exc, "code", 500) or 500
    if isinstance(exc, CSRFError):
        title, text = "Form expired", "The form was too old or not sent from this site. " \
                                      "Go back, reload the page and try again."
    elif isinstance(exc, UnknownHost):
        title, text = "Unknown host name", exc.description
    else:
        title, text = ERROR_TEXT.get(status, ("Error", ""))
    return render_template("error.html", status=status, title=title, text=text), status


def utc_text(value: str | None) -> str:
    """``2026-11-23T19:00:12Z`` → ``2026-11-23 19:00:12 UTC`` (app.js adds local time)."""
    if not value:
        return ""
    return value.replace("T", " ").removesuffix("Z") + " UTC"


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.add_template_filter(utc_text, "utc_text")
    app.add_template_global(sites.token_state, "token_state")

    @app.context_processor
    def _chain():
        settings = services().settings
        return {"chain_label": f"{chain_name(settings.chain_id)} (chain id "
                               f"{settings.chain_id})",
                "kind_labels": KIND_LABELS}
