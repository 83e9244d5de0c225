"""Batches: seal pending registrations into Merkle trees, and build receipts from them.

Batch states: ``sealed`` (tree stored) → ``sent`` (anchor transaction broadcast, maybe
mined) → ``confirmed`` (its block has the required confirmations on the canonical chain);
``anchoring`` moves them. Sealing runs under the database job lock, so any number of
schedulers, workers and ``seal-now`` calls can run side by side and each pending
registration lands in exactly one batch.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from . import audit, merkle
from .db import job_lock
from .faults import crash_point
from .models import Anchor, Batch, Submission, TreePage, rfc3339_ms, utcnow
from .receipt import build_receipt

log = logging.getLogger(__name__)



def submission_status(batch_state: str | None) -> str:
    """A registration's status is its batch's state, or ``pending`` before sealing."""
    return "pending" if batch_state is None else batch_state


def pending_count(session: Session) -> int:
    return session.scalar(select(sa.func.count()).select_from(Submission)
                          .where(Submission.batch_id.is_(None)))


# --- sealing -------------------------------------------------------------------------

def seal_one_batch(engine: Engine, max_batch: int, *, full_only: bool = False) -> Batch | None:
    """Seal up to ``max_batch`` leaves into one batch: pending registrations, oldest first,
    then the audit trail's head as the last leaf (with ``full_only``, only if a full batch
    is pending). Never a batch for the audit head alone."""
    for _ in range(3):
        try:
            return _seal(engine, max_batch, full_only)
        except _Raced:
            log.info("a registration committed out of order while sealing: sealing again")
    raise RuntimeError("sealing kept racing with registrations")


class _Raced(Exception):
    """The rows given leaf indexes were not exactly the rows hashed into the tree."""


def _seal(engine: Engine, max_batch: int, full_only: bool) -> Batch | None:
    with job_lock(engine) as session:
        trail = audit.head(session)
        room = max_batch - 1 if trail is not None and max_batch > 1 else max_batch
        rows = session.execute(
            select(Submission.seq, Submission.leaf)
            .where(Submission.batch_id.is_(None))
            .order_by(Submission.seq)
            .limit(room)
        ).all()
        if not rows or (full_only and len(rows) < room):
            return None
        trail = trail if room < max_batch else None
        leaves = [leaf for _, leaf in rows] + ([trail.leaf()] if trail else [])
        levels = merkle.build_levels(leaves)
        batch = Batch(root=merkle.root_of(levels), leaf_count=len(leaves),
                      sealed_at=rfc3339_ms(utcnow()),
                      audit_seq=trail.seq if trail else None,
                      audit_head=trail.hash if trail else None)
        session.add(batch)
        session.flush()
        _assign_leaves(session, batch.id, [seq for seq, _ in rows])
        _store_levels(session, batch.id, levels)
        session.expunge(batch)
    crash_point("after-seal")
    log.info("sealed batch %s with %s leaves", batch.id, batch.leaf_count)
    return batch


_ASSIGN = sa.text("""
    UPDATE submission SET batch_id = :batch, leaf_index = ranked.i
    FROM (SELECT seq, row_number() OVER (ORDER BY seq) - 1 AS i FROM submission
          WHERE batch_id IS NULL AND seq <= :last ORDER BY seq LIMIT :n) AS ranked
    WHERE submission.seq = ranked.seq""")


def _assign_leaves(session: Session, batch_id: int, seqs: list[int]) -> None:
    """Give the hashed registrations their batch and leaf index in one set-based UPDATE
    (a million rows in one statement, not a million statements).

    The UPDATE takes the oldest pending rows again, so it must find the very rows that
    were hashed: on SQLite the write lock holds every writer off; on PostgreSQL a
    registration committing out of order (an earlier seq, later) could slip in, which the
    count and sum of seqs detect (``_Raced``: the transaction rolls back and is tried again).
    """
    session.execute(_ASSIGN, {"batch": batch_id, "last": seqs[-1], "n": len(seqs)})
    count, total = session.execute(
        select(sa.func.count(), sa.func.sum(Submission.seq))
        .where(Submission.batch_id == batch_id)).one()
    if count != len(seqs) or total != sum(seqs):
        raise _Raced()


def _store_levels(session: Session, batch_id: int, levels: list[bytes]) -> None:
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
    leaves = list(session.scalars(select(Submission.leaf).where(Submission.batch_id == batch.id)
                                  .order_by(Submission.leaf_index)))
    if batch.audit_seq is not None:
        leaves.append(audit.Head(batch.audit_seq, batch.audit_head).leaf())
    return leaves


def root_matches(session: Session, batch: Batch) -> bool:
    """Whether the batch's stored leaves (the source of truth) still give its root."""
    return merkle.root_of(merkle.build_levels(batch_leaves(session, batch))) == batch.root


# --- receipts ------------------------------------------------------------------------

def confirmed_anchor(session: Session, batch_id: int) -> Anchor | None:
    return session.exec(select(Anchor).where(Anchor.batch_id == batch_id,
                                             Anchor.state == "confirmed")).first()


def latest_anchors(session: Session, batch_ids: set[int]) -> dict[int, Anchor]:
    """The newest anchor of each batch (re-sent or replaced ones come later)."""
    if not batch_ids:
        return {}
    latest = {}
    for anchor in session.exec(select(Anchor).where(Anchor.batch_id.in_(batch_ids))
                               .order_by(Anchor.id)):
        latest[anchor.batch_id] = anchor
    return latest


