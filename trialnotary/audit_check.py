"""``trialnotary audit verify``: the audit trail checked end to end.

1. Every entry's hash and link (``audit.verify_chain``).
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

from sqlmodel import Session

from . import audit, batches, consistency, verify
from .models import Batch
from .receipt import CHAINPOINT_CONTEXT, CHAINPOINT_TYPE, chain_name


@dataclass
class Report:
    ok: bool = True
    lines: list[str] = field(default_factory=list)

    def fail(self, line: str) -> None:
        self.ok = False
        self.lines.append("✗ " + line)

    def good(self, line: str) -> None:
        self.lines.append("✓ " + line)


def head_receipt(session: Session, batch: Batch) -> dict | None:
    """A plain Chainpoint receipt for a batch's ``auditHead`` leaf, or ``None`` until the
    batch's anchor is confirmed."""
    anchor = batches.confirmed_anchor(session, batch.id)
    if anchor is None:
        return None
    leaf = audit.Head(batch.audit_seq, batch.audit_head).leaf()
    return {
        "@context": CHAINPOINT_CONTEXT, "type": CHAINPOINT_TYPE,
        "targetHash": leaf.hex(), "merkleRoot": bytes(batch.root).hex(),
        "proof": batches.proof_for(session, batch, batch.leaf_count - 1),
        "anchors": [{"type": "ETHData", "sourceId": anchor.tx_hash,
                     "chain": chain_name(anchor.chain_id), "chainId": anchor.chain_id,
                     "sender": anchor.sender, "blockNumber": anchor.block_number,
                     "blockHash": anchor.block_hash, "blockTime": anchor.block_time}],
    }


def run(session: Session, *, rpc_urls: list[str]) -> Report:
    report = Report()
    chain = audit.verify_chain(session)
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


def _check_on_chain(session: Session, newest: audit.SealedHead, rpc_urls: list[str],
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
