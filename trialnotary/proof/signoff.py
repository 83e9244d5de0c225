"""Sign-offs (21 CFR Part 11 §11.50 manifestation, §11.70 linking): a registration of kind
``sign-off`` whose record carries ``signOff``, the signature's manifestation, and whose
``sha256`` is the digest of it (docs/receipt.md, "Sign-offs").

``signOff`` = ``{"signs": <id of the signed registration>, "signsLeaf": <its leaf, 64 hex>,
"name": <printed name>, "role": <role>, "meaning": <authored|reviewed|approved|locked>,
"signedAt": <RFC 3339 UTC with milliseconds>}``. Bound into the sign-off's own leaf, it
cannot be changed, copied onto another registration or moved in time without breaking the
sign-off's receipt. The notary (notary/signoffs.py) and the ``sign-off`` step of both
verifiers use these rules (static/js/sign-off.js says the same words).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from trialnotary.proof.facts import (
    MAX_SIGNER_NAME_CHARS,
    SIGN_OFF_KEYS,
    SIGN_OFF_KIND,
    SIGN_OFF_MEANINGS,
    SIGN_OFF_ROLES,
)
from trialnotary.proof.receipt import canonical_json

_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SIGNED_AT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")


def sign_off_digest(sign_off: Any) -> str:
    """The sign-off record's ``sha256``: SHA-256 (hex) of the RFC 8785 JSON of ``signOff``."""
    return hashlib.sha256(canonical_json(sign_off)).hexdigest()


def applies(record: dict | None) -> bool:
    """Whether the record is a sign-off's, or claims to be: the ``sign-off`` step is shown."""
    return record is not None and ("signOff" in record or record.get("kind") == SIGN_OFF_KIND)


def sign_off_problem(record: dict) -> str | None:
    """What is wrong with a sign-off's record on its own (its kind, the shape of
    ``signOff``, its digest), or ``None``."""
    kind = record.get("kind")
    if "signOff" not in record:
        return f"the record is of kind {SIGN_OFF_KIND} but holds no signOff"
    if kind != SIGN_OFF_KIND:
        return (f"the record holds a signOff but its kind is {kind!r}, "
                f"not {SIGN_OFF_KIND}")
    problem = shape_problem(record["signOff"])
    if problem is not None:
        return problem
    digest = sign_off_digest(record["signOff"])
    if record["sha256"] != digest:
        return (f"record.sha256 {_short(record['sha256'])} is not the SHA-256 of the "
                f"canonical signOff, {_short(digest)}: the manifestation was changed")
    return None


_EXACT = ", ".join(sorted(SIGN_OFF_KEYS))


def shape_problem(sign_off: Any) -> str | None:
    """What is wrong with ``signOff``'s fields, or ``None``."""
    if not isinstance(sign_off, dict) or sorted(sign_off) != sorted(SIGN_OFF_KEYS):
        return f"signOff must be an object of exactly {_EXACT}"
    checks = (
        ("signs", _is_match(_UUID4), "a registration id (a lowercase UUID4)"),
        ("signsLeaf", _is_match(_HEX64), "64 lowercase hex digits"),
        ("name", _is_name, f"a printed name of 1 to {MAX_SIGNER_NAME_CHARS} characters"),
        ("role", SIGN_OFF_ROLES.__contains__, f"one of {', '.join(SIGN_OFF_ROLES)}"),
        ("meaning", SIGN_OFF_MEANINGS.__contains__, f"one of {', '.join(SIGN_OFF_MEANINGS)}"),
        ("signedAt", _is_match(_SIGNED_AT), "a UTC time with milliseconds "
                                            "(2026-11-23T18:59:01.123Z)"),
    )
    for key, holds, what in checks:
        if not holds(sign_off[key]):
            return f"signOff.{key} must be {what}"
    return None


def _is_match(pattern: re.Pattern):
    return lambda value: isinstance(value, str) and pattern.fullmatch(value) is not None


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= MAX_SIGNER_NAME_CHARS


def _short(hex_value: str) -> str:
    return hex_value[:8] + "…"


def signed_at_problem(sign_off: dict, proven_time: str | None,
                      not_before: dict | None, block_time: str | None) -> str | None:
    """Whether ``signedAt`` lies in the interval the receipt proves, compared at whole
    seconds (block times have no fraction): no later than the proven time, and no earlier
    than the ``notBefore`` block's time when known."""
    signed = sign_off["signedAt"][:19]
    if proven_time is not None and signed > proven_time[:19]:
        return f"signed at {sign_off['signedAt']}, later than the proven time {proven_time}"
    if not_before is not None and block_time is not None and signed < block_time[:19]:
        return (f"signed at {sign_off['signedAt']}, before block {not_before['blockNumber']} "
                f"at {block_time}, which the record names as notBefore")
    return None
