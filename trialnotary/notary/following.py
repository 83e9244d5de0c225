"""Steps 1 to 3 of an anchoring round (``anchoring``): what the chain did with the
anchors already sent, and what each needs now: mend the nonce gaps of a node that lost
state, withdraw confirmations whose block left the canonical chain, and follow each batch's
live anchors to confirmed, failed, dropped, sent again or replaced. Everything here is one
EVM anchor's (``chain.name``): its roll-ups and the transactions signed for them.
"""

from __future__ import annotations

import logging
import weakref
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from trialnotary.db import as_utc, utcnow, write_session
from trialnotary.notary.chain import ChainClient, Inclusion
from trialnotary.notary.errors import BlockMoved, ChainError, ChainUnreachable
from trialnotary.notary.evidence import stored, take_evidence
from trialnotary.notary.faults import crash_point
from trialnotary.notary.models import Anchor, Rollup
from trialnotary.notary.rollups import (
    rollup_batch_ids,
    rollup_label,
    set_rollup_state,
    touch_batches,
)
from trialnotary.notary.sending import set_states, store_anchor, this_account
from trialnotary.notary.states import AnchorState, BatchState

if TYPE_CHECKING:
    from trialnotary.notary.anchoring import Round

log = logging.getLogger(__name__)
# Confirmed anchors are rechecked until their block is this deep, where a node cannot
# tell us which blocks are final.
RECHECK_DEPTH = 64
#: Confirmed anchors given their missing evidence per round, at most.
BACKFILL_PER_ROUND = 5


@dataclass
class _Backfill:
    """Per chain client: whether confirmed anchors may lack evidence (true at start, and
    again after a confirmation without it), and those whose evidence it could not take,
    not asked for again."""

    may_lack: bool = True
    given_up: set[int] = field(default_factory=set)


_BACKFILL: weakref.WeakKeyDictionary[ChainClient, _Backfill] = weakref.WeakKeyDictionary()


def _seconds_since(moment: datetime | None) -> float:
    return float("inf") if moment is None else (utcnow() - as_utc(moment)).total_seconds()


# --- 3: follow -----------------------------------------------------------------------

def follow(engine: Engine, chain: ChainClient, done: Round) -> None:
    """Decide, roll-up by roll-up, what its sent anchors need."""
    with Session(engine) as session:
        anchors = session.exec(select(Anchor).where(Anchor.state == AnchorState.SENT,
                                                    Anchor.name == chain.name)
                               .order_by(Anchor.rollup_id, Anchor.id)).all()
    by_rollup: dict[int, list[Anchor]] = defaultdict(list)
    for anchor in anchors:
        by_rollup[anchor.rollup_id].append(anchor)
    for rollup_id, live in by_rollup.items():
        _follow_rollup(engine, chain, rollup_id, live, done)


def _follow_rollup(engine: Engine, chain: ChainClient, rollup_id: int, live: list[Anchor],
                   done: Round) -> None:
    newest = live[-1]
    # Any transaction of this nonce may be the mined one: after a reorg, one we had marked
    # replaced (or dropped) can win on the new canonical chain.
    siblings = _siblings(engine, rollup_id, newest.nonce)
    mined = _mined(chain, siblings)
    if mined is not None:
        anchor, inclusion = mined
        crash_point("after-receipt")
        if not inclusion.succeeded:
            _fail(engine, anchor, siblings)
        elif inclusion.confirmed:
            try:
                evidence = _evidence(chain, anchor, inclusion)
                if evidence is None:
                    _BACKFILL.setdefault(chain, _Backfill()).may_lack = True
            except BlockMoved as exc:
                log.warning("roll-up %s: not confirmed yet: %s", rollup_id, exc)
                return
            done.confirmed.extend(_confirm(engine, anchor, inclusion, siblings, evidence))
        return
    if chain.mined_nonce(newest.sender) > newest.nonce and _mined(chain, siblings) is None:
        done.dropped.extend(_drop(engine, rollup_id, live))
        return
    waited = _seconds_since(newest.sent_at)
    if not chain.is_known(newest.tx_hash):
        if waited >= chain.settings.resend_after_seconds:
            log.warning("roll-up %s: anchor 0x%s is unknown to the node: sent again",
                        rollup_id, newest.tx_hash)
            chain.send_raw(newest.raw)
            set_states(engine, [newest.id], AnchorState.SENT, sent_at=utcnow())
            done.resent.append(newest.tx_hash)
    elif waited >= chain.settings.replace_after_seconds and chain.can_sign_as(newest.sender):
        done.replaced.append(_replace(engine, chain, rollup_id, newest, waited))


