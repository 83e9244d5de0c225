"""Anchoring: from a sealed batch to a confirmed transaction, whatever the chain does.

A round runs in one process at a time (``db.chain_lock``) and works only from what the
database and the chain say now, so any process can take over after any crash:

1. **mend gaps**: when the node's account nonce is below what we recorded as mined (a
   node restarted from older state), every anchor it lost is sent again, in nonce order;
2. **recheck**: confirmed anchors not yet final are checked again; one whose block left
   the canonical chain (a reorg) puts its batch back to ``sent`` and is sent again, so a
   receipt never shows a block that is not canonical;
3. **follow** each batch's live anchors: mined and confirmed → confirmed (the others of
   that nonce are ``replaced``); mined but reverted → ``failed``, signed again; unknown to
   the node → sent again from the kept bytes; pending too long → replaced by a transaction
   with the same nonce and higher fees (within the cap); nonce taken by a transaction not
   ours → ``dropped``, signed again with a new nonce;
4. **sign** each sealed batch without a live anchor, its bytes committed before sending;
5. **send** signed anchors from their kept bytes.

A batch's live anchors share one nonce, so at most one transaction per batch survives.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from trialnotary.db import as_utc, chain_lock, utcnow, write_session
from trialnotary.notary.batches import pending_count, seal_all, seal_audit_head
from trialnotary.notary.chain import (
    ChainClient,
    ChainError,
    ChainUnreachable,
    FeeAboveCap,
    Inclusion,
)
from trialnotary.notary.faults import crash_point
from trialnotary.notary.models import Anchor, Batch, ChainStatus
from trialnotary.notary.states import LIVE_ANCHOR_STATES, AnchorState, BatchState

log = logging.getLogger(__name__)
# Confirmed anchors are rechecked until their block is this deep, where a node cannot
# tell us which blocks are final.
RECHECK_DEPTH = 64
STATUS_EVERY = timedelta(seconds=30)


@dataclass
class Round:
    """What one round did."""

    signed: list[Anchor] = field(default_factory=list)
    sent: list[Anchor] = field(default_factory=list)
    confirmed: list[int] = field(default_factory=list)
    replaced: list[Anchor] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)
    reverted: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)


def _seconds_since(moment: datetime | None) -> float:
    return float("inf") if moment is None else (utcnow() - as_utc(moment)).total_seconds()


# --- one round -----------------------------------------------------------------------

def anchor_round(engine: Engine, chain: ChainClient, *, wait: float = 0) -> Round | None:
    """One round of the state machine, or ``None`` when another process holds the chain
    lock (for up to ``wait`` seconds). Raises ``ChainError`` when the chain cannot be used;
    whatever was done before stays done."""
    deadline = time.monotonic() + wait
    while True:
        with chain_lock(engine) as held:
            if held:
                chain.ensure_chain()
                done = Round()
                mend_gaps(engine, chain, done)
                recheck_confirmed(engine, chain, done)
                follow(engine, chain, done)
                done.signed = sign_new(engine, chain)
                done.sent = broadcast(engine, chain)
                return done
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.2)


def anchor_sealed(engine: Engine, chain: ChainClient) -> list[Anchor]:
    """Sign and send anchors for every sealed batch now (``seal-now``, tests)."""
    done = anchor_round(engine, chain, wait=30)
    return [] if done is None else done.sent


def confirm_sent(engine: Engine, chain: ChainClient) -> list[int]:
    """Follow the sent anchors once; the ids of the batches confirmed now."""
    done = anchor_round(engine, chain, wait=30)
    return [] if done is None else done.confirmed


# --- 4 and 5: sign and send ----------------------------------------------------------

def sign_new(engine: Engine, chain: ChainClient) -> list[Anchor]:
    """Sign one transaction for each sealed batch with no live anchor; keep its bytes.

    The chain is asked (nonce, fees) and everything signed before the write transaction
    opens, so SQLite's write lock is never held across a network call. The chain lock
    keeps any other process from signing meanwhile.
    """
    with Session(engine) as session:
        waiting = session.exec(
            select(Batch).where(Batch.state == BatchState.SEALED,
                                ~sa.exists().where(Anchor.batch_id == Batch.id,
                                                   Anchor.state.in_(LIVE_ANCHOR_STATES)))
            .order_by(Batch.id)).all()
        if not waiting:
            return []
        first = _next_nonce(session, chain)
    fees = chain.fees()
    signed = [(batch, chain.sign_anchor(batch.root, first + i, fees))
              for i, batch in enumerate(waiting)]
    with write_session(engine) as session:
        stored = [_store(session, batch, tx, chain) for batch, tx in signed]
        session.commit()
    crash_point("after-sign")
    return stored


def _store(session: Session, batch: Batch, tx, chain: ChainClient, *,
           replaces: Anchor | None = None, note: str | None = None) -> Anchor:
    anchor = Anchor(batch_id=batch.id, chain_id=chain.settings.chain_id, sender=chain.address,
                    nonce=tx.nonce, tx_hash=tx.tx_hash, raw=tx.raw, gas=tx.gas,
                    max_fee_per_gas=tx.max_fee_per_gas,
                    max_priority_fee_per_gas=tx.max_priority_fee_per_gas,
                    replaces_id=replaces.id if replaces else None, note=note)
    session.add(anchor)
    session.flush()
    session.expunge(anchor)
    return anchor


def _ours(chain: ChainClient) -> tuple:
    """Anchors of this account on this chain (a notary may have moved chain or key)."""
    return Anchor.sender == chain.address, Anchor.chain_id == chain.settings.chain_id


def _next_nonce(session: Session, chain: ChainClient) -> int:
    """The node's pending nonce, but never one we have already signed with."""
    ours = session.scalar(select(sa.func.max(Anchor.nonce)).where(*_ours(chain)))
    return max(chain.pending_nonce(), -1 if ours is None else ours + 1)


