"""People: users, passwords, sign-in with lock-out, sessions, grants and user tokens.

Passwords get a memory-hard hash (Argon2id); session cookies and API tokens are random and
high-entropy, so only their SHA-256 digests are kept. Every change is written to the audit
trail, attributed to ``actor``. No Flask here.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from trialnotary.db import as_utc, utcnow
from trialnotary.people import audit, sites
from trialnotary.people.access import ROLES, Principal
from trialnotary.people.models import (
    LoginAttempt,
    ShownOnce,
    Site,
    Trial,
    User,
    UserGrant,
    UserSession,
    UserToken,
)
from trialnotary.people.sites import SYSTEM, find_site, find_trial, new_token, revoke, token_digest
from trialnotary.validation import ValidationError, validate_text

MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024
# Sign-in throttling, per (e-mail address, client address): see ``throttled_until``.
FREE_FAILURES = 5
FIRST_WAIT = timedelta(minutes=1)
LONGEST_WAIT = timedelta(minutes=15)
FAILURE_MEMORY = timedelta(hours=24)
SESSION_MAX_AGE = timedelta(hours=12)
LAST_SEEN_RESOLUTION = timedelta(minutes=1)
USER_TOKEN_PREFIX = "tn_user_"
SHOWN_ONCE_WAIT = timedelta(minutes=10)
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")

_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so that a miss takes as long as a hit.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


# --- users ---------------------------------------------------------------------------

def normalize_email(value) -> str:
    if not isinstance(value, str) or len(value) > 254 or not _EMAIL.fullmatch(value.strip()):
        raise ValidationError("email", "must be an e-mail address")
    validate_text(value, "email", 254, required=True)  # no NUL, no character posing as another
    return value.strip().lower()


def check_password(password, email: str) -> str:
    """The password policy: long enough, not absurdly long, not the e-mail address."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_CHARS:
        raise ValidationError("password", f"must have at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValidationError("password", f"must have at most {MAX_PASSWORD_CHARS} characters")
    if password.strip().lower() == email:
        raise ValidationError("password", "must not be the e-mail address")
    return password


def generated_password() -> str:
    return secrets.token_urlsafe(15)


def find_user(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == email.strip().lower())).first()


def _user_view(user: User) -> dict:
    return {"email": user.email, "name": user.name, "role": user.role,
            "disabled": user.disabled_at is not None}


def create_user(session: Session, email: str, role: str, *, name: str | None = None,
                password: str | None = None, actor: str = SYSTEM) -> tuple[User, str | None]:
    """A new user; returns it and, when no password was given, a generated one (shown
    once; the user must change it at first sign-in)."""
    email = normalize_email(email)
    if role not in ROLES:
        raise ValidationError("role", f"must be one of {', '.join(ROLES)}")
    if find_user(session, email) is not None:
        raise ValidationError("email", f"a user {email} already exists")
    generated = None
    if password is None:
        password = generated = generated_password()
    user = User(email=email, role=role, name=validate_text(name, "name", 200, required=False),
                password_hash=_hasher.hash(check_password(password, email)),
                must_change_password=generated is not None, password_changed_at=utcnow())
    session.add(user)
    session.flush()
    audit.record(session, actor=actor, action="user.create", entity="user",
                 entity_id=user.id, new=_user_view(user))
    return user, generated


def set_password(session: Session, user: User, password: str, *, actor: str,
                 temporary: bool = False) -> None:
    """A new password; ``temporary`` ones (set by an admin) must be changed at sign-in.
    Every session of the user ends."""
    user.password_hash = _hasher.hash(check_password(password, user.email))
    user.must_change_password = temporary
    user.password_changed_at = utcnow()
    session.add(user)
    session.execute(sa.delete(UserSession).where(UserSession.user_id == user.id))
    audit.record(session, actor=actor, action="user.password", entity="user",
                 entity_id=user.id, new={"email": user.email, "temporary": temporary})


@dataclass(frozen=True)
class UserChange:
    """What changing a user took away with it: the grants of the old role (``trial X``,
    ``site Y``) and the site tokens they made that the change ended."""

    dropped_grants: list[str]
    ended_tokens: list[sites.CreatedToken]


