"""The JSON API under ``/api/v1``: thin views over ``registrations``, token-only (no
cookies, so no CSRF), and ``{"error": {"code", "message", "field"}}`` for every error under
that prefix, routing errors (404, 405) and oversized bodies (413) included. The contract
is ``docs/api.md``."""

from __future__ import annotations

import json

from flask import Blueprint, Flask, Response, jsonify, request, url_for
from werkzeug.exceptions import HTTPException

from trialnotary.db import as_utc
from trialnotary.notary import anchoring, beacon, overview, registrations
from trialnotary.notary.errors import BlockUnchecked, ChainError, RegistrationRefused
from trialnotary.notary.states import RegistrationStatus
from trialnotary.people import access, sites
from trialnotary.people.access import requires
from trialnotary.proof.receipt import rfc3339_ms
from trialnotary.validation import ValidationError
from trialnotary.web import openapi, security
from trialnotary.web.auth import current_principal
from trialnotary.web.context import db_session, receipt_notary, services
from trialnotary.web.responses import (
    ApiError,
    block_unchecked_response,
    error_response,
    read_json_body,
    trial_bundle_response,
)

PREFIX = "/api/v1"
bp = Blueprint("api", __name__, url_prefix=PREFIX)

HTTP_ERROR_CODES = {
    400: "invalid_json", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 413: "payload_too_large", 422: "validation_error",
    429: "rate_limited", 500: "internal_error", 503: "unavailable",
}


# --- registering ---------------------------------------------------------------------

@bp.post("/submissions")
@requires(access.SITE_TOKEN)
def create_registration():
    return _register(bulk=False)


@bp.post("/submissions/bulk")
@requires(access.SITE_TOKEN)
def create_registrations():
    return _register(bulk=True)


def _register(*, bulk: bool) -> Response:
    base = url_for("api.list_registrations")
    answer = registrations.submit(
        services().engine, token=_bearer_token(), read_payload=read_json_body, bulk=bulk,
        path=request.path, idempotency_key=request.headers.get("Idempotency-Key"),
        chains=services().chains.values(),
        render=lambda records: registrations.Answer(
            201, _dumps(_created(records, base, bulk=bulk))),
    )
    response = Response(answer.body, status=answer.status, mimetype="application/json")
    if answer.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _created(records: list[dict], base: str, *, bulk: bool) -> dict:
    created = [{
        "id": record["id"], "status": RegistrationStatus.PENDING, "record": record,
        "links": {"self": f"{base}/{record['id']}", "receipt": f"{base}/{record['id']}/receipt"},
    } for record in records]
    return {"submissions": created} if bulk else created[0]


UNAUTHORIZED = "a live site token is required: Authorization: Bearer <token>"


def _bearer_token() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", UNAUTHORIZED)
    return token.strip()


def _dumps(body) -> str:
    return json.dumps(body, separators=(",", ":"))


# --- looking up ----------------------------------------------------------------------

@bp.get("/submissions")
@requires(access.PUBLIC)
def list_registrations():
    wait = security.anonymous_lookup_wait(services().settings, current_principal().signed_in)
    if wait is not None:
        response = error_response(429, "rate_limited", "too many look-ups from this address: "
                                                       f"try again in {wait} seconds")
        response.headers["Retry-After"] = str(wait)
        return response
    sha256 = request.args.get("sha256")
    if sha256 is None:
        raise ValidationError("sha256", "is required")
    return jsonify({"submissions": registrations.find_by_sha256(db_session(), sha256)})


@bp.get("/submissions/<registration_id>")
@requires(access.PUBLIC)
def registration(registration_id: str):
    view = registrations.status_of(db_session(), registration_id)
    if view is None:
        raise _unknown_registration()
    return jsonify(view)


@bp.get("/submissions/<registration_id>/receipt")
@requires(access.PUBLIC)
def receipt(registration_id: str):
    found = registrations.download(services().engine, registration_id, receipt_notary())
    if found is None:
        raise _unknown_registration()
    if found.receipt is None:
        response = jsonify(found.status)
        response.status_code = 202
        response.headers["Retry-After"] = str(registrations.retry_after(
            found.status["status"], services().settings.seal_interval_seconds))
        return response
    response = jsonify(found.receipt)
    response.headers["Content-Disposition"] = f"attachment; filename={found.filename}"
    return response


def _unknown_registration() -> ApiError:
    return ApiError(404, "not_found", "no registration with this id")


