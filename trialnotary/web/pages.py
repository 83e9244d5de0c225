"""Server-rendered pages for coordinators, sponsors and anonymous reviewers.

Views are thin: they read the request, call the domain modules, render a template. Each
declares who may reach it with ``@requires`` (checked in ``auth.check_access``); lists
are narrowed to the principal's grants by ``overview``.
"""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime

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
from markupsafe import Markup

from trialnotary.db import as_utc, utcnow, write_session
from trialnotary.filenames import receipt_filename, safe_filename
from trialnotary.notary import overview, registrations
from trialnotary.people import access, accounts, sites
from trialnotary.people.access import requires
from trialnotary.people.models import SiteToken, User, UserToken
from trialnotary.proof import facts
from trialnotary.proof.facts import chain_label, chain_name
from trialnotary.proof.receipt import rfc3339_ms
from trialnotary.validation import (
    CONTROL_RANGES,
    INVISIBLE_RANGES,
    KINDS,
    MAX_DATASET_CHARS,
    MAX_FILENAME_CHARS,
    MAX_REASON_CHARS,
    SURROGATE_RANGES,
    ValidationError,
    show_invisible,
    validate_sha256,
    validate_uuid,
)
from trialnotary.web import query, reports
from trialnotary.web.api import ApiError, bundle_response, read_json_body, send_bundle
from trialnotary.web.auth import current_principal, show_after_redirect, take_shown_once
from trialnotary.web.context import db_session, services
from trialnotary.web.security import UnknownHost, anonymous_lookup_wait

bp = Blueprint("web", __name__)
KIND_LABELS = {"dataset": "Dataset", "protocol": "Protocol", "sap": "Statistical analysis plan",
               "consent-form": "Consent form", "report": "Report", "other": "Other"}
STATUSES = ("pending", "sealed", "sent", "confirmed")
#: What the register page checks before sending, as the server does (never cut short).
LIMITS = {"label": MAX_DATASET_CHARS, "filename": MAX_FILENAME_CHARS,
          "reason": MAX_REASON_CHARS, "bulk": registrations.MAX_BULK}


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
                           registration_id=request.args.get("id", ""),
                           proof_facts=facts.document())


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


def _registration(registration_id: str) -> dict:
    view = registrations.status_of(db_session(), registration_id)
    if view is None:
        abort(404)
    return view


def public_url(registration_id: str) -> str:
    base = services().settings.public_url or request.url_root.rstrip("/")
    return base + url_for("web.registration", registration_id=registration_id)


@bp.get("/r/<registration_id>")
@requires(access.PUBLIC)
def registration(registration_id: str):
    """One registration, by its unguessable id (a capability URL): status, record, anchor,
    receipt. Anyone holding the id may see it, as with the API."""
    view = _registration(registration_id)
    session = db_session()
    corrected_by = registrations.corrections_of(session, view["id"])
    principal = current_principal()
    record = view["record"]
    can_correct = access.can(principal, access.REGISTER, site=record["site"])
    # Reasons are free text for the people of the trial, not for whoever holds the id.
    show_reasons = access.can(principal, access.READ_SITE, site=record["site"]) or \
        access.can(principal, access.READ_TRIAL, trial=record["trial"])
    reason = registrations.reason_of(session, view["id"]) if record["supersedes"] else None
    return render_template("registration.html", view=view, corrected_by=corrected_by,
                           reason=reason, can_correct=can_correct, status=view["status"],
                           wait=_wait() if view["status"] != "confirmed" else None,
                           show_reasons=show_reasons,
                           qr=reports.qr_svg(public_url(view["id"])),
                           public_url=public_url(view["id"]), kinds=KIND_LABELS,
                           explorer=_explorer(view))


def _explorer(view: dict) -> str | None:
    anchor = view.get("anchor") or {}
    return overview.explorer_url(anchor.get("chainId"), anchor.get("txHash"))


def _receipt_or_404(registration_id: str) -> tuple[dict, dict]:
    view = _registration(registration_id)
    found = registrations.receipt_of(db_session(), view["id"])
    return view, (found.receipt if found else None)


@bp.get("/r/<registration_id>/print")
@requires(access.PUBLIC)
def registration_print(registration_id: str):
    view, receipt = _receipt_or_404(registration_id)
    return render_template("receipt_print.html", view=view, receipt=receipt,
                           qr=reports.qr_svg(public_url(view["id"])),
                           public_url=public_url(view["id"]), explorer=_explorer(view),
                           chain_label=_chain_label(receipt))


