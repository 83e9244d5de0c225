"""Steps 4 and 5 of an anchoring round (``anchoring``): sign a transaction for each sealed
roll-up of the chain's anchor that has no live transaction, keeping its bytes, then send
the signed ones from those bytes. Also the small writes the other steps share.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from trialnotary.db import utcnow, write_session
from trialnotary.notary.chain import ChainClient
from trialnotary.notary.errors import ChainError
from trialnotary.notary.faults import crash_point
from trialnotary.notary.models import Anchor, Rollup
from trialnotary.notary.rollups import set_rollup_state
from trialnotary.notary.states import LIVE_ANCHOR_STATES, AnchorState, BatchState

log = logging.getLogger(__name__)


def sign_new(engine: Engine, chain: ChainClient) -> list[Anchor]:
    """Sign one transaction for each sealed roll-up of this anchor with no live one; keep
    its bytes.

    The chain is asked (nonce, fees) and everything signed before the write transaction
    opens, so SQLite's write lock is never held across a network call. The chain lock
    keeps any other process from signing meanwhile.
    """
    with Session(engine) as session:
        waiting = session.exec(
            select(Rollup).where(Rollup.anchor == chain.name, Rollup.state == BatchState.SEALED,
                                 ~sa.exists().where(Anchor.rollup_id == Rollup.id,
                                                    Anchor.state.in_(LIVE_ANCHOR_STATES)))
            .order_by(Rollup.id)).all()
        if not waiting:
            return []
        first = _next_nonce(session, chain)
    fees = chain.fees()
    signed = [(rollup, chain.sign_anchor(rollup.root, first + i, fees))
              for i, rollup in enumerate(waiting)]
    with write_session(engine) as session:
        stored = [store_anchor(session, rollup, tx, chain) for rollup, tx in signed]
        session.commit()
    crash_point("after-sign")
    return stored


def store_anchor(session: Session, rollup: Rollup, tx, chain: ChainClient, *,
                 replaces: Anchor | None = None, note: str | None = None) -> Anchor:
    """Keep a signed transaction (``replaces``: the stuck anchor it takes over from)."""
    anchor = Anchor(name=chain.name, rollup_id=rollup.id, chain_id=chain.settings.chain_id,
                    sender=tx.sender or chain.address,
                    nonce=tx.nonce, tx_hash=tx.tx_hash, raw=tx.raw, gas=tx.gas,
                    max_fee_per_gas=tx.max_fee_per_gas,
                    max_priority_fee_per_gas=tx.max_priority_fee_per_gas,
                    replaces_id=replaces.id if replaces else None, note=note)
    session.add(anchor)
    session.flush()
    session.expunge(anchor)
    return anchor


def this_account(chain: ChainClient) -> tuple:
    """Anchors of this account on this chain (a notary may have moved chain or key)."""
    return Anchor.sender == chain.address, Anchor.chain_id == chain.settings.chain_id


def _next_nonce(session: Session, chain: ChainClient) -> int:
    """The node's pending nonce, but never one we have already signed with."""
    ours = session.scalar(select(sa.func.max(Anchor.nonce)).where(*this_account(chain)))
    return max(chain.pending_nonce(), -1 if ours is None else ours + 1)


def broadcast(engine: Engine, chain: ChainClient) -> list[Anchor]:
    """Send every signed anchor of this chain's from its kept bytes, in nonce order."""
    with Session(engine) as session:
        anchors = session.exec(select(Anchor).where(Anchor.state == AnchorState.SIGNED,
                                                    Anchor.name == chain.name)
                               .order_by(Anchor.nonce, Anchor.id)).all()
    sent = []
    for anchor in anchors:
        try:
            chain.send_raw(anchor.raw)
        except ChainError as exc:
            if anchor.replaces_id is None or "underpriced" not in str(exc).lower():
                raise
            set_states(engine, [anchor.id], AnchorState.DROPPED,
                       note=f"the node refused it: {exc}"[:300])
            continue
        crash_point("after-send")
        with write_session(engine) as session:
            session.execute(sa.update(Anchor).where(Anchor.id == anchor.id)
                            .values(state=AnchorState.SENT, sent_at=utcnow()))
            if session.get(Rollup, anchor.rollup_id).state == BatchState.SEALED:
                set_rollup_state(session, anchor.rollup_id, BatchState.SENT)
            session.commit()
        log.info("%s: anchor 0x%s of roll-up %s sent (nonce %s)", chain.name, anchor.tx_hash,
                 anchor.rollup_id, anchor.nonce)
        sent.append(anchor)
    return sent


def set_states(engine: Engine, ids: list[int], state: AnchorState, **values) -> None:
    """Move these anchors to ``state``, with other columns' ``values``, in one commit."""
    with write_session(engine) as session:
        session.execute(sa.update(Anchor).where(Anchor.id.in_(ids)).values(state=state, **values))
        session.commit()

