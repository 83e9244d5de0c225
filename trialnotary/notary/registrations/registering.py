"""Registering: validate registrations, check them against trials, sites and tokens, and
store them.

No Flask here: the JSON API calls these with an engine or a session and plain data, so the
web form can reuse them. Nothing is stored for a refused request: every check runs before
the single insert, and the insert and its idempotency record commit together.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from trialnotary.db import utcnow, write_session
from trialnotary.notary.chain import ChainClient
from trialnotary.notary.errors import Forbidden, Unauthorized
from trialnotary.notary.models import RECORD_COLUMNS, Registration, stored_values
from trialnotary.notary.registrations.blocks import check_not_before, names_blocks
from trialnotary.notary.registrations.corrections import already_corrected, corrections_by_target
from trialnotary.notary.registrations.idempotency import (
    Answer,
    IdempotentRequest,
    check_idempotency_key,
    remember,
    request_digest,
    stored_answer,
)
from trialnotary.people import audit, sites
from trialnotary.people.models import Trial
from trialnotary.proof.facts import SIGN_OFF_KIND
from trialnotary.proof.receipt import rfc3339_ms, validated_record_leaf, written_record
from trialnotary.validation import (
    MAX_REASON_CHARS,
    ValidationError,
    validate_registration,
    validate_text,
)

MAX_BULK = 10_000


# --- validating and storing ----------------------------------------------------------

def validated_items(payload: Any, *, bulk: bool) -> list[dict]:
    """The normalised registrations of a single (``bulk=False``) or bulk request body."""
    if not bulk:
        return [validate_registration(payload)]
    if not isinstance(payload, dict):
        raise ValidationError(None, "must be a JSON object with a 'submissions' list")
    unknown = sorted(set(payload) - {"submissions"})
    if unknown:
        raise ValidationError(unknown[0], "is not a known field")
    items = payload.get("submissions")
    if not isinstance(items, list):
        raise ValidationError("submissions", "is required and must be a list")
    if not 1 <= len(items) <= MAX_BULK:
        raise ValidationError("submissions", f"must hold 1 to {MAX_BULK} registrations")
    return [validate_registration(item, f"submissions[{index}].")
            for index, item in enumerate(items)]


def _field(bulk: bool, index: int, name: str) -> str:
    return f"submissions[{index}].{name}" if bulk else name


@dataclass(frozen=True)
class UserRegistrant:
    """Who registers through the web form: a coordinator, for its granted sites."""

    user_id: int
    email: str
    sites: frozenset[str]
    token_id = None

    @property
    def actor(self) -> str:
        return f"user:{self.user_id} {self.email}"

    def refusal(self) -> str:
        granted = ", ".join(sorted(self.sites)) or "none"
        return f"you register for your sites only ({granted})"


Registrant = sites.TokenIdentity | UserRegistrant


def check_items(session: Session, identity: Registrant, items: list[dict], *,
                bulk: bool) -> None:
    """Refuse items of a site not the registrant's (``Forbidden``), of trials the site is
    not enrolled in, and ``supersedes`` naming no registration of the same trial and of the
    registrant's sites, or one that is already corrected, by a stored registration or by
    an earlier item, or a sign-off (``ValidationError``): a registration is superseded at
    most once, a signature never. Four queries at most."""
    for index, item in enumerate(items):
        if item["site"] not in identity.sites:
            raise Forbidden(_field(bulk, index, "site"), identity.refusal())
    pairs = {(item["trial"], item["site"]) for item in items}
    enrolled = sites.enrolled_pairs(session, pairs)
    for index, item in enumerate(items):
        if (item["trial"], item["site"]) not in enrolled:
            raise _not_enrolled(session, item, bulk=bulk, index=index)
    targets = {item["supersedes"] for item in items if item["supersedes"]}
    if not targets:
        return
    scope_of = {row.id: (row.trial, row.site, row.kind) for row in session.execute(
        select(Registration.id, Registration.trial, Registration.site, Registration.kind)
        .where(Registration.id.in_(targets)))}
    first_item: dict[str, int] = {}
    for index, item in enumerate(items):
        target = item["supersedes"]
        if not target:
            continue
        trial, site, kind = scope_of.get(target, (None, None, None))
        if trial != item["trial"] or site not in identity.sites:
            raise ValidationError(_field(bulk, index, "supersedes"),
                                  f"names no registration of trial {item['trial']} at "
                                  f"{'your sites' if len(identity.sites) > 1 else 'this site'}")
        if kind == SIGN_OFF_KIND:
            raise ValidationError(_field(bulk, index, "supersedes"),
                                  f"names the sign-off {target}: a signature is never "
                                  "corrected; its signer signs the corrected registration")
        if target in first_item:
            earlier = _field(bulk, first_item[target], "supersedes")
            raise ValidationError(_field(bulk, index, "supersedes"),
                                  f"corrects {target}, as {earlier} does: a registration is "
                                  "superseded at most once, so one file corrects it")
        first_item[target] = index
    stored = corrections_by_target(session, targets)
    for index, item in enumerate(items):
        if (correction := stored.get(item["supersedes"])) is not None:
            raise ValidationError(_field(bulk, index, "supersedes"),
                                  already_corrected(item["supersedes"], correction))



def _not_enrolled(session: Session, item: dict, *, bulk: bool, index: int) -> ValidationError:
    """Which of the two is wrong: only asked once a check has failed."""
    exists = session.scalar(select(Trial.id).where(Trial.registry_id == item["trial"]))
    if exists is None:
        return ValidationError(_field(bulk, index, "trial"), f"unknown trial {item['trial']}")
    return ValidationError(_field(bulk, index, "site"),
                           f"site {item['site']} is not enrolled in trial {item['trial']}")


def new_records(items: list[dict], *, now: datetime | None = None) -> list[dict]:
    """Records with their server-assigned ``id`` and ``submittedAt``, in the record's key
    order (the optional keys last, where given). One bulk request shares one
    ``submittedAt``."""
    submitted_at = rfc3339_ms(now or utcnow())
    return [written_record({"id": str(uuid.uuid4()), **item, "submittedAt": submitted_at})
            for item in items]


def leaf_of(record: dict) -> bytes:
    """The leaf of a validated record (the fast path of :mod:`trialnotary.proof.receipt`)."""
    return validated_record_leaf(record)


_STORED = (*RECORD_COLUMNS, "leaf", "token_id", "user_id", "reason", "signs")
_COPY = f"COPY submission ({', '.join(_STORED)}) FROM STDIN"
COPY_FROM_ROWS = 50


def store(session: Session, identity: Registrant, records: list[dict],
          reasons: list[str | None]) -> None:
    """Insert the records in their order, each with its correction's reason, with no ORM
    objects: on PostgreSQL a bulk goes through ``COPY`` (the driver's bulk path, several
    times faster than a multi-row ``INSERT``), anything else through one Core executemany."""
    rows = [(*stored_values(r), leaf_of(r), identity.token_id, identity.user_id, reason,
             r["signOff"]["signs"] if "signOff" in r else None)
            for r, reason in zip(records, reasons, strict=True)]
    connection = session.connection()
    if connection.dialect.name == "postgresql" and len(rows) >= COPY_FROM_ROWS:
        with connection.connection.driver_connection.cursor() as cursor, \
                cursor.copy(_COPY) as copy:
            for row in rows:
                copy.write_row(row)
        return
    session.execute(sa.insert(Registration.__table__), [dict(zip(_STORED, row, strict=True))
                                            for row in rows])


def register(session: Session, identity: Registrant, items: list[dict], *,
             bulk: bool = False) -> list[dict]:
    """Check and store validated items; returns their records. The caller commits.

    Corrections (records with ``supersedes``) also go to the audit trail, with their
    ``reason`` where the item gives one.
    """
    check_items(session, identity, items, bulk=bulk)
    records = new_records(items)
    reasons = [item.get("reason") for item in items]
    store(session, identity, records, reasons)
    for record, reason in zip(records, reasons, strict=True):
        if record["supersedes"]:
            audit.record(session, actor=identity.actor, action="submission.correct",
                         entity="submission", entity_id=record["id"], reason=reason,
                         new={key: record[key] for key in (
                             "id", "supersedes", "trial", "site", "dataset", "sha256")})
    return records


def register_as_user(engine: Engine, identity: UserRegistrant, payload: Any,
                     chains: Iterable[ChainClient] = ()) -> list[dict]:
    """The web form's bulk registration: ``{"submissions": [...], "reason": ...}``, the
    reason (top-level, or an item's own) required for every item that corrects an earlier
    registration. One transaction, once every ``notBefore`` block is checked against
    ``chains`` (the notary's EVM anchors)."""
    if isinstance(payload, dict) and "reason" in payload:
        payload = dict(payload)
        reason = validate_text(payload.pop("reason"), "reason", MAX_REASON_CHARS,
                               required=False)
    else:
        reason = None
    items = [{"reason": reason, **item} if item["supersedes"] and reason and reason.strip()
             else item for item in validated_items(payload, bulk=True)]
    if any(item["supersedes"] and not item.get("reason") for item in items):
        raise ValidationError("reason", "is required for a correction (supersedes)")
    check_not_before(chains, items, bulk=True)
    with write_session(engine) as session:
        try:
            records = register(session, identity, items, bulk=True)
            session.commit()
        except IntegrityError:
            session.rollback()
            _refuse_what_committed_meanwhile(session, identity, items, bulk=True)
            raise
    return records


def _refuse_what_committed_meanwhile(session: Session, identity: Registrant,
                                     items: list[dict], *, bulk: bool) -> None:
    """After the unique index refused an insert: a correction of the same registration
    committed between our check and our insert (PostgreSQL lets both check at once). The
    check, run again, now names it (a ``ValidationError``) instead of the database's error."""
    check_items(session, identity, items, bulk=bulk)


def submit(engine: Engine, *, token: str, read_payload: Callable[[], Any], bulk: bool,
           path: str, render: Callable[[list[dict]], Answer],
           idempotency_key: str | None = None,
           chains: Iterable[ChainClient] = ()) -> Answer:
    """Authenticate, read and validate a request body, register it, and answer
    ``render(records)`` (the caller's status and body): one transaction, so a single
    registration costs a few queries.

    ``read_payload`` is called once the token is known to be live, so that nobody without
    one gets a body parsed. With an ``Idempotency-Key`` the answer is kept with the
    registrations, in the same transaction; a retry gets that answer back and stores nothing.
    Items naming ``notBefore`` blocks are registered in a second transaction, after the
    blocks are checked against ``chains`` with no lock held (the token checked again).
    """
    with write_session(engine) as session:
        identity = _authenticated(session, token)
        payload = read_payload()
        items = validated_items(payload, bulk=bulk)
        request = None if idempotency_key is None else IdempotentRequest(
            identity.token_id, check_idempotency_key(idempotency_key),
            request_digest(path, payload))
        if request is not None and (earlier := stored_answer(session, request)):
            return earlier
        if not names_blocks(items):
            return _register_guarded(session, identity, items, bulk=bulk, request=request,
                                     render=render)
    check_not_before(chains, items, bulk=bulk)
    with write_session(engine) as session:
        return _register_guarded(session, _authenticated(session, token), items, bulk=bulk,
                                 request=request, render=render)


def _authenticated(session: Session, token: str) -> sites.TokenIdentity:
    identity = sites.authenticate(session, token)
    if identity is None:
        raise Unauthorized()
    return identity


def _register_guarded(session: Session, identity: sites.TokenIdentity, items: list[dict], *,
                      bulk: bool, request: IdempotentRequest | None,
                      render: Callable[[list[dict]], Answer]) -> Answer:
    try:
        return _register_once(session, identity, items, bulk=bulk, request=request,
                              render=render)
    except IntegrityError:
        session.rollback()
        # A concurrent request with the same key committed first: answer as it did.
        if request is not None and (earlier := stored_answer(session, request)):
            return earlier
        _refuse_what_committed_meanwhile(session, identity, items, bulk=bulk)
        raise


def _register_once(session: Session, identity: sites.TokenIdentity, items: list[dict], *,
                   bulk: bool, request: IdempotentRequest | None,
                   render: Callable[[list[dict]], Answer]) -> Answer:
    if request is not None and (earlier := stored_answer(session, request)):
        return earlier
    answer = render(register(session, identity, items, bulk=bulk))
    if request is not None:
        remember(session, request, answer)
    session.commit()
    return answer