# The anchors of a nonce that may still turn out mined (after a reorg, even a replaced one).
_SIBLING_STATES = (AnchorState.SENT, AnchorState.REPLACED, AnchorState.DROPPED)


def _siblings(engine: Engine, rollup_id: int, nonce: int) -> list[Anchor]:
    """Every transaction signed for this roll-up with this nonce, oldest first."""
    with Session(engine) as session:
        return list(session.exec(select(Anchor).where(
            Anchor.rollup_id == rollup_id, Anchor.nonce == nonce,
            Anchor.state.in_(_SIBLING_STATES)).order_by(Anchor.id)))


def _mined(chain: ChainClient, anchors: list[Anchor]) -> tuple[Anchor, Inclusion] | None:
    """The anchor mined on the canonical chain, if any (one nonce: at most one can be)."""
    for anchor in anchors:
        inclusion = chain.inclusion(anchor.tx_hash)
        if inclusion is not None:
            return anchor, inclusion
    return None


def _evidence(chain: ChainClient, anchor: Anchor, inclusion: Inclusion) -> str | None:
    """The chain evidence of the anchor in the block where it reached its confirmations.

    A node that cannot give it (no ``eth_getBlockReceipts``, no batched requests, a header
    this notary cannot rebuild, odd answers) does not hold receipts back: the anchor is
    confirmed without evidence, and its receipts verify as version 1 ones do (by the
    transaction's hash). ``BlockMoved`` (a reorg under way) and an unreachable node put the
    confirmation off to a later round."""
    try:
        return stored(take_evidence(chain, anchor.tx_hash, inclusion))
    except (BlockMoved, ChainUnreachable):
        raise
    except (ChainError, KeyError, TypeError, ValueError) as exc:
        log.error("roll-up %s: anchor 0x%s is confirmed without chain evidence: %s",
                  anchor.rollup_id, anchor.tx_hash, exc)
        return None


def _confirm(engine: Engine, anchor: Anchor, inclusion: Inclusion,
             siblings: list[Anchor], evidence: str | None) -> list[int]:
    """The mined anchor is confirmed, whatever we had thought of it, with the evidence of
    its block; its siblings (same roll-up, same nonce) can never be mined now. The ids of
    the roll-up's batches, if it was not confirmed before."""
    with write_session(engine) as session:
        updated = session.execute(
            sa.update(Anchor).where(Anchor.id == anchor.id, Anchor.state != AnchorState.CONFIRMED)
            .values(state=AnchorState.CONFIRMED, block_number=inclusion.block_number,
                    block_hash=inclusion.block_hash, block_time=inclusion.block_time,
                    evidence=evidence, confirmed_at=utcnow())).rowcount
        others = [a.id for a in siblings if a.id != anchor.id]
        if others:
            session.execute(sa.update(Anchor).where(Anchor.id.in_(others),
                                                    Anchor.state.in_((AnchorState.SENT,
                                                                     AnchorState.DROPPED)))
                            .values(state=AnchorState.REPLACED))
        batch_ids = set_rollup_state(session, anchor.rollup_id, BatchState.CONFIRMED)
        crash_point("while-confirming")
        session.commit()
    if not updated:
        return []
    log.info("%s: %s confirmed in block %s", anchor.name,
             rollup_label(anchor.rollup_id, batch_ids), inclusion.block_number)
    return batch_ids