def broadcast(engine: Engine, chain: ChainClient) -> list[Anchor]:
    """Send every signed anchor from its kept bytes, in nonce order."""
    with Session(engine) as session:
        anchors = session.exec(select(Anchor).where(Anchor.state == AnchorState.SIGNED)
                               .order_by(Anchor.nonce, Anchor.id)).all()
    sent = []
    for anchor in anchors:
        try:
            chain.send_raw(anchor.raw)
        except ChainError as exc:
            if anchor.replaces_id is None or "underpriced" not in str(exc).lower():
                raise
            _set_states(engine, [anchor.id], AnchorState.DROPPED,
                        note=f"the node refused it: {exc}"[:300])
            continue
        crash_point("after-send")
        with write_session(engine) as session:
            session.execute(sa.update(Anchor).where(Anchor.id == anchor.id)
                            .values(state=AnchorState.SENT, sent_at=utcnow()))
            session.execute(sa.update(Batch).where(Batch.id == anchor.batch_id,
                                                   Batch.state == BatchState.SEALED)
                            .values(state=BatchState.SENT))
            session.commit()
        log.info("batch %s: anchor 0x%s sent (nonce %s)", anchor.batch_id, anchor.tx_hash,
                 anchor.nonce)
        sent.append(anchor)
    return sent


# --- 3: follow -----------------------------------------------------------------------

def follow(engine: Engine, chain: ChainClient, done: Round) -> None:
    """Decide, batch by batch, what its sent anchors need."""
    with Session(engine) as session:
        anchors = session.exec(select(Anchor).where(Anchor.state == AnchorState.SENT)
                               .order_by(Anchor.batch_id, Anchor.id)).all()
    by_batch: dict[int, list[Anchor]] = defaultdict(list)
    for anchor in anchors:
        by_batch[anchor.batch_id].append(anchor)
    for batch_id, live in by_batch.items():
        _follow_batch(engine, chain, batch_id, live, done)


