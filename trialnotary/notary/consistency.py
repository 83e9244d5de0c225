"""``trialnotary check``: the invariants that say nothing was lost, changed or anchored twice.

- every registration is either pending or in exactly one batch (at a distinct leaf index:
  the database's unique key), and a batch's leaf count is its registrations plus its audit
  head, if any;
- every registration's stored record still gives its stored leaf, and every batch's stored
  leaves, in leaf order with its audit head last, still give its root (``integrity``): a
  record, leaf, leaf order, audit head or root changed in the database shows here;
- with ``settled``, nothing is pending and every batch is confirmed;
- every batch has at most one confirmed anchor, its block is on the node's canonical chain
  with that transaction in it, and the transaction carries exactly the batch's root, sent
  by the anchoring account: a batch rewritten whole in the database (records, leaves and
  root) shows here;
- no two anchors of the account share a nonce on chain: the account's mined transactions
  are exactly its anchors that were mined (confirmed, and failed ones);
- optionally, every receipt passes the stand-alone verifier.

The database checks stream the rows in chunks (no ORM objects), so a million registrations
take seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session, select

from trialnotary.notary import batches, merkle, receipts
from trialnotary.notary.chain import ChainClient
from trialnotary.notary.driver import driver_stream
from trialnotary.notary.errors import ChainError
from trialnotary.notary.identity import notary_of
from trialnotary.notary.models import (
    RECORD_COLUMNS,
    Anchor,
    Batch,
    LeafSlot,
    Pending,
    Registration,
    Rollup,
    RollupBatch,
    record_of,
)
from trialnotary.notary.registrations import leaf_of
from trialnotary.notary.renewal import renewal_roots
from trialnotary.notary.rollups import rollup_batch_ids, rollup_label
from trialnotary.notary.states import AnchorState, BatchState
from trialnotary.people import audit
from trialnotary.proof import verify
from trialnotary.proof.receipt import fold_proof

CHUNK = 10_000
# Changed registrations named one by one, at most; the rest are counted.
NAMED = 20


@dataclass
class Findings:
    counts: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check(session: Session, chain: ChainClient | list[ChainClient], *, settled: bool = False,
          receipts: bool = False) -> Findings:
    """Everything stored holds together; each EVM anchor's transactions (``chain``: one
    client, or one per anchor) are on its chain carrying their roots; with ``receipts``,
    every receipt verifies on the first chain's node."""
    chains = [chain] if isinstance(chain, ChainClient) else list(chain)
    found = Findings()
    _registrations(session, found, settled)
    held = integrity(session)
    found.counts.update(leaves_recomputed=held.leaves, roots_recomputed=held.roots)
    found.problems.extend(held.problems)
    for index, client in enumerate(chains):
        mine = found if index == 0 else Findings()
        try:
            _anchors(session, client, mine, settled)
            if receipts and index == 0:
                _receipts(session, client, found)
        except ChainError as exc:
            which = "the chain" if len(chains) == 1 else f"the chain of {client.name}"
            found.problems.append(f"{which} could not be checked: {exc}")
        if mine is not found:
            found.problems.extend(mine.problems)
            found.counts.update({f"{key} ({client.name})": value
                                 for key, value in mine.counts.items() if key != "batches"})
    return found


def _registrations(session: Session, found: Findings, settled: bool) -> None:
    total = session.scalar(select(sa.func.count()).select_from(Registration))
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


# --- leaves and roots ----------------------------------------------------------------

@dataclass
class Integrity:
    """What ``integrity`` recomputed (``leaves`` and ``roots``), and what did not hold."""

    leaves: int = 0
    roots: int = 0
    problems: list[str] = field(default_factory=list)
    changed: int = 0

    def changed_record(self, registration_id: str, where: str) -> None:
        self.changed += 1
        if self.changed <= NAMED:
            self.problems.append(f"registration {registration_id}{where}: its stored record no "
                                 "longer gives its leaf (the record or the leaf was changed)")


_S, _L, _P, _B = (Registration.__table__.c, LeafSlot.__table__.c, Pending.__table__.c,
                  Batch.__table__.c)
_RECORD_COLUMNS = tuple(_S[column] for column in RECORD_COLUMNS)
_SEALED_ROWS = (sa.select(_L.batch_id, _L.leaf_index, _S.leaf, *_RECORD_COLUMNS)
                .join_from(LeafSlot.__table__, Registration.__table__, _S.seq == _L.seq)
                .order_by(_L.batch_id, _L.leaf_index))
