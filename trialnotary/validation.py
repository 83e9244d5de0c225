"""Input rules from DESIGN.md "Validation": whatever passes here can always be sealed."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

KINDS = ("dataset", "protocol", "sap", "consent-form", "report", "other")
MAX_SIZE_BYTES = 2**53 - 1
MAX_DATASET_CHARS = 200
MAX_FILENAME_CHARS = 255
MAX_TRIAL_CHARS = 64

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
# Exactly Unicode's categories Cc (controls) and Cs (surrogates), found in one C-speed scan.
CONTROL_OR_SURROGATE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


class ValidationError(ValueError):
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
    """Valid Unicode with no control characters, at most ``max_chars`` characters."""
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string" + ("" if required else " or null"))
    if required and not value.strip():
        raise ValidationError(field, "must not be empty")
    if len(value) > max_chars:
        raise ValidationError(field, f"must be at most {max_chars} characters")
    if (bad := CONTROL_OR_SURROGATE.search(value)) is None:
        return value
    if unicodedata.category(bad.group()) == "Cs":
        raise ValidationError(field, "must be valid Unicode (it holds a lone surrogate)")
    raise ValidationError(field, f"must not hold control characters (U+{ord(bad.group()):04X})")


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


SUBMISSION_FIELDS = {"trial", "site", "kind", "dataset", "sha256", "sizeBytes", "filename",
                     "supersedes", "reason"}
MAX_REASON_CHARS = 1000


def validate_submission(data: Any, prefix: str = "") -> dict:
    """A normalised registration request (record keys, less ``id`` and ``submittedAt``),
    plus ``reason`` when a correction says why (it goes to the audit trail, not the record).

    Unknown keys are refused so that a typo (``sha265``) is never silently dropped.
    """
    if not isinstance(data, dict):
        raise ValidationError(prefix.rstrip(".") or None, "must be a JSON object")
    unknown = sorted(set(data) - SUBMISSION_FIELDS)
    if unknown:
        raise ValidationError(prefix + unknown[0], "is not a known field")
    for required in ("trial", "site", "dataset", "sha256"):
        if required not in data:
            raise ValidationError(prefix + required, "is required")
    kind = data.get("kind", "dataset")
    if kind not in KINDS:
        raise ValidationError(prefix + "kind", f"must be one of {', '.join(KINDS)}")
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
    if data.get("reason") is not None:
        if item["supersedes"] is None:
            raise ValidationError(prefix + "reason", "is only for a correction: give "
                                                     "supersedes, the registration it corrects")
        item["reason"] = validate_text(data["reason"], prefix + "reason", MAX_REASON_CHARS,
                                       required=True)
    return item