def anchor_view(anchor: Anchor | None) -> dict | None:
    """The JSON shape of an anchor in the API."""
    if anchor is None:
        return None
    return {
        "state": anchor.state, "txHash": anchor.tx_hash, "chainId": anchor.chain_id,
        "sender": anchor.sender, "nonce": anchor.nonce, "blockNumber": anchor.block_number,
        "blockHash": anchor.block_hash, "blockTime": anchor.block_time,
    }


@functools.lru_cache(maxsize=64)
def _sibling_query(depth: int) -> sa.TextClause:
    """One statement reading the 32-byte sibling of each of ``depth`` levels."""
    parts = [f"SELECT {i} AS step, substr(nodes, :o{i}, {merkle.NODE}) AS node FROM tree_page "
             f"WHERE batch_id = :b AND level = :l{i} AND page = :p{i}" for i in range(depth)]
    return sa.text(" UNION ALL ".join(parts))


def proof_for(session: Session, batch: Batch, leaf_index: int) -> list[dict]:
    """The Merkle path of a leaf: one small page read per level of the stored tree."""
    positions = merkle.sibling_positions(leaf_index, batch.leaf_count)
    if not positions:
        return []
    params = {"b": batch.id}
    for step, (level, index, _) in enumerate(positions):
        page, offset = merkle.page_of(index)
        params.update({f"l{step}": level, f"p{step}": page, f"o{step}": offset + 1})
    nodes = dict(session.execute(_sibling_query(len(positions)), params).all())
    if len(nodes) != len(positions) or any(len(n) != merkle.NODE for n in nodes.values()):
        return merkle.proof_from_levels(rebuild_levels(session, batch), leaf_index)
    return merkle.proof_from_nodes(positions, [bytes(nodes[i]) for i in range(len(positions))])


def rebuild_levels(session: Session, batch: Batch) -> list[bytes]:
    """Rebuild a batch's tree from its leaves (the source of truth) and store it again."""
    levels = merkle.build_levels(batch_leaves(session, batch))
    if merkle.root_of(levels) != batch.root:
        raise RuntimeError(f"batch {batch.id}: its leaves no longer give its root")
    session.execute(sa.delete(TreePage).where(TreePage.batch_id == batch.id))
    _store_levels(session, batch.id, levels)
    session.commit()
    log.warning("batch %s: tree levels rebuilt from the leaves", batch.id)
    return levels


def receipt_for(session: Session, submission: Submission) -> dict | None:
    """The receipt of a registration, or ``None`` until its anchor is confirmed."""
    if submission.batch_id is None:
        return None
    batch = session.get(Batch, submission.batch_id)
    if batch is None or batch.state != "confirmed":
        return None
    anchor = confirmed_anchor(session, batch.id)
    if anchor is None:
        return None
    return _receipt(submission, batch, anchor, proof_for(session, batch, submission.leaf_index))


def receipts_of(session: Session, submissions: list[Submission]) -> Iterator[
        tuple[Submission, dict]]:
    """Receipts of many registrations (a trial's bundle): each batch's anchor and stored
    tree are read once, not once per receipt. Unconfirmed ones are left out."""
    by_batch: dict[int, list[Submission]] = {}
    for submission in submissions:
        if submission.batch_id is not None:
            by_batch.setdefault(submission.batch_id, []).append(submission)
    for batch_id, members in by_batch.items():
        batch = session.get(Batch, batch_id)
        anchor = confirmed_anchor(session, batch_id) if batch.state == "confirmed" else None
        if anchor is None:
            continue
        levels = stored_levels(session, batch)
        for submission in members:
            proof = merkle.proof_from_levels(levels, submission.leaf_index)
            yield submission, _receipt(submission, batch, anchor, proof)


def stored_levels(session: Session, batch: Batch) -> list[bytes]:
    """A batch's whole stored tree, or the tree rebuilt from its leaves if pages are lost."""
    rows = session.execute(select(TreePage.level, TreePage.nodes)
                           .where(TreePage.batch_id == batch.id)
                           .order_by(TreePage.level, TreePage.page)).all()
    levels: dict[int, list[bytes]] = {}
    for level, nodes in rows:
        levels.setdefault(level, []).append(bytes(nodes))
    joined = [b"".join(levels.get(i, [])) for i in range(len(levels))]
    sizes = merkle.level_sizes(batch.leaf_count)
    if [len(level) for level in joined] != [size * merkle.NODE for size in sizes]:
        return rebuild_levels(session, batch)
    return joined


def _receipt(submission: Submission, batch: Batch, anchor: Anchor, proof: list[dict]) -> dict:
    return build_receipt(
        record=submission.record(),
        leaf=submission.leaf,
        root=batch.root,
        proof=proof,
        anchor={"tx_hash": anchor.tx_hash, "chain_id": anchor.chain_id,
                "sender": anchor.sender, "block_number": anchor.block_number,
                "block_hash": anchor.block_hash, "block_time": anchor.block_time},
        batch={"id": batch.id, "leaf_index": submission.leaf_index,
               "leaf_count": batch.leaf_count, "sealed_at": batch.sealed_at},
    )
