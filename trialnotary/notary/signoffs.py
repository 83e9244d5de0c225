"""Signing a registration (21 CFR Part 11 §11.50, §11.70, §11.200; docs/receipt.md,
"Sign-offs"): a person who may read a registration re-enters their e-mail address and
password (both signature components, every time) and signs it with a meaning; the
signature's manifestation (printed name, role, meaning, time in UTC) is a registration of
its own, of kind ``sign-off``, sealed and anchored like any other.

Its record names the signed registration's id and leaf, so it cannot be detached or copied
onto another record without breaking its receipt; with a chain, it also names the beacon
block as ``notBefore``, so it cannot be back-dated before that block. No Flask here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from trialnotary.db import as_utc, utcnow, write_session
from trialnotary.notary.errors import (
    AlreadySigned,
    ChainError,
    Forbidden,
    SigningThrottled,
    UnknownRegistration,
    WrongPassword,
)
from trialnotary.notary.models import Registration
from trialnotary.notary.registrations.registering import UserRegistrant, new_records, store
from trialnotary.people import access, audit, signin
from trialnotary.people.access import Principal
from trialnotary.people.models import User
from trialnotary.people.states import SignInProblem
from trialnotary.proof.facts import (
    MAX_DATASET_CHARS,
    NOT_BEFORE_KEYS,
    SIGN_OFF_KIND,
    SIGN_OFF_MEANINGS,
)
from trialnotary.proof.receipt import rfc3339_ms
from trialnotary.proof.signoff import sign_off_digest
from trialnotary.validation import ValidationError, validate_uuid

log = logging.getLogger(__name__)


def may_sign(principal: Principal, record: dict) -> bool:
    """Who may sign a registration: a signed-in person who may read it (a coordinator of its
    site, a sponsor of its trial, an admin). API tokens never sign."""
    return principal.user_id is not None and (
        access.can(principal, access.READ_SITE, site=record["site"])
        or access.can(principal, access.READ_TRIAL, trial=record["trial"]))


def sign(engine: Engine, principal: Principal, registration_id: str, *, meaning: str,
         email: str, password: str, ip: str | None, beacon: Callable[[], dict] | None = None,
         now: datetime | None = None) -> dict:
    """Sign the registration ``registration_id`` as ``principal`` with ``meaning``, after
    checking ``email`` and ``password`` are the signer's (a failure, another person's
    address too, is kept as a failed sign-in of the signer from this client, ``ip``, and
    counts towards its throttling); returns the sign-off's record.

    ``beacon`` gives the newest confirmed block (notary/beacon.py), bound as ``notBefore``;
    without it, or when the chain does not answer, the sign-off is made without.
    Refusals: ``UnknownRegistration``, ``Forbidden``, ``ValidationError`` (a meaning not
    known, a sign-off to sign, a signer without a printed name), ``AlreadySigned``,
    ``WrongPassword``, ``SigningThrottled``. Nothing is stored for a refusal but the
    failed password.
    """
    if meaning not in SIGN_OFF_MEANINGS:
        raise ValidationError("meaning", "the meaning must be one of "
                                         + ", ".join(SIGN_OFF_MEANINGS))
    not_before = _not_before(beacon, now)
    with write_session(engine) as session:
        target = _target(session, registration_id)
        if not may_sign(principal, target.record()):
            raise Forbidden("id", "you may sign only registrations you may read")
        _check_signable(session, principal, target, meaning)
        name = _printed_name(session, principal)
        _check_credentials(session, principal, email, password, ip)
        record = _sign_off_record(target, principal, name, meaning, not_before, now)
        store(session, UserRegistrant(principal.user_id, principal.email, frozenset()),
              [record], [None])
        audit.record(session, actor=principal.actor, action="submission.sign",
                     entity="submission", entity_id=record["id"],
                     new={"id": record["id"], **record["signOff"]})
        session.commit()
    return record


def _not_before(beacon: Callable[[], dict] | None, now: datetime | None) -> dict | None:
    """The beacon block to bind, or ``None``: no chain, no answer, or a block whose time is
    later than our clock (a sign-off signed before the block it names would never verify)."""
    if beacon is None:
        return None
    try:
        found = beacon()
    except ChainError as exc:
        log.warning("signing without notBefore: the chain does not answer (%s)", exc)
        return None
    if found["blockTime"][:19] > rfc3339_ms(now or utcnow())[:19]:
        log.warning("signing without notBefore: block %s is later than this server's clock",
                    found["blockNumber"])
        return None
    return {key: found[key] for key in NOT_BEFORE_KEYS}


def _target(session: Session, registration_id: str) -> Registration:
    """The registration to sign, its row locked on PostgreSQL until the sign-off commits, so
    that two signatures of one person and meaning cannot both pass the duplicate check (on
    SQLite the write session holds the database's write lock already)."""
    try:
        registration_id = validate_uuid(registration_id, "id")
    except ValidationError:
        raise UnknownRegistration() from None
    target = session.exec(select(Registration).where(Registration.id == registration_id)
                          .with_for_update()).first()
    if target is None:
        raise UnknownRegistration()
    return target


def _check_signable(session: Session, principal: Principal, target: Registration,
                    meaning: str) -> None:
    """A sign-off is not signed itself; nobody signs one registration with one meaning twice."""
    if target.kind == SIGN_OFF_KIND:
        raise ValidationError("id", "this registration is a sign-off: sign the registration "
                                    "it signs instead")
    if meaning in _meanings_signed(session, principal.user_id, target.id):
        raise AlreadySigned("meaning", f"you signed this registration as {meaning} already")


def _printed_name(session: Session, principal: Principal) -> str:
    """§11.50(a)(1): the signer's printed name, as an admin set it."""
    name = (session.get(User, principal.user_id).name or "").strip()
    if not name:
        raise ValidationError("name", "your account has no printed name to sign with: ask "
                                      "an admin to set your name")
    return name


def _meanings_signed(session: Session, user_id: int, registration_id: str) -> set[str]:
    rows = session.exec(select(Registration).where(Registration.signs == registration_id,
                                                   Registration.user_id == user_id)).all()
    return {row.record()["signOff"]["meaning"] for row in rows}


def _check_credentials(session: Session, principal: Principal, email: str, password: str,
                       ip: str | None) -> None:
    """§11.200(a)(1): both components, e-mail address and password, re-entered and checked
    as a sign-in (and throttled as one). A failure is committed before the refusal: failed
    attempts must be kept."""
    outcome = signin.sign_in_again(session, principal.email, email, password
                                   if isinstance(password, str) else "", ip=ip)
    if outcome.user is not None and outcome.user.id == principal.user_id:
        return
    session.commit()
    if outcome.problem == SignInProblem.THROTTLED:
        raise SigningThrottled(as_utc(outcome.retry_at))
    raise WrongPassword()


def _sign_off_record(target: Registration, principal: Principal, name: str, meaning: str,
                     not_before: dict | None, now: datetime | None) -> dict:
    now = now or utcnow()
    sign_off = {"signs": target.id, "signsLeaf": bytes(target.leaf).hex(), "name": name,
                "role": str(principal.role), "meaning": meaning, "signedAt": rfc3339_ms(now)}
    label = f"{SIGN_OFF_KIND}: {meaning}: {target.dataset}"[:MAX_DATASET_CHARS]
    item = {"trial": target.trial, "site": target.site, "kind": SIGN_OFF_KIND,
            "dataset": label, "sha256": sign_off_digest(sign_off), "sizeBytes": None,
            "filename": None, "supersedes": None, "notBefore": not_before,
            "signOff": sign_off}
    return new_records([item], now=now)[0]
