"""The named values of people, named once: roles, sign-in events and problems, token states.

They are ``StrEnum``s: each member equals its string, so the stored column values, the
audit trail, the CLI's choices and the templates keep the same words.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What a person is; see ``people.access`` for what each may do."""

    ADMIN = "admin"
    SPONSOR = "sponsor"
    COORDINATOR = "coordinator"


ROLES = tuple(Role)
# The roles whose people hold user tokens (the API's trial endpoints).
TOKEN_ROLES = (Role.SPONSOR, Role.ADMIN)


class LoginEvent(StrEnum):
    """A row of the sign-in log (``LoginAttempt.kind``)."""

    FAILURE = "failure"
    SUCCESS = "success"
    LOCKED = "locked"   # the lock-out began
    UNLOCK = "unlock"   # an admin lifted it


class SignInProblem(StrEnum):
    """Why a sign-in gave no user."""

    INVALID = "invalid"
    THROTTLED = "throttled"


class TokenState(StrEnum):
    """A site or user token as listed."""

    LIVE = "live"
    EXPIRED = "expired"
    REVOKED = "revoked"