@bp.get("/r/<registration_id>/receipt.pdf")
@requires(access.PUBLIC)
def registration_pdf(registration_id: str):
    view, receipt = _receipt_or_404(registration_id)
    if receipt is None:
        flash("The receipt exists once the anchor is confirmed; this one is "
              f"{view['status']}.", "info")
        return redirect(url_for("web.registration", registration_id=view["id"]))
    pdf = reports.receipt_pdf(receipt, public_url=public_url(view["id"]),
                              explorer_url=_explorer(view))
    name = receipt_filename(view["record"]["trial"], view["record"]["dataset"],
                            view["id"]).removesuffix(".json") + ".pdf"
    return send_file(io.BytesIO(pdf), mimetype="application/pdf", download_name=name)


def _chain_label(receipt: dict | None) -> str | None:
    if not receipt:
        return None
    anchor = receipt["anchors"][0]
    return chain_label(anchor["chainId"], anchor["chain"])


# --- coordinators --------------------------------------------------------------------

@bp.get("/register")
@requires(access.REGISTER)
def register():
    principal = current_principal()
    session = db_session()
    pairs = sites.enrolments_of(session, principal.sites)
    wanted = request.args.get("supersedes", "").strip()
    supersedes = registrations.status_of(session, wanted) if wanted else None
    if supersedes and supersedes["record"]["site"] not in principal.sites:
        supersedes = None  # another site's: as if unknown, so the id reveals nothing
    superseded_by = supersedes and supersedes["supersededBy"]
    return render_template("register.html", pairs=pairs, kinds=KIND_LABELS, limits=LIMITS,
                           supersedes=None if superseded_by else supersedes,
                           no_such_target=bool(wanted) and not supersedes,
                           superseded_by=superseded_by)


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
        "links": {"page": url_for("web.registration", registration_id=record["id"])},
    } for record in records]}), 201


def _json_error(status: int, code: str, message: str, field: str | None):
    return jsonify({"error": {"code": code, "message": message, "field": field}}), status


def _json_list(name: str, limit: int) -> list:
    """The list ``name`` of a JSON body (``ApiError``/``ValidationError`` otherwise)."""
    payload = read_json_body()
    items = payload.get(name) if isinstance(payload, dict) else None
    if not isinstance(items, list) or len(items) > limit:
        raise ValidationError(name, f"must be a list of at most {limit:,} items")
    return items


@bp.post("/register/check")
@requires(access.REGISTER)
def registered_already():
    """Before registering: which of the page's hashes the notary already holds in a trial
    of the coordinator's sites (``{"sha256": [...]}`` in, ``{"registered": {hash: [...]}}``
    out), so the page can flag them and registering them again is a deliberate choice."""
    try:
        hashes = [validate_sha256(value, f"sha256[{index}]") for index, value in
                  enumerate(_json_list("sha256", registrations.MAX_BULK))]
    except ApiError as exc:
        return _json_error(exc.status, exc.code, exc.message, exc.field)
    except ValidationError as exc:
        return _json_error(422, "validation_error", exc.message, exc.field)
    session = db_session()
    trials = {pair["trial"] for pair in sites.enrolments_of(session, current_principal().sites)}
    found = registrations.registered_in_trials(session, hashes, trials)
    for known in found.values():
        for registration in known:
            registration["page"] = url_for("web.registration", registration_id=registration["id"])
    return jsonify({"registered": found})


def _filters() -> overview.Filters:
    date_from, date_to = query.day("date_from"), query.day("date_to")
    return overview.Filters(
        trial=query.trial_id("trial"), site=query.site_id("site"),
        kind=query.choice("kind", KINDS), label=query.text("label"),
        status=query.choice("status", STATUSES),
        date_from=date_from and date_from.isoformat(), date_to=date_to and date_to.isoformat())


def _page() -> int:
    return query.integer("page", low=1, high=query.DB_INT_MAX) or 1


@bp.get("/registrations")
@requires(access.READ_SITE)
def my_registrations():
    principal = current_principal()
    filters = _filters()
    rows, total = overview.list_registrations(db_session(), principal, filters, page=_page())
    site_choices = sorted(principal.sites) if principal.role == "coordinator" else []
    return render_template("registrations.html", rows=rows, total=total, filters=filters,
                           page=_page(), page_size=overview.PAGE_SIZE, kinds=KIND_LABELS,
                           statuses=STATUSES, site_choices=site_choices,
                           newer_url=url_for("web.newer_registrations", **request.args)
                           if _page() == 1 else None, wait=_wait() if any(
                               row["status"] != "confirmed" for row in rows) else None)


@bp.get("/registrations/newer")
@requires(access.READ_SITE)
def newer_registrations():
    """Rows registered since the list's newest (``?after=ID``, with the list's filters),
    elsewhere too (API, CLI): the list adds them without reloading."""
    rows = overview.newer_registrations(db_session(), current_principal(),
                                        _filters(), query.registration_id("after"))
    return render_template("_registration_trs.html", rows=rows, show_trial=True,
                           kinds=KIND_LABELS)


