"""Batches: seal pending registrations into Merkle trees.

Batch states: ``sealed`` (tree stored) → ``sent`` (anchor transaction broadcast, maybe
mined) → ``confirmed`` (its block has the required confirmations on the canonical chain);
``anchoring`` moves them. Sealing runs under the database job lock, so any number of
schedulers, workers and ``seal-now`` calls can run side by side and each pending
registration lands in exactly one batch. The stored trees and their proofs are ``trees``'s,
the receipts built from them ``receipts``'s.
"""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from trialnotary.db import job_lock, utcnow
from trialnotary.notary import merkle
from trialnotary.notary.errors import SealingFailed, SealingRaced
from trialnotary.notary.faults import crash_point
from trialnotary.notary.models import Batch, LeafSlot, Pending, Registration, TreePage
from trialnotary.notary.states import RegistrationStatus
from trialnotary.people import audit
from trialnotary.people.models import AuditEntry
from trialnotary.proof.receipt import rfc3339_ms

log = logging.getLogger(__name__)


def registration_status(batch_state: str | None) -> str:
    """A registration's status is its batch's state, or ``pending`` before sealing."""
    return RegistrationStatus.PENDING if batch_state is None else batch_state


def pending_count(session: Session) -> int:
    return session.scalar(select(sa.func.count()).select_from(Pending))


# --- sealing -------------------------------------------------------------------------

def seal_one_batch(engine: Engine, max_batch: int, *, full_only: bool = False) -> Batch | None:
    """Seal up to ``max_batch`` leaves into one batch: pending registrations, oldest first,
    then the audit trail's head as the last leaf (with ``full_only``, only if a full batch
    is pending). Never a batch for the audit head alone: that is ``seal_audit_head``'s."""
    for _ in range(3):
        try:
            return _seal(engine, max_batch, full_only)
        except SealingRaced:
            log.info("a registration committed out of order while sealing: sealing again")
    raise SealingFailed("sealing kept racing with registrations")


def _seal(engine: Engine, max_batch: int, full_only: bool) -> Batch | None:
    with job_lock(engine) as session:
        trail = audit.head(session)
        room = max_batch - 1 if trail is not None and max_batch > 1 else max_batch
        rows = _pending(session, room)
        if not rows or (full_only and len(rows) < room):
            return None
        trail = trail if room < max_batch else None
        batch = _store_batch(session, [bytes(leaf) for _, leaf in rows], trail)
        _assign_leaves(session, batch.id, [seq for seq, _ in rows])
        session.expunge(batch)
    crash_point("after-seal")
    log.info("sealed batch %s with %s leaves", batch.id, batch.leaf_count)
    return batch


def _store_batch(session: Session, leaves: list[bytes], trail: audit.Head | None) -> Batch:
    """A new batch over ``leaves`` and then the audit head's leaf, if any, with its tree."""
    leaves = leaves + ([trail.leaf()] if trail else [])
    levels = merkle.build_levels(leaves)
    batch = Batch(root=merkle.root_of(levels), leaf_count=len(leaves),
                  sealed_at=rfc3339_ms(utcnow()),
                  audit_seq=trail.seq if trail else None,
                  audit_head=trail.hash if trail else None)
    session.add(batch)
    session.flush()
    store_levels(session, batch.id, levels)
    return batch


def unsealed_since(session: Session) -> datetime | None:
    """When the oldest entry that no batch has sealed yet was written, or ``None`` when
    every entry is sealed. Heads are sealed in order, so the newest batch with a head says
    how far the trail is sealed."""
    newest = audit.head(session)
    if newest is None:
        return None
    sealed = session.scalar(select(Batch.audit_seq).where(Batch.audit_seq.is_not(None))
                            .order_by(Batch.id.desc()).limit(1)) or 0
    if sealed >= newest.seq:
        return None
    at = session.scalar(select(AuditEntry.at).where(AuditEntry.seq > sealed)
                        .order_by(AuditEntry.seq).limit(1))
    return None if at is None else datetime.fromisoformat(at)


