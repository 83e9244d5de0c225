"""``trialnotary check``: the invariants that say nothing was lost or anchored twice.

- every registration is either pending or in exactly one batch (at a distinct leaf index:
  the database's unique key), and a batch's leaf count is its registrations plus its audit
  head, if any;
- with ``settled``, nothing is pending and every batch is confirmed;
- every batch has at most one confirmed anchor, and its block is on the node's canonical
  chain with that transaction in it;
- no two anchors of the account share a nonce on chain: the account's mined transactions
  are exactly its anchors that were mined (confirmed, and failed ones);
- optionally, every receipt passes the stand-alone verifier.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session, select

from . import batches, verify
from .chain import ChainClient
from .models import Anchor, Batch, LeafSlot, Pending, Submission


@dataclass
class Findings:
    counts: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check(session: Session, chain: ChainClient, *, settled: bool = False,
          receipts: bool = False) -> Findings:
    found = Findings()
    _registrations(session, found, settled)
    _anchors(session, chain, found, settled)
    if receipts:
        _receipts(session, chain, found)
    return found


def _registrations(session: Session, found: Findings, settled: bool) -> None:
    total = session.scalar(select(sa.func.count()).select_from(Submission))
    pending = batches.pending_count(session)
    found.counts.update(registrations=total, pending=pending)
    if settled and pending:
        found.problems.append(f"{pending} registration(s) are still pending")
    sealed = session.scalar(select(sa.func.count()).select_from(LeafSlot))
    both = session.scalar(select(sa.func.count()).select_from(Pending)
                          .join(LeafSlot, LeafSlot.seq == Pending.seq))
    if both:
        found.problems.append(f"{both} registration(s) are both pending and sealed")
    if sealed + pending != total:
        found.problems.append(f"{total - sealed - pending} registration(s) are neither pending "
                              "nor sealed")
    sizes = dict(session.execute(select(LeafSlot.batch_id, sa.func.count())
                                 .group_by(LeafSlot.batch_id)).all())
    for batch in session.exec(select(Batch)):
        expected = sizes.get(batch.id, 0) + (batch.audit_seq is not None)
        if batch.leaf_count != expected:
            found.problems.append(f"batch {batch.id}: {batch.leaf_count} leaves recorded, "
                                  f"{expected} held")


def _anchors(session: Session, chain: ChainClient, found: Findings, settled: bool) -> None:
    all_batches = session.exec(select(Batch).order_by(Batch.id)).all()
    confirmed = session.exec(select(Anchor).where(Anchor.state == "confirmed")).all()
    per_batch: dict[int, list[Anchor]] = {}
    for anchor in confirmed:
        per_batch.setdefault(anchor.batch_id, []).append(anchor)
    found.counts.update(batches=len(all_batches), confirmed_anchors=len(confirmed))
    for batch in all_batches:
        mine = per_batch.get(batch.id, [])
        if len(mine) > 1:
            found.problems.append(f"batch {batch.id}: {len(mine)} confirmed anchors")
        if settled and (batch.state != "confirmed" or not mine):
            found.problems.append(f"batch {batch.id} is {batch.state}, not confirmed")
    for anchor in confirmed:
        inclusion = chain.inclusion(anchor.tx_hash)
        if inclusion is None or inclusion.block_hash != anchor.block_hash:
            found.problems.append(f"batch {anchor.batch_id}: anchor 0x{anchor.tx_hash} is not "
                                  f"in block {anchor.block_number} of the canonical chain")
    mined_here = session.scalar(select(sa.func.count()).select_from(Anchor).where(
        Anchor.state.in_(("confirmed", "failed")), Anchor.sender == chain.address,
        Anchor.chain_id == chain.settings.chain_id))
    on_chain = chain.mined_nonce()
    found.counts.update(account_transactions=on_chain)
    if settled and on_chain != mined_here:
        found.problems.append(f"the account has {on_chain} transactions on chain, but "
                              f"{mined_here} anchors were mined")


def _receipts(session: Session, chain: ChainClient, found: Findings) -> None:
    checked = 0
    for submission in session.exec(select(Submission).join(LeafSlot,
                                                           LeafSlot.seq == Submission.seq)):
        receipt = batches.receipt_for(session, submission)
        if receipt is None:
            continue
        report = verify.verify_receipt(receipt, rpc_urls=chain.settings.rpc_urls[:1])
        checked += 1
        if report.verdict.state == verify.UNCHECKED:
            found.problems.append(f"the receipt of {submission.id} could not be checked: "
                                  f"{report.verdict.text}")
        elif not report.ok:
            failed = [step.name for step in report.steps if step.ok is False]
            found.problems.append(f"the receipt of {submission.id} fails {', '.join(failed)}")
    found.counts.update(receipts_verified=checked)
