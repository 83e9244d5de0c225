"""Query parameters, read one way by every view.

Each is parsed and range-checked here, before it reaches date arithmetic or the database,
where an odd value would otherwise end as a 500 (a date past 9999-12-31, an integer wider
than the column, a NUL byte PostgreSQL refuses). A bad one raises ``ValidationError``
naming the parameter: pages answer 400 with that message, the API its
``validation_error``. An absent or blank parameter is ``None``; given twice, the first
counts.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import date

from flask import request

from trialnotary.validation import (
    ValidationError,
    normalize_trial_id,
    validate_site_id,
    validate_text,
    validate_uuid,
)

# The largest id the database's INTEGER columns hold (PostgreSQL's int4; SQLite's are wider).
DB_INT_MAX = 2**31 - 1
MAX_TEXT_CHARS = 255
_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,30}")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def raw(name: str) -> str | None:
    """The parameter as sent, stripped; ``None`` when absent or blank."""
    return request.args.get(name, "").strip() or None


def integer(name: str, *, low: int, high: int) -> int | None:
    value = raw(name)
    return None if value is None else parse_integer(value, name, low=low, high=high)


def day(name: str) -> date | None:
    value = raw(name)
    return None if value is None else parse_day(value, name)


def choice(name: str, choices: Collection[str]) -> str | None:
    value = raw(name)
    if value is None or value in choices:
        return value
    raise ValidationError(name, f"must be one of {', '.join(choices)}")


def text(name: str, *, max_chars: int = MAX_TEXT_CHARS) -> str | None:
    """Free text under the rule of labels: valid Unicode, no control or invisible
    characters."""
    value = raw(name)
    return None if value is None else validate_text(value, name, max_chars, required=False)


def trial_id(name: str) -> str | None:
    """A registry or protocol id, normalised as stored (``nct 0123 4567`` → ``NCT01234567``)."""
    value = raw(name)
    return None if value is None else normalize_trial_id(value, protocol_id=True, field=name)


def site_id(name: str) -> str | None:
    value = raw(name)
    return None if value is None else validate_site_id(value, name)


def registration_id(name: str) -> str | None:
    value = raw(name)
    return None if value is None else validate_uuid(value, name)


def parse_integer(value: str, field: str, *, low: int, high: int) -> int:
    """ASCII digits only (``int`` would also take ``１２``, ``1_000`` and spaces)."""
    if _WHOLE_NUMBER.fullmatch(value) and low <= int(value) <= high:
        return int(value)
    raise ValidationError(field, f"must be a whole number from {low} to {high}")


def parse_day(value: str, field: str) -> date:
    """``YYYY-MM-DD`` only (``date.fromisoformat`` would also take ``20261123`` and week
    dates)."""
    if _DAY.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValidationError(field, "must be a date like 2026-11-23, from 0001-01-01 to "
                                 "9999-12-31")
