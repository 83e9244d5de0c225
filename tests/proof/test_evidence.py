"""Receipts whose anchor carries its chain evidence (docs/receipt.md, ``evidence``;
docs/verification.md): proven offline from the header, the two Merkle-Patricia proofs and
the signed transaction, on real anvil blocks (one of 200+ transactions of every kind), then
checked through a node that serves block headers and nothing else; and every way of
breaking the evidence, each failing the ``evidence`` step with its reason."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tests.conftest import Anvil
from tests.proof.anchored import (
    NOTARY,
    OTHER,
    REVERTS,
    assert_fails_only,
    make_batch,
    verify,
    write,
)
from tests.rpc_filter import HEADER_ONLY, RpcFilter
from trialnotary.proof.errors import ReceiptError
from trialnotary.proof.evm import prove
from trialnotary.proof.facts import (
    CHAIN_STEPS,
    EXIT_FAILED,
    EXIT_NOT_PINNED,
    EXIT_UNCHECKED,
    OFFLINE_STEPS,
    OPTIONAL_STEPS,
)
from trialnotary.proof.verify import main, parse_receipt, verify_receipt

AFTER_CHAIN = CHAIN_STEPS[1:]  # answered from the evidence: skipped when it does not hold
WITH_EVIDENCE = OFFLINE_STEPS + CHAIN_STEPS + OPTIONAL_STEPS  # no identity pinned


@pytest.fixture(scope="module")
def node():
    """A node of this module's own, mining only when a transaction arrives or when told."""
    node = Anvil(block_time=None)
    yield node
    node.stop()


@pytest.fixture(scope="module")
def crowded(node, tmp_path_factory):
    """Receipts anchored after 210 transactions of every kind, in one block."""
    return make_batch(node, tmp_path_factory.mktemp("crowded"), evidence=True, crowded=210)


@pytest.fixture
def headers_only(node):
    """The node behind a filter that refuses every transaction and receipt look-up."""
    proxy = RpcFilter(node.url)
    yield proxy
    proxy.close()


def evidence(receipt: dict) -> dict:
    return receipt["anchors"][0]["evidence"]


# --- genuine evidence -----------------------------------------------------------------

def test_a_crowded_block_proves_the_anchor_at_a_high_index(crowded, node):
    receipt = crowded.receipts[0]
    block = node.rpc("eth_getBlockByNumber", hex(receipt["anchors"][0]["blockNumber"]), False)
    assert len(block["transactions"]) > 200
    assert evidence(receipt)["transactionIndex"] >= 128
    assert len(evidence(receipt)["transactionProof"]) >= 3  # a trie of three levels and more
    for receipt, path in zip(crowded.receipts, crowded.files, strict=True):
        report = verify(node, receipt, file_path=path, expect_sender=NOTARY)
        assert [step.name for step in report.steps] == list(WITH_EVIDENCE)
        assert all(step.ok is True for step in report.steps), report.steps
        assert report.verdict.exit_code == 0
    assert f"index {evidence(receipt)['transactionIndex']}" in report.step("evidence").detail


def test_a_one_transaction_block_proves_its_anchor(node, tmp_path):
    batch = make_batch(node, tmp_path, count=2, evidence=True)
    assert evidence(batch.receipts[0])["transactionIndex"] == 0
    report = verify(node, batch.receipts[1], file_path=batch.files[1])
    assert report.ok and report.step("evidence").ok, report.steps


@pytest.mark.parametrize(("fields", "tx_type"), [
    ({"gasPrice": hex(3 * 10**9)}, 0),
    ({"gasPrice": hex(3 * 10**9), "accessList": []}, 1),
    ({}, 2),
])
def test_an_anchor_of_each_transaction_type_is_proven(node, tmp_path, fields, tx_type):
    batch = make_batch(node, tmp_path, count=2, evidence=True, tx=fields)
    claims = parse_receipt(batch.receipts[0])
    assert prove(claims.anchor.evidence).transaction.type == tx_type
    report = verify(node, batch.receipts[0], expect_sender=NOTARY)
    assert report.ok and report.step("evidence").ok, report.steps