def _follow_batch(engine: Engine, chain: ChainClient, batch_id: int, live: list[Anchor],
                  done: Round) -> None:
    newest = live[-1]
    # Any transaction of this nonce may be the mined one: after a reorg, one we had marked
    # replaced (or dropped) can win on the new canonical chain.
    siblings = _siblings(engine, batch_id, newest.nonce)
    mined = _mined(chain, siblings)
    if mined is not None:
        anchor, inclusion = mined
        crash_point("after-receipt")
        if not inclusion.succeeded:
            _fail(engine, anchor, siblings)
        elif inclusion.confirmed and _confirm(engine, anchor, inclusion, siblings):
            done.confirmed.append(batch_id)
        return
    if chain.mined_nonce() > newest.nonce and _mined(chain, siblings) is None:
        _drop(engine, batch_id, live)
        done.dropped.append(batch_id)
        return
    waited = _seconds_since(newest.sent_at)
    if not chain.is_known(newest.tx_hash):
        if waited >= chain.settings.resend_after_seconds:
            log.warning("batch %s: anchor 0x%s is unknown to the node: sent again",
                        batch_id, newest.tx_hash)
            chain.send_raw(newest.raw)
            _set_states(engine, [newest.id], AnchorState.SENT, sent_at=utcnow())
            done.resent.append(newest.tx_hash)
    elif waited >= chain.settings.replace_after_seconds:
        done.replaced.append(_replace(engine, chain, batch_id, newest, waited))


# The anchors of a nonce that may still turn out mined (after a reorg, even a replaced one).
_SIBLING_STATES = (AnchorState.SENT, AnchorState.REPLACED, AnchorState.DROPPED)


def _siblings(engine: Engine, batch_id: int, nonce: int) -> list[Anchor]:
    """Every transaction signed for this batch with this nonce, oldest first."""
    with Session(engine) as session:
        return list(session.exec(select(Anchor).where(
            Anchor.batch_id == batch_id, Anchor.nonce == nonce,
            Anchor.state.in_(_SIBLING_STATES)).order_by(Anchor.id)))


def _mined(chain: ChainClient, anchors: list[Anchor]) -> tuple[Anchor, Inclusion] | None:
    """The anchor mined on the canonical chain, if any (one nonce: at most one can be)."""
    for anchor in anchors:
        inclusion = chain.inclusion(anchor.tx_hash)
        if inclusion is not None:
            return anchor, inclusion
    return None


def _confirm(engine: Engine, anchor: Anchor, inclusion: Inclusion,
             siblings: list[Anchor]) -> bool:
    """The mined anchor is confirmed, whatever we had thought of it; its siblings (same
    batch, same nonce) can never be mined now."""
    with write_session(engine) as session:
        updated = session.execute(
            sa.update(Anchor).where(Anchor.id == anchor.id, Anchor.state != AnchorState.CONFIRMED)
            .values(state=AnchorState.CONFIRMED, block_number=inclusion.block_number,
                    block_hash=inclusion.block_hash, block_time=inclusion.block_time,
                    confirmed_at=utcnow())).rowcount
        others = [a.id for a in siblings if a.id != anchor.id]
        if others:
            session.execute(sa.update(Anchor).where(Anchor.id.in_(others),
                                                    Anchor.state.in_((AnchorState.SENT,
                                                                     AnchorState.DROPPED)))
                            .values(state=AnchorState.REPLACED))
        session.execute(sa.update(Batch).where(Batch.id == anchor.batch_id)
                        .values(state=BatchState.CONFIRMED))
        crash_point("while-confirming")
        session.commit()
    if updated:
        log.info("batch %s confirmed in block %s", anchor.batch_id, inclusion.block_number)
    return bool(updated)


def _fail(engine: Engine, anchor: Anchor, siblings: list[Anchor]) -> None:
    """A reverted anchor proves nothing: the batch is signed again with a new nonce."""
    with write_session(engine) as session:
        session.execute(sa.update(Anchor).where(Anchor.id == anchor.id)
                        .values(state=AnchorState.FAILED))
        session.execute(sa.update(Anchor).where(Anchor.id.in_([a.id for a in siblings]),
                                                Anchor.state == AnchorState.SENT)
                        .values(state=AnchorState.DROPPED,
                                note="another anchor of its nonce failed"))
        session.execute(sa.update(Batch).where(Batch.id == anchor.batch_id)
                        .values(state=BatchState.SEALED))
        session.commit()
    log.error("batch %s: anchor 0x%s failed on chain; the batch is anchored again",
              anchor.batch_id, anchor.tx_hash)


def _drop(engine: Engine, batch_id: int, live: list[Anchor]) -> None:
    """The nonce went to a transaction not ours: sign the batch again with a new one."""
    _set_states(engine, [a.id for a in live], AnchorState.DROPPED,
                note="its nonce was taken by another transaction")
    with write_session(engine) as session:
        session.execute(sa.update(Batch).where(Batch.id == batch_id)
                        .values(state=BatchState.SEALED))
        session.commit()
    log.warning("batch %s: nonce %s was taken by a transaction not ours; signing again",
                batch_id, live[-1].nonce)


