"""The OpenAPI 3.1 document of ``/api/v1``, as data.

Request schemas follow ``validation`` exactly (the limits and enums are the facts it uses,
from ``proof/facts.json``; the patterns are derived from its rules), so a client that
validates against this document gets no surprises; every status code and header the views
produce is listed.

It is longer than our other modules because it is the document itself, schema after schema;
splitting it would only scatter one contract over several files.
"""

from __future__ import annotations

import functools

from trialnotary import __version__
from trialnotary.notary import registrations
from trialnotary.notary.states import BatchState, RegistrationStatus
from trialnotary.proof.facts import (
    ANCHOR_TYPE,
    CHAIN_IDS_BY_NAME,
    CHAINPOINT_CONTEXT,
    CHAINPOINT_TYPE,
    KINDS,
    LOCAL_CHAIN_NAME,
    MAX_DATASET_CHARS,
    MAX_FILENAME_CHARS,
    MAX_REASON_CHARS,
    MAX_SIGNER_NAME_CHARS,
    MAX_SIZE_BYTES,
    MAX_TRIAL_CHARS,
    NOT_BEFORE_KEYS,
    RECEIPT_VERSION,
    RECORD_KEYS,
    REGISTRABLE_KINDS,
    SIGN_OFF_KEYS,
    SIGN_OFF_KIND,
    SIGN_OFF_MEANINGS,
    SIGN_OFF_ROLES,
    TIMESTAMP_TYPE,
)
from trialnotary.validation import (
    CONTROL_RANGES,
    INVISIBLE_RANGES,
    char_class,
)
from trialnotary.web.documents.tables import REPORT_COLUMNS

HEX64_ANY_CASE = "^[0-9a-fA-F]{64}$"
HEX64 = "^[0-9a-f]{64}$"
UUID4 = "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
UUID4_ANY_CASE = ("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}"
                  "-[0-9a-fA-F]{12}$")
SITE = "^[A-Za-z0-9._-]{1,64}$"
RFC3339_MS = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"
IDEMPOTENCY_KEY = r"^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$"

STATUSES = [status.value for status in RegistrationStatus]


def _char_class(codes: list[int], negate: bool = False) -> str:
    """A regex class of code points, runs written as ranges (``[\\u0009-\\u000d ...]``)."""
    runs: list[list[int]] = []
    for code in sorted(codes):
        if runs and code == runs[-1][1] + 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    return char_class(runs, negate=negate)


def _codes(ranges) -> list[int]:
    return [code for first, last in ranges for code in range(first, last + 1)]


# Python's whitespace (what ``\s`` and ``str.strip`` remove) is not ECMA's, so spell it out.
_WHITESPACE = [code for code in range(0x3001) if chr(code).isspace()]
# What free text refuses, less the surrogates: JSON strings hold none but escaped ones, and
# a class of them would refuse every character past U+FFFF under ECMAScript without ``u``.
_REFUSED = _codes((*CONTROL_RANGES, *INVISIBLE_RANGES))
_W = _char_class(_WHITESPACE) + "*"


def _trial_pattern() -> str:
    """Validation removes whitespace, then takes up to 64 ASCII characters, upper-cased: a
    registry id or a sponsor protocol id (``A-Z 0-9 . _ / -``, led by a letter or digit),
    which together are exactly the protocol-id form."""
    return f"^{_W}[A-Za-z0-9](?:{_W}[A-Za-z0-9._/-]){{0,{MAX_TRIAL_CHARS - 1}}}{_W}$"


def _text_pattern(*, non_blank: bool) -> str:
    """No control or invisible characters; ``dataset`` also needs one that is not
    whitespace."""
    allowed = _char_class(_REFUSED, negate=True) + "*"
    if not non_blank:
        return f"^{allowed}$"
    visible = _char_class(sorted({*_REFUSED, *_WHITESPACE}), negate=True)
    return f"^{allowed}{visible}{allowed}$"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


def _json(schema: dict, description: str, headers: dict | None = None) -> dict:
    response = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _error(name: str) -> dict:
    return {"$ref": f"#/components/responses/{name}"}


EXAMPLE = {"trial": "NCT01234567", "site": "SITE-01", "kind": "dataset", "dataset": "ADSL",
           "sha256": "caa5ef8190fdd99618e335ebd518bc17dc090b88f448b52168daf7def73c6c1d",
           "sizeBytes": 4, "filename": "adsl.xpt"}


