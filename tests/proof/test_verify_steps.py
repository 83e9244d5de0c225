"""The verifier's steps against real receipts anchored on real anvil nodes: each failure at
its own step, several nodes, plain Chainpoint receipts, the file's size."""

from __future__ import annotations

import copy
import hashlib
import json
import os
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import Anvil, free_port
from tests.proof.anchored import (
    NOTARY,
    OTHER,
    REVERTS,
    anchor_of,
    assert_fails_only,
    chainpoint,
    failed,
    make_batch,
    pinned_identity,
    send,
    verify,
    with_anchor,
    write,
)
from tests.proof.vectors import load_vectors
from trialnotary.proof.facts import CHAIN_STEPS, EXIT_UNCHECKED, OFFLINE_STEPS, ORIGIN_STEPS
from trialnotary.proof.verify import main, verify_receipt

STEPS = OFFLINE_STEPS + CHAIN_STEPS  # a receipt without evidence (evidence: test_evidence.py)
#: The steps shown when no identity is pinned (``notary`` applies only with one).
SHOWN = STEPS
PINNED = STEPS + ORIGIN_STEPS

# --- good receipts -------------------------------------------------------------------

def test_good_receipts_pass_every_step(batch):
    for receipt, path in zip(batch.receipts, batch.files, strict=True):
        report = verify(batch.node, receipt, file_path=path, notary=pinned_identity())
        assert [step.name for step in report.steps] == list(PINNED)
        assert all(step.ok is True for step in report.steps), report.steps
        assert report.ok
        assert report.proven_time == receipt["anchors"][0]["blockTime"]
        assert report.nodes[0].answered and report.nodes[0].chain_id == 31337
        unpinned = verify(batch.node, receipt, file_path=path)
        assert [step.name for step in unpinned.steps] == list(SHOWN)


def test_without_a_file_the_file_step_is_skipped(batch):
    report = verify(batch.node, batch.receipts[0])
    assert report.step("file-hash").ok is None
    assert report.ok


# --- the test vectors ----------------------------------------------------------------

def offline(receipt: dict):
    """Verify with no node at all: the chain steps fail, the others stand on their own."""
    return verify_receipt(receipt, rpc_urls=[])


def vector_receipt(target: str, root: str, proof: list, record: dict | None = None,
                   position: tuple[int, int] = (0, 1)) -> dict:
    receipt = chainpoint(target, root, proof, sourceId="ab" * 32, chain="ethereumLocal",
                         chainId=31337, sender=NOTARY, blockNumber=1, blockHash="0x" + "cd" * 32,
                         blockTime="2026-11-23T19:00:12Z")
    if record is not None:
        index, count = position
        receipt["trialnotary"] = {"receiptVersion": 1, "record": record,
                                  "batch": {"leafIndex": index, "leafCount": count}}
    return receipt


def test_vector_trees_fold_to_their_roots():
    vectors = load_vectors()
    for tree in vectors["trees"]:
        for leaf, proof in zip(tree["leaves"], tree["proofs"], strict=True):
            report = offline(vector_receipt(leaf, tree["root"], proof))
            assert report.step("merkle-path").ok is True, (tree["root"], leaf)
            if proof:
                flipped = [{("left" if "right" in s else "right"): v for s, v in step.items()}
                           for step in proof]
                bad = offline(vector_receipt(leaf, tree["root"], flipped))
                assert bad.step("merkle-path").ok is False


def test_vector_records_give_their_leaves():
    for vector in load_vectors()["records"]:
        report = offline(vector_receipt(vector["leaf"], vector["leaf"], [], vector["record"]))
        assert report.step("leaf").ok is True
        assert report.step("merkle-path").ok is True
        assert report.step("chain").ok is None and not report.ok
        assert "no chain node" in report.step("chain").detail
        assert report.verdict.state == "unchecked"


# --- each failure at its own step ----------------------------------------------------

def test_one_byte_changed_in_the_file_fails_only_file_hash(batch, tmp_path):
    changed = tmp_path / batch.files[0].name
    data = bytearray(batch.files[0].read_bytes())
    data[500] ^= 1
    changed.write_bytes(bytes(data))
    report = verify(batch.node, batch.receipts[0], file_path=changed)
    assert_fails_only(report, "file-hash")
    assert "not record.sha256" in report.step("file-hash").detail


