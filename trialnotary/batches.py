"""The batch state machine: seal pending registrations, anchor each root, confirm it.

Batch states: ``sealed`` (tree stored) → ``sent`` (anchor transaction broadcast, maybe
mined) → ``confirmed`` (its block has the required confirmations on the canonical chain).
Every step that decides something runs under the database job lock, so any number of
schedulers, workers and ``seal-now`` calls can run side by side.

The order of writes makes crashes harmless: a transaction is signed and its bytes committed
before it is broadcast, and broadcasting kept bytes again is always safe.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from . import audit, merkle
from .chain import ChainClient, ChainError
from .db import job_lock
from .models import Anchor, Batch, Submission, TreePage, rfc3339_ms, utcnow
from .receipt import build_receipt

log = logging.getLogger(__name__)

# A sent transaction the node no longer knows is broadcast again after this long.
RESEND_AFTER = timedelta(seconds=15)


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
    log.info("sealed batch %s with %s leaves", batch.id, batch.leaf_count)
    return batch


def _assign_leaves(session: Session, batch_id: int, seqs: list[int]) -> None:
    """Give each registration its batch and leaf index, in one executemany."""
    table = Submission.__table__
    statement = (sa.update(table).where(table.c.seq == sa.bindparam("s"))
                 .values(batch_id=batch_id, leaf_index=sa.bindparam("i")))
    session.connection().execute(statement, [{"s": seq, "i": i} for i, seq in enumerate(seqs)])


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


# --- anchoring -----------------------------------------------------------------------

def sign_anchors(engine: Engine, chain: ChainClient) -> list[Anchor]:
    """Sign one transaction for each sealed batch that has none, and keep its bytes."""
    signed = []
    with job_lock(engine) as session:
        batches = session.exec(
            select(Batch).where(Batch.state == "sealed",
                                ~sa.exists().where(Anchor.batch_id == Batch.id,
                                                   Anchor.state.in_(("signed", "sent"))))
            .order_by(Batch.id)
        ).all()
        if not batches:
            return []
        nonce = _next_nonce(session, chain)
        for batch in batches:
            tx = chain.sign_anchor(batch.root, nonce)
            anchor = Anchor(batch_id=batch.id, chain_id=chain.settings.chain_id,
                            sender=chain.address, nonce=tx.nonce, tx_hash=tx.tx_hash,
                            raw=tx.raw, gas=tx.gas, max_fee_per_gas=tx.max_fee_per_gas,
                            max_priority_fee_per_gas=tx.max_priority_fee_per_gas)
            session.add(anchor)
            signed.append(anchor)
            nonce += 1
        session.flush()
        for anchor in signed:
            session.expunge(anchor)
    return signed


def _next_nonce(session: Session, chain: ChainClient) -> int:
    """The node's pending nonce, but never one we have already signed with."""
    ours = session.scalar(select(sa.func.max(Anchor.nonce))
                          .where(Anchor.sender == chain.address,
                                 Anchor.chain_id == chain.settings.chain_id))
    return max(chain.pending_nonce(), -1 if ours is None else ours + 1)


def broadcast_signed(engine: Engine, chain: ChainClient) -> list[Anchor]:
    """Send every signed, not yet sent anchor from its kept bytes."""
    with Session(engine, expire_on_commit=False) as session:
        anchors = session.exec(select(Anchor).where(Anchor.state == "signed")
                               .order_by(Anchor.nonce)).all()
        for anchor in anchors:
            chain.send_raw(anchor.raw)
            anchor.state, anchor.sent_at = "sent", utcnow()
            session.execute(sa.update(Batch).where(Batch.id == anchor.batch_id,
                                                   Batch.state == "sealed")
                            .values(state="sent"))
            session.commit()
            log.info("batch %s anchored by transaction %s", anchor.batch_id, anchor.tx_hash)
    return list(anchors)


def anchor_sealed(engine: Engine, chain: ChainClient) -> list[Anchor]:
    sign_anchors(engine, chain)
    return broadcast_signed(engine, chain)


# --- confirming ----------------------------------------------------------------------