def _schemas() -> dict:
    size = {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_SIZE_BYTES,
            "description": "bytes; written as an integer (`1234`, not `1234.0`)"}
    return {
        "Error": {
            "type": "object", "additionalProperties": False, "required": ["error"],
            "properties": {"error": {
                "type": "object", "additionalProperties": False,
                "required": ["code", "message", "field"],
                "properties": {
                    "code": {"type": "string", "description":
                             "invalid_json, unauthorized, forbidden, not_found, "
                             "method_not_allowed, payload_too_large, validation_error, "
                             "idempotency_mismatch, rate_limited, internal_error"},
                    "message": {"type": "string"},
                    "field": {"type": ["string", "null"], "description":
                              "the offending field, e.g. `submissions[25].sha256`"},
                },
            }},
        },
        "SubmissionRequest": {
            "type": "object", "additionalProperties": False,
            "required": ["trial", "site", "dataset", "sha256"],
            "properties": {
                "trial": {"type": "string", "pattern": _trial_pattern(), "description":
                          "registry id (NCT, EudraCT, EU CT, ISRCTN, ACTRN, DRKS, jRCT, "
                          "ChiCTR, CTRI) or the sponsor protocol id of an existing trial: "
                          f"whitespace is removed, then at most {MAX_TRIAL_CHARS} ASCII "
                          "characters, upper-cased"},
                "site": {"type": "string", "pattern": SITE, "maxLength": 64,
                         "description": "the token's site, enrolled in the trial"},
                "kind": {"type": "string", "enum": list(REGISTRABLE_KINDS), "default": "dataset",
                         "description": f"never {SIGN_OFF_KIND}: a sign-off is made only by "
                                        "signing a registration on its page"},
                "dataset": {"type": "string", "minLength": 1, "maxLength": MAX_DATASET_CHARS,
                            "pattern": _text_pattern(non_blank=True)},
                "sha256": {"type": "string", "pattern": HEX64_ANY_CASE, "minLength": 64,
                           "maxLength": 64, "description": "any case; stored in lower case"},
                "sizeBytes": size,
                "filename": {"type": ["string", "null"], "maxLength": MAX_FILENAME_CHARS,
                             "pattern": _text_pattern(non_blank=False)},
                "supersedes": {"type": ["string", "null"], "pattern": UUID4_ANY_CASE,
                               "description": "id of an earlier registration of the same "
                                              "trial that this one corrects"},
                "notBefore": NOT_BEFORE,
                "reason": {"type": ["string", "null"], "minLength": 1,
                           "maxLength": MAX_REASON_CHARS,
                           "pattern": _text_pattern(non_blank=True),
                           "description": "why this correction was made, kept in the audit "
                                          "trail (not in the record); only with supersedes"},
            },
            "if": {"required": ["reason"], "properties": {"reason": {"type": "string"}}},
            "then": {"required": ["supersedes"],
                     "properties": {"supersedes": {"type": "string"}}},
            "examples": [EXAMPLE],
        },
        "BulkRequest": {
            "type": "object", "additionalProperties": False, "required": ["submissions"],
            "properties": {"submissions": {
                "type": "array", "minItems": 1, "maxItems": registrations.MAX_BULK,
                "items": _ref("SubmissionRequest")}},
            "examples": [{"submissions": [EXAMPLE, {**EXAMPLE, "dataset": "ADAE",
                                                    "filename": None, "sizeBytes": None}]}],
        },
        "Record": {
            "type": "object", "additionalProperties": False,
            "required": list(RECORD_KEYS),
            "properties": {
                "id": {"type": "string", "pattern": UUID4},
                "trial": {"type": "string"},
                "site": {"type": "string", "pattern": SITE},
                "kind": {"type": "string", "enum": list(KINDS)},
                "dataset": {"type": "string"},
                "sha256": {"type": "string", "pattern": HEX64},
                "sizeBytes": size,
                "filename": {"type": ["string", "null"]},
                "supersedes": {"type": ["string", "null"], "pattern": UUID4},
                "submittedAt": {"type": "string", "pattern": RFC3339_MS},
                "notBefore": NOT_BEFORE,
                "signOff": SIGN_OFF,
            },
        },
        "Beacon": {
            "type": "object", "additionalProperties": False,
            "required": ["chainId", "blockNumber", "blockHash", "blockTime"],
            "properties": {
                "chainId": {"type": "integer", "minimum": 1},
                "blockNumber": {"type": "integer", "minimum": 0},
                "blockHash": {"type": "string", "pattern": "^0x[0-9a-f]{64}$"},
                "blockTime": {"type": "string", "format": "date-time"},
            },
        },
        "Created": {
            "type": "object", "additionalProperties": False,
            "required": ["id", "status", "record", "links"],
            "properties": {
                "id": {"type": "string", "pattern": UUID4},
                "status": {"const": RegistrationStatus.PENDING.value},
                "record": _ref("Record"),
                "links": {
                    "type": "object", "additionalProperties": False,
                    "required": ["self", "receipt"],
                    "properties": {"self": {"type": "string", "format": "uri-reference"},
                                   "receipt": {"type": "string", "format": "uri-reference"}},
                },
            },
        },
        "BulkCreated": {
            "type": "object", "additionalProperties": False, "required": ["submissions"],
            "properties": {"submissions": {"type": "array", "items": _ref("Created")}},
        },
        "Anchor": {
            "type": "object", "additionalProperties": False,
            "required": ["state", "txHash", "chainId", "sender", "nonce", "blockNumber",
                         "blockHash", "blockTime"],
            "properties": {
                "state": {"type": "string", "description": "signed, sent, confirmed, or a "
                                                           "superseded attempt's final state"},
                "txHash": {"type": "string", "pattern": HEX64},
                "chainId": {"type": "integer"},
                "sender": {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"},
                "nonce": {"type": "integer", "minimum": 0},
                "blockNumber": {"type": ["integer", "null"], "minimum": 0},
                "blockHash": {"type": ["string", "null"], "pattern": "^0x[0-9a-f]{64}$"},
                "blockTime": {"type": ["string", "null"]},
            },
        },
        "BatchRef": {
            "type": "object", "additionalProperties": False,
            "required": ["id", "leafIndex", "leafCount", "sealedAt", "root"],
            "properties": {
                "id": {"type": "integer"},
                "leafIndex": {"type": "integer", "minimum": 0},
                "leafCount": {"type": "integer", "minimum": 1},
                "sealedAt": {"type": "string", "pattern": RFC3339_MS},
                "root": {"type": "string", "pattern": HEX64},
            },
        },
        "SubmissionStatus": {
            "type": "object", "additionalProperties": False,
            "required": ["id", "status", "supersededBy", "record", "batch", "anchor"],
            "properties": {
                "id": {"type": "string", "pattern": UUID4},
                "status": {"type": "string", "enum": STATUSES},
                "supersededBy": {"type": ["string", "null"], "pattern": UUID4,
                                 "description": "the registration that corrects this one "
                                                "(a registration is superseded at most "
                                                "once), or null"},
                "record": _ref("Record"),
                "batch": _nullable(_ref("BatchRef")),
                "anchor": _nullable(_ref("Anchor")),
            },
        },
        "SubmissionList": {
            "type": "object", "additionalProperties": False, "required": ["submissions"],
            "properties": {"submissions": {
                "type": "array", "maxItems": registrations.MAX_LOOKUP,
                "items": _ref("SubmissionStatus")}},
        },
        "Batch": {
            "type": "object", "additionalProperties": False,
            "required": ["id", "root", "leafCount", "sealedAt", "state", "anchor"],
            "properties": {
                "id": {"type": "integer"},
                "root": {"type": "string", "pattern": HEX64},
                "leafCount": {"type": "integer", "minimum": 1},
                "sealedAt": {"type": "string", "pattern": RFC3339_MS},
                "state": {"type": "string", "enum": [state.value for state in BatchState]},
                "anchor": _nullable(_ref("Anchor")),
            },
        },
        "Receipt": _receipt_schema(),
        "TrialRegistration": {
            "type": "object", "additionalProperties": False,
            "required": list(REPORT_COLUMNS),
            "properties": {
                "id": {"type": "string", "pattern": UUID4},
                "trial": {"type": "string"}, "site": {"type": "string", "pattern": SITE},
                "kind": {"type": "string", "enum": list(KINDS)},
                "dataset": {"type": "string"}, "filename": _nullable({"type": "string"}),
                "sha256": {"type": "string", "pattern": HEX64},
                "sizeBytes": _nullable({"type": "integer", "minimum": 0}),
                "supersedes": _nullable({"type": "string", "pattern": UUID4}),
                "reason": _nullable({"type": "string"}),
                "submittedAt": {"type": "string", "pattern": RFC3339_MS},
                "notBefore": NOT_BEFORE,
                "signOff": _nullable(SIGN_OFF),
                "registeredBy": _nullable({"type": "string"}),
                "status": {"type": "string", "enum": STATUSES},
                "batchId": _nullable({"type": "integer"}),
                "leafIndex": _nullable({"type": "integer", "minimum": 0}),
                "txHash": _nullable({"type": "string", "pattern": "^0x[0-9a-f]{64}$"}),
                "chainId": _nullable({"type": "integer"}),
                "blockNumber": _nullable({"type": "integer", "minimum": 0}),
                "blockTime": _nullable({"type": "string"}),
                "supersededBy": _nullable({"type": "string", "pattern": UUID4}),
                "supersededReason": _nullable({"type": "string"}),
            },
        },
        "TrialRegistrations": {
            "type": "object", "additionalProperties": False, "required": ["trial", "submissions"],
            "properties": {"trial": {"type": "string"},
                           "submissions": {"type": "array", "items": _ref("TrialRegistration")}},
        },
        "Health": {"type": "object", "required": ["status"],
                   "properties": {"status": {"const": "ok"}}},
        "Readiness": {
            "type": "object", "required": ["status", "database", "chain"],
            "properties": {
                "status": {"type": "string", "enum": ["ok", "unavailable"]},
                "database": {"type": "string", "enum": ["ok", "unavailable"]},
                "chain": {"type": "object", "required": ["reachable"],
                          "properties": {"reachable": {"type": "boolean"}}},
                "anchors": {"type": "array", "description": "Each configured anchor and "
                            "what its rounds last saw (status null before its first).",
                            "items": {"type": "object", "required": ["name", "kind", "status"],
                                      "properties": {
                                          "name": {"type": "string"},
                                          "kind": {"type": "string",
                                                   "enum": ["evm", "rfc3161"]},
                                          "every": {"type": "string"},
                                          "retireOn": {"type": ["string", "null"]},
                                          "status": {"type": ["object", "null"]}}}},
            },
        },
    }


def _evidence_schema() -> dict:
    """An anchor's chain evidence (docs/receipt.md): lowercase hex bytes, and an index."""
    hex_bytes = {"type": "string", "pattern": "^0x([0-9a-f]{2})+$"}
    nodes = {"type": "array", "minItems": 1, "items": hex_bytes}
    return {
        "type": "object", "additionalProperties": False,
        "required": ["transaction", "transactionIndex", "transactionProof", "receipt",
                     "receiptProof", "header"],
        "properties": {"transaction": hex_bytes,
                       "transactionIndex": {"type": "integer", "minimum": 0},
                       "transactionProof": nodes, "receipt": hex_bytes,
                       "receiptProof": nodes, "header": hex_bytes},
    }


def _receipt_schema() -> dict:
    """Receipt version 2 (docs/receipt.md): Chainpoint v2 with named ``ETHData`` and
    ``RFC3161`` anchors (roll-ups and renewals among them), and the notary that issued it."""
    step = {"type": "object", "minProperties": 1, "maxProperties": 1,
            "additionalProperties": False,
            "properties": {"left": {"type": "string", "pattern": HEX64},
                           "right": {"type": "string", "pattern": HEX64}}}
    rollup = {"type": "object", "additionalProperties": False, "required": ["root", "proof"],
              "description": "Folding merkleRoot through proof gives root, which the anchor "
                             "attests.",
              "properties": {"root": {"type": "string", "pattern": HEX64},
                             "proof": {"type": "array", "items": step}}}
    timestamp = {
        "type": "object", "additionalProperties": False,
        "required": ["type", "name", "token", "genTime"],
        "properties": {
            "type": {"const": TIMESTAMP_TYPE},
            "name": {"type": "string", "description": "The anchor's configured name."},
            "token": {"type": "string", "contentEncoding": "base64",
                      "description": "The DER RFC 3161 TimeStampToken."},
            "genTime": {"type": "string",
                        "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"},
            "rollup": rollup,
        },
    }
    anchor = {
        "type": "object", "additionalProperties": False,
        "required": ["type", "name", "sourceId", "chain", "chainId", "sender", "blockNumber",
                     "blockHash", "blockTime"],
        "properties": {
            "type": {"const": ANCHOR_TYPE},
            "name": {"type": "string", "description": "The anchor's configured name."},
            "sourceId": {"type": "string", "pattern": HEX64},
            "chain": {"type": "string", "enum": [*CHAIN_IDS_BY_NAME, LOCAL_CHAIN_NAME]},
            "chainId": {"type": "integer"},
            "sender": {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"},
            "blockNumber": {"type": "integer", "minimum": 0},
            "blockHash": {"type": "string", "pattern": "^0x[0-9a-f]{64}$"},
            "blockTime": {"type": "string",
                          "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"},
            "evidence": _evidence_schema(),
            "rollup": rollup,
            "renewal": {"type": "object", "description": "The retired chain's evidence, "
                        "renewed on the remaining anchors (docs/receipt.md)."},
        },
    }
    return {
        "type": "object", "additionalProperties": False,
        "required": ["@context", "type", "targetHash", "merkleRoot", "proof", "anchors",
                     "trialnotary"],
        "properties": {
            "@context": {"const": CHAINPOINT_CONTEXT},
            "type": {"const": CHAINPOINT_TYPE},
            "targetHash": {"type": "string", "pattern": HEX64},
            "merkleRoot": {"type": "string", "pattern": HEX64},
            "proof": {"type": "array", "items": step},
            "anchors": {"type": "array", "minItems": 1,
                        "items": {"oneOf": [anchor, timestamp]}},
            "trialnotary": {
                "type": "object", "additionalProperties": False,
                "required": ["receiptVersion", "notary", "record", "batch"],
                "properties": {
                    "receiptVersion": {"const": RECEIPT_VERSION},
                    "notary": {
                        "type": "object", "additionalProperties": False,
                        "required": ["name", "url"],
                        "description": "The notary that issued the receipt, in its own words: "
                                       "never a pin (verifiers pin with its identity, "
                                       "/.well-known/trialnotary.json).",
                        "properties": {"name": {"type": "string"},
                                       "url": {"type": ["string", "null"]}},
                    },
                    "record": _ref("Record"),
                    "batch": {
                        "type": "object", "additionalProperties": False,
                        "required": ["id", "leafIndex", "leafCount", "sealedAt"],
                        "properties": {
                            "id": {"type": "integer"},
                            "leafIndex": {"type": "integer", "minimum": 0},
                            "leafCount": {"type": "integer", "minimum": 1},
                            "sealedAt": {"type": "string", "pattern": RFC3339_MS},
                        },
                    },
                },
            },
        },
    }


def _responses() -> dict:
    return {
        "InvalidJson": _json(_ref("Error"), "The body is not UTF-8 JSON, nests deeper than "
                                            "64 levels, or is not sent as `application/json` "
                                            "(`invalid_json`)."),
        "Unauthorized": _json(_ref("Error"), "No token, or not a live one: unknown, expired, "
                                             "revoked, or made by a person who may no longer "
                                             "manage the site's tokens (`unauthorized`).",
                              {"WWW-Authenticate": {"schema": {"type": "string"}}}),
        "Forbidden": _json(_ref("Error"), "The token is another site's (`forbidden`)."),
        "NotYours": _json(_ref("Error"), "The user may not read this trial (`forbidden`)."),
        "NotFound": _json(_ref("Error"), "Unknown or malformed id (`not_found`)."),
        "PayloadTooLarge": _json(_ref("Error"), "The body is over 16 MiB "
                                                "(`payload_too_large`)."),
        "Unprocessable": _json(_ref("Error"), "A field is invalid, the trial or site is "
                                              "unknown or not enrolled (`validation_error`), "
                                              "or the Idempotency-Key was used with another "
                                              "request (`idempotency_mismatch`)."),
        "RateLimited": _json(_ref("Error"), "Too many anonymous look-ups from this address "
                                            "(`rate_limited`): a user token is not limited.",
                             _retry_after()),
        "Busy": _json(_ref("Error"), "The database gave no turn to write within the "
                                     "server's wait, or the notary's node did not answer "
                                     "when asked for a `notBefore` block; nothing was "
                                     "stored (`unavailable`).",
                      _retry_after()),
    }


def _retry_after() -> dict:
    return {"Retry-After": {"required": True, "description": "seconds",
                            "schema": {"type": "integer", "minimum": 1}}}


def _post(summary: str, request_schema: str, created: dict) -> dict:
    return {
        "summary": summary,
        "security": [{"siteToken": []}],
        "parameters": [{"$ref": "#/components/parameters/IdempotencyKey"}],
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": _ref(request_schema)}}},
        "responses": {
            "201": created,
            "400": _error("InvalidJson"), "401": _error("Unauthorized"),
            "403": _error("Forbidden"), "413": _error("PayloadTooLarge"),
            "422": _error("Unprocessable"), "503": _error("Busy"),
        },
    }


def _paths() -> dict:
    replayed = {"Idempotent-Replayed": {
        "description": "`true` when this is the kept answer to an earlier request with the "
                       "same Idempotency-Key", "schema": {"type": "string", "const": "true"}}}
    registration_id = {"$ref": "#/components/parameters/SubmissionId"}
    trial = {"name": "trial", "in": "path", "required": True, "schema": {"type": "string"},
             "description": "The trial's id as registered; a CTRI id keeps its slashes "
                            "(/trials/CTRI/2020/01/123456/submissions)."}
    trial_errors = {"401": _error("Unauthorized"), "403": _error("NotYours"),
                    "404": _error("NotFound")}
    return {
        "/submissions": {
            "post": _post("Register one file's SHA-256", "SubmissionRequest",
                          _json(_ref("Created"), "Registered (stored and committed).",
                                replayed)),
            "get": {
                "summary": "Registrations of a SHA-256",
                "description": f"At most {registrations.MAX_LOOKUP}, oldest first.",
                "security": [],
                "parameters": [{"name": "sha256", "in": "query", "required": True,
                                "schema": {"type": "string", "pattern": HEX64_ANY_CASE,
                                           "minLength": 64, "maxLength": 64}}],
                "responses": {
                    "200": _json(_ref("SubmissionList"), "The registrations."),
                    "422": _error("Unprocessable"),
                    "429": _error("RateLimited"),
                },
            },
        },
        "/submissions/bulk": {
            "post": _post(f"Register up to {registrations.MAX_BULK} files, all or none",
                          "BulkRequest",
                          _json(_ref("BulkCreated"), "All registered, in request order.",
                                replayed)),
        },
        "/submissions/{id}": {"get": {
            "summary": "A registration's status, batch and anchor",
            "security": [],
            "parameters": [registration_id],
            "responses": {"200": _json(_ref("SubmissionStatus"), "The registration."),
                          "404": _error("NotFound")},
        }},
        "/submissions/{id}/receipt": {"get": {
            "summary": "A registration's receipt, once its anchor is confirmed",
            "security": [],
            "parameters": [registration_id],
            "responses": {
                "200": _json(_ref("Receipt"), "The receipt, as a download.", {
                    "Content-Disposition": {"required": True, "schema": {
                        "type": "string",
                        "pattern": r"^attachment; filename=[A-Za-z0-9._-]+\.receipt\.json$"}},
                }),
                "202": _json(_ref("SubmissionStatus"), "Not confirmed yet: ask again later.",
                             _retry_after()),
                "404": _error("NotFound"),
            },
        }},
        "/batches/{id}": {"get": {
            "summary": "A batch: root, size, anchor state",
            "security": [],
            "parameters": [{"name": "id", "in": "path", "required": True,
                            "schema": {"type": "integer", "minimum": 1}}],
            "responses": {"200": _json(_ref("Batch"), "The batch."),
                          "404": _error("NotFound")},
        }},
        "/trials/{trial}/submissions": {"get": {
            "summary": "Every registration of a trial, oldest first, with who registered it",
            "security": [{"userToken": []}],
            "parameters": [trial],
            "responses": {"200": _json(_ref("TrialRegistrations"), "The registrations."),
                          **trial_errors},
        }},
        "/trials/{trial}/receipts.zip": {"get": {
            "summary": "Every confirmed receipt of a trial, with a CSV index and how to verify",
            "security": [{"userToken": []}],
            "parameters": [trial],
            "responses": {"200": {"description": "A zip file.", "content": {
                "application/zip": {"schema": {"type": "string",
                                               "contentMediaType": "application/zip"}}}},
                          **trial_errors},
        }},
        "/openapi.json": {"get": {
            "summary": "This document", "security": [],
            "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1.")},
        }},
        "/healthz": {"get": {
            "summary": "The process is alive", "security": [],
            "responses": {"200": _json(_ref("Health"), "Alive.")},
        }},
        "/beacon": {"get": {
            "summary": "The newest confirmed block of the notary's first chain anchor, for a "
                       "record's notBefore", "security": [],
            "responses": {"200": _json(_ref("Beacon"), "The block."),
                          "503": _json(_ref("Error"), "The chain's node does not answer.")},
        }},
        "/readyz": {"get": {
            "summary": "The database answers (the chain's state is reported, not required)",
            "security": [],
            "responses": {"200": _json(_ref("Readiness"), "Ready."),
                          "503": _json(_ref("Readiness"), "The database does not answer.")},
        }},
    }