def _fail(engine: Engine, anchor: Anchor, siblings: list[Anchor]) -> None:
    """A reverted anchor proves nothing: the roll-up is signed again with a new nonce."""
    with write_session(engine) as session:
        session.execute(sa.update(Anchor).where(Anchor.id == anchor.id)
                        .values(state=AnchorState.FAILED))
        session.execute(sa.update(Anchor).where(Anchor.id.in_([a.id for a in siblings]),
                                                Anchor.state == AnchorState.SENT)
                        .values(state=AnchorState.DROPPED,
                                note="another anchor of its nonce failed"))
        set_rollup_state(session, anchor.rollup_id, BatchState.SEALED)
        session.commit()
    log.error("roll-up %s: anchor 0x%s failed on chain; it is anchored again",
              anchor.rollup_id, anchor.tx_hash)


def _drop(engine: Engine, rollup_id: int, live: list[Anchor]) -> list[int]:
    """The nonce went to a transaction not ours: sign the roll-up again with a new one.
    The ids of its batches."""
    set_states(engine, [a.id for a in live], AnchorState.DROPPED,
               note="its nonce was taken by another transaction")
    with write_session(engine) as session:
        batch_ids = set_rollup_state(session, rollup_id, BatchState.SEALED)
        session.commit()
    log.warning("roll-up %s: nonce %s was taken by a transaction not ours; signing again",
                rollup_id, live[-1].nonce)
    return batch_ids


def _replace(engine: Engine, chain: ChainClient, rollup_id: int, stuck: Anchor,
             waited: float) -> Anchor:
    """A transaction with the stuck one's nonce and fees raised past the node's
    replacement rule (``FeeAboveCap`` when that would pass the cap)."""
    with Session(engine) as session:
        highest = session.execute(
            select(sa.func.max(Anchor.max_fee_per_gas),
                   sa.func.max(Anchor.max_priority_fee_per_gas))
            .where(Anchor.rollup_id == rollup_id, Anchor.nonce == stuck.nonce)).one()
        rollup = session.get(Rollup, rollup_id)
    fees = chain.replacement_fees(int(highest[0]), int(highest[1]))
    tx = chain.sign_anchor(rollup.root, stuck.nonce, fees, sender=stuck.sender)
    note = (f"replaces 0x{stuck.tx_hash[:12]}…, unmined after {waited:.0f} s; fees "
            f"{int(stuck.max_fee_per_gas) / 1e9:.3f} → {tx.max_fee_per_gas / 1e9:.3f} gwei")
    with write_session(engine) as session:
        anchor = store_anchor(session, rollup, tx, chain, replaces=stuck, note=note)
        session.commit()
    log.warning("roll-up %s: %s", rollup_id, note)
    return anchor


# --- 1 and 2: mend gaps, recheck -----------------------------------------------------

def _withdraw(engine: Engine, anchor: Anchor, why: str) -> list[int]:
    """A confirmed anchor's block is gone: its roll-up waits for it again. The ids of the
    roll-up's batches."""
    with write_session(engine) as session:
        session.execute(sa.update(Anchor).where(Anchor.id == anchor.id).values(
            state=AnchorState.SENT, block_number=None, block_hash=None, block_time=None,
            evidence=None, confirmed_at=None, sent_at=utcnow(), note=why))
        batch_ids = set_rollup_state(session, anchor.rollup_id, BatchState.SENT)
        session.commit()
    log.warning("roll-up %s: %s; its anchor 0x%s is sent again", anchor.rollup_id, why,
                anchor.tx_hash)
    return batch_ids


def recheck_confirmed(engine: Engine, chain: ChainClient, done: Round) -> None:
    """Confirmed anchors whose block is not final yet must still be on the canonical chain
    (whichever of the notary's keys signed them)."""
    if chain.settings.confirmations == "finalized":
        return  # confirmed only once final
    try:
        final = chain.finalized()
    except (ChainError, ValueError, KeyError):
        final = chain.head() - RECHECK_DEPTH
    with Session(engine) as session:
        recent = session.exec(select(Anchor).where(Anchor.state == AnchorState.CONFIRMED,
                                                   Anchor.block_number > final,
                                                   Anchor.name == chain.name,
                                                   Anchor.chain_id == chain.settings.chain_id)
                              .order_by(Anchor.nonce)).all()
    for anchor in recent:
        inclusion = chain.inclusion(anchor.tx_hash)
        if inclusion is not None and inclusion.block_hash == anchor.block_hash:
            continue
        done.reverted.extend(_withdraw(engine, anchor, f"block {anchor.block_number} left "
                                                       "the canonical chain"))
        chain.send_raw(anchor.raw)


