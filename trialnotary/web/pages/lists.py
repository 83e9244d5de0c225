"""The signed-in list of registrations: filtered and paged, live statuses, rows newer than
the list, what registrations wait for, and the receipts of the sites or of one upload."""

from __future__ import annotations

from flask import jsonify, render_template, request, url_for

from trialnotary.db import utcnow
from trialnotary.notary import overview
from trialnotary.notary.states import RegistrationStatus
from trialnotary.people import access
from trialnotary.people.access import requires
from trialnotary.people.states import Role
from trialnotary.proof.receipt import rfc3339_ms
from trialnotary.validation import KINDS, ValidationError, validate_uuid
from trialnotary.web import query
from trialnotary.web.auth import current_principal
from trialnotary.web.context import db_session, receipt_notary
from trialnotary.web.pages.blueprint import (
    KIND_LABELS,
    STATUSES,
    bp,
    expected_wait,
    page_number,
)
from trialnotary.web.responses import (
    ApiError,
    error_response,
    json_list,
    refusal_response,
    send_bundle,
)

MAX_UPLOAD_IDS = 100_000


def _filters() -> overview.Filters:
    date_from, date_to = query.day("date_from"), query.day("date_to")
    return overview.Filters(
        trial=query.trial_id("trial"), site=query.site_id("site"),
        kind=query.choice("kind", KINDS), label=query.text("label"),
        status=query.choice("status", STATUSES),
        date_from=date_from and date_from.isoformat(), date_to=date_to and date_to.isoformat())


@bp.get("/registrations")
@requires(access.READ_SITE)
def my_registrations():
    principal = current_principal()
    filters = _filters()
    page = page_number()
    rows, total = overview.list_registrations(db_session(), principal, filters, page=page)
    site_choices = sorted(principal.sites) if principal.role == Role.COORDINATOR else []
    waiting_rows = any(row["status"] != RegistrationStatus.CONFIRMED for row in rows)
    return render_template("registrations.html", rows=rows, total=total, filters=filters,
                           page=page, page_size=overview.PAGE_SIZE, kinds=KIND_LABELS,
                           statuses=STATUSES, site_choices=site_choices,
                           newer_url=url_for("web.newer_registrations", **request.args)
                           if page == 1 else None,
                           wait=expected_wait() if waiting_rows else None)


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
        return error_response(400, "validation_error", "must be registration ids separated by "
                                                       "commas", "ids")
    return jsonify(overview.statuses(db_session(), current_principal(), ids))


@bp.get("/registrations/wait")
@requires(access.SIGNED_IN)
def waiting():
    """What registrations wait for now (the next seal, confirmations, a chain outage), as
    the notice the register page shows after Register."""
    return render_template("_waiting.html", wait=expected_wait(),
                           status=RegistrationStatus.PENDING)


@bp.get("/registrations/receipts.zip")
@requires(access.READ_SITE)
def site_receipts():
    """Every confirmed receipt of the coordinator's sites in one zip (index.csv lists
    every registration of them, confirmed or not)."""
    principal = current_principal()
    session = db_session()
    names = sorted(principal.sites) if principal.role == Role.COORDINATOR else []
    scope = f"site{'s' if len(names) > 1 else ''} {', '.join(names)}" if names \
        else "every site"
    return send_bundle(f"{'_'.join(names) or 'all-sites'}_receipts", scope=scope,
                       receipts=overview.visible_receipts(session, principal, receipt_notary()),
                       rows=overview.visible_report_rows(session, principal))


@bp.post("/registrations/receipts.zip")
@requires(access.READ_SITE)
def upload_receipts():
    """The confirmed receipts of one upload: ``{"ids": [...]}`` (the registrations of one
    press of Register), of those the principal may see; others are left out unsaid."""
    try:
        ids = sorted({validate_uuid(value, f"ids[{index}]") for index, value in
                      enumerate(json_list("ids", MAX_UPLOAD_IDS))})
    except (ApiError, ValidationError) as exc:
        return refusal_response(exc)
    principal = current_principal()
    session = db_session()
    stamp = rfc3339_ms(utcnow())[:19].replace(":", "-")
    return send_bundle(f"upload_{stamp}_receipts",
                       scope=f"one upload ({len(ids)} registration{'s' if len(ids) != 1 else ''})",
                       receipts=overview.visible_receipts(session, principal,
                                                          receipt_notary(), ids),
                       rows=overview.visible_report_rows(session, principal, ids))