#: A record's ``notBefore`` (docs/receipt.md), written out where it is used: the request
#: schema is also used on its own, without the document's components.
NOT_BEFORE = {
    "type": "object", "additionalProperties": False, "required": list(NOT_BEFORE_KEYS),
    "description": "a block the record was made after (GET /beacon); bound into the leaf, "
                   "present only when given. Refused (422) unless its chain is one the "
                   "notary anchors on and its node has that hash at that number",
    "properties": {
        "chainId": {"type": "integer", "minimum": 1, "maximum": MAX_SIZE_BYTES},
        "blockNumber": {"type": "integer", "minimum": 0, "maximum": MAX_SIZE_BYTES},
        "blockHash": {"type": "string", "pattern": "^0x[0-9a-f]{64}$"},
    },
}


#: A sign-off's manifestation (docs/receipt.md, "Sign-offs"; 21 CFR Part 11 §11.50, §11.70).
SIGN_OFF = {
    "type": "object", "additionalProperties": False, "required": list(SIGN_OFF_KEYS),
    "description": f"on a record of kind {SIGN_OFF_KIND} only, written by the notary when a "
                   "person signs a registration on its page with their e-mail address and "
                   "password re-entered: "
                   "the record's sha256 is the SHA-256 of this object's RFC 8785 JSON, and "
                   "the record's trial and site are the signed registration's; bound into the "
                   "leaf, so the signature cannot be moved to another record",
    "properties": {
        "signs": {"type": "string", "pattern": UUID4,
                  "description": "the id of the signed registration"},
        "signsLeaf": {"type": "string", "pattern": HEX64,
                      "description": "the signed registration's leaf (its targetHash)"},
        "name": {"type": "string", "minLength": 1, "maxLength": MAX_SIGNER_NAME_CHARS,
                 "description": "the signer's printed name"},
        "role": {"type": "string", "enum": list(SIGN_OFF_ROLES)},
        "meaning": {"type": "string", "enum": list(SIGN_OFF_MEANINGS)},
        "signedAt": {"type": "string", "pattern": RFC3339_MS,
                     "description": "the notary's clock at signing (UTC); no later than the "
                                    "proven time, no earlier than notBefore's block"},
    },
}


