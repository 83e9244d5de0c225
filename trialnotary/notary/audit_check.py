"""``trialnotary audit verify``: the audit trail checked end to end.

1. Every entry's hash and link (``audit.verify_links``), and each batch's sealed head is an
   entry of the trail (``verify_chain``).
2. Each batch that sealed a head still holds it: its stored leaves, with the head's
   ``auditHead`` leaf last, still give its root; and every registration's stored record
   still gives its leaf (``consistency.integrity``, the same check as ``trialnotary check``),
   so a trail that holds is never reported beside registrations that were changed.
3. With chain nodes: the newest head in a confirmed batch is anchored, checked by the
   stand-alone verifier on a Chainpoint receipt for that leaf. Since every entry's hash
   covers the one before, anchoring the newest head anchors the whole trail up to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session, select

from trialnotary.notary import consistency
from trialnotary.notary.models import Batch
from trialnotary.notary.receipts import confirmed_anchor
from trialnotary.notary.states import BatchState
from trialnotary.notary.trees import proof_for
from trialnotary.people import audit
from trialnotary.proof import verify
from trialnotary.proof.receipt import CHAINPOINT_CONTEXT, CHAINPOINT_TYPE, chain_name


@dataclass
class Report:
    ok: bool = True
    lines: list[str] = field(default_factory=list)

    def fail(self, line: str) -> None:
        self.ok = False
        self.lines.append("✗ " + line)

    def good(self, line: str) -> None:
        self.lines.append("✓ " + line)


@dataclass(frozen=True)
class SealedHead:
    batch_id: int
    seq: int
    head: str
    state: str


@dataclass
class ChainCheck:
    """What ``verify_chain`` found: ``ok`` when every entry's hash and link hold and every
    batch's sealed head is an entry of the trail."""

    entries: int
    problems: list[str]
    sealed: list[SealedHead]

    @property
    def ok(self) -> bool:
        return not self.problems

    def anchored(self) -> SealedHead | None:
        """The newest head sealed in a confirmed batch."""
        confirmed = [head for head in self.sealed if head.state == BatchState.CONFIRMED]
        return max(confirmed, key=lambda head: head.seq, default=None)


def verify_chain(session: Session) -> ChainCheck:
    """Every entry's hash and link, and each batch's sealed head against the entry it
    names. (That the head's leaf is in the batch's tree, and the tree's root on chain, is
    checked by ``run``.)"""
    links = audit.verify_links(session)
    sealed = [SealedHead(*row) for row in session.execute(
        select(Batch.id, Batch.audit_seq, Batch.audit_head, Batch.state)
        .where(Batch.audit_seq.is_not(None)).order_by(Batch.id)).all()]
    problems = list(links.problems)
    for item in sealed:
        if links.hashes.get(item.seq) != item.head:
            problems.append(f"batch {item.batch_id} sealed entry {item.seq} with hash "
                            f"{item.head[:12]}…, which the trail does not hold")
    return ChainCheck(entries=len(links.hashes), problems=problems, sealed=sealed)



def head_receipt(session: Session, batch: Batch) -> dict | None:
    """A plain Chainpoint receipt for a batch's ``auditHead`` leaf, or ``None`` until the
    batch's anchor is confirmed."""
    anchor = confirmed_anchor(session, batch.id)
    if anchor is None:
        return None
    leaf = audit.Head(batch.audit_seq, batch.audit_head).leaf()
    return {
        "@context": CHAINPOINT_CONTEXT, "type": CHAINPOINT_TYPE,
        "targetHash": leaf.hex(), "merkleRoot": bytes(batch.root).hex(),
        "proof": proof_for(session, batch, batch.leaf_count - 1),
        "anchors": [{"type": "ETHData", "sourceId": anchor.tx_hash,
                     "chain": chain_name(anchor.chain_id), "chainId": anchor.chain_id,
                     "sender": anchor.sender, "blockNumber": anchor.block_number,
                     "blockHash": anchor.block_hash, "blockTime": anchor.block_time}],
    }


def run(session: Session, *, rpc_urls: list[str]) -> Report:
    report = Report()
    chain = verify_chain(session)
    if chain.ok:
        report.good(f"{chain.entries} entries: every hash and link holds")
    for problem in chain.problems:
        report.fail(problem)
    held = consistency.integrity(session)
    for problem in held.problems:
        report.fail(problem)
    if not held.problems:
        report.good(f"{held.leaves} registrations' records give their leaves; {held.roots} "
                    "batches' leaves (with the audit head each sealed) give their roots")
    newest = chain.anchored()
    if newest is None:
        report.lines.append("– no audit head is anchored yet (the next sealed batch takes it)")
        return report
    report.lines.append(f"  anchored up to entry {newest.seq} in batch {newest.batch_id}; "
                        f"{chain.entries - newest.seq} newer entr"
                        f"{'y waits' if chain.entries - newest.seq == 1 else 'ies wait'}")
    if rpc_urls:
        _check_on_chain(session, newest, rpc_urls, report)
    return report


def _check_on_chain(session: Session, newest: SealedHead, rpc_urls: list[str],
                    report: Report) -> None:
    receipt = head_receipt(session, session.get(Batch, newest.batch_id))
    result = verify.verify_receipt(receipt, rpc_urls=rpc_urls)
    for step in result.steps:
        if step.ok is False:
            report.fail(f"entry {newest.seq} on chain: {step.name}: {step.detail}")
    if result.verdict.state == verify.UNCHECKED:
        report.fail(f"entry {newest.seq} on chain: {result.verdict.text}")
    if result.ok:
        report.good(f"entry {newest.seq} is anchored: transaction {result.transaction}, "
                    f"proven time {result.block_time}")
