"""Registrations: validate them, check them against trials, sites and tokens, store them,
and look them up with their batch and anchor.

No Flask here: the JSON API calls these with an engine or a session and plain data, so the
web form can reuse them. Nothing is stored for a refused request: every check runs before
the single insert, and the insert and its idempotency record commit together.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from trialnotary.db import read_connection, utcnow, write_session
from trialnotary.filenames import receipt_filename
from trialnotary.notary.batches import (
    anchor_view,
    confirmed_receipt,
    latest_anchors,
    receipt_for,
    registration_status,
)
from trialnotary.notary.models import Batch, IdempotencyKey, LeafSlot, Registration
from trialnotary.people import audit, sites
from trialnotary.people.models import Trial
from trialnotary.proof.receipt import rfc3339_ms, validated_record_leaf
from trialnotary.validation import (
    MAX_REASON_CHARS,
    ValidationError,
    validate_registration,
    validate_sha256,
    validate_text,
    validate_uuid,
)

MAX_BULK = 10_000
MAX_LOOKUP = 1_000
IDEMPOTENCY_TTL = timedelta(hours=24)
MAX_IDEMPOTENCY_KEY = 255
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")
IDEMPOTENCY_FIELD = "Idempotency-Key"
# Seconds a client should wait before asking for a receipt again: once sealed, and at most
# while pending (the next seal may come early: a full batch, or `seal-now`).
RETRY_AFTER_SEALED = 5
RETRY_AFTER_PENDING_MAX = 10


class Forbidden(Exception):
    """The token may not register this (another site's registration)."""

    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


class Unauthorized(Exception):
    """No live site token: unknown, expired or revoked."""


class IdempotencyMismatch(Exception):
    """An ``Idempotency-Key`` reused with another request."""

    field = IDEMPOTENCY_FIELD
    message = "this Idempotency-Key was used with another request in the last 24 hours"


@dataclass(frozen=True)
class Answer:
    """A response to a registration request, as it is sent and as it is replayed."""

    status: int
    body: str
    replayed: bool = False


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
    """Refuse items of a site not the registrant's (403), of trials the site is not
    enrolled in, and ``supersedes`` naming no registration of the same trial and of the
    registrant's sites, or one that is already corrected, by a stored registration or by
    an earlier item (422): a registration is superseded at most once. Four queries at
    most."""
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
    scope_of = {row.id: (row.trial, row.site) for row in session.execute(
        select(Registration.id, Registration.trial, Registration.site)
        .where(Registration.id.in_(targets)))}
    first_item: dict[str, int] = {}
    for index, item in enumerate(items):
        target = item["supersedes"]
        if not target:
            continue
        trial, site = scope_of.get(target, (None, None))
        if trial != item["trial"] or site not in identity.sites:
            raise ValidationError(_field(bulk, index, "supersedes"),
                                  f"names no registration of trial {item['trial']} at "
                                  f"{'your sites' if len(identity.sites) > 1 else 'this site'}")
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


def already_corrected(target: str, correction: dict) -> str:
    """Why a second correction of ``target`` is refused, naming the one that stands."""
    return (f"registration {target} is already superseded by {correction['id']} "
            f"(registered {correction['submittedAt']}): a registration is superseded at most "
            f"once; to correct it again, correct {correction['id']}")


def _not_enrolled(session: Session, item: dict, *, bulk: bool, index: int) -> ValidationError:
    """Which of the two is wrong: only asked once a check has failed."""
    exists = session.scalar(select(Trial.id).where(Trial.registry_id == item["trial"]))
    if exists is None:
        return ValidationError(_field(bulk, index, "trial"), f"unknown trial {item['trial']}")
    return ValidationError(_field(bulk, index, "site"),
                           f"site {item['site']} is not enrolled in trial {item['trial']}")


def new_records(items: list[dict], *, now: datetime | None = None) -> list[dict]:
    """Records with their server-assigned ``id`` and ``submittedAt``, in the record's key
    order. One bulk request shares one ``submittedAt``."""
    submitted_at = rfc3339_ms(now or utcnow())
    return [{"id": str(uuid.uuid4()), **_without_reason(item), "submittedAt": submitted_at}
            for item in items]


def _without_reason(item: dict) -> dict:
    if "reason" not in item:
        return item
    return {key: value for key, value in item.items() if key != "reason"}


def leaf_of(record: dict) -> bytes:
    """The leaf of a validated record (the fast path of :mod:`trialnotary.proof.receipt`)."""
    return validated_record_leaf(record)


REGISTRATION = Registration.__table__
_STORED = ("id", "trial", "site", "kind", "dataset", "sha256", "size_bytes", "filename",
           "supersedes", "submitted_at", "leaf", "token_id", "user_id", "reason")
_COPY = f"COPY submission ({', '.join(_STORED)}) FROM STDIN"
COPY_FROM_ROWS = 50


def store(session: Session, identity: Registrant, records: list[dict],
          reasons: list[str | None]) -> None:
    """Insert the records in their order, each with its correction's reason, with no ORM
    objects: on PostgreSQL a bulk goes through ``COPY`` (the driver's bulk path, several
    times faster than a multi-row ``INSERT``), anything else through one Core executemany."""
    rows = [(r["id"], r["trial"], r["site"], r["kind"], r["dataset"], r["sha256"],
             r["sizeBytes"], r["filename"], r["supersedes"], r["submittedAt"], leaf_of(r),
             identity.token_id, identity.user_id, reason)
            for r, reason in zip(records, reasons, strict=True)]
    connection = session.connection()
    if connection.dialect.name == "postgresql" and len(rows) >= COPY_FROM_ROWS:
        with connection.connection.driver_connection.cursor() as cursor, \
                cursor.copy(_COPY) as copy:
            for row in rows:
                copy.write_row(row)
        return
    session.execute(sa.insert(REGISTRATION), [dict(zip(_STORED, row, strict=True))
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


def register_as_user(engine: Engine, identity: UserRegistrant, payload: Any) -> list[dict]:
    """The web form's bulk registration: ``{"submissions": [...], "reason": ...}``, the
    reason (top-level, or an item's own) required for every item that corrects an earlier
    registration. One transaction."""
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
    check, run again, now names it (422) instead of a 500."""
    check_items(session, identity, items, bulk=bulk)


def submit(engine: Engine, *, token: str, read_payload: Callable[[], Any], bulk: bool,
           path: str, render: Callable[[list[dict]], str],
           idempotency_key: str | None = None) -> Answer:
    """Authenticate, read and validate a request body, register it, and answer ``201`` with
    ``render(records)``: one transaction, so a single registration costs a few queries.

    ``read_payload`` is called once the token is known to be live, so that nobody without
    one gets a body parsed. With an ``Idempotency-Key`` the answer is kept with the
    registrations, in the same transaction; a retry gets that answer back and stores nothing.
    """
    with write_session(engine) as session:
        identity = sites.authenticate(session, token)
        if identity is None:
            raise Unauthorized()
        payload = read_payload()
        items = validated_items(payload, bulk=bulk)
        request = None if idempotency_key is None else IdempotentRequest(
            identity.token_id, check_idempotency_key(idempotency_key),
            request_digest(path, payload))
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
                   render: Callable[[list[dict]], str]) -> Answer:
    if request is not None and (earlier := stored_answer(session, request)):
        return earlier
    answer = Answer(201, render(register(session, identity, items, bulk=bulk)))
    if request is not None:
        remember(session, request, answer)
    session.commit()
    return answer


# --- idempotency ---------------------------------------------------------------------

@dataclass(frozen=True)
class IdempotentRequest:
    token_id: int
    key: str
    digest: str


def check_idempotency_key(key: str) -> str:
    if len(key) > MAX_IDEMPOTENCY_KEY or not IDEMPOTENCY_KEY.fullmatch(key):
        raise ValidationError(IDEMPOTENCY_FIELD, f"must be 1 to {MAX_IDEMPOTENCY_KEY} printable "
                                                 "ASCII characters, not starting or ending "
                                                 "with a space")
    return key


def request_digest(path: str, payload: Any) -> str:
    """SHA-256 of the path and the canonical body, so a re-serialised retry still matches."""
    body = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{path}\n{body}".encode()).hexdigest()


def stored_answer(session: Session, request: IdempotentRequest) -> Answer | None:
    """The kept answer for this token and key (expired ones ignored), or ``None``.

    Raises ``IdempotencyMismatch`` when the key was used with another request.
    """
    row = session.execute(
        select(IdempotencyKey.request_digest, IdempotencyKey.status_code,
               IdempotencyKey.response_body)
        .where(IdempotencyKey.token_id == request.token_id, IdempotencyKey.key == request.key,
               IdempotencyKey.created_at > utcnow() - IDEMPOTENCY_TTL)
    ).first()
    if row is None:
        return None
    if row.request_digest != request.digest:
        raise IdempotencyMismatch()
    return Answer(row.status_code, row.response_body, replayed=True)


def remember(session: Session, request: IdempotentRequest, answer: Answer) -> None:
    """Keep the answer; the token's expired keys go now, so a reused key can be stored."""
    now = utcnow()
    session.execute(sa.delete(IdempotencyKey).where(
        IdempotencyKey.token_id == request.token_id,
        IdempotencyKey.created_at <= now - IDEMPOTENCY_TTL))
    session.execute(sa.insert(IdempotencyKey).values(
        token_id=request.token_id, key=request.key, request_digest=request.digest,
        status_code=answer.status, response_body=answer.body, created_at=now))


def purge_expired_keys(session: Session) -> int:
    """Delete every expired idempotency record (for a periodic job); returns how many."""
    return session.execute(sa.delete(IdempotencyKey).where(
        IdempotencyKey.created_at <= utcnow() - IDEMPOTENCY_TTL)).rowcount


# --- look-ups ------------------------------------------------------------------------

Row = tuple[Registration, LeafSlot | None, Batch | None]


def _with_batch():
    """Registrations with their slot and batch (``None`` while pending)."""
    return (select(Registration, LeafSlot, Batch)
            .outerjoin(LeafSlot, LeafSlot.seq == Registration.seq)
            .outerjoin(Batch, Batch.id == LeafSlot.batch_id))


def first_corrections(targets=None):
    """A subquery: for each corrected registration (``target``; only those of ``targets``,
    a list or an expanding bind parameter, when given), the ``seq`` of the registration that
    supersedes it. One per target since the unique index on ``supersedes``; a database from
    before it may hold several, and the earliest stands."""
    query = (sa.select(REGISTRATION.c.supersedes.label("target"),
                       sa.func.min(REGISTRATION.c.seq).label("seq"))
             .where(REGISTRATION.c.supersedes.is_not(None)))
    if targets is not None:
        query = query.where(REGISTRATION.c.supersedes.in_(targets))
    return query.group_by(REGISTRATION.c.supersedes).subquery("first_correction")


# Built once and run as a Core statement: a status look-up asks it every time.
_FIRST = first_corrections(sa.bindparam("targets", expanding=True))
_CORRECTIONS_OF = (sa.select(_FIRST.c.target, REGISTRATION.c.id, REGISTRATION.c.submitted_at,
                             REGISTRATION.c.reason)
                   .join_from(_FIRST, REGISTRATION, REGISTRATION.c.seq == _FIRST.c.seq))


def corrections_by_target(session: Session, targets: Iterable[str]) -> dict[str, dict]:
    """``{target id: {"id", "submittedAt", "reason"}}``: the correction superseding each of
    the given registrations that has one."""
    targets = list(targets)
    if not targets:
        return {}
    rows = session.connection().execute(_CORRECTIONS_OF, {"targets": targets})
    return {target: {"id": registration_id, "submittedAt": submitted_at, "reason": reason}
            for target, registration_id, submitted_at, reason in rows}


def _status_views(session: Session, rows: list[Row]) -> list[dict]:
    anchors = latest_anchors(session, {batch.id for _, _, batch in rows if batch is not None})
    superseded = corrections_by_target(session, [registration.id for registration, _, _ in rows])
    return [{
        "id": registration.id,
        "status": registration_status(None if batch is None else batch.state),
        "supersededBy": superseded.get(registration.id, {}).get("id"),
        "record": registration.record(),
        "batch": None if batch is None else {
            "id": batch.id, "leafIndex": slot.leaf_index,
            "leafCount": batch.leaf_count, "sealedAt": batch.sealed_at,
            "root": bytes(batch.root).hex(),
        },
        "anchor": None if batch is None else anchor_view(anchors.get(batch.id)),
    } for registration, slot, batch in rows]


def _find(session: Session, registration_id: str) -> Row | None:
    try:
        registration_id = validate_uuid(registration_id, "id")
    except ValidationError:
        return None
    row = session.execute(_with_batch().where(Registration.id == registration_id)).first()
    return None if row is None else tuple(row)


def status_of(session: Session, registration_id: str) -> dict | None:
    """``{"id", "status", "supersededBy", "record", "batch", "anchor"}``, or ``None`` for an
    unknown id. ``supersededBy``: the id of the registration that corrects it, or ``None``."""
    row = _find(session, registration_id)
    return None if row is None else _status_views(session, [row])[0]


def find_by_sha256(session: Session, sha256: Any) -> list[dict]:
    """Status views of the registrations of a hash (any case), oldest first, at most
    ``MAX_LOOKUP``. Raises ``ValidationError`` (field ``sha256``) for a malformed hash."""
    digest = validate_sha256(sha256)
    rows = session.execute(_with_batch().where(Registration.sha256 == digest)
                           .order_by(Registration.seq).limit(MAX_LOOKUP)).all()
    return _status_views(session, [tuple(row) for row in rows])


def reason_of(session: Session, registration_id: str) -> str | None:
    """Why a correction was made (the reason kept beside the record), if it says."""
    return session.scalar(select(Registration.reason).where(Registration.id == registration_id))


MAX_KNOWN_PER_HASH = 5


def registered_in_trials(session: Session, hashes: Iterable[str],
                         trials: Iterable[str]) -> dict[str, list[dict]]:
    """``{sha256: [{"id", "trial", "site", "dataset", "filename", "submittedAt"}]}``: the
    registrations of these hashes in these trials, oldest first, a few per hash; for the
    register page's warning before a file is registered again."""
    hashes, trials = sorted(set(hashes)), sorted(set(trials))
    found: dict[str, list[dict]] = {}
    for start in range(0, len(hashes), MAX_LOOKUP):
        rows = session.execute(
            select(Registration.sha256, Registration.id, Registration.trial, Registration.site,
                   Registration.dataset, Registration.filename, Registration.submitted_at)
            .where(Registration.sha256.in_(hashes[start:start + MAX_LOOKUP]),
                   Registration.trial.in_(trials))
            .order_by(Registration.seq)).all()
        for sha256, *rest in rows:
            known = found.setdefault(sha256, [])
            if len(known) < MAX_KNOWN_PER_HASH:
                known.append(dict(zip(("id", "trial", "site", "dataset", "filename",
                                       "submittedAt"), rest, strict=True)))
    return found


def corrections_of(session: Session, registration_id: str) -> list[dict]:
    """The registrations that supersede this one, oldest first."""
    rows = session.execute(_with_batch().where(Registration.supersedes == registration_id)
                           .order_by(Registration.seq)).all()
    return [{**view, "reason": row[0].reason}
            for view, row in zip(_status_views(session, [tuple(r) for r in rows]), rows,
                                 strict=True)]


@dataclass(frozen=True)
class ReceiptLookup:
    """A receipt and its download name, or the status view while there is none yet."""

    receipt: dict | None
    filename: str | None
    status: dict | None


def _lookup(receipt: dict) -> ReceiptLookup:
    record = receipt["trialnotary"]["record"]
    return ReceiptLookup(receipt, receipt_filename(record["trial"], record["dataset"],
                                                   record["id"]), None)


def download(engine: Engine, registration_id: str) -> ReceiptLookup | None:
    """The API's receipt download, its hot path: a confirmed receipt in two indexed reads on
    a bare read-only connection; anything else as :func:`receipt_of` answers it."""
    try:
        registration_id = validate_uuid(registration_id, "id")
    except ValidationError:
        return None
    with read_connection(engine) as connection:
        receipt = confirmed_receipt(connection, registration_id)
    if receipt is not None:
        return _lookup(receipt)
    with Session(engine) as session:
        return _not_confirmed_yet(session, registration_id)


def receipt_of(session: Session, registration_id: str) -> ReceiptLookup | None:
    """The receipt once confirmed, else the status view; ``None`` for an unknown id."""
    try:
        registration_id = validate_uuid(registration_id, "id")
    except ValidationError:
        return None
    receipt = confirmed_receipt(session.connection(), registration_id)
    return _lookup(receipt) if receipt is not None else _not_confirmed_yet(session,
                                                                             registration_id)


def _not_confirmed_yet(session: Session, registration_id: str) -> ReceiptLookup | None:
    """The status view, or the receipt after all when its stored tree had to be rebuilt
    (:func:`batches.receipt_for` rebuilds it) or it was confirmed a moment ago."""
    row = _find(session, registration_id)
    if row is None:
        return None
    registration, _, batch = row
    receipt = None
    if batch is not None and batch.state == "confirmed":
        receipt = receipt_for(session, registration)
    if receipt is None:
        return ReceiptLookup(None, None, _status_views(session, [row])[0])
    return _lookup(receipt)


def retry_after(status: str, seal_interval_seconds: float) -> int:
    """Seconds to wait before asking again: up to a seal interval (at most
    ``RETRY_AFTER_PENDING_MAX``) while pending, a few seconds once sealed."""
    if status == "pending":
        return max(1, min(RETRY_AFTER_PENDING_MAX, int(seal_interval_seconds)))
    return RETRY_AFTER_SEALED


# SQLite and PostgreSQL integers: a larger id cannot exist and would not bind.
MAX_DB_INTEGER = 2**31 - 1


def batch_of(session: Session, batch_id: int) -> dict | None:
    """``{"id", "root", "leafCount", "sealedAt", "state", "anchor"}``, or ``None``."""
    if not 0 <= batch_id <= MAX_DB_INTEGER:
        return None
    batch = session.get(Batch, batch_id)
    if batch is None:
        return None
    return {
        "id": batch.id, "root": bytes(batch.root).hex(), "leafCount": batch.leaf_count,
        "sealedAt": batch.sealed_at, "state": batch.state,
        "anchor": anchor_view(latest_anchors(session, {batch.id}).get(batch.id)),
    }