@bp.get("/registrations/status")
@requires(access.SIGNED_IN)
def registration_statuses():
    """Live status for the lists: ``?ids=a,b,c`` (only those the principal may see)."""
    try:
        ids = [validate_uuid(i, "ids") for i in request.args.get("ids", "").split(",")[:500]
               if i]
    except ValidationError:
        return _json_error(400, "validation_error", "must be registration ids separated by "
                                                    "commas", "ids")
    return jsonify(overview.statuses(db_session(), current_principal(), ids))


def _wait() -> overview.Wait:
    settings = services().settings
    return overview.expected_wait(db_session(),
                                  seal_interval_seconds=settings.seal_interval_seconds,
                                  confirmations=settings.confirmations,
                                  chain_id=settings.chain_id)


@bp.get("/registrations/wait")
@requires(access.SIGNED_IN)
def waiting():
    """What registrations wait for now (the next seal, confirmations, a chain outage), as
    the notice the register page shows after Register."""
    return render_template("_waiting.html", wait=_wait(), status="pending")


@bp.get("/registrations/receipts.zip")
@requires(access.READ_SITE)
def site_receipts():
    """Every confirmed receipt of the coordinator's sites in one zip (index.csv lists
    every registration of them, confirmed or not)."""
    principal = current_principal()
    session = db_session()
    names = sorted(principal.sites) if principal.role == "coordinator" else []
    scope = f"site{'s' if len(names) > 1 else ''} {', '.join(names)}" if names \
        else "every site"
    return send_bundle(f"{'_'.join(names) or 'all-sites'}_receipts", scope=scope,
                       receipts=overview.visible_receipts(session, principal),
                       rows=overview.visible_report_rows(session, principal))


MAX_UPLOAD_IDS = 100_000


@bp.post("/registrations/receipts.zip")
@requires(access.READ_SITE)
def upload_receipts():
    """The confirmed receipts of one upload: ``{"ids": [...]}`` (the registrations of one
    press of Register), of those the principal may see; others are left out unsaid."""
    try:
        ids = sorted({validate_uuid(value, f"ids[{index}]") for index, value in
                      enumerate(_json_list("ids", MAX_UPLOAD_IDS))})
    except ApiError as exc:
        return _json_error(exc.status, exc.code, exc.message, exc.field)
    except ValidationError as exc:
        return _json_error(422, "validation_error", exc.message, exc.field)
    principal = current_principal()
    session = db_session()
    stamp = rfc3339_ms(utcnow())[:19].replace(":", "-")
    return send_bundle(f"upload_{stamp}_receipts",
                       scope=f"one upload ({len(ids)} registration{'s' if len(ids) != 1 else ''})",
                       receipts=overview.visible_receipts(session, principal, ids),
                       rows=overview.visible_report_rows(session, principal, ids))


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


@bp.get("/trials/<path:trial>")
@requires(access.READ_TRIAL, "trial")
def trial_dashboard(trial: str):
    found = _trial_or_404(trial)
    search = query.text("q") or ""
    filters = overview.Filters(trial=found.registry_id, site=query.site_id("site"),
                               kind=query.choice("kind", KINDS), label=search or None,
                               status=query.choice("status", STATUSES))
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


@bp.get("/trials/<path:trial>/receipts.zip")
@requires(access.READ_TRIAL, "trial")
def trial_bundle(trial: str):
    return bundle_response(_trial_or_404(trial).registry_id)


@bp.get("/trials/<path:trial>/report")
@requires(access.READ_TRIAL, "trial")
def trial_report(trial: str):
    found = _trial_or_404(trial)
    rows = overview.report_rows(db_session(), found.registry_id)
    return render_template("report.html", trial=found, rows=rows,
                           generated_at=rfc3339_ms(utcnow()), kinds=KIND_LABELS)


@bp.get("/trials/<path:trial>/report.<fmt>")
@requires(access.READ_TRIAL, "trial")
def trial_report_file(trial: str, fmt: str):
    found = _trial_or_404(trial)
    rows = overview.report_rows(db_session(), found.registry_id)
    generated_at = rfc3339_ms(utcnow())
    name = safe_filename(f"{found.registry_id}_audit-report_{generated_at[:10]}")
    if fmt == "csv":
        return download(reports.report_csv(rows, bom=wants_bom()), "text/csv", f"{name}.csv")
    if fmt == "json":
        return download(json.dumps(reports.report_json(
            trial=found.registry_id, title=found.title, generated_at=generated_at, rows=rows),
            indent=2), "application/json", f"{name}.json")
    if fmt == "pdf":
        return download(reports.report_pdf(
            trial=found.registry_id, title=found.title, generated_at=generated_at,
            chain=_chain_text(), rows=rows), "application/pdf", f"{name}.pdf")
    abort(404)


def wants_bom() -> bool:
    """``?bom=1``: a CSV for spreadsheet programs, which read UTF-8 only after a BOM."""
    return request.args.get("bom") == "1"