def backfill_evidence(engine: Engine, chain: ChainClient, done: Round) -> None:
    """Confirmed anchors of this chain without chain evidence (confirmed before the notary
    took it, or when the node could not give it) get it from their block, a few per round,
    so that every receipt issued from now on carries it. An anchor whose evidence cannot be
    had (the node lacks the methods, or its block left the chain) is not asked again by
    this client (this process's)."""
    backfill = _BACKFILL.setdefault(chain, _Backfill())
    if not backfill.may_lack:
        return  # no query on every round once all is given
    given_up = backfill.given_up
    with Session(engine) as session:
        missing = session.exec(
            select(Anchor).where(Anchor.state == AnchorState.CONFIRMED,
                                 Anchor.evidence.is_(None),
                                 Anchor.name == chain.name,
                                 Anchor.chain_id == chain.settings.chain_id,
                                 Anchor.id.not_in(given_up))
            .order_by(Anchor.id).limit(BACKFILL_PER_ROUND)).all()
    backfill.may_lack = len(missing) == BACKFILL_PER_ROUND
    for anchor in missing:
        if not give_evidence(engine, chain, anchor):
            given_up.add(anchor.id)
            continue
        with Session(engine) as session:
            done.evidenced.extend(rollup_batch_ids(session, anchor.rollup_id))


def give_evidence(engine: Engine, chain: ChainClient, anchor: Anchor) -> bool:
    """Take a confirmed anchor's missing chain evidence from its block and keep it; whether
    it could be had. Raises ``ChainUnreachable`` when the node does not answer."""
    settled = Inclusion(anchor.block_number, anchor.block_hash, anchor.block_time,
                        succeeded=True, confirmed=True)
    try:
        evidence = _evidence(chain, anchor, settled)
    except BlockMoved as exc:
        log.error("roll-up %s: no chain evidence for its confirmed anchor: %s",
                  anchor.rollup_id, exc)
        evidence = None
    if evidence is None:
        return False
    with write_session(engine) as session:
        session.execute(sa.update(Anchor).where(Anchor.id == anchor.id,
                                                Anchor.evidence.is_(None),
                                                Anchor.block_hash == anchor.block_hash)
                        .values(evidence=evidence))
        touch_batches(session, anchor.rollup_id)
        session.commit()
    return True


def mend_gaps(engine: Engine, chain: ChainClient, done: Round) -> None:
    """Anchors we recorded as confirmed but whose nonces the node has not mined (it was
    restarted from older state, or reorganised deeply) are sent again in nonce order.

    A gap can only be mended with our own kept bytes: a lost transaction not ours (the
    account used elsewhere) leaves its nonce open, and anchors above it wait, alerting."""
    with Session(engine) as session:
        ours = session.scalar(select(sa.func.max(Anchor.nonce))
                              .where(Anchor.state == AnchorState.CONFIRMED,
                                     *this_account(chain)))
    if ours is None:
        return
    mined = chain.mined_nonce()
    if mined > ours:
        return
    with Session(engine) as session:
        lost = session.exec(select(Anchor).where(Anchor.state == AnchorState.CONFIRMED,
                                                 *this_account(chain), Anchor.nonce >= mined)
                            .order_by(Anchor.nonce)).all()
    for anchor in lost:
        done.reverted.extend(_withdraw(engine, anchor, f"the node has mined only {mined} "
                                                       f"transactions of the account, not "
                                                       f"nonce {anchor.nonce}"))
        chain.send_raw(anchor.raw)