def update_user(session: Session, user: User, *, role: str | None = None,
                name: str | None = None, disabled: bool | None = None,
                actor: str) -> UserChange:
    """Change a user; returns what the change took away with it.

    A grant belongs to the role it was given for: a coordinator made a sponsor loses their
    sites, so that being made a coordinator again later gives back none of them silently.
    The site tokens the person made and may no longer manage end for good (see
    ``end_lapsed_tokens``).
    """
    old = _user_view(user)
    if role is not None:
        if role not in ROLES:
            raise ValidationError("role", f"must be one of {', '.join(ROLES)}")
        user.role = role
    if name is not None:
        user.name = validate_text(name, "name", 200, required=False)
    if disabled is not None:
        user.disabled_at = (user.disabled_at or utcnow()) if disabled else None
        if disabled:
            session.execute(sa.delete(UserSession).where(UserSession.user_id == user.id))
    new = _user_view(user)
    if new == old:
        return UserChange([], [])
    session.add(user)
    audit.record(session, actor=actor, action="user.update", entity="user",
                 entity_id=user.id, old=old, new=new)
    dropped = [] if new["role"] == old["role"] else _drop_grants_of_other_roles(
        session, user, reason=f"the role changed from {old['role']} to {new['role']}",
        actor=actor)
    reason = "its creator was disabled" if new["disabled"] else \
        f"its creator's role is now {user.role}"
    return UserChange(dropped, end_lapsed_tokens(session, user, actor=actor, reason=reason))


def _drop_grants_of_other_roles(session: Session, user: User, *, reason: str,
                                actor: str) -> list[str]:
    """Remove the grants the user's role does not take (each one audited)."""
    rows = session.execute(
        select(UserGrant, Trial, Site).select_from(UserGrant)
        .outerjoin(Trial, Trial.id == UserGrant.trial_id)
        .outerjoin(Site, Site.id == UserGrant.site_id)
        .where(UserGrant.user_id == user.id).order_by(UserGrant.id)).all()
    keeps = {"sponsor": "trial", "coordinator": "site"}.get(user.role)
    dropped = []
    for row, trial, site in rows:
        scope = _grant_scope(trial, site)
        if keeps in scope:
            continue
        session.delete(row)
        audit.record(session, actor=actor, action="user.revoke-grant", entity="user",
                     entity_id=user.id, old={"email": user.email, **scope}, reason=reason)
        dropped.append(" ".join(next(iter(scope.items()))))
    session.flush()
    return dropped


# --- grants --------------------------------------------------------------------------

def grant(session: Session, user: User, *, trial: str | None = None, site: str | None = None,
          actor: str = SYSTEM) -> None:
    """Give a sponsor a trial, or a coordinator a site."""
    trial_row, site_row = _grant_target(session, user, trial=trial, site=site)
    if session.exec(_grant_query(select(UserGrant), user, trial_row, site_row)).first():
        return
    session.add(UserGrant(user_id=user.id, trial_id=trial_row.id if trial_row else None,
                          site_id=site_row.id if site_row else None))
    session.flush()
    audit.record(session, actor=actor, action="user.grant", entity="user", entity_id=user.id,
                 new={"email": user.email, **_grant_scope(trial_row, site_row)})


def revoke_grant(session: Session, user: User, *, trial: str | None = None,
                 site: str | None = None, actor: str) -> list[sites.CreatedToken]:
    """Take a grant away; returns the site tokens of the user's that it ended."""
    trial_row, site_row = _grant_target(session, user, trial=trial, site=site)
    if not session.execute(_grant_query(sa.delete(UserGrant), user, trial_row,
                                        site_row)).rowcount:
        return []
    audit.record(session, actor=actor, action="user.revoke-grant", entity="user",
                 entity_id=user.id, old={"email": user.email,
                                         **_grant_scope(trial_row, site_row)})
    scope = f"trial {trial_row.registry_id}" if trial_row else f"site {site_row.code}"
    return end_lapsed_tokens(session, user, actor=actor,
                             reason=f"its creator's grant of {scope} was revoked")


def end_lapsed_tokens(session: Session, user: User, *, actor: str,
                      reason: str) -> list[sites.CreatedToken]:
    """End, for good, the live site tokens ``user`` made that they may no longer manage
    as they are now: a later grant or enabling does not bring them back."""
    now = principal_of(session, user) if user.disabled_at is None else None
    return sites.end_tokens(session, sites.tokens_lapsing(
        sites.live_tokens_created_by(session, user.id), now), actor=actor, reason=reason)


@dataclass(frozen=True)
class TokenEndings:
    """Which of a person's live site tokens each change on their admin page would end."""

    disable: list[sites.CreatedToken]
    role: dict[str, list[sites.CreatedToken]]          # by the new role
    revoke_site: dict[str, list[sites.CreatedToken]]   # by the site whose grant goes