def test_an_edited_record_fails_only_leaf(batch):
    receipt = copy.deepcopy(batch.receipts[0])
    receipt["trialnotary"]["record"]["dataset"] = "DS0 (corrected)"
    report = verify(batch.node, receipt, file_path=batch.files[0])
    assert_fails_only(report, "leaf")
    assert "not targetHash" in report.step("leaf").detail


@pytest.mark.parametrize(("key", "value"), [("sizeBytes", "9007199254740993"),
                                            ("dataset", '"\\ud800"')])
def test_a_record_without_canonical_form_fails_leaf(batch, tmp_path, capsys, key, value):
    """Values RFC 8785 cannot hold (an integer beyond 2^53, a lone surrogate)."""
    text = json.dumps(batch.receipts[0]).replace(
        f'"{key}": {json.dumps(batch.receipts[0]["trialnotary"]["record"][key])}',
        f'"{key}": {value}')
    assert value in text
    path = tmp_path / "r.json"
    path.write_text(text)
    assert main(path, rpc_urls=[batch.node.url]) == 1
    leaf = next(line for line in capsys.readouterr().out.splitlines() if line[2:6] == "leaf")
    assert leaf.startswith("✗") and "has no canonical form" in leaf


def test_a_swapped_proof_step_fails_only_merkle_path(batch):
    receipt = copy.deepcopy(batch.receipts[0])
    assert len(receipt["proof"]) >= 2
    receipt["proof"][0], receipt["proof"][1] = receipt["proof"][1], receipt["proof"][0]
    assert_fails_only(verify(batch.node, receipt, file_path=batch.files[0]), "merkle-path")


def test_a_wrong_root_fails_merkle_path(batch):
    receipt = copy.deepcopy(batch.receipts[3])
    receipt["merkleRoot"] = hashlib.sha256(b"another root").hexdigest()
    report = verify(batch.node, receipt, file_path=batch.files[3])
    assert_fails_only(report, "merkle-path", "anchor-tx")
    assert "folding the proof gives" in report.step("merkle-path").detail


def test_a_transaction_with_other_data_fails_anchor_tx(batch):
    tx_hash = send(batch.node, NOTARY, "0x" + batch.root.hex() + "00")
    receipt = copy.deepcopy(batch.receipts[0])
    receipt["anchors"][0].update(with_anchor(anchor_of(batch.node, tx_hash, NOTARY)))
    report = verify(batch.node, receipt, file_path=batch.files[0])
    assert_fails_only(report, "anchor-tx")
    assert "its input is 33 bytes" in report.step("anchor-tx").detail


def test_a_failed_transaction_fails_anchor_tx(batch):
    reverter = "0x" + os.urandom(20).hex()
    batch.node.rpc("anvil_setCode", reverter, REVERTS)
    tx_hash = send(batch.node, OTHER, "0x" + batch.root.hex(), to=reverter)
    assert batch.node.rpc("eth_getTransactionReceipt", "0x" + tx_hash)["status"] == "0x0"
    receipt = copy.deepcopy(batch.receipts[1])
    receipt["anchors"][0].update(with_anchor(anchor_of(batch.node, tx_hash, OTHER)))
    report = verify(batch.node, receipt)
    assert_fails_only(report, "anchor-tx")
    assert "failed (receipt status 0x0)" in report.step("anchor-tx").detail


def test_an_unknown_transaction_fails_anchor_tx_and_skips_what_depends_on_it(batch):
    receipt = copy.deepcopy(batch.receipts[0])
    receipt["anchors"][0]["sourceId"] = "ee" * 32
    report = verify(batch.node, receipt)
    assert failed(report) == {"anchor-tx"}
    assert "not known to the node" in report.step("anchor-tx").detail
    assert [report.step(n).ok for n in ("sender", "block", "confirmations")] == [None] * 3
    assert not report.ok