@functools.cache
def document() -> dict:
    """The whole document; built once per process."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "trialnotary", "version": __version__, "description":
                 "Register SHA-256 hashes of clinical-trial files; fetch their receipts once "
                 "anchored on Ethereum. Errors are `{\"error\": {\"code\", \"message\", "
                 "\"field\"}}`."},
        "servers": [{"url": "/api/v1"}],
        "paths": _paths(),
        "components": {
            "schemas": _schemas(),
            "responses": _responses(),
            "parameters": {
                "IdempotencyKey": {
                    "name": "Idempotency-Key", "in": "header", "required": False,
                    "description": "Retries with the same key and body within 24 h get the "
                                   "first answer back; another body is refused.",
                    "schema": {"type": "string", "minLength": 1,
                               "maxLength": registrations.MAX_IDEMPOTENCY_KEY,
                               "pattern": IDEMPOTENCY_KEY},
                },
                "SubmissionId": {"name": "id", "in": "path", "required": True,
                                 "schema": {"type": "string", "pattern": UUID4_ANY_CASE}},
            },
            "securitySchemes": {
                "siteToken": {"type": "http", "scheme": "bearer",
                              "description": "A site token (`trialnotary token create SITE`)."},
                "userToken": {"type": "http", "scheme": "bearer",
                              "description": "A sponsor's or admin's user token (the web "
                                             "pages' API tokens page)."}},
        },
    }