def token_endings(session: Session, user: User) -> TokenEndings:
    tokens = sites.live_tokens_created_by(session, user.id)
    now = principal_of(session, user)
    return TokenEndings(
        disable=sites.tokens_lapsing(tokens, None),
        role={role: sites.tokens_lapsing(tokens, replace(now, role=role)) for role in ROLES
              if role != user.role},
        revoke_site={site: sites.tokens_lapsing(tokens, replace(now, sites=now.sites - {site}))
                     for site in now.sites})


def _grant_query(statement, user: User, trial: Trial | None, site: Site | None):
    # ``== None`` is SQL's IS NULL here.
    return statement.where(UserGrant.user_id == user.id,
                           UserGrant.trial_id == (trial.id if trial else None),
                           UserGrant.site_id == (site.id if site else None))


def _grant_target(session: Session, user: User, *, trial: str | None, site: str | None):
    if user.role == "sponsor":
        if not trial or site:
            raise ValidationError("trial", "a sponsor is granted trials")
        found = find_trial(session, trial)
        if found is None:
            raise ValidationError("trial", f"unknown trial {trial}")
        return found, None
    if user.role == "coordinator":
        if not site or trial:
            raise ValidationError("site", "a coordinator is granted sites")
        found = find_site(session, site)
        if found is None:
            raise ValidationError("site", f"unknown site {site}")
        return None, found
    raise ValidationError("role", "an admin needs no grants")


def _grant_scope(trial: Trial | None, site: Site | None) -> dict:
    return {"trial": trial.registry_id} if trial else {"site": site.code}


def grants_of(session: Session, user_id: int) -> tuple[frozenset[str], frozenset[str]]:
    """A user's granted trials and sites."""
    rows = session.execute(
        select(Trial.registry_id, Site.code).select_from(UserGrant)
        .outerjoin(Trial, Trial.id == UserGrant.trial_id)
        .outerjoin(Site, Site.id == UserGrant.site_id)
        .where(UserGrant.user_id == user_id)).all()
    return (frozenset(t for t, _ in rows if t), frozenset(s for _, s in rows if s))


def principal_of(session: Session, user: User) -> Principal:
    trials, sites_ = grants_of(session, user.id)
    return Principal(user_id=user.id, email=user.email, role=user.role, trials=trials,
                     sites=sites_, must_change_password=user.must_change_password)


# --- signing in ----------------------------------------------------------------------

@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in: a user, or why not: ``invalid``, or ``throttled`` (this
    client must wait until ``retry_at``; when ``checked`` is false its password was not
    even looked at)."""

    user: User | None
    problem: str | None = None
    retry_at: datetime | None = None
    checked: bool = True


def _failures_since_cleared(session: Session, email: str, address: str | None,
                            now: datetime) -> list[datetime]:
    """The times of this client's failed sign-ins as ``email``, newest first, since its
    last success there or an admin's unlock, within ``FAILURE_MEMORY``."""
    from_client = LoginAttempt.ip.is_(None) if address is None else LoginAttempt.ip == address
    events = session.execute(
        select(LoginAttempt.kind, LoginAttempt.at)
        .where(LoginAttempt.email == email, LoginAttempt.at > now - FAILURE_MEMORY,
               from_client | (LoginAttempt.kind == "unlock"))
        .order_by(LoginAttempt.at.desc(), LoginAttempt.id.desc())).all()
    failures = []
    for kind, at in events:
        if kind in ("success", "unlock"):
            break
        if kind == "failure":
            failures.append(as_utc(at))
    return failures


def throttled_until(session: Session, email: str, address: str | None, *,
                    now: datetime | None = None) -> datetime | None:
    """Until when this client (``address``) must wait before a sign-in as ``email`` is
    checked again, or ``None``.

    The first ``FREE_FAILURES`` failures cost nothing; each one after them makes the client
    wait ``FIRST_WAIT``, doubled per further failure, at most ``LONGEST_WAIT``, from that
    failure. Only this client waits: the person, or anyone else, still signs in from another
    address, so failures aimed at an account never lock its owner out. Counted per e-mail
    address whether or not a user has it, so answers tell nobody which exist.
    """
    now = now or utcnow()
    failures = _failures_since_cleared(session, email, address, now)
    if len(failures) < FREE_FAILURES:
        return None
    doublings = min(len(failures) - FREE_FAILURES, 16)
    until = failures[0] + min(FIRST_WAIT * 2 ** doublings, LONGEST_WAIT)
    return until if until > now else None