def seal_audit_head(engine: Engine, waited_seconds: float) -> Batch | None:
    """A batch holding only the audit trail's head, when nothing is pending and the oldest
    entry no batch holds yet has waited ``waited_seconds``: admin changes are anchored even
    when no registration comes, so that no one can rewrite them unseen. The one exception
    to "never a batch for the audit head alone"; ``None`` when it is not due.

    The cheap look is taken without the job lock (the scheduler asks every second); the
    lock is taken only to seal, and everything is looked at again under it.
    """
    with Session(engine) as session:
        if not _head_due(session, waited_seconds):
            return None
    with job_lock(engine) as session:
        if not _head_due(session, waited_seconds):
            return None
        batch = _store_batch(session, [], audit.head(session))
        session.expunge(batch)
    crash_point("after-seal")
    log.info("sealed batch %s with the audit head alone (entry %s)", batch.id, batch.audit_seq)
    return batch


def _head_due(session: Session, waited_seconds: float) -> bool:
    if pending_count(session):
        return False
    since = unsealed_since(session)
    return since is not None and (utcnow() - since).total_seconds() >= waited_seconds


_PENDING = sa.text("SELECT pending.seq, submission.leaf FROM pending "
                   "JOIN submission ON submission.seq = pending.seq "
                   "ORDER BY pending.seq LIMIT :n")


def _pending(session: Session, limit: int) -> list[tuple[int, bytes]]:
    """The oldest pending (seq, leaf) pairs: a million of them, as the driver's plain
    tuples (building SQLAlchemy rows would cost more than the query)."""
    result = session.connection().execute(_PENDING, {"n": limit})
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


_ASSIGN = sa.text("""
    INSERT INTO leaf_slot (seq, batch_id, leaf_index)
    SELECT seq, :batch, row_number() OVER (ORDER BY seq) - 1 FROM pending
    WHERE seq <= :last ORDER BY seq LIMIT :n""")
_DEQUEUE = sa.text("DELETE FROM pending WHERE seq IN "
                   "(SELECT seq FROM leaf_slot WHERE batch_id = :batch)")


def _assign_leaves(session: Session, batch_id: int, seqs: list[int]) -> None:
    """Give the hashed registrations their slots (batch and leaf index) and take them out
    of the queue: two set-based statements on narrow tables, however many rows.

    The insert takes the oldest pending rows again, so it must find the very rows that
    were hashed: on SQLite the write lock holds every writer off; on PostgreSQL a
    registration committing out of order (an earlier seq, later) could slip in, which the
    count and sum of seqs detect (``SealingRaced``: the transaction rolls back and is tried again).
    """
    session.execute(_ASSIGN, {"batch": batch_id, "last": seqs[-1], "n": len(seqs)})
    count, total = session.execute(
        select(sa.func.count(), sa.func.sum(LeafSlot.seq))
        .where(LeafSlot.batch_id == batch_id)).one()
    if count != len(seqs) or total != sum(seqs):
        raise SealingRaced()
    session.execute(_DEQUEUE, {"batch": batch_id})


def store_levels(session: Session, batch_id: int, levels: list[bytes]) -> None:
    """Write a tree's levels as pages (``merkle.pages``), for proofs to read."""
    session.execute(sa.insert(TreePage), [
        {"batch_id": batch_id, "level": level, "page": page, "nodes": nodes}
        for level, page, nodes in merkle.pages(levels)
    ])


def seal_all(engine: Engine, max_batch: int, *, full_only: bool = False) -> list[Batch]:
    """Seal everything pending, in batches of at most ``max_batch`` (or only the full
    batches, for the early seal between intervals)."""
    sealed = []
    while (batch := seal_one_batch(engine, max_batch, full_only=full_only)) is not None:
        sealed.append(batch)
        if batch.leaf_count < max_batch:
            break
    return sealed


def batch_leaves(session: Session, batch: Batch) -> list[bytes]:
    """Every leaf of a batch's tree in order: its registrations', then the audit head's."""
    leaves = list(session.scalars(
        select(Registration.leaf).join(LeafSlot, LeafSlot.seq == Registration.seq)
        .where(LeafSlot.batch_id == batch.id).order_by(LeafSlot.leaf_index)))
    if batch.audit_seq is not None:
        leaves.append(audit.Head(batch.audit_seq, batch.audit_head).leaf())
    return leaves


def root_matches(session: Session, batch: Batch) -> bool:
    """Whether the batch's stored leaves (the source of truth) still give its root."""
    return merkle.root_of(merkle.build_levels(batch_leaves(session, batch))) == batch.root

