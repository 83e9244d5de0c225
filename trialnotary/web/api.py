"""The JSON API under ``/api/v1``: thin views over ``registrations``, token-only (no
cookies, so no CSRF), and ``{"error": {"code", "message", "field"}}`` for every error under
that prefix, routing errors (404, 405) and oversized bodies (413) included."""

from __future__ import annotations

import json
import re
import tempfile
from array import array
from itertools import accumulate

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, jsonify, request, send_file, url_for
from werkzeug.exceptions import HTTPException

from trialnotary.config import ConfigError
from trialnotary.db import as_utc, utcnow
from trialnotary.filenames import safe_filename
from trialnotary.notary import anchoring, overview, registrations
from trialnotary.notary.errors import RegistrationRefused
from trialnotary.notary.models import Anchor
from trialnotary.people import access, sites
from trialnotary.people.access import requires
from trialnotary.proof.receipt import rfc3339_ms
from trialnotary.validation import ValidationError
from trialnotary.web import openapi, reports, security
from trialnotary.web.auth import current_principal
from trialnotary.web.context import db_session, services

PREFIX = "/api/v1"
bp = Blueprint("api", __name__, url_prefix=PREFIX)

HTTP_ERROR_CODES = {
    400: "invalid_json", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 413: "payload_too_large", 422: "validation_error",
    429: "rate_limited", 500: "internal_error", 503: "unavailable",
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


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
        render=lambda records: registrations.Answer(
            201, _dumps(_created(records, base, bulk=bulk))),
    )
    response = Response(answer.body, status=answer.status, mimetype="application/json")
    if answer.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _created(records: list[dict], base: str, *, bulk: bool) -> dict:
    created = [{
        "id": record["id"], "status": "pending", "record": record,
        "links": {"self": f"{base}/{record['id']}", "receipt": f"{base}/{record['id']}/receipt"},
    } for record in records]
    return {"submissions": created} if bulk else created[0]


UNAUTHORIZED = "a live site token is required: Authorization: Bearer <token>"


def _bearer_token() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", UNAUTHORIZED)
    return token.strip()


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


# Registration bodies nest three deep; anything far deeper is refused before parsing.
MAX_JSON_DEPTH = 64
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(range(256)).translate(None, b"[]{}")
_BRACKET_STEPS = bytes.maketrans(b"[]{}", b"\x01\xff\x01\xff")


def json_depth(body: bytes) -> int:
    """How deep the arrays and objects of a UTF-8 JSON text nest, at C speed.

    ``json.loads`` recurses on the C stack once per level and the process's recursion
    limit is raised to 100,000 by an Ethereum dependency (py_ecc), so a body of a few
    hundred thousand ``[`` would crash the process instead of raising ``RecursionError``.
    Bodies with few brackets are cleared at once; others drop their strings, keep their
    brackets as +1/-1 and take the highest running sum.
    """
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return 0
    steps = _JSON_STRING.sub(b"", body).translate(_BRACKET_STEPS, _NOT_BRACKETS)
    return max(accumulate(array("b", steps)), default=0)


def read_json_body():
    """The request's JSON body, safely: UTF-8, nesting depth bounded, no NaN/Infinity
    (``ApiError`` 400 otherwise, 413 past the size limit). The web form's registrations
    come through here too."""
    if not request.is_json:
        raise ApiError(400, "invalid_json", "send a JSON body with Content-Type: application/json")
    body = request.get_data(cache=False)  # 413 past MAX_CONTENT_LENGTH
    try:
        # UTF-8 only (RFC 8259), which also keeps json_depth exact. Encoded surrogates
        # pass here so that validation can name the field that holds one.
        text = body.decode("utf-8", "surrogatepass")
        if json_depth(body) > MAX_JSON_DEPTH:
            raise ValueError(f"it nests deeper than {MAX_JSON_DEPTH} levels")
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None


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
    found = registrations.download(services().engine, registration_id)
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
    return bundle_response(_known_trial(trial).registry_id)


def _known_trial(trial: str):
    found = sites.find_trial(db_session(), trial)
    if found is None:
        raise ApiError(404, "not_found", "no trial with this id")
    return found


def bundle_response(trial: str) -> Response:
    """Every confirmed receipt of a trial in one zip, with a CSV index and a how-to."""
    session = db_session()
    return send_bundle(f"{trial}_receipts", trial=trial,
                       receipts=overview.trial_receipts(session, trial),
                       rows=overview.report_rows(session, trial))


def send_bundle(name: str, *, receipts, rows, trial: str | None = None,
                scope: str | None = None) -> Response:
    """A receipts zip (see ``reports.write_bundle``) as the download ``<name>.zip``."""
    buffer = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)
    reports.write_bundle(buffer, trial=trial, scope=scope, generated_at=rfc3339_ms(utcnow()),
                         receipts=receipts, rows=rows,
                         anchoring_address=anchoring_address(db_session()))
    buffer.seek(0)
    return send_file(buffer, mimetype="application/zip", as_attachment=True,
                     download_name=safe_filename(name) + ".zip")


def anchoring_address(session) -> str | None:
    """The address the notary anchors from: its newest anchor's sender, else its key's
    (a web process need not hold the key)."""
    sender = session.scalar(sa.select(Anchor.sender).order_by(Anchor.id.desc()).limit(1))
    if sender:
        return sender
    try:
        return services().chain.address
    except ConfigError:
        return None


# --- the service ---------------------------------------------------------------------

@bp.get("/openapi.json", endpoint="openapi")
@requires(access.PUBLIC)
def openapi_document():
    return jsonify(openapi.document())


@bp.get("/healthz")
@requires(access.PUBLIC)
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
@requires(access.PUBLIC)
def readyz():
    """Ready when the database answers; the chain's state is reported, never required."""
    try:
        with services().engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        database = "ok"
    except sa.exc.SQLAlchemyError:
        database = "unavailable"
    chain = services().chain.health()
    if database == "ok":
        chain["anchorer"] = anchorer_status(db_session())
    body = {"status": "ok" if database == "ok" else "unavailable", "database": database,
            "chain": chain}
    return jsonify(body), 200 if database == "ok" else 503


def anchorer_status(session) -> dict | None:
    """What the anchoring process last saw: reachable or not since when, and its alert."""
    status = anchoring.chain_status(session)
    if status is None:
        return None
    return {"reachable": status.reachable, "since": _iso(status.since),
            "checkedAt": _iso(status.checked_at), "alert": status.alert}


def _iso(moment) -> str:
    return rfc3339_ms(as_utc(moment))


# --- errors --------------------------------------------------------------------------

def error_response(status: int, code: str, message: str, field: str | None = None) -> Response:
    response = jsonify({"error": {"code": code, "message": message, "field": field}})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="trialnotary"'
    return response


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