def _replace(engine: Engine, chain: ChainClient, batch_id: int, stuck: Anchor,
             waited: float) -> Anchor:
    """A transaction with the stuck one's nonce and fees raised past the node's
    replacement rule (``FeeAboveCap`` when that would pass the cap)."""
    with Session(engine) as session:
        highest = session.execute(
            select(sa.func.max(Anchor.max_fee_per_gas),
                   sa.func.max(Anchor.max_priority_fee_per_gas))
            .where(Anchor.batch_id == batch_id, Anchor.nonce == stuck.nonce)).one()
        batch = session.get(Batch, batch_id)
    fees = chain.replacement_fees(int(highest[0]), int(highest[1]))
    tx = chain.sign_anchor(batch.root, stuck.nonce, fees)
    note = (f"replaces 0x{stuck.tx_hash[:12]}…, unmined after {waited:.0f} s; fees "
            f"{int(stuck.max_fee_per_gas) / 1e9:.3f} → {tx.max_fee_per_gas / 1e9:.3f} gwei")
    with write_session(engine) as session:
        anchor = _store(session, batch, tx, chain, replaces=stuck, note=note)
        session.commit()
    log.warning("batch %s: %s", batch_id, note)
    return anchor


def _set_states(engine: Engine, ids: list[int], state: AnchorState, **values) -> None:
    with write_session(engine) as session:
        session.execute(sa.update(Anchor).where(Anchor.id.in_(ids)).values(state=state, **values))
        session.commit()


# --- 1 and 2: mend gaps, recheck -----------------------------------------------------

def _withdraw(engine: Engine, anchor: Anchor, why: str) -> None:
    """A confirmed anchor's block is gone: its batch waits for it again."""
    with write_session(engine) as session:
        session.execute(sa.update(Anchor).where(Anchor.id == anchor.id).values(
            state=AnchorState.SENT, block_number=None, block_hash=None, block_time=None,
            confirmed_at=None, sent_at=utcnow(), note=why))
        session.execute(sa.update(Batch).where(Batch.id == anchor.batch_id)
                        .values(state=BatchState.SENT))
        session.commit()
    log.warning("batch %s: %s; its anchor 0x%s is sent again", anchor.batch_id, why,
                anchor.tx_hash)


def recheck_confirmed(engine: Engine, chain: ChainClient, done: Round) -> None:
    """Confirmed anchors whose block is not final yet must still be on the canonical chain."""
    if chain.settings.confirmations == "finalized":
        return  # confirmed only once final
    try:
        final = chain.finalized()
    except (ChainError, ValueError, KeyError):
        final = chain.head() - RECHECK_DEPTH
    with Session(engine) as session:
        recent = session.exec(select(Anchor).where(Anchor.state == AnchorState.CONFIRMED,
                                                   Anchor.block_number > final, *_ours(chain))
                              .order_by(Anchor.nonce)).all()
    for anchor in recent:
        inclusion = chain.inclusion(anchor.tx_hash)
        if inclusion is not None and inclusion.block_hash == anchor.block_hash:
            continue
        _withdraw(engine, anchor, f"block {anchor.block_number} left the canonical chain")
        chain.send_raw(anchor.raw)
        done.reverted.append(anchor.batch_id)


def mend_gaps(engine: Engine, chain: ChainClient, done: Round) -> None:
    """Anchors we recorded as confirmed but whose nonces the node has not mined (it was
    restarted from older state, or reorganised deeply) are sent again in nonce order.

    A gap can only be mended with our own kept bytes: a lost transaction not ours (the
    account used elsewhere) leaves its nonce open, and anchors above it wait, alerting."""
    with Session(engine) as session:
        ours = session.scalar(select(sa.func.max(Anchor.nonce))
                              .where(Anchor.state == AnchorState.CONFIRMED, *_ours(chain)))
    if ours is None:
        return
    mined = chain.mined_nonce()
    if mined > ours:
        return
    with Session(engine) as session:
        lost = session.exec(select(Anchor).where(Anchor.state == AnchorState.CONFIRMED,
                                                 *_ours(chain), Anchor.nonce >= mined)
                            .order_by(Anchor.nonce)).all()
    for anchor in lost:
        _withdraw(engine, anchor, f"the node has mined only {mined} transactions of the "
                                  f"account, not nonce {anchor.nonce}")
        chain.send_raw(anchor.raw)
        done.reverted.append(anchor.batch_id)


