"""Real receipts anchored on real anvil nodes, for the verifier's tests (and the browser's):
building them, verifying them, and receipts broken in every way the format forbids."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tests.conftest import ANVIL_ACCOUNTS, Anvil
from trialnotary.config import load_settings
from trialnotary.notary.chain import ChainClient, Inclusion
from trialnotary.notary.evidence import take_evidence
from trialnotary.notary.merkle import build_levels, proof_from_levels
from trialnotary.proof.receipt import build_receipt, record_leaf
from trialnotary.proof.verify import verify_receipt

NOTARY = ANVIL_ACCOUNTS[1]
OTHER = ANVIL_ACCOUNTS[2]
REVERTS = "0x60006000fd"  # PUSH1 0 PUSH1 0 REVERT


# --- building real receipts ----------------------------------------------------------

def send(node: Anvil, sender: str, data: str, to: str | None = None, **fields) -> str:
    """Send a transaction from an unlocked dev account, mine it, return its hash (no 0x).
    ``fields``: more of ``eth_sendTransaction``'s (``value``, ``gas``)."""
    tx_hash = node.rpc("eth_sendTransaction", {"from": sender, "to": to or sender,
                                               "data": data, "value": "0x0", **fields})
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


def crowd(node: Anvil, count: int) -> None:
    """Queue ``count`` transactions of every kind from the dev accounts 2 to 9, with the
    node not mining: plain transfers (EIP-1559), legacy and EIP-2930 ones, contract
    creations that log, and calls that revert (so receipts of status 0 and with logs)."""
    accounts = node.rpc("eth_accounts")
    kinds = [{"to": accounts[3], "value": "0x1"},
             {"to": accounts[3], "value": "0x2", "gasPrice": hex(3 * 10**9)},
             {"data": "0x60aa60005260206000a0"},  # a creation that logs 0xaa (LOG0)
             {"to": accounts[0], "data": REVERTS, "gas": "0x20000"},
             {"to": accounts[3], "value": "0x3", "accessList": [], "gasPrice": hex(3 * 10**9)}]
    nonces: dict[str, int] = {}
    for index in range(count):
        sender = accounts[2 + index % 8]  # one kind per account: anvil mines them all
        if sender not in nonces:
            nonces[sender] = int(node.rpc("eth_getTransactionCount", sender, "pending"), 16)
        node.rpc("eth_sendTransaction", {"from": sender, "nonce": hex(nonces[sender]),
                                         **kinds[(2 + index % 8) % len(kinds)]})
        nonces[sender] += 1


def evidence_of(node: Anvil, anchor: dict) -> dict:
    """The anchor's evidence, as the notary takes it (``notary.evidence``)."""
    with tempfile.TemporaryDirectory() as folder:
        chain = ChainClient(load_settings({"TRIALNOTARY_INSTANCE_PATH": folder,
                                           "TRIALNOTARY_CHAIN_RPC_URL": node.url}))
        inclusion = Inclusion(anchor["block_number"], anchor["block_hash"],
                              anchor["block_time"], succeeded=True, confirmed=True)
        return take_evidence(chain, anchor["tx_hash"], inclusion)


@dataclass
class Batch:
    node: Anvil
    files: list[Path]
    receipts: list[dict]
    root: bytes


def make_batch(node: Anvil, folder: Path, *, count: int = 5, sender: str = NOTARY,
               edit=None, evidence: bool = False, crowded: int = 0, tx: dict | None = None
               ) -> Batch:
    """Files, their records and tree, the root anchored by ``sender``, a receipt per file;
    ``edit(record)`` may change each record before it is bound into its leaf. With
    ``evidence`` the receipts carry the anchor's chain evidence; with ``crowded`` the anchor
    is mined after that many other transactions in its block (a node that mines only
    when told); ``tx`` changes the anchor transaction (``to``, ``value``, ``gas``, and
    ``suffix``: bytes after the root in its data)."""
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
    if crowded:
        node.rpc("evm_setAutomine", False)
        crowd(node, crowded)
    odd = dict(tx or {})
    data = "0x" + root.hex() + odd.pop("suffix", b"").hex()
    anchor = anchor_of(node, send(node, sender, data, **odd), sender)
    if crowded:
        node.rpc("evm_setAutomine", True)
    node.mine(2)
    if evidence:
        anchor["evidence"] = evidence_of(node, anchor)
    receipts = [
        build_receipt(record=record, leaf=leaf, root=root, proof=proof_from_levels(levels, i),
                      anchor=anchor, batch={"id": 1, "leaf_index": i, "leaf_count": count,
                                            "sealed_at": "2026-11-23T19:00:00.000Z"})
        for i, (record, leaf) in enumerate(zip(records, leaves, strict=True))
    ]
    return Batch(node, files, receipts, root)


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


