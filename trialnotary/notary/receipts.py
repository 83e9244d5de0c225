"""Receipts: a confirmed registration's record, leaf, Merkle proof and anchor, in the
receipt format (``proof.receipt``); and the anchors they are built from.
"""

from __future__ import annotations

import collections
import json
import threading
from collections.abc import Iterator

import sqlalchemy as sa
from sqlmodel import Session, select

from trialnotary.notary import merkle
from trialnotary.notary.driver import driver_rows
from trialnotary.notary.models import (
    RECORD_COLUMNS,
    Anchor,
    Batch,
    ChainStatus,
    LeafSlot,
    Registration,
    Renewal,
    RenewalLeaf,
    RenewalRollup,
    Rollup,
    RollupBatch,
    Stamp,
    record_of,
)
from trialnotary.notary.states import AnchorState, BatchState
from trialnotary.notary.trees import proof_for, stored_levels, stored_proof
from trialnotary.proof.facts import TIMESTAMP_TYPE
from trialnotary.proof.receipt import build_receipt, evidence_digest

# What a receipt tells of an EVM anchor, as ``anchor_entry`` takes it: ``Anchor``'s names
# (``evidence`` is kept as JSON text).
ANCHOR_FIELDS = ("tx_hash", "chain_id", "sender", "block_number", "block_hash", "block_time",
                 "evidence")
_CONFIRMED_ROLLUP = sa.literal_column(f"'{BatchState.CONFIRMED}'")
_ANCHOR_CONFIRMED = sa.literal_column(f"'{AnchorState.CONFIRMED}'")
_RB, _R, _A, _T, _CS = (RollupBatch.__table__.c, Rollup.__table__.c, Anchor.__table__.c,
                        Stamp.__table__.c, ChainStatus.__table__.c)
_RL, _RR, _RN = RenewalLeaf.__table__.c, RenewalRollup.__table__.c, Renewal.__table__.c
# A roll-up's confirmed transaction or token, in the order the notary first ran its anchors
# (docs/receipt.md, "Several anchors").
_ATTESTATIONS = (_A.id.is_not(None) | _T.id.is_not(None),)
_ATTESTING_COLUMNS = (*(_A[name] for name in ANCHOR_FIELDS), _T.token, _T.gen_time)


def _attesting(statement):
    return (statement
            .outerjoin(Anchor.__table__, sa.and_(_A.rollup_id == _R.id,
                                                 _A.state == _ANCHOR_CONFIRMED))
            .outerjoin(Stamp.__table__, _T.rollup_id == _R.id)
            .outerjoin(ChainStatus.__table__, _CS.anchor == _R.anchor))


# Every confirmed anchor of one batch: its roll-up path, its transaction or token, and the
# renewal of its transaction (when its chain is retired).
_BATCH_ANCHORS = (
    _attesting(sa.select(_RB.anchor, _RB.proof, _R.root, *_ATTESTING_COLUMNS,
                         _RL.renewal_id, _RL.proof.label("renewal_proof"))
               .join_from(RollupBatch.__table__, Rollup.__table__, _R.id == _RB.rollup_id))
    .outerjoin(RenewalLeaf.__table__, _RL.anchor_id == _A.id)
    .where(_RB.batch_id == sa.bindparam("batch"), _R.state == _CONFIRMED_ROLLUP,
           *_ATTESTATIONS)
    .order_by(_CS.id, _RB.anchor))
_AnchorRow = collections.namedtuple("_AnchorRow",
                                    [c.name for c in _BATCH_ANCHORS.selected_columns])
# Every confirmed anchor of one renewal's root (roll-ups of no batch: no path).
_RENEWAL_ANCHORS = (
    _attesting(sa.select(_R.anchor, _RN.root, *_ATTESTING_COLUMNS)
               .join_from(RenewalRollup.__table__, Rollup.__table__, _R.id == _RR.rollup_id)
               .join(Renewal.__table__, _RN.id == _RR.renewal_id))
    .where(_RR.renewal_id == sa.bindparam("renewal"), _R.state == _CONFIRMED_ROLLUP,
           *_ATTESTATIONS)
    .order_by(_CS.id, _R.anchor))
_RenewalRow = collections.namedtuple("_RenewalRow",
                                     [c.name for c in _RENEWAL_ANCHORS.selected_columns])


