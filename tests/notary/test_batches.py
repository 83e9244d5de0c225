"""Sealing, anchoring and confirming against a real anvil node and real databases."""

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from tests.conftest import ANVIL_ACCOUNTS, insert_registrations
from tests.utils import RECEIPT_NOTARY
from trialnotary import db
from trialnotary.anchor_config import AnchorSpec
from trialnotary.notary import anchoring, batches, merkle, receipts, rollups, trees
from trialnotary.notary.chain import FeeAboveCap, anchor_gas
from trialnotary.notary.errors import SealingRaced
from trialnotary.notary.models import Anchor, Batch, LeafSlot, Registration, TreePage
from trialnotary.notary.states import AnchorState, BatchState
from trialnotary.proof.receipt import fold_proof, level_sizes, record_leaf


def all_registrations(engine):
    with Session(engine) as session:
        return session.exec(select(Registration).order_by(Registration.seq)).all()


def wait_confirmed(engine, chain, anvil, batch_ids):
    for _ in range(10):
        anvil.mine(2)
        done = set(anchoring.confirm_sent(engine, chain))
        batch_ids = set(batch_ids) - done
        if not batch_ids:
            return
    raise AssertionError(f"batches {batch_ids} never confirmed")


def test_pending_registrations_are_sealed_in_order_in_batches_of_max_batch(engine):
    insert_registrations(engine, 5)
    sealed = batches.seal_all(engine, max_batch=2)
    assert [b.leaf_count for b in sealed] == [2, 2, 1]
    rows = all_registrations(engine)
    with Session(engine) as session:
        slots = [receipts.slot_of(session, r) for r in rows]
    assert [(s.batch_id, s.leaf_index) for s in slots] == [
        (sealed[0].id, 0), (sealed[0].id, 1), (sealed[1].id, 0), (sealed[1].id, 1),
        (sealed[2].id, 0)]
    first = [r.leaf for r in rows[:2]]
    assert sealed[0].root == merkle.root_of(merkle.build_levels(first))
    assert batches.seal_all(engine, max_batch=2) == []


def test_states_are_stored_as_their_plain_words(engine):
    """The state enums reach the database as the same words, and rows read back equal them."""
    insert_registrations(engine, 1)
    [batch] = batches.seal_all(engine, max_batch=10)
    [rollup] = rollups.roll_up(engine, AnchorSpec(name="local", kind="evm"))
    with db.write_session(engine) as session:
        session.add(Anchor(name="local", rollup_id=rollup.id, chain_id=1,
                           sender="0x" + "0" * 40, nonce=0, tx_hash="ab" * 32, raw=b"",
                           gas=0, max_fee_per_gas=0, max_priority_fee_per_gas=0))
        session.commit()
    with Session(engine) as session:
        stored = tuple(session.execute(sa.text(
            "SELECT batch.state, anchor.state FROM batch "
            "JOIN rollup_batch ON rollup_batch.batch_id = batch.id "
            "JOIN anchor ON anchor.rollup_id = rollup_batch.rollup_id")).one())
        assert stored == ("sealed", "signed")
        assert all(type(word) is str for word in stored)
        assert session.get(Batch, batch.id).state == BatchState.SEALED
        assert session.exec(select(Anchor)).one().state == AnchorState.SIGNED


def test_nothing_pending_seals_nothing(engine):
    assert batches.seal_all(engine, max_batch=100) == []
    with Session(engine) as session:
        assert session.scalar(select(sa.func.count()).select_from(Batch)) == 0


def test_stored_leaves_are_the_leaves_of_their_records(engine):
    records = insert_registrations(engine, 3)
    for record, row in zip(records, all_registrations(engine), strict=True):
        assert row.record() == record
        assert row.leaf == record_leaf(record)


def test_proofs_read_from_the_stored_levels_fold_to_the_root(engine):
    insert_registrations(engine, 37)
    [batch] = batches.seal_all(engine, max_batch=1000)
    with Session(engine) as session:
        for row in session.exec(select(Registration)).all():
            proof = trees.proof_for(session, batch, receipts.slot_of(session, row).leaf_index)
            assert fold_proof(row.leaf, proof) == batch.root