@bp.get("/batches/<int:batch_id>")
@requires(access.PUBLIC)
def batch(batch_id: int):
    view = registrations.batch_of(db_session(), batch_id)
    if view is None:
        raise ApiError(404, "not_found", "no batch with this id")
    return jsonify(view)


# --- a trial (sponsors' and admins' user tokens) ------------------------------------

@bp.get("/trials/<path:trial>/submissions")
@requires(access.READ_TRIAL, "trial")
def trial_registrations(trial: str):
    found = _known_trial(trial)
    return jsonify({"trial": found.registry_id,
                    "submissions": overview.report_rows(db_session(), found.registry_id)})


@bp.get("/trials/<path:trial>/receipts.zip")
@requires(access.READ_TRIAL, "trial")
def trial_receipts(trial: str):
    return trial_bundle_response(_known_trial(trial).registry_id)


def _known_trial(trial: str):
    found = sites.find_trial(db_session(), trial)
    if found is None:
        raise ApiError(404, "not_found", "no trial with this id")
    return found


# --- the service ---------------------------------------------------------------------

@bp.get("/openapi.json", endpoint="openapi")
@requires(access.PUBLIC)
def openapi_document():
    return jsonify(openapi.document())


@bp.get("/healthz")
@requires(access.PUBLIC)
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/beacon")
@requires(access.PUBLIC)
def beacon_block():
    """The newest confirmed block, for a record's ``notBefore`` (docs/api.md)."""
    try:
        found = beacon.beacon(services().chain)
    except ChainError as exc:
        raise ApiError(503, "unavailable", f"the chain does not answer: {exc}") from None
    response = jsonify(found)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/readyz")
@requires(access.PUBLIC)
def readyz():
    """Ready when the database answers; the chain's state is reported, never required."""
    database = "ok" if overview.database_answers(services().engine) else "unavailable"
    chain = services().chain.health()
    body = {"status": "ok" if database == "ok" else "unavailable", "database": database,
            "chain": chain}
    if database == "ok":
        chain["anchorer"] = anchorer_status(db_session())
        body["anchors"] = anchors_status(db_session())
    return jsonify(body), 200 if database == "ok" else 503


def anchorer_status(session) -> dict | None:
    """What the anchoring process last saw: reachable or not since when, and its alert."""
    return _status_view(anchoring.chain_status(
        session, among=[spec.name for spec in services().settings.anchors]))


def anchors_status(session) -> list[dict]:
    """Each configured anchor, and what its rounds last saw (``None`` before its first)."""
    statuses = anchoring.anchor_statuses(session)
    return [{"name": spec.name, "kind": spec.kind, "every": spec.every,
             "retireOn": spec.retire_on.isoformat() if spec.retire_on else None,
             "status": _status_view(statuses.get(spec.name))}
            for spec in services().settings.anchors]


def _status_view(status) -> dict | None:
    if status is None:
        return None
    return {"reachable": status.reachable, "since": _iso(status.since),
            "checkedAt": _iso(status.checked_at), "alert": status.alert}


def _iso(moment) -> str:
    return rfc3339_ms(as_utc(moment))


# --- errors --------------------------------------------------------------------------

@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    return error_response(exc.status, exc.code, exc.message, exc.field)


@bp.errorhandler(ValidationError)
def _validation_error(exc: ValidationError):
    return error_response(422, "validation_error", exc.message, exc.field)


# The notary's refusals as the API answers them: status, code, and the message when the
# API words it (else the refusal's own).
NOTARY_REFUSALS: dict[type[RegistrationRefused], tuple[int, str, str | None]] = {
    registrations.Unauthorized: (401, "unauthorized", UNAUTHORIZED),
    registrations.Forbidden: (403, "forbidden", None),
    registrations.IdempotencyMismatch: (422, "idempotency_mismatch", None),
}


def _refused(exc: RegistrationRefused):
    status, code, message = NOTARY_REFUSALS[type(exc)]
    return error_response(status, code, message or exc.message, exc.field)


for _refusal in NOTARY_REFUSALS:
    bp.register_error_handler(_refusal, _refused)
bp.register_error_handler(BlockUnchecked, block_unchecked_response)


def is_api_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def http_error(exc: HTTPException):
    """An HTTP error as the API's JSON error (the app routes API paths here, because
    routing errors happen before any blueprint is known)."""
    status = exc.code or 500
    code = getattr(exc, "api_code", None) or HTTP_ERROR_CODES.get(status, f"http_{status}")
    response = error_response(status, code, exc.description or exc.name)
    if status == 405 and getattr(exc, "valid_methods", None):
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    security.csrf.exempt(bp)