_PENDING_ROWS = (sa.select(_S.leaf, *_RECORD_COLUMNS)
                 .join_from(Pending.__table__, Registration.__table__, _S.seq == _P.seq)
                 .order_by(_P.seq))
_BATCHES = sa.select(_B.id, _B.root, _B.audit_seq, _B.audit_head).order_by(_B.id)


def _stream(session: Session, statement: sa.Select) -> Iterator[tuple]:
    return driver_stream(session.connection(), statement, CHUNK)


def integrity(session: Session) -> Integrity:
    """Recompute every registration's leaf from its stored record and every batch's root
    from its stored leaves (its ``auditHead`` leaf last), in one pass over the rows."""
    held = Integrity()
    batches_left = {row.id: row for row in session.execute(_BATCHES)}
    batch_id, leaves = None, []
    for row in _stream(session, _SEALED_ROWS):
        if row[0] != batch_id:
            if batch_id is not None:
                _check_root(batches_left.pop(batch_id), leaves, held)
            batch_id, leaves = row[0], []
        leaf = bytes(row[2])
        if row[1] != len(leaves):
            held.problems.append(f"batch {batch_id}: leaf index {row[1]} where {len(leaves)} "
                                 f"was expected (registration {row[3]})")
        if _leaf(row[3:]) != leaf:
            held.changed_record(row[3], f" (batch {batch_id}, leaf {row[1]})")
        leaves.append(leaf)
    if batch_id is not None:
        _check_root(batches_left.pop(batch_id), leaves, held)
    for batch in batches_left.values():  # none of its registrations left: the audit head?
        _check_root(batch, [], held)
    for row in _stream(session, _PENDING_ROWS):
        if _leaf(row[1:]) != bytes(row[0]):
            held.changed_record(row[1], " (pending)")
        held.leaves += 1
    if held.changed > NAMED:
        held.problems.append(f"… {held.changed - NAMED} more changed registration(s)")
    return held


def _leaf(values: tuple) -> bytes | None:
    """The leaf of a stored record's values (in ``RECORD_COLUMNS`` order); ``None`` for
    values no registration can hold (a lone surrogate, say), which only an edit can bring."""
    try:
        return leaf_of(record_of(values))
    except ValueError:
        return None


def _check_root(batch: sa.Row, leaves: list[bytes], held: Integrity) -> None:
    held.leaves += len(leaves)
    if batch.audit_seq is not None:
        leaves.append(audit.Head(batch.audit_seq, batch.audit_head).leaf())
    held.roots += 1
    if not leaves:
        held.problems.append(f"batch {batch.id} holds no leaf")
    elif merkle.root_of(merkle.build_levels(leaves)) != bytes(batch.root):
        held.problems.append(f"batch {batch.id}: its stored leaves no longer give its root "
                             "(a leaf, the leaf order, the audit head or the root was changed)")


# --- the chain -----------------------------------------------------------------------

def _anchors(session: Session, chain: ChainClient, found: Findings, settled: bool) -> None:
    """The chain's anchor (``chain.name``): each roll-up's root is its batches' tree, at
    most one transaction per roll-up is confirmed, and each confirmed one is on the
    canonical chain carrying that root."""
    all_batches = session.exec(select(Batch).order_by(Batch.id)).all()
    roots = {batch.id: bytes(batch.root) for batch in all_batches}
    confirmed = session.exec(select(Anchor).where(Anchor.state == AnchorState.CONFIRMED,
                                                  Anchor.name == chain.name)).all()
    per_rollup: dict[int, list[Anchor]] = {}
    for anchor in confirmed:
        per_rollup.setdefault(anchor.rollup_id, []).append(anchor)
    found.counts.update(batches=len(all_batches), confirmed_anchors=len(confirmed))
    expected = _rollup_roots(session, roots, found)
    for rollup_id, mine in per_rollup.items():
        if len(mine) > 1:
            found.problems.append(f"roll-up {rollup_id} ({_batches_of(session, rollup_id)}): "
                                  f"{len(mine)} confirmed anchors")
    for batch in all_batches:
        if settled and batch.state != BatchState.CONFIRMED:
            found.problems.append(f"batch {batch.id} is {batch.state}, not confirmed")
    for anchor in confirmed:
        what = _batches_of(session, anchor.rollup_id)
        inclusion = chain.inclusion(anchor.tx_hash)
        if inclusion is None or inclusion.block_hash != anchor.block_hash:
            found.problems.append(f"{what}: anchor 0x{anchor.tx_hash} is not "
                                  f"in block {anchor.block_number} of the canonical chain")
        _carries_root(chain, anchor, expected[anchor.rollup_id], what, found)
    mined_here = session.scalar(select(sa.func.count()).select_from(Anchor).where(
        Anchor.state.in_((AnchorState.CONFIRMED, AnchorState.FAILED)),
        Anchor.sender == chain.address, Anchor.chain_id == chain.settings.chain_id))
    on_chain = chain.mined_nonce()
    found.counts.update(account_transactions=on_chain)
    if settled and on_chain != mined_here:
        found.problems.append(f"the account has {on_chain} transactions on chain, but "
                              f"{mined_here} anchors were mined")


