"""A signed-in browser's session, and the secrets kept for it to show once.

The session cookie is random and high-entropy, so only its SHA-256 digest is kept; a session
ends after a time without activity, after ``SESSION_MAX_AGE`` in any case, and when its user
is disabled or their password changes. A new token or temporary password is kept for the
page a form redirects to (``keep_to_show_once``), split between the database and the
browser's session. No Flask here.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from trialnotary.db import as_utc, utcnow
from trialnotary.people.models import ShownOnce, User, UserSession
from trialnotary.people.sites import token_digest

SESSION_MAX_AGE = timedelta(hours=12)
LAST_SEEN_RESOLUTION = timedelta(minutes=1)
SHOWN_ONCE_WAIT = timedelta(minutes=10)


def with_its_user(session: Session, model, token: str):
    """``(row, user)``: the session or user token (``model``) whose digest is ``token``'s,
    and its user; or ``None``."""
    return session.execute(select(model, User).join(User, User.id == model.user_id)
                           .where(model.digest == token_digest(token))).first()


def start_session(session: Session, user: User) -> str:
    """A new session for a signed-in user; returns the cookie value (kept only hashed)."""
    token = secrets.token_urlsafe(32)
    session.add(UserSession(digest=token_digest(token), user_id=user.id))
    session.flush()
    return token


@dataclass(frozen=True)
class SessionLookup:
    """A session's user, or ``None``; ``expired`` if it must end now, ``touch`` if its
    activity should be noted (at most once a minute). Reading it writes nothing."""

    user: User | None
    expired: bool = False
    touch: bool = False


def resume_session(session: Session, token: str, *, idle: timedelta) -> SessionLookup:
    """The user of a session cookie, unless it is unknown, idle too long, too old, or the
    user is disabled."""
    row = with_its_user(session, UserSession, token)
    if row is None:
        return SessionLookup(None)
    stored, user = row
    now = utcnow()
    last_seen = as_utc(stored.last_seen_at)
    if (user.disabled_at is not None or now - last_seen > idle
            or now - as_utc(stored.created_at) > SESSION_MAX_AGE):
        return SessionLookup(None, expired=True)
    return SessionLookup(user, touch=now - last_seen > LAST_SEEN_RESOLUTION)


def note_session(session: Session, token: str, *, ended: bool) -> None:
    """End a session, or note that it is in use now."""
    where = UserSession.digest == token_digest(token)
    if ended:
        session.execute(sa.delete(UserSession).where(where))
    else:
        session.execute(sa.update(UserSession).where(where).values(last_seen_at=utcnow()))


def end_session(session: Session, token: str) -> None:
    session.execute(sa.delete(UserSession).where(UserSession.digest == token_digest(token)))


def end_sessions_of(session: Session, user: User) -> None:
    """Sign a user out of every browser."""
    session.execute(sa.delete(UserSession).where(UserSession.user_id == user.id))


# --- secrets shown once -------------------------------------------------------------

def keep_to_show_once(session: Session, user_id: int, secret: str) -> tuple[str, str]:
    """Keep ``secret`` for the page a form redirects to; returns ``(key, pad)`` for the
    browser's session. Only ``secret XOR pad`` is stored, so the database alone never holds
    it; what waited longer than ``SHOWN_ONCE_WAIT`` is dropped."""
    data = secret.encode("utf-8")
    pad = secrets.token_bytes(len(data))
    key = secrets.token_urlsafe(16)
    session.execute(sa.delete(ShownOnce).where(ShownOnce.created_at
                                               < utcnow() - SHOWN_ONCE_WAIT))
    session.add(ShownOnce(key=key, user_id=user_id, sealed=_xor(data, pad)))
    session.flush()
    return key, pad.hex()


def take_shown_once(session: Session, user_id: int, key: str, pad: str) -> str | None:
    """The secret kept under ``key`` for this user, once: taking it deletes it."""
    row = session.get(ShownOnce, key)
    if row is None or row.user_id != user_id:
        return None
    session.delete(row)
    session.flush()
    try:
        pad_bytes = bytes.fromhex(pad)
    except ValueError:
        return None
    if len(pad_bytes) != len(row.sealed) or \
            utcnow() - as_utc(row.created_at) > SHOWN_ONCE_WAIT:
        return None
    return _xor(bytes(row.sealed), pad_bytes).decode("utf-8", "replace")


def _xor(data: bytes, pad: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, pad, strict=True))
