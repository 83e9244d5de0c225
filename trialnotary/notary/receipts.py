"""Receipts: a confirmed registration's record, leaf, Merkle proof and anchor, in the
receipt format (``proof.receipt``); and the anchors they are built from.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterator

import sqlalchemy as sa
from sqlmodel import Session, select

from trialnotary.notary import merkle
from trialnotary.notary.driver import driver_rows
from trialnotary.notary.identity import anchor_names, default_anchor_name
from trialnotary.notary.models import (
    RECORD_COLUMNS,
    Anchor,
    Batch,
    LeafSlot,
    NotaryAddress,
    Registration,
)
from trialnotary.notary.states import AnchorState, BatchState
from trialnotary.notary.trees import proof_for, stored_levels, stored_proof
from trialnotary.proof.receipt import RECORD_KEYS, build_receipt

# What a receipt tells of its anchor, as ``build_receipt`` takes it: ``Anchor``'s names
# (``evidence`` is kept as JSON text).
ANCHOR_FIELDS = ("tx_hash", "chain_id", "sender", "block_number", "block_hash", "block_time",
                 "evidence")


def confirmed_anchor(session: Session, batch_id: int) -> Anchor | None:
    return session.exec(select(Anchor).where(Anchor.batch_id == batch_id,
                                             Anchor.state == AnchorState.CONFIRMED)).first()


def latest_anchors(session: Session, batch_ids: set[int]) -> dict[int, Anchor]:
    """The newest anchor of each batch (re-sent or replaced ones come later)."""
    if not batch_ids:
        return {}
    latest = {}
    for anchor in session.exec(select(Anchor).where(Anchor.batch_id.in_(batch_ids))
                               .order_by(Anchor.id)):
        latest[anchor.batch_id] = anchor
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
    """The receipt of a registration, or ``None`` until its anchor is confirmed.
    ``notary`` is the receipt's ``{"name", "url"}`` (``identity.notary_of``)."""
    slot = slot_of(session, registration)
    if slot is None:
        return None
    batch = session.get(Batch, slot.batch_id)
    if batch is None or batch.state != BatchState.CONFIRMED:
        return None
    anchor = confirmed_anchor(session, batch.id)
    if anchor is None:
        return None
    return _receipt(registration, slot, batch, anchor,
                    proof_for(session, batch, slot.leaf_index), notary,
                    _anchor_name(anchor_names(session), anchor))


# Inlined, not bound: the download path runs this statement straight on the driver.
_BATCH_CONFIRMED = sa.literal_column(f"'{BatchState.CONFIRMED}'")
_ANCHOR_CONFIRMED = sa.literal_column(f"'{AnchorState.CONFIRMED}'")
_S, _L, _B, _A, _N = (Registration.__table__.c, LeafSlot.__table__.c, Batch.__table__.c,
                      Anchor.__table__.c, NotaryAddress.__table__.c)
_CONFIRMED = (
    sa.select(*(_S[column] for column in RECORD_COLUMNS), _S.leaf, _L.leaf_index,
              _L.batch_id, _B.leaf_count, _B.sealed_at, _B.root,
              *(_A[name] for name in ANCHOR_FIELDS), _N.anchor.label("anchor_name"))
    .join_from(Registration.__table__, LeafSlot.__table__, _L.seq == _S.seq)
    .join(Batch.__table__, _B.id == _L.batch_id)
    .join(Anchor.__table__, _A.batch_id == _B.id)
    .outerjoin(NotaryAddress.__table__, sa.and_(_N.chain_id == _A.chain_id,
                                                _N.address == _A.sender))
    .where(_S.id == sa.bindparam("id"), _B.state == _BATCH_CONFIRMED,
           _A.state == _ANCHOR_CONFIRMED))


_ConfirmedRow = collections.namedtuple("_ConfirmedRow",
                                       [c.name for c in _CONFIRMED.selected_columns])


def confirmed_receipt(connection: sa.Connection, registration_id: str,
                      notary: dict) -> dict | None:
    """The receipt of a confirmed registration in two indexed reads and no ORM objects
    (the download path: several times cheaper than :func:`receipt_for`); ``None`` when it
    is not confirmed, or its stored tree needs rebuilding (:func:`receipt_for` does that)."""
    rows = driver_rows(connection, _CONFIRMED, {"id": registration_id})
    if not rows:
        return None
    row = _ConfirmedRow(*rows[0])
    proof = stored_proof(connection, row.batch_id, row.leaf_index, row.leaf_count, row.root)
    if proof is None:
        return None
    record = dict(zip(RECORD_KEYS, row[:len(RECORD_KEYS)], strict=True))
    return _assemble(record, row.leaf, row.root, proof, row,
                     batch_id=row.batch_id, leaf_index=row.leaf_index,
                     leaf_count=row.leaf_count, sealed_at=row.sealed_at, notary=notary,
                     anchor_name=row.anchor_name or default_anchor_name(row.chain_id))


def receipts_of(session: Session, sealed: list[tuple[Registration, LeafSlot]],
                notary: dict) -> Iterator[tuple[Registration, dict]]:
    """Receipts of many sealed registrations (a trial's bundle): each batch's anchor and
    stored tree are read once, not once per receipt. Unconfirmed ones are left out."""
    by_batch: dict[int, list[tuple[Registration, LeafSlot]]] = {}
    names = anchor_names(session)
    for registration, slot in sealed:
        by_batch.setdefault(slot.batch_id, []).append((registration, slot))
    for batch_id, members in by_batch.items():
        batch = session.get(Batch, batch_id)
        anchor = confirmed_anchor(session, batch_id) if batch.state == BatchState.CONFIRMED \
            else None
        if anchor is None:
            continue
        levels = stored_levels(session, batch)
        for registration, slot in members:
            proof = merkle.proof_from_levels(levels, slot.leaf_index)
            yield registration, _receipt(registration, slot, batch, anchor, proof, notary,
                                         _anchor_name(names, anchor))



def _anchor_name(names: dict[tuple[int, str], str], anchor: Anchor) -> str:
    return names.get((anchor.chain_id, anchor.sender)) or default_anchor_name(anchor.chain_id)


def _receipt(registration: Registration, slot: LeafSlot, batch: Batch, anchor: Anchor,
             proof: list[dict], notary: dict, anchor_name: str) -> dict:
    return _assemble(registration.record(), registration.leaf, batch.root, proof, anchor,
                     batch_id=batch.id, leaf_index=slot.leaf_index,
                     leaf_count=batch.leaf_count, sealed_at=batch.sealed_at, notary=notary,
                     anchor_name=anchor_name)


def _assemble(record: dict, leaf: bytes, root: bytes, proof: list[dict], anchor, *,
              batch_id: int, leaf_index: int, leaf_count: int, sealed_at: str,
              notary: dict, anchor_name: str) -> dict:
    """The receipt (version 2), whether its parts come as ORM objects or as one driver row:
    ``anchor`` has the attributes ``ANCHOR_FIELDS`` names."""
    fields = {name: getattr(anchor, name) for name in ANCHOR_FIELDS}
    if fields["evidence"] is not None:
        fields["evidence"] = json.loads(fields["evidence"])
    return build_receipt(
        record=record, leaf=bytes(leaf), root=bytes(root), proof=proof,
        anchor={"name": anchor_name, **fields},
        batch={"id": batch_id, "leaf_index": leaf_index, "leaf_count": leaf_count,
               "sealed_at": sealed_at}, notary=notary)