def test_a_node_that_serves_headers_only_still_verifies_the_receipt(crowded, headers_only):
    report = verify_receipt(copy.deepcopy(crowded.receipts[1]), rpc_urls=[headers_only.url],
                            file_path=crowded.files[1], expect_sender=NOTARY)
    assert report.ok and report.verdict.exit_code == 0, report.steps
    assert set(headers_only.asked) <= HEADER_ONLY and headers_only.refused == []
    assert "the canonical chain" in report.step("block").detail


def test_a_version_1_receipt_is_not_checked_on_a_node_without_history(crowded,
                                                                      headers_only):
    """Without evidence the verifier must look the transaction up, which the node refuses:
    that refutes nothing, so the node counts as one that did not answer (exit 4)."""
    receipt = copy.deepcopy(crowded.receipts[1])
    del receipt["anchors"][0]["evidence"]
    report = verify_receipt(receipt, rpc_urls=[headers_only.url])
    assert report.verdict.exit_code == 4
    assert all(report.step(name).ok is None for name in CHAIN_STEPS)
    (note,) = report.nodes
    assert not note.answered
    assert note.detail.startswith("cannot answer: it has expired the history "
                                  "eth_getTransactionByHash asks for (error 4444")
    assert "eth_getTransactionByHash" in headers_only.refused
    assert [step.name for step in report.steps] == list(OFFLINE_STEPS + CHAIN_STEPS)


def test_without_a_node_the_evidence_is_still_checked(crowded):
    report = verify_receipt(copy.deepcopy(crowded.receipts[0]), rpc_urls=[])
    assert report.step("evidence").ok is True
    assert all(report.step(name).ok is None for name in CHAIN_STEPS)
    assert report.verdict.exit_code == EXIT_UNCHECKED


def test_many_receipts_of_one_batch_have_their_anchor_checked_once(crowded, node, tmp_path,
                                                                   capsys):
    proxy = RpcFilter(node.url)
    try:
        paths = [write(tmp_path, receipt, f"r{i}.json")
                 for i, receipt in enumerate(crowded.receipts * 4)]
        assert main(paths, rpc_urls=[proxy.url]) == EXIT_NOT_PINNED
    finally:
        proxy.close()
    assert f"{len(paths)} receipts: {len(paths)} passed but not pinned" in capsys.readouterr().out
    assert max(proxy.asked.values()) == 1, proxy.asked


# --- evidence that does not hold --------------------------------------------------------

def flip_last_byte(hex_value: str) -> str:
    return hex_value[:-2] + f"{int(hex_value[-2:], 16) ^ 1:02x}"


def change(path: list, edit):
    def apply(receipt):
        *parents, last = path
        target = evidence(receipt)
        for key in parents:
            target = target[key]
        target[last] = edit(target[last])
    return apply


BROKEN = {
    "header byte changed": (change(["header"], flip_last_byte),
                            "the header hashes to 0x"),
    "transaction proof node changed": (change(["transactionProof", 1], flip_last_byte),
                                       "the transaction proof does not prove index"),
    "receipt proof node changed": (change(["receiptProof", 1], flip_last_byte),
                                   "node 2 does not hash to its reference in node 1"),
    "wrong transactionIndex": (change(["transactionIndex"], lambda index: index + 1),
                               "does not prove index"),
    "another transaction's bytes": (change(["transaction"], flip_last_byte),
                                    "holds another transaction"),
    "a transaction proof from the root alone": (
        change(["transactionProof"], lambda nodes: nodes[:1]),
        "ends after 1 node(s), before the key's value"),
}


@pytest.mark.parametrize("name", BROKEN)
def test_broken_evidence_fails_only_the_evidence_step(crowded, node, name):
    edit, reason = BROKEN[name]
    receipt = copy.deepcopy(crowded.receipts[2])
    edit(receipt)
    report = verify(node, receipt)
    assert_fails_only(report, "evidence", skipped=AFTER_CHAIN)
    assert reason in report.step("evidence").detail
    assert report.verdict.exit_code == EXIT_FAILED
    assert report.verdict.text.startswith("This receipt does NOT verify: evidence failed")


def test_a_claimed_sender_other_than_the_signer_fails(crowded, node):
    receipt = copy.deepcopy(crowded.receipts[0])
    receipt["anchors"][0]["sender"] = OTHER
    report = verify(node, receipt)
    assert_fails_only(report, "evidence", skipped=AFTER_CHAIN)
    assert f"signed by {NOTARY.lower()}, not sender {OTHER}" in report.step("evidence").detail