# --- status, backoff and the jobs ----------------------------------------------------

def record_status(engine: Engine, *, reachable: bool, alert: str | None) -> None:
    """Note what the chain looks like: on every change, else at most every 30 s."""
    with write_session(engine) as session:
        row = session.get(ChainStatus, 1)
        now = utcnow()
        if row is None:
            session.add(ChainStatus(id=1, reachable=reachable, since=now, checked_at=now,
                                    alert=alert))
        elif row.reachable != reachable or row.alert != alert:
            row.reachable, row.alert, row.since, row.checked_at = reachable, alert, now, now
            session.add(row)
        elif now - as_utc(row.checked_at) >= STATUS_EVERY:
            row.checked_at = now
            session.add(row)
        else:
            return
        session.commit()


def chain_status(session: Session) -> ChainStatus | None:
    return session.get(ChainStatus, 1)


class Backoff:
    """Waits between chain attempts after failures: 1, 2, 4 … up to 60 s."""

    def __init__(self, ceiling: float = 60.0):
        self.ceiling, self.failures, self.next_at = ceiling, 0, 0.0

    def due(self) -> bool:
        return time.monotonic() >= self.next_at

    def failed(self) -> float:
        self.failures += 1
        delay = min(self.ceiling, 2.0 ** (self.failures - 1))
        self.next_at = time.monotonic() + delay
        return delay

    def succeeded(self) -> None:
        self.failures, self.next_at = 0, 0.0


def chain_round(engine: Engine, chain: ChainClient, backoff: Backoff | None = None,
                *, wait: float = 0) -> Round | None:
    """A round that never raises: failures are noted as the chain's status (the alert an
    admin sees) and delay the next attempt."""
    backoff = backoff or Backoff()
    if not backoff.due():
        return None
    try:
        done = anchor_round(engine, chain, wait=wait)
    except ChainError as exc:
        delay = backoff.failed()
        record_status(engine, reachable=not isinstance(exc, ChainUnreachable),
                      alert=str(exc)[:500])
        level = logging.WARNING if isinstance(exc, (ChainUnreachable, FeeAboveCap)) \
            else logging.ERROR
        log.log(level, "anchoring postponed %.0f s: %s", delay, exc)
        return None
    backoff.succeeded()
    if done is not None:
        record_status(engine, reachable=True, alert=None)
    return done


@dataclass
class TickResult:
    sealed: list[Batch]
    round: Round | None

    @property
    def sent(self) -> list[Anchor]:
        return [] if self.round is None else self.round.sent

    @property
    def confirmed(self) -> list[int]:
        return [] if self.round is None else self.round.confirmed


def run_seal_job(engine: Engine, chain: ChainClient, max_batch: int,
                 backoff: Backoff | None = None, *, audit_wait: float | None = None
                 ) -> TickResult:
    """The seal interval's job: seal what is pending (or, with ``audit_wait``, the audit
    head alone once its entries have waited that long), then a chain round."""
    sealed = seal_all(engine, max_batch) or _waiting_head(engine, audit_wait)
    return TickResult(sealed, chain_round(engine, chain, backoff))


def run_tick(engine: Engine, chain: ChainClient, max_batch: int,
             backoff: Backoff | None = None, *, audit_wait: float | None = None
             ) -> TickResult:
    """The once-a-second job: seal early when a full batch waits, or (with ``audit_wait``)
    the audit head alone as soon as its entries have waited that long; then a chain round."""
    with Session(engine) as session:
        full = pending_count(session) >= max_batch
    sealed = seal_all(engine, max_batch, full_only=True) if full else \
        _waiting_head(engine, audit_wait)
    return TickResult(sealed, chain_round(engine, chain, backoff))


def _waiting_head(engine: Engine, audit_wait: float | None) -> list[Batch]:
    if audit_wait is None:
        return []
    batch = seal_audit_head(engine, audit_wait)
    return [] if batch is None else [batch]