def throttled_clients(session: Session, emails, *,
                      now: datetime | None = None) -> list[tuple[str, str | None, datetime]]:
    """``(email, address, until)`` for each client that waits now to sign in as one of
    ``emails``, soonest free first."""
    now = now or utcnow()
    pairs = session.execute(
        select(LoginAttempt.email, LoginAttempt.ip).distinct()
        .where(LoginAttempt.email.in_(list(emails)), LoginAttempt.kind == "failure",
               LoginAttempt.at > now - FAILURE_MEMORY)).all()
    waiting = [(email, address, until) for email, address in pairs
               if (until := throttled_until(session, email, address, now=now)) is not None]
    return sorted(waiting, key=lambda found: (found[2], found[0], found[1] or ""))


def sign_in(session: Session, email: str, password: str, *, ip: str | None = None) -> SignIn:
    """Check a password, record the attempt, and throttle this client after repeated
    failures (see ``throttled_until``). The caller commits (whatever the outcome: failures
    must be kept). A client that must wait is answered at once, its password unchecked
    and its attempt not counted."""
    try:
        email = normalize_email(email)
    except ValidationError:
        _hasher_miss(password)
        return SignIn(None, "invalid")
    until = throttled_until(session, email, ip)
    if until is not None:
        return SignIn(None, "throttled", until, checked=False)
    user = find_user(session, email)
    # Always one Argon2 verification, so no answer is faster for an unknown or disabled user.
    verified = _verify(user, password) if user is not None else _hasher_miss(password)
    valid = verified and user.disabled_at is None
    session.add(LoginAttempt(email=email, user_id=user.id if user else None,
                             kind="success" if valid else "failure", ip=ip))
    session.flush()
    if valid:
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
            session.add(user)
        return SignIn(user)
    until = throttled_until(session, email, ip)
    if until is not None:
        session.add(LoginAttempt(email=email, user_id=user.id if user else None, kind="locked",
                                 ip=ip))
        audit.record(session, actor="system", action="login.locked", entity="login",
                     entity_id=email, new={"email": email, "address": ip,
                                           "lockedUntil": until.isoformat()})
        return SignIn(None, "throttled", until)
    return SignIn(None, "invalid")


def _verify(user: User, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _hasher_miss(password: str) -> bool:
    try:
        _hasher.verify(_DUMMY_HASH, password if isinstance(password, str) else "")
    except VerificationError:
        pass
    return False


def unlock(session: Session, email: str, *, actor: str) -> None:
    """Lift every client's wait to sign in as ``email``."""
    email = normalize_email(email)
    session.add(LoginAttempt(email=email, kind="unlock",
                             user_id=getattr(find_user(session, email), "id", None)))
    audit.record(session, actor=actor, action="login.unlock", entity="login", entity_id=email,
                 new={"email": email})


def recent_attempts(session: Session, *, limit: int = 200) -> list[LoginAttempt]:
    return list(session.exec(select(LoginAttempt).order_by(LoginAttempt.at.desc(),
                                                           LoginAttempt.id.desc())
                             .limit(limit)))


# --- sessions ------------------------------------------------------------------------

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
    row = session.execute(select(UserSession, User).join(User, User.id == UserSession.user_id)
                          .where(UserSession.digest == token_digest(token))).first()
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


# --- user tokens ---------------------------------------------------------------------

def create_user_token(session: Session, user: User, *, name: str | None = None,
                      expires_in_days: float | None = None, actor: str) -> str:
    """A token that reads the API's trial endpoints as ``user`` (sponsors and admins)."""
    if user.role not in ("sponsor", "admin"):
        raise ValidationError("role", "only sponsors and admins have user tokens")
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
        raise ValidationError("token", "no such user token")
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
    row = session.execute(select(UserToken, User).join(User, User.id == UserToken.user_id)
                          .where(UserToken.digest == token_digest(token))).first()
    if row is None:
        return TokenLookup(None)
    stored, user = row
    now = utcnow()
    if (stored.revoked_at is not None or user.disabled_at is not None
            or user.role not in ("sponsor", "admin")
            or (stored.expires_at is not None and as_utc(stored.expires_at) <= now)):
        return TokenLookup(None)
    touch = stored.last_used_at is None or \
        now - as_utc(stored.last_used_at) > LAST_SEEN_RESOLUTION
    return TokenLookup(user, stored.id, touch)


def note_token_use(session: Session, token_id: int) -> None:
    session.execute(sa.update(UserToken).where(UserToken.id == token_id)
                    .values(last_used_at=utcnow()))
