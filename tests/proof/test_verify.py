"""The stand-alone verifier against real receipts anchored on real anvil nodes."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import ANVIL_ACCOUNTS, Anvil, free_port
from tests.proof.vectors import load_vectors
from trialnotary.cli import main as cli
from trialnotary.proof.facts import (
    EXIT_FAILED,
    EXIT_NOT_PINNED,
    EXIT_PASS,
    EXIT_UNCHECKED,
    EXIT_UNUSABLE,
    STEPS,
)
from trialnotary.proof.merkle import build_levels, proof_from_levels
from trialnotary.proof.receipt import build_receipt, record_leaf
from trialnotary.proof.verify import exit_code_of, main, verify_receipt

NOTARY = ANVIL_ACCOUNTS[1]
OTHER = ANVIL_ACCOUNTS[2]
REVERTS = "0x60006000fd"  # PUSH1 0 PUSH1 0 REVERT


# --- building real receipts ----------------------------------------------------------

def send(node: Anvil, sender: str, data: str, to: str | None = None) -> str:
    """Send a transaction from an unlocked dev account, mine it, return its hash (no 0x)."""
    tx_hash = node.rpc("eth_sendTransaction", {"from": sender, "to": to or sender,
                                               "data": data, "value": "0x0"})
    if not node.rpc("anvil_getAutomine"):  # (a receipt can lag automine on a busy node)
        node.mine(1)
    deadline = time.monotonic() + 10
    while node.rpc("eth_getTransactionReceipt", tx_hash) is None:
        assert time.monotonic() < deadline, "the transaction was not mined"
        time.sleep(0.05)
    return tx_hash[2:]


def anchor_of(node: Anvil, tx_hash: str, sender: str) -> dict:
    """The anchor fields of build_receipt, read from the node."""
    mined = node.rpc("eth_getTransactionReceipt", "0x" + tx_hash)
    block = node.rpc("eth_getBlockByNumber", mined["blockNumber"], False)
    block_time = datetime.fromtimestamp(int(block["timestamp"], 16), UTC)
    return {"tx_hash": tx_hash, "chain_id": node.chain_id, "sender": sender,
            "block_number": int(mined["blockNumber"], 16), "block_hash": block["hash"],
            "block_time": block_time.strftime("%Y-%m-%dT%H:%M:%SZ")}


def with_anchor(anchor: dict) -> dict:
    """``anchor_of``'s fields under the receipt's names."""
    return {"sourceId": anchor["tx_hash"], "sender": anchor["sender"],
            "blockNumber": anchor["block_number"], "blockHash": anchor["block_hash"],
            "blockTime": anchor["block_time"]}


def chainpoint(target: str, root: str, proof: list, **anchor) -> dict:
    """A plain Chainpoint v2 receipt with one ETHData anchor."""
    return {"@context": "https://w3id.org/chainpoint/v2", "type": "ChainpointSHA256v2",
            "targetHash": target, "merkleRoot": root, "proof": proof,
            "anchors": [{"type": "ETHData", **anchor}]}


@dataclass
class Batch:
    node: Anvil
    files: list[Path]
    receipts: list[dict]
    root: bytes


def make_batch(node: Anvil, folder: Path, *, count: int = 5, sender: str = NOTARY,
               edit=None) -> Batch:
    """Files, their records and tree, the root anchored by ``sender``, a receipt per file;
    ``edit(record)`` may change each record before it is bound into its leaf."""
    folder.mkdir(parents=True, exist_ok=True)
    files, records = [], []
    for index in range(count):
        path = folder / f"ds{index}.xpt"
        path.write_bytes(os.urandom(1000 + index))
        files.append(path)
        records.append({
            "id": str(uuid.uuid4()), "trial": "NCT01234567", "site": "SITE-01",
            "kind": "dataset", "dataset": f"DS{index}",
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "sizeBytes": path.stat().st_size, "filename": path.name, "supersedes": None,
            "submittedAt": "2026-11-23T18:59:01.123Z",
        })
        if edit is not None:
            edit(records[-1])
    leaves = [record_leaf(record) for record in records]
    levels = build_levels(leaves)
    root = levels[-1]
    anchor = anchor_of(node, send(node, sender, "0x" + root.hex()), sender)
    node.mine(2)
    receipts = [
        build_receipt(record=record, leaf=leaf, root=root, proof=proof_from_levels(levels, i),
                      anchor=anchor, batch={"id": 1, "leaf_index": i, "leaf_count": count,
                                            "sealed_at": "2026-11-23T19:00:00.000Z"})
        for i, (record, leaf) in enumerate(zip(records, leaves, strict=True))
    ]
    return Batch(node, files, receipts, root)


@pytest.fixture(scope="module")
def batch(anvil, tmp_path_factory) -> Batch:
    return make_batch(anvil, tmp_path_factory.mktemp("batch"))


@pytest.fixture(scope="module")
def plain_batch(anvil, tmp_path_factory):
    return plain_receipts(anvil, tmp_path_factory.mktemp("plain"))


def plain_receipts(anvil, folder):
    """Three files and their plain Chainpoint receipts (no trialnotary part): the leaves
    are the files' SHA-256 themselves, anchored on ``anvil``."""
    files = [folder / f"f{i}.bin" for i in range(3)]
    for path in files:
        path.write_bytes(os.urandom(500))
    leaves = [hashlib.sha256(path.read_bytes()).digest() for path in files]
    levels = build_levels(leaves)
    anchor = anchor_of(anvil, send(anvil, NOTARY, "0x" + levels[-1].hex()), NOTARY)
    anvil.mine(1)
    receipts = [chainpoint(leaf.hex(), levels[-1].hex(), proof_from_levels(levels, i),
                           chain="ethereumLocal", chainId=31337, **with_anchor(anchor))
                for i, leaf in enumerate(leaves)]
    return files, receipts


