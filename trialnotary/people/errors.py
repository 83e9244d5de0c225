"""The errors of the people package, under one base: ``PeopleError``.

``InvalidInput`` is also the shared ``ValidationError``, so every caller that answers bad
input (a form's message, the API's 400, the CLI's refusal) answers it unchanged.
"""

from __future__ import annotations

from trialnotary.errors import TrialnotaryError
from trialnotary.validation import ValidationError


class PeopleError(TrialnotaryError):
    """Anything the people package refuses."""


class InvalidInput(PeopleError, ValidationError):
    """Bad input to a people service; ``field`` names where."""


class UnknownPermission(PeopleError, ValueError):
    """A route or a check names a permission the access policy does not know: a
    programming error, found when the route is declared."""