def download(body, mimetype: str, filename: str) -> Response:
    """A file to save. Text types get ``charset=utf-8`` from Flask, exactly once."""
    return Response(body, mimetype=mimetype,
                    headers={"Content-Disposition": f"attachment; filename={filename}"})


def _chain_text() -> str:
    settings = services().settings
    return chain_label(settings.chain_id)


# --- tokens --------------------------------------------------------------------------

@bp.get("/tokens")
@requires(access.SIGNED_IN)
def tokens():
    """The principal's tokens (never their values); a token just created is shown on the
    page its form redirects to, this once only. Pages of signed-in people are never
    cached."""
    principal = current_principal()
    session = db_session()
    site_tokens = sites.tokens_of_sites(session, principal.sites) \
        if principal.role == "coordinator" else []
    user_tokens = accounts.tokens_of_user(session, principal.user_id) \
        if access.can(principal, access.MANAGE_USER_TOKENS) else []
    return render_template("tokens.html", site_tokens=site_tokens, user_tokens=user_tokens,
                           sites=sorted(principal.sites),
                           new_tokens=take_shown_once("token"),
                           site_token_days=services().settings.site_token_days)


#: The token forms' fields as their labels name them, for messages.
TOKEN_FIELDS = {"name": "Name", "expires_in_days": "Expires in days", "site": "Site"}


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


def _create_token(create, scope: str):
    """Create a token with ``create(session)`` and show it once on the tokens page."""
    try:
        with write_session(services().engine) as session:
            token = create(session)
            show_after_redirect(session, token, "token", scope=scope)
            session.commit()
    except ValidationError as exc:
        flash(f"{TOKEN_FIELDS.get(exc.field, exc.field)}: {exc.message}", "error")
        return redirect(url_for("web.tokens"))
    flash(f"A token for {scope} is created. Copy it now: it is shown only this once.",
          "success")
    return redirect(url_for("web.tokens") + "#new-token")


@bp.post("/tokens/site")
@requires(access.MANAGE_SITE_TOKENS, "site")
def create_site_token():
    principal = current_principal()
    site = request.form.get("site", "")
    return _create_token(lambda session: sites.create_token(
        session, site, expires_in_days=_expiry_days() or services().settings.site_token_days,
        name=request.form.get("name") or None, created_by_id=principal.user_id,
        actor=principal.actor), f"site {site}")


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
    return _back_to_tokens()


@bp.post("/tokens/user")
@requires(access.MANAGE_USER_TOKENS)
def create_user_token():
    principal = current_principal()

    def create(session):
        return accounts.create_user_token(session, session.get(User, principal.user_id),
                                          name=request.form.get("name") or None,
                                          expires_in_days=_expiry_days(),
                                          actor=principal.actor)
    return _create_token(create, "reading your trials through the API")


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
    flash(f"Token {token.prefix}… is revoked: the API refuses it from now on.", "success")
    return _back_to_tokens()


def _back_to_tokens():
    """Back to the list the revoke button was on: the admin's or the principal's own."""
    return redirect(url_for("admin.tokens") if request.form.get("back") == "admin"
                    and access.can(current_principal(), access.ADMIN)
                    else url_for("web.tokens"))


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


def bad_input_page(exc: ValidationError):
    """A request whose own input is wrong, e.g. a query parameter out of range (400)."""
    text = f"{exc.field + ': ' if exc.field else ''}{exc.message}."
    return render_template("error.html", status=400, title=ERROR_TEXT[400][0], text=text), 400


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


def iso_utc(value):
    """A stored ``datetime`` as ``2026-11-23T19:00:12Z`` (text is left as it is)."""
    if isinstance(value, datetime):
        return as_utc(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


# What free text may not hold, for the browser's own check before it sends (app.js).
REFUSED_CHARACTERS = {"control": CONTROL_RANGES, "surrogate": SURROGATE_RANGES,
                      "invisible": INVISIBLE_RANGES}


def shown_as_stored(value):
    """Every value a template prints, with invisible characters spelled out (``<U+202E>``):
    text stored before they were refused, or read from elsewhere, cannot pose as other text
    on any page. Markup built by the code itself is left as it is; ASCII holds none."""
    if isinstance(value, str) and not value.isascii() and not isinstance(value, Markup):
        return show_invisible(value)
    return value


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.add_template_filter(utc_text, "utc_text")
    app.add_template_filter(iso_utc, "iso_utc")
    app.add_template_global(sites.token_state, "token_state")
    app.jinja_env.finalize = shown_as_stored

    @app.context_processor
    def _chain():
        settings = services().settings
        return {"chain_label": f"{chain_name(settings.chain_id)} (chain id "
                               f"{settings.chain_id})",
                "kind_labels": KIND_LABELS, "refused_characters": REFUSED_CHARACTERS}
