"""What the pages and the API answer alike: JSON bodies read safely, JSON errors, file
downloads and receipts zips. Neither imports the other; both import this."""

from __future__ import annotations

import json
import re
import tempfile
from array import array
from itertools import accumulate

from flask import Response, jsonify, render_template, request, send_file

from trialnotary.config import ConfigError
from trialnotary.db import utcnow
from trialnotary.errors import TrialnotaryError
from trialnotary.filenames import safe_filename
from trialnotary.notary import overview
from trialnotary.notary.errors import BlockUnchecked
from trialnotary.proof.receipt import rfc3339_ms
from trialnotary.validation import ValidationError
from trialnotary.web.context import (
    db_session,
    page_default_rpc,
    receipt_notary,
    served_identity,
    services,
)
from trialnotary.web.documents import verifier_page
from trialnotary.web.documents.bundle import write_bundle


class ApiError(TrialnotaryError):
    """A request refused with a JSON error: ``{"error": {"code", "message", "field"}}``."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


# --- JSON in -----------------------------------------------------------------------------

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


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


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


def json_list(name: str, limit: int) -> list:
    """The list ``name`` of a JSON body (``ApiError``/``ValidationError`` otherwise)."""
    payload = read_json_body()
    items = payload.get(name) if isinstance(payload, dict) else None
    if not isinstance(items, list) or len(items) > limit:
        raise ValidationError(name, f"must be a list of at most {limit:,} items")
    return items


# --- JSON errors out ---------------------------------------------------------------------

def error_response(status: int, code: str, message: str, field: str | None = None) -> Response:
    response = jsonify({"error": {"code": code, "message": message, "field": field}})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="trialnotary"'
    return response


def block_unchecked_response(exc: BlockUnchecked) -> Response:
    """``503 unavailable`` with ``Retry-After``: a ``notBefore`` block could not be checked
    because the node does not answer; nothing was stored."""
    response = error_response(503, "unavailable", exc.message, exc.field)
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def refusal_response(exc: ApiError | ValidationError) -> Response:
    """The JSON error for a refused request: an ``ApiError`` as it says, a
    ``ValidationError`` as ``422 validation_error``."""
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.field)
    return error_response(422, "validation_error", exc.message, exc.field)


# --- files out ---------------------------------------------------------------------------

def wants_bom() -> bool:
    """``?bom=1``: a CSV for spreadsheet programs, which read UTF-8 only after a BOM."""
    return request.args.get("bom") == "1"


def download(body, mimetype: str, filename: str) -> Response:
    """A file to save. Text types get ``charset=utf-8`` from Flask, exactly once."""
    return Response(body, mimetype=mimetype,
                    headers={"Content-Disposition": f"attachment; filename={filename}"})


def verifier_page_html() -> str:
    """This notary's self-contained verifier page (``documents.verifier_page``)."""
    settings = services().settings
    return render_template(verifier_page.TEMPLATE, **verifier_page.template_values(
        identity_text=served_identity(), default_rpc=page_default_rpc(settings),
        chain_id=settings.chain_id))


def trial_bundle_response(trial: str) -> Response:
    """Every confirmed receipt of a trial in one zip, with a CSV index and a how-to."""
    session = db_session()
    return send_bundle(f"{trial}_receipts", trial=trial,
                       receipts=overview.trial_receipts(session, trial, receipt_notary()),
                       rows=overview.report_rows(session, trial))


def send_bundle(name: str, *, receipts, rows, trial: str | None = None,
                scope: str | None = None) -> Response:
    """A receipts zip (see ``documents.bundle.write_bundle``) as the download ``<name>.zip``."""
    buffer = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)
    write_bundle(buffer, trial=trial, scope=scope, generated_at=rfc3339_ms(utcnow()),
                 receipts=receipts, rows=rows, anchoring_address=anchoring_address(),
                 notary=receipt_notary(), verifier_page=verifier_page_html())
    buffer.seek(0)
    return send_file(buffer, mimetype="application/zip", as_attachment=True,
                     download_name=safe_filename(name) + ".zip")


def anchoring_address() -> str | None:
    """The address the notary anchors from: its newest anchor's sender, else its key's
    (a web process need not hold the key)."""
    sender = overview.newest_anchor_sender(db_session())
    if sender:
        return sender
    try:
        return services().chain.address
    except ConfigError:
        return None
