"""User tokens: an API token that reads the trial endpoints as its user (a sponsor or an
admin). Random and high-entropy, so only its SHA-256 digest is kept; shown once when made.
No Flask here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from trialnotary.db import as_utc, utcnow
from trialnotary.people import audit
from trialnotary.people.errors import InvalidInput
from trialnotary.people.models import User, UserToken
from trialnotary.people.sessions import LAST_SEEN_RESOLUTION, with_its_user
from trialnotary.people.sites import new_token, revoke
from trialnotary.people.states import TOKEN_ROLES
from trialnotary.validation import validate_text

USER_TOKEN_PREFIX = "tn_user_"


def create_user_token(session: Session, user: User, *, name: str | None = None,
                      expires_in_days: float | None = None, actor: str) -> str:
    """A token that reads the API's trial endpoints as ``user`` (sponsors and admins)."""
    if user.role not in TOKEN_ROLES:
        raise InvalidInput("role", "only sponsors and admins have user tokens")
    token, digest, prefix = new_token(USER_TOKEN_PREFIX)
    expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    row = UserToken(user_id=user.id, digest=digest, prefix=prefix, expires_at=expires_at,
                    name=validate_text(name, "name", 100, required=False))
    session.add(row)
    session.flush()
    audit.record(session, actor=actor, action="token.create", entity="user_token",
                 entity_id=row.id, new={"user": user.email, "prefix": prefix, "name": row.name,
                                        "expiresAt": None if expires_at is None
                                        else expires_at.isoformat()})
    return token


def revoke_user_token(session: Session, token_id: int, *, actor: str) -> UserToken:
    row = session.get(UserToken, token_id)
    if row is None:
        raise InvalidInput("token", "no such user token")
    return revoke(session, row, entity="user_token", actor=actor)


def tokens_of_user(session: Session, user_id: int | None) -> list[UserToken]:
    """A user's tokens (never their value), or everyone's with ``None``."""
    query = select(UserToken).order_by(UserToken.id.desc())
    if user_id is not None:
        query = query.where(UserToken.user_id == user_id)
    return list(session.exec(query))


@dataclass(frozen=True)
class TokenLookup:
    """A user token's user, or ``None``; ``touch`` when its "last used" is due (at most
    once a minute). Looking it up writes nothing."""

    user: User | None
    token_id: int | None = None
    touch: bool = False


def authenticate_user_token(session: Session, token: str) -> TokenLookup:
    """The user a live user token reads as: not revoked, not expired, its user enabled and
    still a sponsor or admin."""
    row = with_its_user(session, UserToken, token)
    if row is None:
        return TokenLookup(None)
    stored, user = row
    now = utcnow()
    if (stored.revoked_at is not None or user.disabled_at is not None
            or user.role not in TOKEN_ROLES
            or (stored.expires_at is not None and as_utc(stored.expires_at) <= now)):
        return TokenLookup(None)
    touch = stored.last_used_at is None or \
        now - as_utc(stored.last_used_at) > LAST_SEEN_RESOLUTION
    return TokenLookup(user, stored.id, touch)


def note_token_use(session: Session, token_id: int) -> None:
    session.execute(sa.update(UserToken).where(UserToken.id == token_id)
                    .values(last_used_at=utcnow()))