def batch_anchors(connection: sa.Connection, batch_id: int) -> list[dict]:
    """The confirmed anchors of a batch, as ``proof.receipt.anchor_entry`` takes them; a
    transaction of a retired chain with its renewal once one of the renewal's anchors is
    confirmed. (A batch on no retired chain costs one read.)"""
    rows = [_AnchorRow(*row) for row in driver_rows(connection, _BATCH_ANCHORS,
                                                    {"batch": batch_id})]
    renewals = {renewal_id: _renewal_anchors(connection, renewal_id)
                for renewal_id in {row.renewal_id for row in rows} - {None}}
    return [_anchor(row, renewals.get(row.renewal_id)) for row in rows]


def _renewal_anchors(connection: sa.Connection, renewal_id: int) -> tuple[bytes, list[dict]]:
    rows = [_RenewalRow(*row) for row in driver_rows(connection, _RENEWAL_ANCHORS,
                                                     {"renewal": renewal_id})]
    return (bytes(rows[0].root) if rows else b""), [_anchor(row) for row in rows]


def _anchor(row, renewal: tuple[bytes, list[dict]] | None = None) -> dict:
    rollup = {"root": bytes(row.root).hex(), "proof": json.loads(getattr(row, "proof", "[]"))}
    if row.token is not None:
        return {"type": TIMESTAMP_TYPE, "name": row.anchor, "token": bytes(row.token),
                "gen_time": row.gen_time, "rollup": rollup}
    fields = {name: getattr(row, name) for name in ANCHOR_FIELDS}
    if fields["evidence"] is not None:
        fields["evidence"] = json.loads(fields["evidence"])
    entry = {"name": row.anchor, **fields, "rollup": rollup}
    if renewal is not None and renewal[1]:
        root, anchors = renewal
        entry["renewal"] = {
            "evidence_digest": evidence_digest(
                chain_id=row.chain_id, block_number=row.block_number,
                block_hash=row.block_hash, source_id=row.tx_hash,
                root=bytes(row.root)).hex(),
            "proof": json.loads(row.renewal_proof), "root": root.hex(), "anchors": anchors}
    return entry


class _SeenAnchors:
    """The anchors of the batches whose receipts this process served lately, each kept
    with the batch's ``anchors_version`` (raised whenever they may have changed), so that a
    batch's receipts read them once, not once per download. The kept entries are shared by
    the receipts built from them, which are only ever read."""

    def __init__(self, size: int = 256):
        self.size, self.kept, self.lock = size, collections.OrderedDict(), threading.Lock()

    def get(self, connection: sa.Connection, batch_id: int, version: int) -> list[dict]:
        key = (str(connection.engine.url), batch_id)
        with self.lock:
            found = self.kept.get(key)
            if found is not None and found[0] == version:
                self.kept.move_to_end(key)
                return found[1]
        anchors = batch_anchors(connection, batch_id)
        with self.lock:
            self.kept[key] = (version, anchors)
            self.kept.move_to_end(key)
            while len(self.kept) > self.size:
                self.kept.popitem(last=False)
        return anchors


_BATCH_ANCHORS_SEEN = _SeenAnchors()


def confirmed_anchor(session: Session, batch_id: int) -> Anchor | None:
    """A confirmed EVM transaction attesting this batch (its own, or its roll-up's)."""
    return session.exec(select(Anchor).join(RollupBatch, RollupBatch.rollup_id == Anchor.rollup_id)
                        .where(RollupBatch.batch_id == batch_id,
                               Anchor.state == AnchorState.CONFIRMED)
                        .order_by(Anchor.id)).first()


def latest_anchors(session: Session, batch_ids: set[int]) -> dict[int, Anchor]:
    """The newest EVM transaction of each batch (re-sent or replaced ones come later)."""
    if not batch_ids:
        return {}
    latest = {}
    for batch_id, anchor in session.exec(
            select(RollupBatch.batch_id, Anchor)
            .join(Anchor, Anchor.rollup_id == RollupBatch.rollup_id)
            .where(RollupBatch.batch_id.in_(batch_ids)).order_by(Anchor.id)):
        latest[batch_id] = anchor
    return latest


def anchor_view(anchor: Anchor | None) -> dict | None:
    """The JSON shape of an anchor in the API."""
    if anchor is None:
        return None
    return {
        "state": anchor.state, "txHash": anchor.tx_hash, "chainId": anchor.chain_id,
        "sender": anchor.sender, "nonce": anchor.nonce, "blockNumber": anchor.block_number,
        "blockHash": anchor.block_hash, "blockTime": anchor.block_time,
    }


def slot_of(session: Session, registration: Registration) -> LeafSlot | None:
    """Where a registration was sealed, or ``None`` while it is pending."""
    return session.get(LeafSlot, registration.seq)