def test_a_pending_transaction_fails_anchor_tx(private_anvil, tmp_path):
    mined = make_batch(private_anvil, tmp_path, count=2)
    private_anvil.rpc("evm_setAutomine", False)
    pending = private_anvil.rpc("eth_sendTransaction", {
        "from": NOTARY, "to": NOTARY, "data": "0x" + mined.root.hex(), "value": "0x0"})
    receipt = copy.deepcopy(mined.receipts[0])
    receipt["anchors"][0]["sourceId"] = pending[2:]
    report = verify(private_anvil, receipt)
    assert failed(report) == {"anchor-tx"}
    assert "it is not mined yet" in report.step("anchor-tx").detail
    assert report.step("sender").ok is True
    assert report.step("block").ok is None and report.step("confirmations").ok is None


def test_another_sender_fails_only_sender(batch):
    receipt = copy.deepcopy(batch.receipts[0])
    receipt["anchors"][0]["sender"] = OTHER
    report = verify(batch.node, receipt)
    assert_fails_only(report, "sender")
    assert OTHER in report.step("sender").detail


def test_a_pinned_sender(batch):
    good = verify(batch.node, batch.receipts[0], expect_sender=NOTARY.lower())
    assert good.ok and "expected sender" in good.step("sender").detail
    report = verify(batch.node, batch.receipts[0], expect_sender=OTHER)
    assert_fails_only(report, "sender")
    assert f"the expected sender is {OTHER}" in report.step("sender").detail


