"""Registrations looked up: their status with their batch and anchor, by id or by hash,
their corrections, their receipts once confirmed, and a batch by id. Read-only, no Flask.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from trialnotary.db import read_connection
from trialnotary.filenames import receipt_filename
from trialnotary.notary.batches import registration_status
from trialnotary.notary.models import Batch, LeafSlot, Registration
from trialnotary.notary.receipts import (
    anchor_view,
    confirmed_receipt,
    latest_anchors,
    receipt_for,
)
from trialnotary.notary.registrations.corrections import corrections_by_target
from trialnotary.notary.states import BatchState, RegistrationStatus
from trialnotary.validation import ValidationError, validate_sha256, validate_uuid

MAX_LOOKUP = 1_000
# Seconds a client should wait before asking for a receipt again: once sealed, and at most
# while pending (the next seal may come early: a full batch, or `seal-now`).
RETRY_AFTER_SEALED = 5
RETRY_AFTER_PENDING_MAX = 10

Row = tuple[Registration, LeafSlot | None, Batch | None]


def _with_batch():
    """Registrations with their slot and batch (``None`` while pending)."""
    return (select(Registration, LeafSlot, Batch)
            .outerjoin(LeafSlot, LeafSlot.seq == Registration.seq)
            .outerjoin(Batch, Batch.id == LeafSlot.batch_id))


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


def _valid_id(registration_id: str) -> str | None:
    """The id in its normal form, or ``None`` when no registration can have it (to the
    caller, an unknown id)."""
    try:
        return validate_uuid(registration_id, "id")
    except ValidationError:
        return None


def _find(session: Session, registration_id: str) -> Row | None:
    registration_id = _valid_id(registration_id)
    if registration_id is None:
        return None
    row = session.execute(_with_batch().where(Registration.id == registration_id)).first()
    return None if row is None else tuple(row)


def status_of(session: Session, registration_id: str) -> dict | None:
    """``{"id", "status", "supersededBy", "record", "batch", "anchor"}``, or ``None`` for an
    unknown id. ``supersededBy``: the id of the registration that corrects it, or ``None``."""
    row = _find(session, registration_id)
    return None if row is None else _status_views(session, [row])[0]


def sign_offs_of(session: Session, registration_ids: Iterable[str]) -> dict[str, list[dict]]:
    """``{id: [status views of its sign-offs, oldest first]}`` for each id that has any."""
    ids = sorted(set(registration_ids))
    found: dict[str, list[dict]] = {}
    for start in range(0, len(ids), MAX_LOOKUP):
        rows = session.execute(_with_batch().where(
            Registration.signs.in_(ids[start:start + MAX_LOOKUP])).order_by(Registration.seq))
        for view in _status_views(session, [tuple(row) for row in rows]):
            found.setdefault(view["record"]["signOff"]["signs"], []).append(view)
    return found


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


def download(engine: Engine, registration_id: str, notary: dict) -> ReceiptLookup | None:
    """The API's receipt download, its hot path: a confirmed receipt in two indexed reads on
    a bare read-only connection; anything else as :func:`receipt_of` answers it.
    ``notary`` is the receipt's ``{"name", "url"}`` (``identity.notary_of``)."""
    registration_id = _valid_id(registration_id)
    if registration_id is None:
        return None
    with read_connection(engine) as connection:
        receipt = confirmed_receipt(connection, registration_id, notary)
    if receipt is not None:
        return _lookup(receipt)
    with Session(engine) as session:
        return _not_confirmed_yet(session, registration_id, notary)


def receipt_of(session: Session, registration_id: str, notary: dict) -> ReceiptLookup | None:
    """The receipt once confirmed, else the status view; ``None`` for an unknown id."""
    registration_id = _valid_id(registration_id)
    if registration_id is None:
        return None
    receipt = confirmed_receipt(session.connection(), registration_id, notary)
    return _lookup(receipt) if receipt is not None else _not_confirmed_yet(
        session, registration_id, notary)


def _not_confirmed_yet(session: Session, registration_id: str,
                       notary: dict) -> ReceiptLookup | None:
    """The status view, or the receipt after all when its stored tree had to be rebuilt
    (:func:`receipts.receipt_for` rebuilds it) or it was confirmed a moment ago."""
    row = _find(session, registration_id)
    if row is None:
        return None
    registration, _, batch = row
    receipt = None
    if batch is not None and batch.state == BatchState.CONFIRMED:
        receipt = receipt_for(session, registration, notary)
    if receipt is None:
        return ReceiptLookup(None, None, _status_views(session, [row])[0])
    return _lookup(receipt)


def retry_after(status: str, seal_interval_seconds: float) -> int:
    """Seconds to wait before asking again: up to a seal interval (at most
    ``RETRY_AFTER_PENDING_MAX``) while pending, a few seconds once sealed."""
    if status == RegistrationStatus.PENDING:
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