def test_a_claimed_block_time_other_than_the_headers_fails(crowded, node):
    receipt = copy.deepcopy(crowded.receipts[0])
    receipt["anchors"][0]["blockTime"] = "2020-01-01T00:00:00Z"
    report = verify(node, receipt)
    assert "not blockTime 2020-01-01T00:00:00Z" in report.step("evidence").detail


@pytest.fixture
def reverting_notary(node):
    """The notary's account made to revert every call to it (anvil_setCode), for a while."""
    node.rpc("anvil_setCode", NOTARY, REVERTS)
    yield
    node.rpc("anvil_setCode", NOTARY, "0x")


ODD_TRANSACTIONS = {
    "to another address": ({"to": OTHER}, f"sent to {OTHER.lower()}, not to its sender"),
    "with value": ({"value": "0x1"}, "sends value 1 wei, not 0"),
    "with extra calldata": ({"suffix": b"\x00"}, "its data is 33 bytes"),
}


@pytest.mark.parametrize("name", ODD_TRANSACTIONS)
def test_a_genuine_but_odd_anchor_transaction_fails_the_evidence_step(node, tmp_path, name):
    fields, reason = ODD_TRANSACTIONS[name]
    batch = make_batch(node, tmp_path, count=2, evidence=True, tx=fields)
    report = verify(node, batch.receipts[0])
    assert_fails_only(report, "evidence", skipped=AFTER_CHAIN)
    assert reason in report.step("evidence").detail


def test_a_reverted_anchor_fails_the_evidence_step(node, tmp_path, reverting_notary):
    batch = make_batch(node, tmp_path, count=2, evidence=True, tx={"gas": "0x20000"})
    report = verify(node, batch.receipts[0])
    assert_fails_only(report, "evidence", skipped=AFTER_CHAIN)
    assert report.step("evidence").detail == \
        "the transaction reverted (its receipt's status is 0)"


# --- evidence of the wrong shape: not a usable receipt ---------------------------------------

SHAPES = {
    "upper-case hex": (change(["header"], str.upper), "0x and lowercase hex bytes"),
    "odd hex": (change(["receipt"], lambda value: value + "0"), "0x and lowercase hex bytes"),
    "empty proof": (change(["receiptProof"], lambda nodes: []), "must be a non-empty list"),
    "index as text": (change(["transactionIndex"], str), "must be a non-negative integer"),
}


@pytest.mark.parametrize("name", SHAPES)
def test_evidence_of_the_wrong_shape_is_not_a_usable_receipt(crowded, name):
    edit, reason = SHAPES[name]
    receipt = copy.deepcopy(crowded.receipts[0])
    edit(receipt)
    with pytest.raises(ReceiptError, match=reason):
        parse_receipt(receipt)


def test_evidence_with_a_key_missing_or_unknown_is_refused(crowded):
    receipt = copy.deepcopy(crowded.receipts[0])
    evidence(receipt)["extra"] = evidence(receipt).pop("header")
    with pytest.raises(ReceiptError, match="missing: header; unknown: extra"):
        parse_receipt(receipt)


# --- the test vector ---------------------------------------------------------------------

def test_the_evidence_vector_proves_its_facts():
    """docs/vectors/evidence-v1.json: what every verifier must find in it, with no node."""
    vector = json.loads((Path(__file__).parents[2] / "docs/vectors/evidence-v1.json")
                        .read_text())
    proven = prove(parse_receipt(vector["receipt"]).anchor.evidence)
    tx, header = proven.transaction, proven.header
    found = {
        "headerHash": "0x" + header.hash.hex(), "number": header.number,
        "timestamp": header.timestamp,
        "transactionsRoot": "0x" + header.transactions_root.hex(),
        "receiptsRoot": "0x" + header.receipts_root.hex(),
        "transactionIndex": proven.index, "transactionHash": "0x" + tx.hash.hex(),
        "type": tx.type, "chainId": tx.chain_id, "nonce": tx.nonce, "to": "0x" + tx.to.hex(),
        "value": tx.value, "data": "0x" + tx.data.hex(), "sender": "0x" + tx.sender.hex(),
        "status": proven.receipt.status,
    }
    assert found == vector["proves"]
    report = verify_receipt(vector["receipt"], rpc_urls=[])
    assert report.step("evidence").ok is True