@pytest.fixture
def private_anvil():
    """A node of our own, mining only when told, for tests that rewrite the chain."""
    node = Anvil(block_time=None)
    yield node
    node.stop()


def verify(node: Anvil, receipt: dict, **options):
    return verify_receipt(copy.deepcopy(receipt), rpc_urls=[node.url], **options)


def failed(report) -> set[str]:
    return {step.name for step in report.steps if step.ok is False}


def assert_fails_only(report, *names: str, skipped: tuple[str, ...] = ()) -> None:
    """Exactly ``names`` fail; every other step passes, or is in ``skipped``, or is the
    file-hash step of a call without a file."""
    assert failed(report) == set(names), [(s.name, s.ok, s.detail) for s in report.steps]
    for step in report.steps:
        if step.name in names or step.name in skipped and step.ok is None:
            continue
        if step.name == "file-hash" and step.detail == "no file given":
            continue
        assert step.ok is True, (step.name, step.detail)
    assert not report.ok


def write(tmp_path: Path, receipt: dict, name: str = "r.receipt.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(receipt))
    return path


# --- good receipts -------------------------------------------------------------------

def test_good_receipts_pass_every_step(batch):
    for receipt, path in zip(batch.receipts, batch.files, strict=True):
        report = verify(batch.node, receipt, file_path=path)
        assert [step.name for step in report.steps] == list(STEPS)
        assert all(step.ok is True for step in report.steps), report.steps
        assert report.ok
        assert report.proven_time == receipt["anchors"][0]["blockTime"]
        assert report.nodes[0].answered and report.nodes[0].chain_id == 31337


def test_without_a_file_the_file_step_is_skipped(batch):
    report = verify(batch.node, batch.receipts[0])
    assert report.step("file-hash").ok is None
    assert report.ok


def test_the_command_passes_a_good_receipt(batch, tmp_path):
    """The real process, once: exit 0, the verdict in words, then one ✓ line per step."""
    receipt = write(tmp_path, batch.receipts[2])
    command = Path(sys.executable).with_name("trialnotary")
    done = subprocess.run([command, "verify", str(receipt), "--file", str(batch.files[2]),
                           "--rpc", batch.node.url, "--expect-sender", NOTARY],
                          capture_output=True, text=True, check=False, timeout=60,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    block_time = batch.receipts[2]["anchors"][0]["blockTime"]
    assert lines[0] == ('This file is the one registered as "DS2" (ds2.xpt) in trial '
                        'NCT01234567, site SITE-01, and it existed no later than '
                        f'{block_time.replace("T", " ").removesuffix("Z")} UTC.')
    for name in STEPS:
        assert any(line.startswith(f"✓ {name} ") for line in lines), (name, done.stdout)
    assert lines[-1].startswith("PASS")
    assert batch.receipts[2]["anchors"][0]["sourceId"] in lines[-1]
    assert batch.receipts[2]["anchors"][0]["blockTime"] in lines[-1]


def test_json_output(batch, tmp_path):
    receipt = batch.receipts[1]
    result = CliRunner().invoke(cli, ["verify", str(write(tmp_path, receipt)), "--file",
                                      str(batch.files[1]), "--rpc", batch.node.url, "--json",
                                      "--expect-sender", NOTARY])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    anchor = receipt["anchors"][0]
    assert answer["ok"] is True and answer["exitCode"] == 0 and answer["pinned"] is True
    assert answer["verdict"]["state"] == "verified" and answer["verdict"]["note"] is None
    assert answer["verdict"]["text"].startswith('This file is the one registered as "DS1"')
    assert [s["name"] for s in answer["steps"]] == list(STEPS)
    assert all(s["ok"] is True and s["detail"] for s in answer["steps"])
    assert answer["transaction"] == "0x" + anchor["sourceId"]
    assert answer["provenTime"] == anchor["blockTime"]
    assert answer["chainId"] == 31337 and answer["blockNumber"] == anchor["blockNumber"]
    assert answer["nodes"] == [{"url": batch.node.url, "answered": True,
                                "detail": answer["nodes"][0]["detail"], "chainId": 31337,
                                "head": answer["nodes"][0]["head"]}]


def test_json_output_of_a_failure(batch, tmp_path):
    receipt = copy.deepcopy(batch.receipts[0])
    receipt["trialnotary"]["record"]["site"] = "SITE-02"
    result = CliRunner().invoke(cli, ["verify", str(write(tmp_path, receipt)),
                                      "--rpc", batch.node.url, "--json"])
    assert result.exit_code == 1
    answer = json.loads(result.output)
    assert answer["ok"] is False and answer["provenTime"] is None
    assert [s["name"] for s in answer["steps"] if s["ok"] is False] == ["leaf"]
    assert answer["verdict"]["state"] == "failed" and answer["exitCode"] == 1


def test_text_output_names_the_failing_step(batch, tmp_path):
    receipt = copy.deepcopy(batch.receipts[0])
    receipt["merkleRoot"] = "00" * 32
    result = CliRunner().invoke(cli, ["verify", str(write(tmp_path, receipt)),
                                      "--rpc", batch.node.url])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("This receipt does NOT verify: merkle-path failed — folding")
    line = next(x for x in lines if x[2:].startswith("merkle-path "))
    assert line.startswith("✗") and "not the merkleRoot 00000000" in line
    assert lines[-1].startswith("FAIL")


# --- the test vectors ----------------------------------------------------------------

def offline(receipt: dict):
    """Verify with no node at all: the chain steps fail, the others stand on their own."""
    return verify_receipt(receipt, rpc_urls=[])


def vector_receipt(target: str, root: str, proof: list, record: dict | None = None) -> dict:
    receipt = chainpoint(target, root, proof, sourceId="ab" * 32, chain="ethereumLocal",
                         chainId=31337, sender=NOTARY, blockNumber=1, blockHash="0x" + "cd" * 32,
                         blockTime="2026-11-23T19:00:12Z")
    if record is not None:
        receipt["trialnotary"] = {"receiptVersion": 1, "record": record, "batch": {}}
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


@pytest.mark.parametrize("size", ["9007199254740993", '"\\ud800"'])
def test_a_record_without_canonical_form_fails_leaf(batch, tmp_path, capsys, size):
    """Values RFC 8785 cannot hold (an integer beyond 2^53, a lone surrogate)."""
    text = json.dumps(batch.receipts[0]).replace(
        f'"sizeBytes": {batch.receipts[0]["trialnotary"]["record"]["sizeBytes"]}',
        f'"sizeBytes": {size}')
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
        assert all(report.step(n).ok is True for n in STEPS if n != "leaf"), report.steps
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


# --- unusable receipts and options ---------------------------------------------------

def _drop(path):
    def change(receipt):
        *parents, last = path
        for key in parents:
            receipt = receipt[key]
        del receipt[last]
    return change


def _set(path, value):
    def change(receipt):
        *parents, last = path
        for key in parents:
            receipt = receipt[key]
        receipt[last] = value
    return change


MALFORMED = {
    "no targetHash": (_drop(["targetHash"]), "targetHash is missing"),
    "upper-case root": (_set(["merkleRoot"], "AB" * 32), "merkleRoot must be 64 lowercase hex"),
    "short proof hash": (_set(["proof"], [{"left": "ab"}]), "proof step left must be 64"),
    "two-sided step": (_set(["proof"], [{"left": "ab" * 32, "right": "ab" * 32}]),
                       "exactly one of 'left' or 'right'"),
    "proof not a list": (_set(["proof"], {"left": "ab" * 32}), "proof must be a list"),
    "no anchors": (_set(["anchors"], []), "exactly one ETHData anchor"),
    "block number as text": (_set(["anchors", 0, "blockNumber"], "12"),
                             "anchors[0].blockNumber must be a non-negative integer"),
    "chain id true": (_set(["anchors", 0, "chainId"], True), "chainId must be a positive"),
    "bad sender": (_set(["anchors", 0, "sender"], "0x1234"), "sender must be 0x and 40"),
    "no block time": (_drop(["anchors", 0, "blockTime"]), "anchors[0].blockTime is missing"),
    "record key missing": (_drop(["trialnotary", "record", "filename"]), "missing: filename"),
    "record not an object": (_set(["trialnotary", "record"], []), "record must be an object"),
    "version 2": (_set(["trialnotary", "receiptVersion"], 2), "receiptVersion 2 is not"),
    "wrong type": (_set(["type"], "ChainpointSHA512v2"), "type must be"),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_receipts_exit_2_with_a_clear_message(batch, tmp_path, capsys, name):
    change, message = MALFORMED[name]
    receipt = copy.deepcopy(batch.receipts[0])
    change(receipt)
    code = main(write(tmp_path, receipt), rpc_urls=[batch.node.url])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "a receipt is a JSON object"),
    ('{"targetHash": NaN}', "NaN is not valid JSON"),
    ('{"type": "a", "type": "b"}', "duplicate key 'type'"),
])
def test_unreadable_receipt_files_exit_2(tmp_path, capsys, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    assert main(path, rpc_urls=[]) == 2
    assert message in capsys.readouterr().err


def test_json_mode_reports_an_unusable_receipt_as_json(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_bytes(b"\xff\xfe")
    assert main(path, rpc_urls=[], as_json=True) == 2
    answer = json.loads(capsys.readouterr().out)
    assert answer["ok"] is False and "not UTF-8" in answer["error"]


@pytest.mark.parametrize("options, message", [
    ({"confirmations": "0"}, "confirmations must be a positive number"),
    ({"confirmations": "soon"}, "confirmations must be a positive number"),
    ({"expect_sender": "notary"}, "an address is 0x and 40 hex digits"),
])
def test_bad_options_exit_2(batch, tmp_path, capsys, options, message):
    assert main(write(tmp_path, batch.receipts[0]), rpc_urls=[batch.node.url], **options) == 2
    assert message in capsys.readouterr().err


def test_the_verifier_imports_nothing_of_the_server():
    """It must start fast and stand alone: no web3, Flask, database or configuration."""
    probe = ("import sys, trialnotary.proof.verify; print(' '.join(sorted(m for m in sys.modules "
             "if m.split('.')[0] in {'web3', 'eth_account', 'flask', 'sqlalchemy', 'sqlmodel', "
             "'click'} or m.startswith('trialnotary.') and m.split('.')[1] != 'proof')))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.strip() == ""


# --- the verdict in words and the exit codes -----------------------------------------

def first_lines(capsys, count: int = 1) -> list[str]:
    return capsys.readouterr().out.splitlines()[:count]


def test_the_first_line_answers_the_reviewers_question(batch, tmp_path, capsys):
    receipt = write(tmp_path, batch.receipts[0])
    when = batch.receipts[0]["anchors"][0]["blockTime"].replace("T", " ")[:-1] + " UTC"
    pinned = {"rpc_urls": [batch.node.url], "expect_sender": NOTARY}

    assert main(receipt, file_path=batch.files[0], **pinned) == EXIT_PASS
    assert first_lines(capsys) == [f'This file is the one registered as "DS0" (ds0.xpt) in '
                                   f'trial NCT01234567, site SITE-01, and it existed no later '
                                   f'than {when}.']

    assert main(receipt, **pinned) == EXIT_PASS
    assert first_lines(capsys) == [f'The receipt is genuine, but no file was checked: the '
                                   f'file registered as "DS0" (ds0.xpt) in trial NCT01234567, '
                                   f'site SITE-01 existed no later than {when}.']

    assert main(receipt, file_path=batch.files[1], **pinned) == EXIT_FAILED
    assert first_lines(capsys) == ["This is NOT the file this receipt was issued for: its "
                                   "SHA-256 is not the one in the receipt."]

    edited = copy.deepcopy(batch.receipts[0])
    edited["trialnotary"]["record"]["site"] = "SITE-02"
    assert main(write(tmp_path, edited, "edited.json"), **pinned) == EXIT_FAILED
    [line] = first_lines(capsys)
    assert line.startswith("This receipt does NOT verify: leaf failed — the canonical record "
                           "hashes to ")


def test_an_unpinned_sender_passes_with_exit_3_and_says_so(batch, tmp_path, capsys):
    receipt = write(tmp_path, batch.receipts[0])
    assert main(receipt, file_path=batch.files[0], rpc_urls=[batch.node.url]) == \
        EXIT_NOT_PINNED
    verdict, note = first_lines(capsys, 2)
    assert verdict.startswith("This file is the one registered as")
    assert note == (f"Not pinned: the anchor was sent by {NOTARY}; give the notary's published "
                    "address as the expected sender to check that the notary sent it.")
    assert main(receipt, rpc_urls=[batch.node.url], expect_sender=OTHER) == EXIT_FAILED
    assert first_lines(capsys)[0].startswith("This receipt does NOT verify: sender failed")


def test_with_no_node_to_ask_nothing_is_checked_on_chain(batch, tmp_path, capsys):
    receipt = copy.deepcopy(batch.receipts[0])
    receipt["anchors"][0]["chainId"] = 424242  # no default node for this chain
    assert main(write(tmp_path, receipt), rpc_urls=[]) == EXIT_UNCHECKED
    assert first_lines(capsys) == ["Could not check the anchor: no chain node was given and "
                                   "there is no default node for chain 424242."]


def test_a_failure_that_needs_no_node_wins_over_no_node_answering(batch, tmp_path, capsys):
    dead = f"http://127.0.0.1:{free_port()}"
    assert main(write(tmp_path, batch.receipts[0]), file_path=batch.files[1],
                rpc_urls=[dead]) == EXIT_FAILED
    assert first_lines(capsys)[0].startswith("This is NOT the file")


def test_the_worst_code_wins_in_the_contracts_order():
    order = [EXIT_UNUSABLE, EXIT_FAILED, EXIT_UNCHECKED, EXIT_NOT_PINNED, EXIT_PASS]
    assert order == [2, 1, 4, 3, 0]
    for i, worse in enumerate(order):
        for better in order[i:]:
            assert exit_code_of([better, worse]) == worse
            assert exit_code_of([worse, better, EXIT_PASS]) == worse
    assert exit_code_of([]) == EXIT_PASS


def test_several_receipts_each_get_their_verdict_and_the_worst_code(batch, tmp_path, capsys):
    good = [write(tmp_path, receipt, f"good{i}.json") for i, receipt in
            enumerate(batch.receipts[:3])]
    edited = copy.deepcopy(batch.receipts[3])
    edited["trialnotary"]["record"]["kind"] = "protocol"
    bad = write(tmp_path, edited, "bad.json")
    unusable = tmp_path / "unusable.json"
    unusable.write_text("{")
    node = {"rpc_urls": [batch.node.url]}

    assert main(good, **node, expect_sender=NOTARY) == EXIT_PASS
    out = capsys.readouterr().out
    assert out.count("The receipt is genuine, but no file was checked") == 3
    assert out.splitlines()[-1] == "3 receipts: 3 passed"
    assert main(good, **node) == EXIT_NOT_PINNED
    capsys.readouterr()
    assert main([*good, bad], **node, expect_sender=NOTARY) == EXIT_FAILED
    out = capsys.readouterr().out
    assert f"== {bad}\nThis receipt does NOT verify: leaf failed" in out
    assert out.splitlines()[-1] == "4 receipts: 3 passed, 1 failed"
    assert main([unusable, *good, bad], **node) == EXIT_UNUSABLE
    captured = capsys.readouterr()
    assert f"== {unusable}\nNot a usable receipt: not valid JSON" in captured.out
    assert f"error: {unusable}: not a usable receipt" in captured.err
    assert captured.out.splitlines()[-1] == \
        "5 receipts: 3 passed but not pinned, 1 failed, 1 unusable"
    dead = f"http://127.0.0.1:{free_port()}"
    assert main(good, rpc_urls=[dead], expect_sender=NOTARY) == EXIT_UNCHECKED
    assert main([*good, bad], rpc_urls=[dead]) == EXIT_FAILED


def test_several_receipts_in_json_give_a_list(batch, tmp_path):
    paths = [str(write(tmp_path, receipt, f"r{i}.json"))
             for i, receipt in enumerate(batch.receipts[:2])]
    unusable = tmp_path / "unusable.json"
    unusable.write_text("[]")
    result = CliRunner().invoke(cli, ["verify", *paths, str(unusable), "--rpc",
                                      batch.node.url, "--json"])
    assert result.exit_code == EXIT_UNUSABLE
    answers = json.loads(result.stdout)
    assert [answer["receipt"] for answer in answers] == [*paths, str(unusable)]
    assert [answer["exitCode"] for answer in answers] == [3, 3, 2]
    assert [s["name"] for s in answers[0]["steps"]] == list(STEPS)
    assert answers[1]["targetHash"] == batch.receipts[1]["targetHash"]
    assert answers[2] == {"receipt": str(unusable), "ok": False, "exitCode": 2,
                          "error": "a receipt is a JSON object"}


def test_file_goes_with_one_receipt_only(batch, tmp_path):
    paths = [str(write(tmp_path, receipt, f"r{i}.json"))
             for i, receipt in enumerate(batch.receipts[:2])]
    result = CliRunner().invoke(cli, ["verify", *paths, "--file", str(batch.files[0]),
                                      "--rpc", batch.node.url])
    assert result.exit_code == EXIT_UNUSABLE
    assert "--file goes with one receipt, not 2" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("url", ["not-a-url", "ftp://127.0.0.1:8545", "http://", "127.0.0.1:8545",
                                 "http://exa mple.org"])
def test_a_bad_rpc_url_is_a_usage_error_naming_the_option(batch, tmp_path, url):
    result = CliRunner().invoke(cli, ["verify", str(write(tmp_path, batch.receipts[0])),
                                      "--rpc", batch.node.url, "--rpc", url])
    assert result.exit_code == EXIT_UNUSABLE
    assert result.stderr == f"error: --rpc: {url!r} is not an http(s) URL\n"
    assert result.stdout == ""  # nothing was verified


# --- the file's size -----------------------------------------------------------------

@pytest.fixture(scope="module")
def misreported(anvil, tmp_path_factory) -> Batch:
    """Genuine receipts whose records claim one byte more than their files hold."""
    def one_byte_more(record):
        record["sizeBytes"] += 1
    return make_batch(anvil, tmp_path_factory.mktemp("misreported"), count=2,
                      edit=one_byte_more)


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