def _batches_of(session: Session, rollup_id: int) -> str:
    return rollup_label(rollup_id, rollup_batch_ids(session, rollup_id))


def _rollup_roots(session: Session, roots: dict[int, bytes], found: Findings
                  ) -> dict[int, bytes]:
    """Each roll-up's root as its batches' roots give it now (what its anchor must carry).
    A roll-up of several batches must have kept that root, and each batch's stored path
    must fold to it; one of a batch alone is its batch's root, checked on chain."""
    rollups = {rollup.id: rollup for rollup in session.exec(select(Rollup))}
    members: dict[int, list[RollupBatch]] = {}
    for member in session.exec(select(RollupBatch).order_by(RollupBatch.rollup_id,
                                                            RollupBatch.leaf_index)):
        members.setdefault(member.rollup_id, []).append(member)
    expected = {}
    for rollup_id, rows in members.items():
        rollup = rollups[rollup_id]
        expected[rollup_id] = root = merkle.root_of(
            merkle.build_levels([roots[row.batch_id] for row in rows]))
        if len(rows) == 1:
            continue
        if root != bytes(rollup.root):
            found.problems.append(f"roll-up {rollup_id} of {rollup.anchor}: its root is not the "
                                  "tree of its batches' roots")
        for row in rows:
            if fold_proof(roots[row.batch_id], json.loads(row.proof)) != root:
                found.problems.append(f"batch {row.batch_id}: its path to roll-up {rollup_id}"
                                      f" of {rollup.anchor} does not fold to its root")
    renewed, problems = renewal_roots(session)
    found.problems.extend(problems)
    return expected | renewed


def _carries_root(chain: ChainClient, anchor: Anchor, root: bytes, what: str,
                  found: Findings) -> None:
    """The anchor transaction's data is exactly the roll-up's root (a batch's own root, for
    an anchor of each batch), sent by the anchor's account to itself (what a receipt's
    ``anchor-tx`` and ``sender`` steps rely on)."""
    sent = chain.transaction(anchor.tx_hash)
    if sent is None:
        return  # reported above: not in its block
    if sent.data != root:
        found.problems.append(f"{what}: anchor 0x{anchor.tx_hash} carries "
                              f"{sent.data.hex() or 'no data'}, not the batch's root "
                              f"{root.hex()}")
    if sent.sender != anchor.sender or sent.to != anchor.sender:
        found.problems.append(f"{what}: anchor 0x{anchor.tx_hash} was sent "
                              f"by {sent.sender} to {sent.to}, not by {anchor.sender} to "
                              "itself")


def _receipts(session: Session, chain: ChainClient, found: Findings) -> None:
    checked, anchors = 0, {}  # each batch's anchor checked once
    for registration in session.exec(select(Registration).join(LeafSlot,
                                                           LeafSlot.seq == Registration.seq)):
        receipt = receipts.receipt_for(session, registration, notary_of(chain.settings))
        if receipt is None:
            continue
        report = verify.verify_receipt(receipt, rpc_urls=chain.settings.rpc_urls[:1],
                                       anchors=anchors)
        checked += 1
        if report.verdict.state == verify.UNCHECKED:
            found.problems.append(f"the receipt of {registration.id} could not be checked: "
                                  f"{report.verdict.text}")
        elif not report.ok:
            failed = [step.name for step in report.steps if step.ok is False]
            found.problems.append(f"the receipt of {registration.id} fails {', '.join(failed)}")
    found.counts.update(receipts_verified=checked)