def receipt_for(session: Session, registration: Registration, notary: dict) -> dict | None:
    """The receipt of a registration, or ``None`` until one of its anchors is confirmed.
    ``notary`` is the receipt's ``{"name", "url"}`` (``identity.notary_of``)."""
    slot = slot_of(session, registration)
    if slot is None:
        return None
    batch = session.get(Batch, slot.batch_id)
    if batch is None or batch.state != BatchState.CONFIRMED:
        return None
    anchors = batch_anchors(session.connection(), batch.id)
    if not anchors:
        return None
    return _receipt(registration, slot, batch, anchors,
                    proof_for(session, batch, slot.leaf_index), notary)


# Inlined, not bound: the download path runs this statement straight on the driver.
_BATCH_CONFIRMED = sa.literal_column(f"'{BatchState.CONFIRMED}'")
_S, _L, _B = (Registration.__table__.c, LeafSlot.__table__.c, Batch.__table__.c)
_CONFIRMED = (
    sa.select(*(_S[column] for column in RECORD_COLUMNS), _S.leaf, _L.leaf_index,
              _L.batch_id, _B.leaf_count, _B.sealed_at, _B.root, _B.anchors_version)
    .join_from(Registration.__table__, LeafSlot.__table__, _L.seq == _S.seq)
    .join(Batch.__table__, _B.id == _L.batch_id)
    .where(_S.id == sa.bindparam("id"), _B.state == _BATCH_CONFIRMED))


_ConfirmedRow = collections.namedtuple("_ConfirmedRow",
                                       [c.name for c in _CONFIRMED.selected_columns])


def confirmed_receipt(connection: sa.Connection, registration_id: str,
                      notary: dict) -> dict | None:
    """The receipt of a confirmed registration in three indexed reads and no ORM objects
    (the download path: several times cheaper than :func:`receipt_for`); ``None`` when it
    is not confirmed, or its stored tree needs rebuilding (:func:`receipt_for` does that)."""
    rows = driver_rows(connection, _CONFIRMED, {"id": registration_id})
    if not rows:
        return None
    row = _ConfirmedRow(*rows[0])
    anchors = _BATCH_ANCHORS_SEEN.get(connection, row.batch_id, row.anchors_version)
    proof = stored_proof(connection, row.batch_id, row.leaf_index, row.leaf_count, row.root)
    if proof is None or not anchors:
        return None
    record = record_of(row[:len(RECORD_COLUMNS)])
    return _assemble(record, row.leaf, row.root, proof, anchors,
                     batch_id=row.batch_id, leaf_index=row.leaf_index,
                     leaf_count=row.leaf_count, sealed_at=row.sealed_at, notary=notary)


def receipts_of(session: Session, sealed: list[tuple[Registration, LeafSlot]],
                notary: dict) -> Iterator[tuple[Registration, dict]]:
    """Receipts of many sealed registrations (a trial's bundle): each batch's anchors and
    stored tree are read once, not once per receipt. Unconfirmed ones are left out."""
    by_batch: dict[int, list[tuple[Registration, LeafSlot]]] = {}
    for registration, slot in sealed:
        by_batch.setdefault(slot.batch_id, []).append((registration, slot))
    for batch_id, members in by_batch.items():
        batch = session.get(Batch, batch_id)
        anchors = batch_anchors(session.connection(), batch_id) \
            if batch.state == BatchState.CONFIRMED else []
        if not anchors:
            continue
        levels = stored_levels(session, batch)
        for registration, slot in members:
            proof = merkle.proof_from_levels(levels, slot.leaf_index)
            yield registration, _receipt(registration, slot, batch, anchors, proof, notary)


def _receipt(registration: Registration, slot: LeafSlot, batch: Batch, anchors: list[dict],
             proof: list[dict], notary: dict) -> dict:
    return _assemble(registration.record(), registration.leaf, batch.root, proof, anchors,
                     batch_id=batch.id, leaf_index=slot.leaf_index,
                     leaf_count=batch.leaf_count, sealed_at=batch.sealed_at, notary=notary)


def _assemble(record: dict, leaf: bytes, root: bytes, proof: list[dict], anchors: list[dict],
              *, batch_id: int, leaf_index: int, leaf_count: int, sealed_at: str,
              notary: dict) -> dict:
    """The receipt (version 2), whether its parts come as ORM objects or as driver rows."""
    return build_receipt(
        record=record, leaf=bytes(leaf), root=bytes(root), proof=proof, anchors=anchors,
        batch={"id": batch_id, "leaf_index": leaf_index, "leaf_count": leaf_count,
               "sealed_at": sealed_at}, notary=notary)
