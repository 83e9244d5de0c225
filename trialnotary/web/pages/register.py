"""The coordinator's register page: the form, its one JSON request that registers the
files' hashes, and the check for hashes the notary holds already."""

from __future__ import annotations

from flask import jsonify, render_template, request, url_for

from trialnotary.notary import registrations
from trialnotary.notary.errors import BlockUnchecked
from trialnotary.notary.states import RegistrationStatus
from trialnotary.people import access, sites
from trialnotary.people.access import requires
from trialnotary.validation import (
    MAX_DATASET_CHARS,
    MAX_FILENAME_CHARS,
    MAX_REASON_CHARS,
    ValidationError,
    validate_sha256,
)
from trialnotary.web.auth import current_principal
from trialnotary.web.context import db_session, services
from trialnotary.web.pages.blueprint import KIND_GROUPS, bp
from trialnotary.web.responses import (
    ApiError,
    block_unchecked_response,
    error_response,
    json_list,
    read_json_body,
    refusal_response,
)

#: What the register page checks before sending, as the server does (never cut short).
LIMITS = {"label": MAX_DATASET_CHARS, "filename": MAX_FILENAME_CHARS,
          "reason": MAX_REASON_CHARS, "bulk": registrations.MAX_BULK}


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
    return render_template("register.html", pairs=pairs, kind_groups=KIND_GROUPS, limits=LIMITS,
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
    identity = registrations.UserRegistrant(principal.user_id, principal.email,
                                            principal.sites)
    try:
        records = registrations.register_as_user(services().engine, identity, read_json_body(),
                                                 services().chains.values())
    except (ApiError, ValidationError) as exc:
        return refusal_response(exc)
    except BlockUnchecked as exc:
        return block_unchecked_response(exc)
    except registrations.Forbidden as exc:
        return error_response(403, "forbidden", exc.message, exc.field)
    return jsonify({"submissions": [{
        "id": record["id"], "status": RegistrationStatus.PENDING, "record": record,
        "links": {"page": url_for("web.registration", registration_id=record["id"])},
    } for record in records]}), 201


@bp.post("/register/check")
@requires(access.REGISTER)
def registered_already():
    """Before registering: which of the page's hashes the notary already holds in a trial
    of the coordinator's sites (``{"sha256": [...]}`` in, ``{"registered": {hash: [...]}}``
    out), so the page can flag them and registering them again is a deliberate choice."""
    try:
        hashes = [validate_sha256(value, f"sha256[{index}]") for index, value in
                  enumerate(json_list("sha256", registrations.MAX_BULK))]
    except (ApiError, ValidationError) as exc:
        return refusal_response(exc)
    session = db_session()
    trials = {pair["trial"] for pair in sites.enrolments_of(session, current_principal().sites)}
    found = registrations.registered_in_trials(session, hashes, trials)
    for known in found.values():
        for registration in known:
            registration["page"] = url_for("web.registration", registration_id=registration["id"])
    return jsonify({"registered": found})