# --- the notary's identity ------------------------------------------------------------

EARLY, LATE = "2000-01-01T00:00:00Z", "2099-01-01T00:00:00Z"


def identity_document(*addresses: dict, chain_id: int = 31337, name: str = "Test notary"
                      ) -> dict:
    """An identity document (docs/receipt.md) listing ``addresses`` on one chain; each is
    ``{"address", "from", "until", "compromisedFrom"}`` with what is left out filled in."""
    listed = [{"from": EARLY, "until": None, "compromisedFrom": None, **entry}
              for entry in addresses]
    return {"name": name, "url": "https://notary.example.org", "version": 1,
            "updatedAt": "2026-12-01T10:00:00.000Z",
            "anchors": [{"name": "local", "kind": "evm", "chainId": chain_id,
                         "retireOn": None, "addresses": listed}]}


def identity_of(address: str = NOTARY, **entry) -> dict:
    """The document of a notary that anchors from ``address`` (``entry``: its times)."""
    return identity_document({"address": address, **entry})


def identity_file(folder: Path, document: dict | None = None,
                  name: str = "identity.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(document if document is not None else identity_of()))
    return path


def pinned_identity(document: dict | None = None):
    from trialnotary.proof.verify import parse_identity

    return parse_identity(document if document is not None else identity_of())


# --- verifying them ------------------------------------------------------------------

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


# --- receipts broken on purpose -------------------------------------------------------

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


GOOD_NOTARY = {"name": "Test notary", "url": "https://notary.example.org"}


def _version_2(*, notary: dict | None, anchor_name: bool):
    """The receipt as version 2, with ``notary`` (or none) and its anchor's name (or none)."""
    def change(receipt):
        extension, anchor = receipt["trialnotary"], receipt["anchors"][0]
        extension["receiptVersion"] = 2
        extension.pop("notary", None)
        anchor.pop("name", None)
        if notary is not None:
            extension["notary"] = notary
        if anchor_name:
            anchor["name"] = "local"
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
    "record id a list": (_set(["trialnotary", "record", "id"], ["x"]),
                         "trialnotary.record.id must be a string"),
    "record site a number": (_set(["trialnotary", "record", "site"], 1),
                             "trialnotary.record.site must be a string"),
    "record submittedAt a number": (_set(["trialnotary", "record", "submittedAt"], 5),
                                    "trialnotary.record.submittedAt must be a string"),
    "record kind null": (_set(["trialnotary", "record", "kind"], None),
                         "trialnotary.record.kind must be a string"),
    "record supersedes an object": (_set(["trialnotary", "record", "supersedes"], {}),
                                    "trialnotary.record.supersedes must be a string or null"),
    "record size as text": (_set(["trialnotary", "record", "sizeBytes"], "12"),
                            "trialnotary.record.sizeBytes must be a non-negative integer or null"),
    "record size negative": (_set(["trialnotary", "record", "sizeBytes"], -1),
                             "sizeBytes must be a non-negative integer or null"),
    "version 3": (_set(["trialnotary", "receiptVersion"], 3), "receiptVersion 3 is not"),
    "version 2 without its notary": (_version_2(notary=None, anchor_name=True),
                                     "trialnotary.notary is missing"),
    "version 2 anchor without a name": (_version_2(notary=GOOD_NOTARY, anchor_name=False),
                                        "anchors[0].name is missing"),
    "notary url a number": (_version_2(notary={"name": "N", "url": 5}, anchor_name=True),
                            "trialnotary.notary.url must be a string"),
    "wrong type": (_set(["type"], "ChainpointSHA512v2"), "type must be"),
}