def confirm_sent(engine: Engine, chain: ChainClient) -> list[int]:
    """Check each sent anchor; confirm those with enough confirmations. Returns the ids of
    the batches confirmed now. A transaction the node has lost is sent again."""
    confirmed = []
    with Session(engine, expire_on_commit=False) as session:
        anchors = session.exec(select(Anchor).where(Anchor.state == "sent")
                               .order_by(Anchor.nonce)).all()
    for anchor in anchors:
        inclusion = chain.inclusion(anchor.tx_hash)
        if inclusion is None:
            _resend_if_lost(anchor, chain)
            continue
        if not inclusion.succeeded:
            _mark_failed(engine, anchor)
            continue
        if inclusion.confirmed and _mark_confirmed(engine, anchor, inclusion):
            confirmed.append(anchor.batch_id)
    return confirmed


def _resend_if_lost(anchor: Anchor, chain: ChainClient) -> None:
    sent_at = anchor.sent_at
    if sent_at is not None and sent_at.tzinfo is None:
        sent_at = sent_at.replace(tzinfo=utcnow().tzinfo)
    if sent_at and utcnow() - sent_at < RESEND_AFTER:
        return
    if not chain.is_known(anchor.tx_hash):
        log.warning("anchor %s of batch %s is unknown to the node: sending it again",
                    anchor.tx_hash, anchor.batch_id)
        chain.send_raw(anchor.raw)


def _mark_confirmed(engine: Engine, anchor: Anchor, inclusion) -> bool:
    with job_lock(engine) as session:
        updated = session.execute(
            sa.update(Anchor).where(Anchor.id == anchor.id, Anchor.state == "sent").values(
                state="confirmed", block_number=inclusion.block_number,
                block_hash=inclusion.block_hash, block_time=inclusion.block_time,
                confirmed_at=utcnow())
        ).rowcount
        session.execute(sa.update(Batch).where(Batch.id == anchor.batch_id)
                        .values(state="confirmed"))
    if updated:
        log.info("batch %s confirmed in block %s", anchor.batch_id, inclusion.block_number)
    return bool(updated)


def _mark_failed(engine: Engine, anchor: Anchor) -> None:
    """A reverted anchor proves nothing: the batch goes back to be anchored again."""
    with job_lock(engine) as session:
        session.execute(sa.update(Anchor).where(Anchor.id == anchor.id).values(state="failed"))
        session.execute(sa.update(Batch).where(Batch.id == anchor.batch_id)
                        .values(state="sealed"))
    log.error("anchor %s of batch %s failed on chain; the batch will be anchored again",
              anchor.tx_hash, anchor.batch_id)


# --- the jobs ------------------------------------------------------------------------

@dataclass
class TickResult:
    sealed: list[Batch]
    sent: list[Anchor]
    confirmed: list[int]


def run_seal_job(engine: Engine, chain: ChainClient, max_batch: int) -> TickResult:
    """Seal what is pending and anchor it. Chain trouble leaves batches sealed, for later."""
    sealed = seal_all(engine, max_batch)
    return TickResult(sealed=sealed, sent=_anchor_safely(engine, chain), confirmed=[])


def run_tick(engine: Engine, chain: ChainClient, max_batch: int) -> TickResult:
    """The once-a-second job: seal early when a full batch waits, anchor, confirm."""
    with Session(engine) as session:
        full = pending_count(session) >= max_batch
    sealed = seal_all(engine, max_batch, full_only=True) if full else []
    sent = _anchor_safely(engine, chain)
    try:
        confirmed = confirm_sent(engine, chain)
    except ChainError as exc:
        log.warning("cannot check confirmations: %s", exc)
        confirmed = []
    return TickResult(sealed=sealed, sent=sent, confirmed=confirmed)


def _anchor_safely(engine: Engine, chain: ChainClient) -> list[Anchor]:
    try:
        return anchor_sealed(engine, chain)
    except ChainError as exc:
        log.warning("anchoring postponed: %s", exc)
        return []


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
    return build_receipt(
        record=submission.record(),
        leaf=submission.leaf,
        root=batch.root,
        proof=proof_for(session, batch, submission.leaf_index),
        anchor={"tx_hash": anchor.tx_hash, "chain_id": anchor.chain_id,
                "sender": anchor.sender, "block_number": anchor.block_number,
                "block_hash": anchor.block_hash, "block_time": anchor.block_time},
        batch={"id": batch.id, "leaf_index": submission.leaf_index,
               "leaf_count": batch.leaf_count, "sealed_at": batch.sealed_at},
    )
