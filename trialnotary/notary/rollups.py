"""Roll-ups: what each anchor attests, over the sealed batches.

An anchor of each batch gets a roll-up of every batch alone (its root is the batch's root,
its path empty); an anchor with a period gets, once the oldest batch it has not covered has
waited that period, one roll-up over every batch it has not covered, a tree over their roots
in batch order (docs/receipt.md, "Several anchors"). A batch's state follows its roll-ups: it
is confirmed as soon as one anchor's roll-up holding it is.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from trialnotary.anchor_config import AnchorSpec
from trialnotary.db import utcnow, write_session
from trialnotary.notary import merkle
from trialnotary.notary.models import (
    Batch,
    ChainStatus,
    Renewal,
    RenewalRollup,
    Rollup,
    RollupBatch,
)
from trialnotary.notary.states import BatchState
from trialnotary.proof.receipt import rfc3339_ms

NODE = merkle.NODE


def register_anchors(engine: Engine, specs: tuple[AnchorSpec, ...]) -> None:
    """Give each configured anchor its row, with the first batch it anchors: every batch for
    the anchors of a new notary (or those that anchored before), only batches sealed from
    now on for an anchor added to a notary already at work."""
    with Session(engine) as session:
        known = set(session.exec(select(ChainStatus.anchor)))
    new = [spec for spec in specs if spec.name not in known]
    if not new:
        return
    with write_session(engine) as session:
        working = session.scalar(select(sa.func.count()).select_from(Rollup)) > 0
        newest = session.scalar(select(sa.func.max(Batch.id))) or 0
        for spec in new:
            own = session.scalar(select(sa.func.count()).select_from(Rollup)
                                 .where(Rollup.anchor == spec.name)) > 0
            first = 1 if own or not working else newest + 1
            session.add(ChainStatus(anchor=spec.name, first_batch_id=first))
        session.commit()


def dropped_at_work(engine: Engine, specs: tuple[AnchorSpec, ...]) -> list[str]:
    """Anchors the notary worked with, not retired, that the configuration no longer names
    while they still have roll-ups unconfirmed: their transactions would never be followed
    again (and, renamed on the same account, would leave a nonce gap). The start refuses
    them: put the table back, or retire the anchor first."""
    configured = {spec.name for spec in specs}
    if not sa.inspect(engine).has_table(Rollup.__tablename__):
        return []  # a database not migrated yet holds no anchor
    with Session(engine) as session:
        unfinished = set(session.exec(select(Rollup.anchor).distinct()
                                      .where(Rollup.state != BatchState.CONFIRMED)))
        retired = set(session.exec(select(ChainStatus.anchor)
                                   .where(ChainStatus.retired_at.is_not(None))))
    return sorted(unfinished - retired - configured)


def roll_up(engine: Engine, spec: AnchorSpec, now: datetime | None = None) -> list[Rollup]:
    """The roll-ups due for ``spec`` now: one per batch not yet covered (each batch), or one
    over all of them once the oldest has waited the period."""
    now = now or utcnow()
    with Session(engine) as session:
        waiting = _uncovered(session, spec.name)
    if not waiting:
        return []
    if spec.every_seconds is None:
        groups = [[batch] for batch in waiting]
    elif _sealed(waiting[0]) <= now - timedelta(seconds=spec.every_seconds):
        groups = [waiting]
    else:
        return []
    with write_session(engine) as session:
        made = [_store(session, spec.name, group, now) for group in groups]
        session.commit()
    return made


def _uncovered(session: Session, name: str) -> list[Batch]:
    """The batches ``name`` has not covered yet: those after the last one it covered
    (batches are covered in the order they were sealed), and any older one that no anchor
    has confirmed (sealed before this anchor was added, or left by an anchor retired before
    confirming it): no batch is ever left without an anchor at work."""
    first = session.scalar(select(ChainStatus.first_batch_id).where(ChainStatus.anchor == name))
    last = session.scalar(select(sa.func.max(RollupBatch.batch_id))
                          .where(RollupBatch.anchor == name))
    start = max(first or 1, (last or 0) + 1)
    covered = sa.exists().where(RollupBatch.anchor == name, RollupBatch.batch_id == Batch.id)
    stranded = sa.and_(Batch.id < start, Batch.state != BatchState.CONFIRMED, ~covered)
    return list(session.exec(select(Batch).where(sa.or_(Batch.id >= start, stranded))
                             .order_by(Batch.id)))


def _sealed(batch: Batch) -> datetime:
    return datetime.fromisoformat(batch.sealed_at.replace("Z", "+00:00"))


def _store(session: Session, name: str, batches: list[Batch], now: datetime) -> Rollup:
    roots = [bytes(batch.root) for batch in batches]
    levels = merkle.build_levels(roots)
    rollup = Rollup(anchor=name, root=merkle.root_of(levels), leaf_count=len(roots),
                    created_at=rfc3339_ms(now))
    session.add(rollup)
    session.flush()
    for index, batch in enumerate(batches):
        proof = merkle.proof_from_levels(levels, index) if len(batches) > 1 else []
        session.add(RollupBatch(anchor=name, batch_id=batch.id, rollup_id=rollup.id,
                                leaf_index=index, proof=json.dumps(proof)))
    session.flush()
    session.expunge(rollup)
    return rollup


def rollup_batch_ids(session: Session, rollup_id: int) -> list[int]:
    return list(session.exec(select(RollupBatch.batch_id)
                             .where(RollupBatch.rollup_id == rollup_id)
                             .order_by(RollupBatch.leaf_index)))


def rollup_label(rollup_id: int, batch_ids: list[int]) -> str:
    """What a roll-up holds, for the log: its batches, or (a renewal's) none."""
    if not batch_ids:
        return f"roll-up {rollup_id} (a renewal)"
    return ("batch " if len(batch_ids) == 1 else "batches ") + ", ".join(map(str, batch_ids))


def set_rollup_state(session: Session, rollup_id: int, state: BatchState) -> list[int]:
    """Move a roll-up to ``state`` and its batches to what all their roll-ups now say;
    the ids of its batches. A renewal's roll-up (no batch of its own) changes the receipts
    of every batch the renewed anchor attested."""
    session.execute(sa.update(Rollup).where(Rollup.id == rollup_id).values(state=state))
    batch_ids = rollup_batch_ids(session, rollup_id)
    settle_batches(session, batch_ids)
    if not batch_ids:
        touch_batches(session, rollup_id)
    return batch_ids


def touch_batches(session: Session, rollup_id: int) -> None:
    """What the receipts showing this roll-up say of it changed (its state, evidence taken
    late): those of its batches, or, for a renewal's roll-up, of every batch the renewed
    anchor attested. They are built afresh (``receipts``' cache)."""
    renewed = (select(RollupBatch.batch_id)
               .join(Renewal, Renewal.anchor == RollupBatch.anchor)
               .join(RenewalRollup, RenewalRollup.renewal_id == Renewal.id)
               .where(RenewalRollup.rollup_id == rollup_id))
    own = select(RollupBatch.batch_id).where(RollupBatch.rollup_id == rollup_id)
    session.execute(sa.update(Batch).where(sa.or_(Batch.id.in_(own), Batch.id.in_(renewed)))
                    .values(anchors_version=Batch.anchors_version + 1))


def settle_batches(session: Session, batch_ids: list[int]) -> None:
    """Each batch's state from its roll-ups: confirmed when one is, sent when one is on its
    way, else sealed."""
    if not batch_ids:
        return
    def holding(state: BatchState):
        return sa.exists().where(RollupBatch.batch_id == Batch.id,
                                 Rollup.id == RollupBatch.rollup_id, Rollup.state == state)
    session.execute(sa.update(Batch).where(Batch.id.in_(batch_ids)).values(
        state=sa.case((holding(BatchState.CONFIRMED), BatchState.CONFIRMED.value),
                      (holding(BatchState.SENT), BatchState.SENT.value),
                      else_=BatchState.SEALED.value),
        anchors_version=Batch.anchors_version + 1))
