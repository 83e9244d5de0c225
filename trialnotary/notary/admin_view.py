"""What the admin pages show of the notary: how many batches are in each state, and the
newest batches with every anchor attempt of each. Read only, no Flask."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, select

from trialnotary.notary.models import Anchor, Batch, RollupBatch


def batch_state_counts(session: Session) -> dict[str, int]:
    """How many batches are in each state (states without one are absent)."""
    return dict(session.execute(select(Batch.state, sa.func.count())
                                .group_by(Batch.state)).all())


def newest_batches(session: Session, *, limit: int) -> tuple[list[Batch], dict[int, list[Anchor]]]:
    """The newest ``limit`` batches, newest first, and each one's anchors (by batch id), in
    the order they were made."""
    rows = list(session.exec(select(Batch).order_by(Batch.id.desc()).limit(limit)).all())
    anchors: dict[int, list[Anchor]] = {}
    for batch_id, anchor in session.exec(
            select(RollupBatch.batch_id, Anchor)
            .join(Anchor, Anchor.rollup_id == RollupBatch.rollup_id)
            .where(RollupBatch.batch_id.in_([b.id for b in rows])).order_by(Anchor.id)):
        anchors.setdefault(batch_id, []).append(anchor)
    return rows, anchors
