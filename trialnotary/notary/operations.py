"""What an operator asks of the notary by hand: seal now, which batches are confirmed, how
many anchors are in flight. The ``trialnotary`` commands call these instead of querying
the tables themselves (see docs/cli.md)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from trialnotary.notary import batches
from trialnotary.notary.models import Anchor, Batch, RollupBatch
from trialnotary.notary.states import LIVE_ANCHOR_STATES, BatchState


@dataclass
class Sealed:
    """The batches one ``seal_everything`` made; ``audit_head`` is the batch of the audit
    head alone, if one was due (it is also the last of ``batches``)."""

    batches: list[Batch] = field(default_factory=list)
    audit_head: Batch | None = None


def seal_everything(engine: Engine, max_batch: int) -> Sealed:
    """Seal every pending registration, then the audit entries no batch holds yet (with
    no registration pending, in a batch of the audit head alone), without waiting for the
    seal interval. It runs the scheduler's own job code under the same lock, so it is safe
    beside a running scheduler."""
    sealed = Sealed(batches.seal_all(engine, max_batch))
    sealed.audit_head = batches.seal_audit_head(engine, waited_seconds=0)
    if sealed.audit_head is not None:
        sealed.batches.append(sealed.audit_head)
    return sealed


def confirmed_among(engine: Engine, batch_ids: Iterable[int]) -> set[int]:
    """Those of ``batch_ids`` whose batch is confirmed, whoever confirmed it."""
    with Session(engine) as session:
        return set(session.scalars(select(Batch.id).where(
            Batch.id.in_(list(batch_ids)), Batch.state == BatchState.CONFIRMED)))


def anchors_in_flight(engine: Engine) -> int:
    """How many anchor transactions are signed or sent and not yet settled."""
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(Anchor)
                              .where(Anchor.state.in_(LIVE_ANCHOR_STATES)))


def batches_of(engine: Engine, anchors: Iterable[Anchor]) -> set[int]:
    """The batches these anchor transactions attest (through their roll-ups)."""
    rollup_ids = {anchor.rollup_id for anchor in anchors}
    if not rollup_ids:
        return set()
    with Session(engine) as session:
        return set(session.scalars(select(RollupBatch.batch_id)
                                   .where(RollupBatch.rollup_id.in_(rollup_ids))))
