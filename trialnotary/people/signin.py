"""Signing in: checking a password, the sign-in log, and throttling a client after
repeated failures (see ``throttled_until``), with an admin's unlock. No Flask here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, select

from trialnotary.db import as_utc, utcnow
from trialnotary.people import audit, passwords
from trialnotary.people.accounts import find_user, normalize_email
from trialnotary.people.models import LoginAttempt, User
from trialnotary.people.states import LoginEvent, SignInProblem
from trialnotary.validation import ValidationError

# Sign-in throttling, per (e-mail address, client address): see ``throttled_until``.
FREE_FAILURES = 5
FIRST_WAIT = timedelta(minutes=1)
LONGEST_WAIT = timedelta(minutes=15)
FAILURE_MEMORY = timedelta(hours=24)


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in: a user, or why not: ``invalid``, or ``throttled`` (this
    client must wait until ``retry_at``; when ``checked`` is false its password was not
    even looked at)."""

    user: User | None
    problem: SignInProblem | None = None
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
               from_client | (LoginAttempt.kind == LoginEvent.UNLOCK))
        .order_by(LoginAttempt.at.desc(), LoginAttempt.id.desc())).all()
    failures = []
    for kind, at in events:
        if kind in (LoginEvent.SUCCESS, LoginEvent.UNLOCK):
            break
        if kind == LoginEvent.FAILURE:
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
        .where(LoginAttempt.email.in_(list(emails)), LoginAttempt.kind == LoginEvent.FAILURE,
               LoginAttempt.at > now - FAILURE_MEMORY)).all()
    waiting = [(email, address, until) for email, address in pairs
               if (until := throttled_until(session, email, address, now=now)) is not None]
    return sorted(waiting, key=lambda found: (found[2], found[0], found[1] or ""))


def sign_in(session: Session, email: str, password: str, *, ip: str | None = None,
            refused: bool = False) -> SignIn:
    """Check a password, record the attempt, and throttle this client after repeated
    failures (see ``throttled_until``). The caller commits (whatever the outcome: failures
    must be kept). A client that must wait is answered at once, its password unchecked
    and its attempt not counted. ``refused``: a failure whatever the password (still
    checked, so that the answer takes as long)."""
    try:
        email = normalize_email(email)
    except ValidationError:
        passwords.miss(password)
        return SignIn(None, SignInProblem.INVALID)
    until = throttled_until(session, email, ip)
    if until is not None:
        return SignIn(None, SignInProblem.THROTTLED, until, checked=False)
    user = find_user(session, email)
    # Always one Argon2 verification, so no answer is faster for an unknown or disabled user.
    verified = passwords.matches(user.password_hash, password) if user is not None \
        else passwords.miss(password)
    valid = verified and not refused and user.disabled_at is None
    session.add(LoginAttempt(email=email, user_id=user.id if user else None,
                             kind=LoginEvent.SUCCESS if valid else LoginEvent.FAILURE, ip=ip))
    session.flush()
    if valid:
        if passwords.needs_rehash(user.password_hash):
            user.password_hash = passwords.hashed(password)
            session.add(user)
        return SignIn(user)
    until = throttled_until(session, email, ip)
    if until is not None:
        session.add(LoginAttempt(email=email, user_id=user.id if user else None,
                                 kind=LoginEvent.LOCKED, ip=ip))
        audit.record(session, actor="system", action="login.locked", entity="login",
                     entity_id=email, new={"email": email, "address": ip,
                                           "lockedUntil": until.isoformat()})
        return SignIn(None, SignInProblem.THROTTLED, until)
    return SignIn(None, SignInProblem.INVALID)


def sign_in_again(session: Session, signed_in_as: str, email: str, password: str, *,
                  ip: str | None = None) -> SignIn:
    """A signed-in person's e-mail address and password entered again (to sign, 21 CFR
    Part 11 §11.200(a)(1)), checked as a sign-in as ``signed_in_as``. An address that is
    not theirs (compared as sign-in compares: case aside) fails exactly as a wrong password
    does: checked as long, counted as a failure of ``signed_in_as`` from this client and
    throttled alike, never as an attempt on the other person's account."""
    try:
        theirs = normalize_email(email) == normalize_email(signed_in_as)
    except ValidationError:
        theirs = False
    return sign_in(session, signed_in_as, password, ip=ip, refused=not theirs)


def unlock(session: Session, email: str, *, actor: str) -> None:
    """Lift every client's wait to sign in as ``email``."""
    email = normalize_email(email)
    session.add(LoginAttempt(email=email, kind=LoginEvent.UNLOCK,
                             user_id=getattr(find_user(session, email), "id", None)))
    audit.record(session, actor=actor, action="login.unlock", entity="login", entity_id=email,
                 new={"email": email})


def recent_attempts(session: Session, *, limit: int = 200) -> list[LoginAttempt]:
    return list(session.exec(select(LoginAttempt).order_by(LoginAttempt.at.desc(),
                                                           LoginAttempt.id.desc())
                             .limit(limit)))