@pytest.mark.parametrize("field, value", [
    ("blockTime", lambda t: (datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ") + timedelta(seconds=1))
     .strftime("%Y-%m-%dT%H:%M:%SZ")),
    ("blockNumber", lambda n: n - 1),
    ("blockHash", lambda h: "0x" + "11" * 32),
])
def test_wrong_block_details_fail_only_block(batch, field, value):
    receipt = copy.deepcopy(batch.receipts[0])
    receipt["anchors"][0][field] = value(receipt["anchors"][0][field])
    report = verify(batch.node, receipt)
    assert_fails_only(report, "block")


def test_another_real_block_fails_block(batch):
    """Number, hash and time of a genuine block, but not the one holding the transaction."""
    receipt = copy.deepcopy(batch.receipts[0])
    anchor = receipt["anchors"][0]
    before = batch.node.rpc("eth_getBlockByNumber", hex(anchor["blockNumber"] - 1), False)
    anchor.update(blockNumber=anchor["blockNumber"] - 1, blockHash=before["hash"],
                  blockTime=datetime.fromtimestamp(int(before["timestamp"], 16), UTC)
                  .strftime("%Y-%m-%dT%H:%M:%SZ"))
    report = verify(batch.node, receipt)
    assert_fails_only(report, "block")
    assert f"the transaction is in block {anchor['blockNumber'] + 1}" in report.step("block").detail


def test_too_few_confirmations_fail_only_confirmations(batch):
    report = verify(batch.node, batch.receipts[0], confirmations=10**6)
    assert_fails_only(report, "confirmations")
    assert "1000000 required" in report.step("confirmations").detail


def test_confirmations_count_the_block_itself(private_anvil, tmp_path):
    mined = make_batch(private_anvil, tmp_path, count=2)  # anchor block + 2 more
    assert verify(private_anvil, mined.receipts[0], confirmations=3).ok
    assert_fails_only(verify(private_anvil, mined.receipts[0], confirmations="4"),
                      "confirmations")


def test_finalized(private_anvil, tmp_path):
    mined = make_batch(private_anvil, tmp_path, count=2)
    report = verify(private_anvil, mined.receipts[1], confirmations="finalized")
    assert_fails_only(report, "confirmations")
    assert "not finalized yet" in report.step("confirmations").detail
    private_anvil.mine(70)  # anvil finalizes head - 64
    assert verify(private_anvil, mined.receipts[1], confirmations="finalized").ok


@pytest.mark.parametrize(("chain_id", "required"), [(11155111, "finalized"), (560048, "finalized"),
                                                   (1, "finalized"), (31337, 1), (424242, 1)])
def test_the_receipts_chain_decides_the_confirmations_required(chain_id, required, tmp_path):
    """Unless told, public chains need a finalized block and any other chain one block; the
    JSON answer gives the required and the actual confirmations apart."""
    node = Anvil(block_time=None, chain_id=chain_id)
    try:
        mined = make_batch(node, tmp_path, count=1)
        report = verify(node, mined.receipts[0])
        assert report.confirmations == required
        answer = report.to_json()["confirmations"]
        assert answer == {"required": required, "actual": 3}  # its block and the 2 mined after
        if required == "finalized":
            assert_fails_only(report, "confirmations")
            assert "not finalized yet" in report.step("confirmations").detail
            node.mine(70)  # anvil finalizes head - 64
            assert verify(node, mined.receipts[0]).ok
        else:
            assert report.ok and report.step("confirmations").detail == \
                "3 confirmations, 1 required"
        told = verify(node, mined.receipts[0], confirmations=4)  # whatever the chain
        assert told.confirmations == 4 and "4 required" in told.step("confirmations").detail
    finally:
        node.stop()


def test_a_reorganised_block_fails_only_block(private_anvil, tmp_path):
    """The anchor transaction survives a reorg, re-mined in a new block of the same height:
    the receipt's blockHash is no longer on the canonical chain."""
    mined = make_batch(private_anvil, tmp_path, count=3)
    anchor = mined.receipts[0]["anchors"][0]
    tx = private_anvil.rpc("eth_getTransactionByHash", "0x" + anchor["sourceId"])
    resend = {key: tx[key] for key in ("from", "to", "input", "value", "nonce", "gas",
                                       "maxFeePerGas", "maxPriorityFeePerGas", "type",
                                       "chainId", "accessList")}
    head = int(private_anvil.rpc("eth_blockNumber"), 16)
    private_anvil.rpc("anvil_reorg", head - anchor["blockNumber"] + 1, [[resend, 0]])
    again = private_anvil.rpc("eth_getTransactionReceipt", "0x" + anchor["sourceId"])
    assert again is not None and again["blockHash"] != anchor["blockHash"]

    report = verify(private_anvil, mined.receipts[0], file_path=mined.files[0])
    assert_fails_only(report, "block")
    assert "on the node's canonical chain is" in report.step("block").detail


def test_a_node_on_another_chain_fails_chain(batch):
    other = Anvil(chain_id=999, block_time=None)
    try:
        report = verify(other, batch.receipts[0])
    finally:
        other.stop()
    assert failed(report) == {"chain"}
    assert "chain 999, not the anchor's chain 31337" in report.step("chain").detail
    for name in ("anchor-tx", "sender", "block", "confirmations"):
        assert report.step(name).ok is None
    assert not report.ok


# --- several nodes -------------------------------------------------------------------

def test_an_unreachable_node_is_reported_but_does_not_fail(batch):
    dead = f"http://127.0.0.1:{free_port()}"
    report = verify_receipt(batch.receipts[0], rpc_urls=[dead, batch.node.url])
    assert report.ok, report.steps
    notes = {note.url: note for note in report.nodes}
    assert not notes[dead].answered and "refused" in notes[dead].detail.lower()
    assert notes[batch.node.url].answered


def test_no_node_answering_checks_nothing_on_chain_and_fails_nothing(batch, tmp_path,
                                                                    capsys):
    """A third state: the receipt is neither confirmed nor refuted (exit 4)."""
    dead = f"http://127.0.0.1:{free_port()}"
    report = verify_receipt(batch.receipts[0], rpc_urls=[dead])
    assert failed(report) == set() and not report.ok and report.proven_time is None
    for name in ("chain", "anchor-tx", "sender", "block", "confirmations"):
        assert report.step(name).ok is None and report.step(name).detail == "no node answered"
    assert report.verdict.state == "unchecked"
    assert main(write(tmp_path, batch.receipts[0]), rpc_urls=[dead],
                expect_sender=NOTARY) == EXIT_UNCHECKED
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Could not check the anchor: no node answered."
    assert out[-1].startswith("NOT CHECKED")
    assert not any(line.startswith("✗") for line in out)


def test_nodes_that_disagree_fail(batch):
    other = Anvil(chain_id=999, block_time=None)
    try:
        report = verify_receipt(batch.receipts[0], rpc_urls=[batch.node.url, other.url])
    finally:
        other.stop()
    chain = report.step("chain")
    assert chain.ok is False and chain.detail.startswith("nodes disagree")
    assert batch.node.url in chain.detail and other.url in chain.detail
    assert not report.ok


# --- plain Chainpoint v2 -------------------------------------------------------------

def test_a_plain_chainpoint_receipt_verifies_from_merkle_path_on(anvil, plain_batch):
    files, receipts = plain_batch
    for path, receipt in zip(files, receipts, strict=True):
        report = verify_receipt(receipt, file_path=path, rpc_urls=[anvil.url])
        assert report.step("leaf").ok is None
        assert all(report.step(n).ok is True for n in SHOWN if n != "leaf"), report.steps
        assert report.ok


def test_a_blockcerts_shaped_anchor_is_checked_against_what_the_node_says(anvil, plain_batch):
    """An ETHData anchor with only ``sourceId``: the node's answers stand."""
    files, receipts = plain_batch
    receipt = copy.deepcopy(receipts[0])
    receipt["anchors"] = [{"type": "ETHData", "sourceId": receipt["anchors"][0]["sourceId"]}]
    report = verify_receipt(receipt, file_path=files[0], rpc_urls=[anvil.url])
    assert report.ok, report.steps
    assert "names no chain id" in report.step("chain").detail
    assert report.proven_time is not None
    receipt["anchors"][0]["chain"] = "ethereumSepolia"
    assert failed(verify_receipt(receipt, rpc_urls=[anvil.url])) == {"chain"}


def test_a_plain_receipt_compares_the_file_with_the_target_hash(anvil, plain_batch):
    files, receipts = plain_batch
    report = verify_receipt(receipts[0], file_path=files[1], rpc_urls=[anvil.url])
    assert_fails_only(report, "file-hash", skipped=("leaf",))
    assert "not targetHash" in report.step("file-hash").detail


# --- the file's size -----------------------------------------------------------------

def test_the_size_is_compared_when_the_record_has_one(batch, misreported, tmp_path):
    good = verify(batch.node, batch.receipts[0], file_path=batch.files[0])
    size = batch.files[0].stat().st_size
    assert good.ok and f"its {size} bytes match record.sizeBytes" in \
        good.step("file-hash").detail

    report = verify(misreported.node, misreported.receipts[0], file_path=misreported.files[0])
    assert_fails_only(report, "file-hash")
    size = misreported.files[0].stat().st_size
    assert report.step("file-hash").detail.endswith(
        f", but ds0.xpt is {size} bytes, not record.sizeBytes {size + 1}")
    assert report.verdict.state == "failed"  # the content is the registered one

    other = verify(batch.node, batch.receipts[0], file_path=batch.files[1])
    assert other.verdict.state == "wrong-file"
    assert_fails_only(other, "file-hash")
    assert "not record.sha256" in other.step("file-hash").detail
    assert other.step("file-hash").detail.endswith(
        f"; ds1.xpt is {size + 1} bytes, not record.sizeBytes {size}")


def test_without_a_size_in_the_record_only_the_hash_counts(anvil, tmp_path):
    def no_size(record):
        record["sizeBytes"] = None
    sizeless = make_batch(anvil, tmp_path, count=2, edit=no_size)
    report = verify(anvil, sizeless.receipts[1], file_path=sizeless.files[1])
    assert report.ok and report.step("file-hash").detail.endswith("…")


# --- one anchor checked once per run -------------------------------------------------

def test_a_plain_copy_of_an_anchor_does_not_answer_for_a_record(anvil, tmp_path):
    """The anchor sent to another address: a plain Chainpoint receipt may be, a record's may
    not (docs/receipt.md). Checked once per run (``anchors``), the plain copy's answer must
    not be reused for the record's."""
    elsewhere = make_batch(anvil, tmp_path, count=1, tx={"to": OTHER})
    record = elsewhere.receipts[0]
    plain = {key: value for key, value in record.items() if key != "trialnotary"}
    shared: dict = {}
    assert verify(anvil, plain, anchors=shared).ok
    alone = verify(anvil, record)
    after_the_plain = verify(anvil, record, anchors=shared)
    assert "anchor-tx" in failed(alone) and not alone.ok
    assert failed(after_the_plain) == failed(alone)
    assert [step.detail for step in after_the_plain.steps] == [step.detail for step in alone.steps]
