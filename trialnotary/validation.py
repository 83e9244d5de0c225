"""Input rules (docs/receipt.md, "Validation"): whatever passes here can always be sealed.

The kinds and the size limits are facts of the receipt format (``proof/facts.json``)."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from trialnotary.errors import TrialnotaryError
from trialnotary.proof.facts import (
    KINDS,  # noqa: F401  (every kind a record may hold: the lists filter by it)
    MAX_DATASET_CHARS,
    MAX_FILENAME_CHARS,
    MAX_REASON_CHARS,
    MAX_SIZE_BYTES,
    MAX_TRIAL_CHARS,
    NOT_BEFORE_KEYS,
    REGISTRABLE_KINDS,
    SIGN_OFF_KIND,
)

TRIAL_PATTERNS = {
    "NCT": re.compile(r"NCT\d{8}"),
    "EudraCT": re.compile(r"\d{4}-\d{6}-\d{2}"),
    "EU CT": re.compile(r"\d{4}-\d{6}-\d{2}-\d{2}"),
    "ISRCTN": re.compile(r"ISRCTN\d{8}"),
    "ACTRN": re.compile(r"ACTRN\d{14}"),
    "DRKS": re.compile(r"DRKS\d{8}"),
    "jRCT": re.compile(r"JRCT\d{10}"),
    "ChiCTR": re.compile(r"CHICTR\d+(-[A-Z]+)?"),
    "CTRI": re.compile(r"CTRI/\d{4}/\d{2}/\d{6}"),
}
ANY_REGISTRY_ID = re.compile("|".join(f"(?:{p.pattern})" for p in TRIAL_PATTERNS.values()))
# Slash-separated parts that each begin with a letter or digit: no empty, "." or ".." part,
# which browsers would fold away in the trial's page addresses.
PROTOCOL_ID = re.compile(r"[A-Z0-9][A-Z0-9._-]*(?:/[A-Z0-9][A-Z0-9._-]*)*")
SITE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
SHA256_ANY_CASE = re.compile(r"[0-9a-fA-F]{64}")
# Exactly Unicode's categories Cc (controls) and Cs (surrogates).
CONTROL_RANGES = ((0x00, 0x1F), (0x7F, 0x9F))
SURROGATE_RANGES = ((0xD800, 0xDFFF),)
# Characters that are invisible, or change how the text around them is shown: Unicode's
# format characters (category Cf: the bidi controls such as U+202E, zero-width spaces and
# joiners, U+FEFF, tags…) and the other default-ignorable code points (U+034F, the Hangul
# fillers, variation selectors…). Text holding one can look like other text (a file name
# that reads backwards, two labels that look the same), so free text refuses them as it
# refuses control characters, ZWJ/ZWNJ and variation selectors included: telling their
# legitimate uses (Persian, Indic scripts, emoji sequences) from spoofing needs context
# rules that neither an OpenAPI pattern nor a simple check in the browser can state.
# Text stored before, or read from elsewhere, is shown with each one spelled out
# (``show_invisible``). The one list of them: validation, the OpenAPI patterns, the
# browser's check and the pages all use it.
INVISIBLE_RANGES = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x0600, 0x0605), (0x061C, 0x061C),
    (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2),
    (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F),
    (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFFB), (0x110BD, 0x110BD),
    (0x110CD, 0x110CD), (0x13430, 0x1343F), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)


def char_class(ranges, *, negate: bool = False) -> str:
    """A regular-expression class of code point ranges that Python, ECMAScript (with the
    ``u`` flag) and JSON Schema read alike: ``\\uXXXX`` escapes, literal characters past
    U+FFFF (``\\U…`` is Python's only, ``\\u{…}`` ECMAScript's only)."""
    def one(code: int) -> str:
        return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)

    parts = (one(a) if a == b else f"{one(a)}-{one(b)}" for a, b in sorted(ranges))
    return "[" + ("^" if negate else "") + "".join(parts) + "]"


INVISIBLE = re.compile(char_class(INVISIBLE_RANGES))
CONTROL_OR_SURROGATE = re.compile(char_class((*CONTROL_RANGES, *SURROGATE_RANGES)))
_REFUSED_IN_TEXT = re.compile(char_class((*CONTROL_RANGES, *SURROGATE_RANGES,
                                          *INVISIBLE_RANGES)))


def show_invisible(text: str) -> str:
    """``text`` with each invisible character spelled out, ``a<U+202E>b``, so that what a
    page shows is what is stored."""
    if INVISIBLE.search(text) is None:
        return text
    return INVISIBLE.sub(lambda found: f"<U+{ord(found.group()):04X}>", text)


class ValidationError(TrialnotaryError, ValueError):
    """Bad input; ``field`` names where (``submissions[25].sha256``)."""

    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def normalize_trial_id(value: Any, *, protocol_id: bool = False, field: str = "trial") -> str:
    """A registry id upper-cased with spaces removed, e.g. ``nct 0123 4567`` → ``NCT01234567``.

    With ``protocol_id`` a sponsor's protocol id (letters, digits, ``._/-``) is accepted.
    """
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string")
    normalized = "".join(value.split())
    # ASCII only, checked before upper-casing: "ß".upper() is "SS", "١" is a digit to \d.
    if not normalized.isascii() or len(normalized) > MAX_TRIAL_CHARS:
        raise ValidationError(field, f"must be at most {MAX_TRIAL_CHARS} ASCII characters")
    normalized = normalized.upper()
    if ANY_REGISTRY_ID.fullmatch(normalized):
        return normalized
    if protocol_id and PROTOCOL_ID.fullmatch(normalized):
        return normalized
    raise ValidationError(field, f"{value[:80]!r} is not a trial registry id (NCT, EudraCT, "
                                 "EU CT, ISRCTN, ACTRN, DRKS, jRCT, ChiCTR or CTRI)")


def validate_site_id(value: Any, field: str = "site") -> str:
    if not isinstance(value, str) or not SITE_ID.fullmatch(value):
        raise ValidationError(field, "must be 1–64 letters, digits, '.', '_' or '-'")
    return value


def validate_text(value: Any, field: str, max_chars: int, *, required: bool) -> str | None:
    """Valid Unicode with no control or invisible characters, at most ``max_chars``
    characters."""
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string" + ("" if required else " or null"))
    if required and not value.strip():
        raise ValidationError(field, "must not be empty")
    if len(value) > max_chars:
        raise ValidationError(field, f"must be at most {max_chars} characters")
    if (bad := _REFUSED_IN_TEXT.search(value)) is None:
        return value
    char = bad.group()
    if unicodedata.category(char) == "Cs":
        raise ValidationError(field, "must be valid Unicode (it holds a lone surrogate)")
    if unicodedata.category(char) == "Cc":
        raise ValidationError(field, f"must not hold control characters (U+{ord(char):04X})")
    name = unicodedata.name(char, "")
    raise ValidationError(field, f"must not hold the invisible character U+{ord(char):04X}"
                                 + (f" ({name})" if name else ""))


def validate_sha256(value: Any, field: str = "sha256") -> str:
    if not isinstance(value, str) or not SHA256_ANY_CASE.fullmatch(value):
        raise ValidationError(field, "must be 64 hex digits (the file's SHA-256)")
    return value.lower()


def validate_size(value: Any, field: str = "sizeBytes") -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SIZE_BYTES:
        raise ValidationError(field, f"must be an integer from 0 to {MAX_SIZE_BYTES}, or null")
    return value


def validate_uuid(value: Any, field: str) -> str:
    if not isinstance(value, str) or not UUID4.fullmatch(value.lower()):
        raise ValidationError(field, "must be a registration id (a UUID4)")
    return value.lower()


REGISTRATION_FIELDS = {"trial", "site", "kind", "dataset", "sha256", "sizeBytes", "filename",
                     "supersedes", "reason", "notBefore"}
BLOCK_HASH = re.compile(r"0x[0-9a-f]{64}")


def validate_not_before(value: Any, field: str = "notBefore") -> dict:
    """A block the record is made after (``GET /api/v1/beacon``): exactly ``chainId`` (a
    positive integer), ``blockNumber`` (an integer from 0) and ``blockHash`` (0x and 64
    lowercase hex digits), in that order."""
    if not isinstance(value, dict):
        raise ValidationError(field, "must be an object {chainId, blockNumber, blockHash}")
    unknown = sorted(set(value) - set(NOT_BEFORE_KEYS))
    if unknown:
        raise ValidationError(f"{field}.{unknown[0]}", "is not a known field")
    for key in NOT_BEFORE_KEYS:
        if key not in value:
            raise ValidationError(f"{field}.{key}", "is required")
    _whole_number(value["chainId"], f"{field}.chainId", least=1)
    _whole_number(value["blockNumber"], f"{field}.blockNumber", least=0)
    block_hash = value["blockHash"]
    if not isinstance(block_hash, str) or not BLOCK_HASH.fullmatch(block_hash):
        raise ValidationError(f"{field}.blockHash", "must be 0x and 64 lowercase hex digits")
    return {key: value[key] for key in NOT_BEFORE_KEYS}


def _whole_number(value: Any, field: str, *, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) \
            or not least <= value <= MAX_SIZE_BYTES:
        raise ValidationError(field, f"must be an integer from {least} to {MAX_SIZE_BYTES}")


#: Why a registration of kind ``sign-off`` is refused: the manifestation is the notary's to
#: write, after the signer re-entered their e-mail address and password (docs/receipt.md,
#: "Sign-offs").
SIGN_OFF_REFUSED = (f"cannot be {SIGN_OFF_KIND}: a sign-off is made only by signing a "
                    "registration on its page, with your e-mail address and password")


def validate_registration(data: Any, prefix: str = "") -> dict:
    """A normalised registration request (record keys, less ``id`` and ``submittedAt``),
    plus ``reason`` when a correction says why (it goes to the audit trail, not the record).

    Unknown keys are refused so that a typo (``sha265``) is never silently dropped.
    """
    if not isinstance(data, dict):
        raise ValidationError(prefix.rstrip(".") or None, "must be a JSON object")
    if "signOff" in data:
        raise ValidationError(prefix + "signOff", "is the notary's to write: "
                              + SIGN_OFF_REFUSED.removeprefix("cannot be sign-off: "))
    unknown = sorted(set(data) - REGISTRATION_FIELDS)
    if unknown:
        raise ValidationError(prefix + unknown[0], "is not a known field")
    for required in ("trial", "site", "dataset", "sha256"):
        if required not in data:
            raise ValidationError(prefix + required, "is required")
    kind = data.get("kind", "dataset")
    if kind == SIGN_OFF_KIND:
        raise ValidationError(prefix + "kind", SIGN_OFF_REFUSED)
    if kind not in REGISTRABLE_KINDS:
        raise ValidationError(prefix + "kind", f"must be one of {', '.join(REGISTRABLE_KINDS)}")
    supersedes = data.get("supersedes")
    item = {
        "trial": normalize_trial_id(data["trial"], protocol_id=True, field=prefix + "trial"),
        "site": validate_site_id(data["site"], prefix + "site"),
        "kind": kind,
        "dataset": validate_text(data["dataset"], prefix + "dataset", MAX_DATASET_CHARS,
                                 required=True),
        "sha256": validate_sha256(data["sha256"], prefix + "sha256"),
        "sizeBytes": validate_size(data.get("sizeBytes"), prefix + "sizeBytes"),
        "filename": validate_text(data.get("filename"), prefix + "filename",
                                  MAX_FILENAME_CHARS, required=False),
        "supersedes": None if supersedes is None
        else validate_uuid(supersedes, prefix + "supersedes"),
    }
    if "notBefore" in data:
        item["notBefore"] = validate_not_before(data["notBefore"], prefix + "notBefore")
    if data.get("reason") is not None:
        if item["supersedes"] is None:
            raise ValidationError(prefix + "reason", "is only for a correction: give "
                                                     "supersedes, the registration it corrects")
        item["reason"] = validate_text(data["reason"], prefix + "reason", MAX_REASON_CHARS,
                                       required=True)
    return item