def test_proofs_of_a_tree_taller_than_the_levels_kept_in_memory(engine):
    """Above ``UPPER_LEVELS_FROM`` siblings come from memory, below it from the pages: both
    halves, cold and warm, and after the pages are lost, fold to the root."""
    count = max(2 ** trees.UPPER_LEVELS_FROM * 3, 2 * merkle.PAGE_NODES) + 5  # 2+ pages
    assert len(level_sizes(count)) > trees.UPPER_LEVELS_FROM + 2
    insert_registrations(engine, count)
    [batch] = batches.seal_all(engine, max_batch=count)
    trees._UPPER_CACHE.clear()
    with Session(engine) as session:
        leaves = {slot.leaf_index: row.leaf for row, slot in session.execute(
            select(Registration, LeafSlot).join(LeafSlot, LeafSlot.seq == Registration.seq))}
        for index in [0, 1, 255, 256, 511, count // 2, count - 2, count - 1] * 2:
            proof = trees.proof_for(session, batch, index)
            assert fold_proof(leaves[index], proof) == batch.root
        assert (batch.id, batch.root) in trees._UPPER_CACHE.keys()
        session.execute(sa.delete(TreePage))
        session.commit()
        assert fold_proof(leaves[300], trees.proof_for(session, batch, 300)) == batch.root


def test_the_levels_kept_in_memory_stay_within_their_byte_budget(engine, monkeypatch):
    count = 2 ** (trees.UPPER_LEVELS_FROM + 2)
    monkeypatch.setattr(trees._UPPER_CACHE, "budget", 1)  # less than any one batch
    trees._UPPER_CACHE.clear()
    for _ in range(3):
        insert_registrations(engine, count)
        [batch] = batches.seal_all(engine, max_batch=count)
        with Session(engine) as session:
            slot = session.exec(select(LeafSlot).where(LeafSlot.batch_id == batch.id)).first()
            row = session.exec(select(Registration).where(Registration.seq == slot.seq)).one()
            proof = trees.proof_for(session, batch, slot.leaf_index)
            assert fold_proof(row.leaf, proof) == batch.root
            assert trees._UPPER_CACHE.keys() == [(batch.id, batch.root)]


def test_the_level_cache_drops_the_least_recently_used_batch_first():
    cache = trees._LevelCache(budget=64)
    for batch_id in (1, 2):
        cache.put((batch_id, b"r"), {4: bytes(32)})
    assert cache.get((1, b"r")) is not None  # batch 1 is now the more recently used
    cache.put((3, b"r"), {4: bytes(32)})
    assert cache.keys() == [(1, b"r"), (3, b"r")] and cache.get((2, b"r")) is None


def test_losing_the_derived_levels_loses_no_proof(engine):
    insert_registrations(engine, 9)
    [batch] = batches.seal_all(engine, max_batch=1000)
    with Session(engine) as session:
        before = [trees.proof_for(session, batch, i) for i in range(9)]
        session.execute(sa.delete(TreePage))
        session.commit()
        after = [trees.proof_for(session, batch, i) for i in range(9)]
        assert after == before
        assert session.scalar(select(sa.func.count()).select_from(TreePage)) > 0


def test_one_batch_is_anchored_by_exactly_one_minimal_transaction(engine, chain, anvil):
    insert_registrations(engine, 4)
    [batch] = batches.seal_all(engine, max_batch=1000)
    nonce_before = chain.pending_nonce()
    [anchor] = anchoring.anchor_sealed(engine, chain)
    assert anchoring.anchor_sealed(engine, chain) == []  # already anchored: nothing more sent
    tx = anvil.rpc("eth_getTransactionByHash", "0x" + anchor.tx_hash)
    assert tx["input"] == "0x" + batch.root.hex()
    assert tx["from"].lower() == tx["to"].lower() == ANVIL_ACCOUNTS[0].lower()
    assert int(tx["value"], 16) == 0 and tx["type"] == "0x2"
    assert int(tx["gas"], 16) == anchor_gas(batch.root)

    wait_confirmed(engine, chain, anvil, [batch.id])
    receipt = anvil.rpc("eth_getTransactionReceipt", "0x" + anchor.tx_hash)
    assert int(receipt["gasUsed"], 16) == anchor_gas(batch.root)
    assert chain.pending_nonce() == nonce_before + 1
    with Session(engine) as session:
        assert session.get(Batch, batch.id).state == "confirmed"
        stored = session.exec(select(Anchor)).one()
        assert (stored.state, stored.block_number) == ("confirmed", int(receipt["blockNumber"], 16))
        row = session.exec(select(Registration)).first()
        issued = receipts.receipt_for(session, row, RECEIPT_NOTARY)
    assert issued["anchors"][0]["sourceId"] == anchor.tx_hash
    assert issued["anchors"][0]["blockHash"] == receipt["blockHash"]
    assert fold_proof(bytes.fromhex(issued["targetHash"]), issued["proof"]) == batch.root


def test_gas_is_the_intrinsic_minimum_for_the_root():
    assert anchor_gas(b"\x01" * 32) == 22_280
    assert anchor_gas(b"\x00" + b"\x01" * 31) == 21_000 + 10 * (1 + 4 * 31)


def test_no_receipt_before_confirmation(engine, chain):
    insert_registrations(engine, 1)
    with Session(engine) as session:
        row = session.exec(select(Registration)).one()
        assert receipts.receipt_for(session, row, RECEIPT_NOTARY) is None
    batches.seal_all(engine, 10)
    anchoring.anchor_sealed(engine, chain)
    with Session(engine) as session:
        row = session.exec(select(Registration)).one()
        assert receipts.receipt_for(session, row, RECEIPT_NOTARY) is None
        assert session.get(Batch, receipts.slot_of(session, row).batch_id).state == "sent"


def test_fees_above_the_cap_postpone_anchoring_and_lose_nothing(settings_env, engine):
    from trialnotary.config import load_settings
    from trialnotary.notary.chain import ChainClient

    poor = ChainClient(load_settings({**settings_env, "TRIALNOTARY_MAX_FEE_GWEI": "0"}))
    insert_registrations(engine, 2)
    batches.seal_all(engine, 10)
    try:
        anchoring.anchor_sealed(engine, poor)
        raise AssertionError("anchoring above the fee cap must be refused")
    except FeeAboveCap as exc:
        assert "TRIALNOTARY_MAX_FEE_GWEI" in str(exc)
    assert anchoring.run_tick(engine, poor, 10).sent == []
    with Session(engine) as session:
        assert session.exec(select(Batch)).one().state == "sealed"
        assert session.scalar(select(sa.func.count()).select_from(Anchor)) == 0


def test_leaf_indexes_go_exactly_to_the_hashed_rows_or_the_seal_is_redone(engine):
    """If the rows given leaf indexes were not exactly those hashed (a registration that
    committed out of order on PostgreSQL), sealing rolls back instead of storing a tree
    that does not match its leaves."""
    insert_registrations(engine, 4)
    with Session(engine) as session:
        seqs = list(session.scalars(select(Registration.seq).order_by(Registration.seq)))
    with pytest.raises(SealingRaced), db.job_lock(engine) as session:
        batch = Batch(root=b"\x00" * 32, leaf_count=3, sealed_at="2026-11-25T00:00:00.000Z")
        session.add(batch)
        session.flush()
        batches._assign_leaves(session, batch.id, [seqs[0], *seqs[2:]])  # one skipped
    with Session(engine) as session:  # rolled back: nothing was assigned
        assert session.scalar(select(sa.func.count()).select_from(Batch)) == 0
        assert batches.pending_count(session) == 4
    [sealed] = batches.seal_all(engine, 100)
    with Session(engine) as session:
        assert batches.root_matches(session, session.get(Batch, sealed.id))
