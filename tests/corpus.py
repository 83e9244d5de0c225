"""The verifier contract in executable form: adversarial receipts and the verdict each must
get, from the CLI and from the browser's verifier alike (docs/verification.md, "The corpus").

The receipts are files, ``tests/assets/corpus/NAME.json``; ``verdicts.json`` beside them maps
each NAME to ``{"state", "exitCode", "failedStep", "error", "options"}``: the verdict state (or
``"unusable"``), the exit code of ``trialnotary verify``, the first failed step, the words of an
unusable receipt's refusal, and the verifier's options (``expectSender``; ``file``, a file of
``files/`` to compare; ``notary``, an identity document of ``files/`` to pin the origin with;
``require``, the anchor names of ``--require``;
a new option goes into ``cli_flags`` and ``browser_options``), and optionally
``"only": ["cli"]`` (see :func:`entries`). Receipts that point at transactions point
at a chain this module replays exactly: anvil's dev accounts, a fixed genesis time, one
transaction per block at fixed times, in a fixed order. ``chain.json`` holds the transaction
and block hashes that replay must reproduce; a test replays the chain, checks them, and then
verifies every receipt against it. The receipts of version 2 carry their anchor's chain
evidence, taken from that chain when the files are written.

``python -m tests.corpus`` writes the files again. It writes the entries built here and keeps
any other file and verdict line: an entry may be a file written by hand plus its line in
``verdicts.json``, or a builder added to ``ENTRIES`` (with a transaction added to ``SCRIPT``
when it needs one; transactions are only ever appended, so earlier hashes stay the same).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tests.conftest import Anvil
from tests.proof.anchored import NOTARY, OTHER, REVERTS, evidence_of, identity_of
from trialnotary.notary.merkle import NODE, build_levels, proof_from_levels, root_of
from trialnotary.proof.receipt import anchor_entry, build_receipt, record_leaf, written_record
from trialnotary.proof.signoff import sign_off_digest
from trialnotary.proof.verify.anchors import evidence_digest
from trialnotary.proof.verify.claims import Anchor

ASSETS = Path(__file__).parent / "assets" / "corpus"
FILES = ASSETS / "files"
VERDICTS = ASSETS / "verdicts.json"
CHAIN = ASSETS / "chain.json"

GENESIS = 1795000000  # 2026-11-18T11:06:40Z, the genesis block's time
BLOCK_SECONDS = 12
REVERTER = "0x00000000000000000000000000000000000bad00"  # holds REVERTS: every call fails
NODE_OPTIONS = ("--timestamp", str(GENESIS), "--hardfork", "prague", "--base-fee",
                "1000000000", "--gas-limit", "30000000")
FEES = {"gas": hex(100_000), "maxFeePerGas": hex(3 * 10**9),
        "maxPriorityFeePerGas": hex(10**9)}
UNUSABLE = "unusable"
#: Who the version 2 receipts say issued them, and the anchor's configured name.
ISSUER = {"name": "Corpus notary", "url": "https://notary.example.org"}
ANCHOR_NAME = "local"


# --- the batches: fixed records, fixed files ------------------------------------------

def corpus_file(index: int) -> bytes:
    return f"trialnotary corpus file {index}\n".encode()


def corpus_record(index: int) -> dict:
    content = corpus_file(index)
    return {"id": str(uuid.UUID(int=0x5EED_0000 + index, version=4)), "trial": "NCT01234567",
            "site": "SITE-01", "kind": "dataset", "dataset": f"DS{index}",
            "sha256": hashlib.sha256(content).hexdigest(), "sizeBytes": len(content),
            "filename": f"ds{index}.xpt", "supersedes": None,
            "submittedAt": f"2026-11-18T11:0{index}:00.000Z"}


@dataclass(frozen=True)
class Tree:
    """A batch's tree, as the notary builds it."""

    levels: list[bytes]

    @classmethod
    def of(cls, leaves: list[bytes]) -> Tree:
        return cls(build_levels(leaves))

    @property
    def root(self) -> bytes:
        return root_of(self.levels)

    def node(self, level: int, index: int) -> bytes:
        return self.levels[level][index * NODE:(index + 1) * NODE]

    def proof(self, index: int) -> list[dict]:
        return proof_from_levels(self.levels, index)


def identity_text(**entry) -> bytes:
    """The identity document of a notary that anchors from NOTARY (``entry``: its times)."""
    return (json.dumps(identity_of(NOTARY, **entry), indent=2) + "\n").encode()


#: The files of ``files/``: some of the batch's, one of the plain Chainpoint receipt's, and
#: the notary's identity: as published, and after NOTARY's key was revoked from genesis on.
CORPUS_FILES = {f"ds{i}.xpt": corpus_file(i) for i in (2, 3)} | {
    "plain1.bin": corpus_file(101), "identity.json": identity_text(),
    "identity-revoked.json": identity_text(compromisedFrom="2026-11-18T11:06:40Z")}

RECORDS = [corpus_record(i) for i in range(5)]
BATCH = Tree.of([record_leaf(record) for record in RECORDS])
PLAIN = Tree.of([hashlib.sha256(corpus_file(100 + i)).digest() for i in range(3)])


# --- the chain: transactions in a fixed order -----------------------------------------

@dataclass(frozen=True)
class Send:
    """One transaction of the script, sent by an unlocked dev account. ``data`` may be a
    function of the anchors mined before it (a renewal's root is over their evidence)."""

    sender: str
    data: str | Callable[[dict], str]
    to: str | None = None  # None: to the sender itself
    value: int = 0

    def data_of(self, anchors: dict) -> str:
        return self.data(anchors) if callable(self.data) else self.data


#: A roll-up of three batch roots, the corpus batch's second (docs/receipt.md, "Roll-up").
ROLLUP = Tree.of([b"\x01" * 32, BATCH.root, b"\x02" * 32])
ROLLED_INDEX = 1
#: The anchors a renewal renews (the "retired" ones), and the root each attests.
RENEWED = {"batch": BATCH.root, "plain": PLAIN.root}


def renewal_tree(anchors: dict) -> Tree:
    """The renewal tree over the evidence digests of the renewed anchors, in script order."""
    return Tree.of([evidence_digest(_as_anchor(anchors[label]), root)
                    for label, root in RENEWED.items()])


def not_before_records(anchors: dict) -> list[dict]:
    """A batch of two records made after the corpus batch's block (``notBefore``): one
    naming it as it is, one naming a block not on the chain (its hash changed)."""
    block = anchors["batch"]
    named = {"chainId": block["chain_id"], "blockNumber": block["block_number"],
             "blockHash": block["block_hash"]}
    off_chain = {**named, "blockHash": _flip_last_digit(block["block_hash"])}
    return [written_record({**corpus_record(index), "kind": "randomisation-list",
                            "notBefore": not_before})
            for index, not_before in ((10, named), (11, off_chain))]


def not_before_tree(anchors: dict) -> Tree:
    return Tree.of([record_leaf(record) for record in not_before_records(anchors)])


def sign_off_records(anchors: dict) -> list[dict]:
    """A batch of sign-offs of the corpus batch's leaf 2 (docs/receipt.md, "Sign-offs"), each
    made after the batch's block: a genuine one, one whose sha256 is not its signOff's
    digest, and one signed after the time its anchor proves."""
    block = anchors["batch"]
    not_before = {"chainId": block["chain_id"], "blockNumber": block["block_number"],
                  "blockHash": block["block_hash"]}

    def sign_off(index: int, signed_at: str, digest=sign_off_digest) -> dict:
        manifestation = {"signs": RECORDS[2]["id"], "signsLeaf": BATCH.node(0, 2).hex(),
                         "name": "Dr. Ada Lovelace", "role": "sponsor", "meaning": "approved",
                         "signedAt": signed_at}
        return written_record({
            **corpus_record(index), "kind": "sign-off", "dataset": "sign-off: approved: DS2",
            "sha256": digest(manifestation), "sizeBytes": None, "filename": None,
            "submittedAt": signed_at, "notBefore": not_before, "signOff": manifestation})
    return [sign_off(20, "2026-11-18T11:08:00.000Z"),
            sign_off(21, "2026-11-18T11:08:00.000Z", lambda m: "0" * 64),
            sign_off(22, "2026-11-18T11:30:00.000Z")]


def sign_off_tree(anchors: dict) -> Tree:
    return Tree.of([record_leaf(record) for record in sign_off_records(anchors)])


def _flip_last_digit(hex_value: str) -> str:
    return hex_value[:-1] + ("1" if hex_value[-1] == "0" else "0")


def _as_anchor(anchor: dict) -> Anchor:
    return Anchor(tx_hash=anchor["tx_hash"], chain_id=anchor["chain_id"], chain=None,
                  sender=anchor["sender"], block_number=anchor["block_number"],
                  block_hash=anchor["block_hash"], block_time=anchor["block_time"])


SCRIPT: dict[str, Send] = {
    "batch": Send(NOTARY, "0x" + BATCH.root.hex()),
    "plain": Send(NOTARY, "0x" + PLAIN.root.hex()),
    "to-another-address": Send(NOTARY, "0x" + BATCH.root.hex(), to=OTHER),
    "with-value": Send(NOTARY, "0x" + BATCH.root.hex(), value=1),
    "reverted": Send(NOTARY, "0x" + BATCH.root.hex(), to=REVERTER),
    "extra-calldata": Send(NOTARY, "0x" + BATCH.root.hex() + "deadbeef"),
    "other-sender": Send(OTHER, "0x" + BATCH.root.hex()),
    # --- several anchors: the batch again, a roll-up, a renewal of batch and plain ------------
    "batch-again": Send(NOTARY, "0x" + BATCH.root.hex()),
    "rollup": Send(NOTARY, "0x" + ROLLUP.root.hex()),
    "renewal": Send(NOTARY, lambda anchors: "0x" + renewal_tree(anchors).root.hex()),
    # --- records made after a block (notBefore) -----------------------------------------------
    "not-before": Send(NOTARY, lambda anchors: "0x" + not_before_tree(anchors).root.hex()),
    "not-before-again": Send(NOTARY,
                             lambda anchors: "0x" + not_before_tree(anchors).root.hex()),
    # --- sign-offs -----------------------------------------------------------------------------
    "sign-off": Send(NOTARY, lambda anchors: "0x" + sign_off_tree(anchors).root.hex()),
}


def start_node() -> Anvil:
    """A fresh anvil that mines only when a transaction arrives, at the times we set."""
    node = Anvil(*NODE_OPTIONS, block_time=None)
    node.rpc("anvil_setCode", REVERTER, REVERTS)
    return node


def _mined(node: Anvil, tx_hash: str) -> dict:
    deadline = time.monotonic() + 10
    while (receipt := node.rpc("eth_getTransactionReceipt", tx_hash)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"transaction {tx_hash} was not mined")
        time.sleep(0.02)
    return receipt


def replay(node: Anvil) -> dict[str, dict]:
    """Send the script's transactions, one block each; their anchors by label."""
    nonces: dict[str, int] = {}
    anchors = {}
    for number, (label, send) in enumerate(SCRIPT.items(), start=1):
        node.rpc("evm_setNextBlockTimestamp", hex(GENESIS + number * BLOCK_SECONDS))
        nonce = nonces.get(send.sender, 0)
        nonces[send.sender] = nonce + 1
        tx_hash = node.rpc("eth_sendTransaction", {
            "from": send.sender, "to": send.to or send.sender, "value": hex(send.value),
            "data": send.data_of(anchors), "nonce": hex(nonce), **FEES})
        mined = _mined(node, tx_hash)
        block = node.rpc("eth_getBlockByNumber", mined["blockNumber"], False)
        anchors[label] = {
            "tx_hash": tx_hash[2:], "chain_id": node.chain_id, "sender": send.sender,
            "block_number": int(mined["blockNumber"], 16), "block_hash": block["hash"],
            "block_time": datetime.fromtimestamp(int(block["timestamp"], 16), UTC)
            .strftime("%Y-%m-%dT%H:%M:%SZ")}
    return anchors


def with_evidence(node: Anvil, anchors: dict[str, dict]) -> dict[str, dict]:
    """The anchors, each with its chain evidence as the notary takes it."""
    return {label: anchor | {"evidence": evidence_of(node, anchor)}
            for label, anchor in anchors.items()}


# --- the entries ----------------------------------------------------------------------

def receipt_of(anchors: dict, index: int = 2, anchor: str = "batch",
               version: int = 1) -> dict:
    """A genuine receipt of leaf ``index`` of the batch, on anchor ``anchor``: of version 1,
    or of version 2 with the anchor's chain evidence."""
    fields = _anchor_fields(anchors[anchor], version)
    return build_receipt(record=RECORDS[index], leaf=BATCH.node(0, index), root=BATCH.root,
                         proof=BATCH.proof(index), anchor=fields,
                         batch={"id": 7, "leaf_index": index, "leaf_count": len(RECORDS),
                                "sealed_at": "2026-11-18T11:06:00.000Z"},
                         notary=ISSUER if version == 2 else None)


def _batch_receipt(records: list[dict], index: int, anchor: dict, batch_id: int,
                   sealed_at: str) -> dict:
    """The version 2 receipt of leaf ``index`` of a batch of ``records`` on ``anchor``."""
    tree = Tree.of([record_leaf(record) for record in records])
    return build_receipt(
        record=records[index], leaf=tree.node(0, index), root=tree.root,
        proof=tree.proof(index), anchor=_anchor_fields(anchor, 2),
        batch={"id": batch_id, "leaf_index": index, "leaf_count": len(records),
               "sealed_at": sealed_at}, notary=ISSUER)


def _made_after(index: int, change: Callable[[dict], None] | None = None,
                on: tuple[tuple[str, str], ...] = ()) -> Callable[[dict], str]:
    """A builder: the version 2 receipt of leaf ``index`` of the batch of
    :func:`not_before_records`, on its own anchor, or on the anchors ``on`` (``(label,
    name)`` each); its ``notBefore`` then changed in place by ``change``, if given."""
    def build(anchors: dict) -> str:
        receipt = _batch_receipt(not_before_records(anchors), index, anchors["not-before"],
                                 8, "2026-11-18T11:30:00.000Z")
        if change is not None:
            change(receipt["trialnotary"]["record"]["notBefore"])
        if on:
            receipt["anchors"] = [entry_of(anchors, label, name) for label, name in on]
        return text(receipt)
    return build


def _signed(index: int, change: Callable[[dict], None] | None = None) -> Callable[[dict], str]:
    """A builder: the version 2 receipt of leaf ``index`` of :func:`sign_off_records`'s
    batch; its record then changed in place by ``change``, if given."""
    def build(anchors: dict) -> str:
        receipt = _batch_receipt(sign_off_records(anchors), index, anchors["sign-off"],
                                 9, "2026-11-18T11:09:00.000Z")
        if change is not None:
            change(receipt["trialnotary"]["record"])
        return text(receipt)
    return build


def _signs_another(record: dict) -> None:
    """The sign-off copied onto another registration: ``signs`` names leaf 3's record."""
    record["signOff"]["signs"] = RECORDS[3]["id"]


def _signs_another_rehashed(record: dict) -> None:
    _signs_another(record)
    record["sha256"] = sign_off_digest(record["signOff"])


def _anchor_fields(anchor: dict, version: int) -> dict:
    if version == 2:
        return anchor | {"name": ANCHOR_NAME}
    return {key: value for key, value in anchor.items() if key != "evidence"}


def text(receipt: dict) -> str:
    return json.dumps(receipt, indent=2, ensure_ascii=False) + "\n"


def edited(change: Callable[[dict], None], **base) -> Callable[[dict], str]:
    """A builder: the genuine receipt, changed in place by ``change``."""
    def build(anchors: dict) -> str:
        receipt = copy.deepcopy(receipt_of(anchors, **base))
        change(receipt)
        return text(receipt)
    return build


def rewritten(old: str, new: str, **base) -> Callable[[dict], str]:
    """A builder: the genuine receipt's JSON text with ``old`` written as ``new`` (once): for
    what a JSON object cannot hold, such as a duplicate key or ``32.0``."""
    def build(anchors: dict) -> str:
        genuine = text(receipt_of(anchors, **base))
        if genuine.count(old) != 1:
            raise ValueError(f"{old!r} is not once in the receipt")
        return genuine.replace(old, new)
    return build


def _anchor(receipt: dict) -> dict:
    return receipt["anchors"][0]


def _evidence(receipt: dict) -> dict:
    return _anchor(receipt)["evidence"]


def _flip(hex_bytes: str, at: int) -> str:
    """``0x…`` hex bytes with the byte at ``at`` changed (its lowest bit flipped)."""
    raw = bytearray.fromhex(hex_bytes[2:])
    raw[at] ^= 1
    return "0x" + raw.hex()


#: A byte of the header's stateRoot (after its list prefix, parentHash, ommersHash and
#: coinbase): the header still decodes, but hashes to another block hash.
STATE_ROOT_BYTE = 3 + 33 + 33 + 21 + 10


def _change_header(receipt: dict) -> None:
    _evidence(receipt)["header"] = _flip(_evidence(receipt)["header"], STATE_ROOT_BYTE)


def _change_proof_node(key: str) -> Callable[[dict], None]:
    """Change a byte inside the last node of the proof ``key`` (the node holding the value)."""
    def change(receipt: dict) -> None:
        nodes = _evidence(receipt)[key]
        nodes[-1] = _flip(nodes[-1], len(bytes.fromhex(nodes[-1][2:])) // 2)
    return change


def _swap_first_side(receipt: dict) -> None:
    (side, sibling), = receipt["proof"][0].items()
    receipt["proof"][0] = {"left" if side == "right" else "right": sibling}


def _inner_node_as_target(receipt: dict) -> None:
    """A valid path to the root from the inner node over leaves 0 and 1, with leaf 0's
    record: it folds, but neither the leaf nor the shape fits."""
    receipt["targetHash"] = BATCH.node(1, 0).hex()
    receipt["proof"] = [{"right": BATCH.node(1, 1).hex()}, {"right": BATCH.node(2, 1).hex()}]
    receipt["trialnotary"]["record"] = RECORDS[0]
    receipt["trialnotary"]["batch"]["leafIndex"] = 0


def _plain(anchors: dict, *, only_source: bool = False, evidence: bool = False,
           **named) -> str:
    """A plain Chainpoint receipt of the plain batch's leaf 1, with its anchor's chain
    evidence if ``evidence``; ``named`` may name the chain otherwise (``chain``,
    ``chainId``)."""
    anchor = anchors["plain"]
    fields = {"sourceId": anchor["tx_hash"]}
    if evidence:
        fields["evidence"] = anchor["evidence"]
    if not only_source:
        fields |= {"chain": "ethereumLocal", "chainId": anchor["chain_id"],
                   "sender": anchor["sender"], "blockNumber": anchor["block_number"],
                   "blockHash": anchor["block_hash"], "blockTime": anchor["block_time"],
                   **named}
    return text({"@context": "https://w3id.org/chainpoint/v2", "type": "ChainpointSHA256v2",
                 "targetHash": PLAIN.node(0, 1).hex(), "merkleRoot": PLAIN.root.hex(),
                 "proof": PLAIN.proof(1), "anchors": [{"type": "ETHData", **fields}]})


def _on(anchor: str, version: int = 1) -> Callable[[dict], str]:
    return lambda anchors: text(receipt_of(anchors, anchor=anchor, version=version))


def _with_evidence_of(label: str) -> Callable[[dict], str]:
    """The genuine version 2 receipt carrying the evidence of another anchor, ``label``."""
    def build(anchors: dict) -> str:
        receipt = receipt_of(anchors, version=2)
        _anchor(receipt)["evidence"] = anchors[label]["evidence"]
        return text(receipt)
    return build


# --- several anchors ---------------------------------------------------------------------

#: An anchor on a chain the corpus gives no node for: never checked, never failed.
ELSEWHERE = {"tx_hash": "ab" * 32, "chain_id": 11155111,
             "sender": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "block_number": 123,
             "block_hash": "0x" + "cd" * 32, "block_time": "2026-11-18T12:00:00Z"}


def entry_of(anchors: dict, label: str, name: str, **extra) -> dict:
    """A version 2 entry named ``name`` of the anchor ``label`` (with its evidence)."""
    anchor = anchors[label] if label in anchors else ELSEWHERE
    return anchor_entry(anchor | {"name": name}) | extra


def several(*entries: Callable[[dict], dict]) -> Callable[[dict], str]:
    """A builder: the genuine version 2 receipt with the entries ``entries`` build."""
    def build(anchors: dict) -> str:
        receipt = receipt_of(anchors, version=2)
        receipt["anchors"] = [entry(anchors) for entry in entries]
        return text(receipt)
    return build


def _on_chain(label: str, name: str, **extra) -> Callable[[dict], dict]:
    return lambda anchors: entry_of(anchors, label, name, **extra)


def _rolled_up(anchors: dict, *, label: str = "rollup", proof: list | None = None) -> dict:
    rollup = {"root": ROLLUP.root.hex(), "proof": proof or ROLLUP.proof(ROLLED_INDEX)}
    return entry_of(anchors, label, "daily", rollup=rollup)


def _rollup_path_changed(anchors: dict) -> dict:
    proof = copy.deepcopy(ROLLUP.proof(ROLLED_INDEX))
    (side, _), = proof[0].items()
    proof[0] = {side: "00" * 32}
    return _rolled_up(anchors, proof=proof)


def _renewed(anchors: dict, *, change: Callable[[dict], None] | None = None) -> dict:
    """The batch's anchor, named ``old``, renewed by the renewal anchor (``renewal``)."""
    tree = renewal_tree(anchors)
    renewal = {"evidenceDigest": tree.node(0, 0).hex(), "proof": tree.proof(0),
               "root": tree.root.hex(), "anchors": [entry_of(anchors, "renewal", "renewal")]}
    if change is not None:
        change(renewal)
    return entry_of(anchors, "batch", "old", renewal=renewal)


def _renewal_path_changed(renewal: dict) -> None:
    renewal["proof"][0] = {next(iter(renewal["proof"][0])): "00" * 32}


def _renewal_anchor_block_changed(renewal: dict) -> None:
    renewal["anchors"][0]["blockHash"] = "0x" + "00" * 32
    del renewal["anchors"][0]["evidence"]


@dataclass(frozen=True)
class Entry:
    build: Callable[[dict], str]
    state: str
    exit_code: int
    failed_step: str | None = None
    error: str | None = None
    options: dict = field(default_factory=dict)

    def verdict(self) -> dict:
        return {"state": self.state, "exitCode": self.exit_code,
                "failedStep": self.failed_step, "error": self.error, "options": self.options}


def _failed(build, step: str, **options) -> Entry:
    return Entry(build, "failed", 1, step, options=options)


def _unusable(build, error: str) -> Entry:
    return Entry(build, UNUSABLE, 2, error=error)


#: The batch of records made after a block, anchored twice on one chain under two names.
TWICE_MADE_AFTER = (("not-before", "local"), ("not-before-again", "later"))

ENTRIES: dict[str, Entry] = {
    "genuine-v1": Entry(_on("batch"), "verified-no-file", 3),
    "genuine-v1-pinned": Entry(_on("batch"), "verified-no-file", 0,
                               options={"expectSender": NOTARY}),
    "genuine-v1-odd-last-leaf": Entry(lambda a: text(receipt_of(a, index=4)),
                                      "verified-no-file", 3),
    "genuine-v1-with-its-file": Entry(_on("batch"), "verified", 3,
                                      options={"file": "ds2.xpt"}),
    "genuine-v1-with-another-file": Entry(_on("batch"), "wrong-file", 1, "file-hash",
                                          options={"file": "ds3.xpt"}),
    "plain-chainpoint": Entry(_plain, "verified-no-file", 3),
    "plain-chainpoint-with-its-file": Entry(_plain, "verified", 3,
                                            options={"file": "plain1.bin"}),
    "plain-chainpoint-source-only": Entry(lambda a: _plain(a, only_source=True),
                                          "verified-no-file", 3),
    "plain-chainpoint-foreign-chain-name": _failed(
        lambda a: _plain(a, chain="ethereumRopsten", chainId=3), "chain"),
    "plain-chainpoint-chain-name-not-chain-id": _unusable(
        lambda a: _plain(a, chain="ethereumSepolia"),
        "anchors[0].chain 'ethereumSepolia' does not name chainId 31337 "
        "(that is 'ethereumLocal')"),
    "swapped-proof-side": _failed(edited(_swap_first_side), "merkle-path"),
    "leaf-index-not-the-proofs": _failed(
        edited(lambda r: r["trialnotary"]["batch"].update(leafIndex=3)), "merkle-path"),
    "leaf-count-not-the-proofs": _failed(
        edited(lambda r: r["trialnotary"]["batch"].update(leafCount=4)), "merkle-path"),
    "inner-node-as-target": _failed(edited(_inner_node_as_target), "leaf"),
    "to-another-address": _failed(_on("to-another-address"), "anchor-tx"),
    "with-value": _failed(_on("with-value"), "anchor-tx"),
    "reverted": _failed(_on("reverted"), "anchor-tx"),
    "extra-calldata": _failed(_on("extra-calldata"), "anchor-tx"),
    "sender-misstated": _failed(
        edited(lambda r: _anchor(r).update(sender=NOTARY), anchor="other-sender"), "sender"),
    "other-sender-pinned": _failed(_on("other-sender"), "sender",
                                   expectSender=NOTARY),
    "block-hash-changed": _failed(
        edited(lambda r: _anchor(r).update(blockHash="0x" + "00" * 32)), "block"),
    "leaf-index-beyond-count": _unusable(
        edited(lambda r: r["trialnotary"]["batch"].update(leafIndex=5)),
        "trialnotary.batch.leafIndex 5 is not below leafCount 5"),
    "wrong-context": _unusable(
        edited(lambda r: r.update({"@context": "https://w3id.org/chainpoint/v3"})),
        "@context must be 'https://w3id.org/chainpoint/v2', "
        "not 'https://w3id.org/chainpoint/v3'"),
    "wrong-type": _unusable(
        edited(lambda r: r.update(type="ChainpointSHA512v2")),
        "type must be 'ChainpointSHA256v2', not 'ChainpointSHA512v2'"),
    "chain-name-not-chain-id": _unusable(
        edited(lambda r: _anchor(r).update(chain="ethereumSepolia")),
        "anchors[0].chain 'ethereumSepolia' does not name chainId 31337 "
        "(that is 'ethereumLocal')"),
    "chain-id-written-31337.0": _unusable(
        rewritten('"chainId": 31337', '"chainId": 31337.0'),
        "anchors[0].chainId must be a positive integer"),
    "chain-id-written-3.1337e4": _unusable(
        rewritten('"chainId": 31337', '"chainId": 3.1337e4'),
        "anchors[0].chainId must be a positive integer"),
    "leaf-index-written-2e0": _unusable(
        rewritten('"leafIndex": 2', '"leafIndex": 2e0'),
        "trialnotary.batch.leafIndex must be a non-negative integer"),
    "upper-case-target-hash": _unusable(
        edited(lambda r: r.update(targetHash=r["targetHash"].upper())),
        "targetHash must be 64 lowercase hex digits"),
    "upper-case-block-hash": _unusable(
        edited(lambda r: _anchor(r).update(blockHash="0x" + _anchor(r)["blockHash"][2:].upper())),
        "anchors[0].blockHash must be 0x and 64 lowercase hex digits"),
    "duplicate-key": _unusable(
        rewritten('"chainId": 31337', '"chainId": 1,\n      "chainId": 31337'),
        "duplicate key 'chainId'"),
    "duplicate-key-same-value": _unusable(
        rewritten('"type": "ChainpointSHA256v2",',
                  '"type": "ChainpointSHA256v2",\n  "type": "ChainpointSHA256v2",'),
        "duplicate key 'type'"),
    "nan": _unusable(rewritten('"blockNumber": 1', '"blockNumber": NaN'),
                     "NaN is not valid JSON"),
    "infinity": _unusable(rewritten('"chainId": 31337', '"chainId": Infinity'),
                          "Infinity is not valid JSON"),
    "nested-too-deep": _unusable(
        rewritten('"type": "ChainpointSHA256v2",',
                  '"type": "ChainpointSHA256v2",\n  "deep": ' + "[" * 64 + "]" * 64 + ","),
        "nested deeper than 64 levels"),
    "record-site-a-number": _unusable(
        edited(lambda r: r["trialnotary"]["record"].update(site=1)),
        "trialnotary.record.site must be a string"),
    "record-size-written-26.0": _unusable(
        rewritten('"sizeBytes": 26', '"sizeBytes": 26.0'),
        "trialnotary.record.sizeBytes must be a non-negative integer or null"),
    # --- version 2: the anchor's chain evidence, the notary's identity ---------------------
    "genuine-v2": Entry(_on("batch", 2), "verified-no-file", 3),
    "genuine-v2-pinned": Entry(_on("batch", 2), "verified-no-file", 0,
                               options={"notary": "identity.json"}),
    "genuine-v2-with-its-file": Entry(_on("batch", 2), "verified", 0,
                                      options={"notary": "identity.json", "file": "ds2.xpt"}),
    "plain-chainpoint-with-evidence": Entry(lambda a: _plain(a, evidence=True),
                                            "verified-no-file", 3),
    "forged-origin": _failed(_on("other-sender", 2), "notary", notary="identity.json"),
    "forged-origin-unpinned": Entry(_on("other-sender", 2), "verified-no-file", 3),
    "key-revoked-before-the-block": _failed(_on("batch", 2), "notary",
                                            notary="identity-revoked.json"),
    "header-changed": _failed(edited(_change_header, version=2), "evidence"),
    "transaction-proof-node-changed": _failed(
        edited(_change_proof_node("transactionProof"), version=2), "evidence"),
    "receipt-proof-node-changed": _failed(
        edited(_change_proof_node("receiptProof"), version=2), "evidence"),
    "transaction-index-changed": _failed(
        edited(lambda r: _evidence(r).update(transactionIndex=1), version=2), "evidence"),
    "evidence-of-another-transaction": _failed(_with_evidence_of("plain"), "evidence"),
    "evidence-block-hash-changed": _failed(
        edited(lambda r: _anchor(r).update(blockHash="0x" + "00" * 32), version=2), "evidence"),
    "evidence-block-time-changed": _failed(
        edited(lambda r: _anchor(r).update(blockTime="2026-11-18T11:06:53Z"), version=2),
        "evidence"),
    "evidence-sender-misstated": _failed(
        edited(lambda r: _anchor(r).update(sender=NOTARY), anchor="other-sender", version=2),
        "evidence"),
    "evidence-to-another-address": _failed(_on("to-another-address", 2), "evidence"),
    "evidence-with-value": _failed(_on("with-value", 2), "evidence"),
    "evidence-reverted": _failed(_on("reverted", 2), "evidence"),
    "evidence-extra-calldata": _failed(_on("extra-calldata", 2), "evidence"),
    "evidence-without-header": _unusable(
        edited(lambda r: _evidence(r).pop("header"), version=2),
        "anchors[0].evidence must have exactly the keys transaction, transactionIndex, "
        "transactionProof, receipt, receiptProof, header; missing: header"),
    "evidence-upper-case-hex": _unusable(
        edited(lambda r: _evidence(r).update(header="0x" + _evidence(r)["header"][2:].upper()),
               version=2),
        "anchors[0].evidence.header must be 0x and lowercase hex bytes"),
    "evidence-index-written-0.0": _unusable(
        rewritten('"transactionIndex": 0', '"transactionIndex": 0.0', version=2),
        "anchors[0].evidence.transactionIndex must be a non-negative integer"),
    "plain-chainpoint-evidence-source-only": _unusable(
        lambda a: _plain(a, only_source=True, evidence=True), "anchors[0].chain is missing"),
    # --- several anchors: each anchor with its own steps, the verdict over them all ---------
    "several-two-anchors": Entry(
        several(_on_chain("batch-again", "later"), _on_chain("batch", "local")),
        "verified-no-file", 3),
    "several-two-anchors-pinned": Entry(
        several(_on_chain("batch", "local"), _on_chain("batch-again", "later")),
        "verified", 0, options={"notary": "identity.json", "file": "ds2.xpt"}),
    "several-one-forged": _failed(
        several(_on_chain("batch", "local"), _on_chain("other-sender", "forged")), "notary",
        notary="identity.json"),
    "several-one-anchor-wrong": _failed(
        several(_on_chain("batch", "local"), _on_chain("extra-calldata", "wrong")), "evidence"),
    "several-a-chain-without-a-node": Entry(
        several(_on_chain("batch", "local"), _on_chain("elsewhere", "sepolia")),
        "verified-no-file", 3),
    "several-no-anchor-checked": Entry(
        several(_on_chain("elsewhere", "sepolia"), _on_chain("elsewhere", "sepolia-again")),
        "unchecked", 4),
    "several-require-all-one-not-checked": Entry(
        several(_on_chain("batch", "local"), _on_chain("elsewhere", "sepolia")),
        "unchecked", 4, options={"expectSender": NOTARY, "require": ["all"]}),
    "several-require-the-checked-one": Entry(
        several(_on_chain("batch", "local"), _on_chain("elsewhere", "sepolia")),
        "verified-no-file", 0, options={"expectSender": NOTARY, "require": ["local"]}),
    "several-require-a-missing-anchor": Entry(
        several(_on_chain("batch", "local"), _on_chain("batch-again", "later")),
        "failed", 1, options={"require": ["local", "hoodi"]}),
    "one-anchor-require-a-missing-anchor": Entry(
        _on("batch", 2), "failed", 1, options={"require": ["hoodi"]}),
    "rollup": Entry(several(_rolled_up), "verified-no-file", 3),
    "rollup-pinned-beside-the-batch-anchor": Entry(
        several(_rolled_up, _on_chain("batch-again", "local")), "verified-no-file", 0,
        options={"notary": "identity.json"}),
    "rollup-path-changed": _failed(several(_rollup_path_changed), "rollup"),
    "rollup-anchor-carrying-the-batch-root": _failed(
        several(lambda a: _rolled_up(a, label="batch")), "evidence"),
    "rollup-anchor-carrying-the-batch-root-without-evidence": _failed(
        several(lambda a: {key: value for key, value in _rolled_up(a, label="batch").items()
                           if key != "evidence"}), "anchor-tx"),
    "renewal": Entry(several(_renewed), "verified-no-file", 3),
    "renewal-pinned": Entry(several(_renewed), "verified-no-file", 0,
                            options={"notary": "identity.json"}),
    "renewal-path-changed": _failed(
        several(lambda a: _renewed(a, change=_renewal_path_changed)), "renewal"),
    "renewal-of-another-anchor": _failed(
        several(lambda a: _renewed(a, change=lambda r: r.update(evidenceDigest="11" * 32))),
        "renewal"),
    "renewal-anchor-fails": _failed(
        several(lambda a: _renewed(a, change=_renewal_anchor_block_changed)), "renewal"),
    "several-malformed-rollup": _unusable(
        several(lambda a: _rolled_up(a) | {"rollup": {"root": ROLLUP.root.hex()}}),
        "anchors[0].rollup must have exactly the keys root, proof; missing: proof"),
    "several-duplicate-name": _unusable(
        several(_on_chain("batch", "local"), _on_chain("batch-again", "local")),
        "anchors[1].name 'local' is not unique in anchors"),
    "several-unknown-type": _unusable(
        several(_on_chain("batch", "local"), lambda a: {"type": "BTCOpReturn", "name": "btc"}),
        "anchors[1].type must be 'ETHData' or 'RFC3161', not 'BTCOpReturn'"),
    "not-before": Entry(_made_after(0), "verified-no-file", 3),
    "not-before-pinned": Entry(_made_after(0), "verified-no-file", 0,
                               options={"notary": "identity.json"}),
    "not-before-block-not-on-the-chain": _failed(_made_after(1), "not-before"),
    "not-before-several-anchors": Entry(_made_after(0, on=TWICE_MADE_AFTER),
                                        "verified-no-file", 3),
    "not-before-several-anchors-block-not-on-the-chain": _failed(
        _made_after(1, on=TWICE_MADE_AFTER), "not-before"),
    "not-before-upper-case-hash": _unusable(
        _made_after(0, lambda nb: nb.update(blockHash=nb["blockHash"].upper())),
        "trialnotary.record.notBefore.blockHash must be 0x and 64 lowercase hex digits"),
    "not-before-another-key": _unusable(
        _made_after(0, lambda nb: nb.update(blockTime="2026-11-18T11:06:52Z")),
        "trialnotary.record.notBefore must be an object of exactly blockHash, blockNumber "
        "and chainId"),
    "sign-off": Entry(_signed(0), "verified-no-file", 3),
    "sign-off-pinned": Entry(_signed(0), "verified-no-file", 0,
                             options={"notary": "identity.json"}),
    "sign-off-copied-onto-another-registration": _failed(_signed(0, _signs_another), "leaf"),
    "sign-off-copied-and-rehashed": _failed(_signed(0, _signs_another_rehashed), "leaf"),
    "sign-off-digest-not-its-manifestation": _failed(_signed(1), "sign-off"),
    "sign-off-signed-after-the-proven-time": _failed(_signed(2), "sign-off"),
    "sign-off-without-its-manifestation": _failed(
        _signed(0, lambda record: record.pop("signOff")), "leaf"),
    "several-time-stamp-token-not-base64": _unusable(
        several(_on_chain("batch", "local"),
                lambda a: {"type": "RFC3161", "name": "tsa", "token": "MAA",
                           "genTime": "2026-11-18T11:07:00Z"}),
        "anchors[1].token must be a time-stamp token in base64 (DER)"),
}


# --- reading and writing the files ----------------------------------------------------

def load_verdicts() -> dict[str, dict]:
    return json.loads(VERDICTS.read_text(encoding="utf-8"))


def load_chain() -> dict[str, dict]:
    return json.loads(CHAIN.read_text(encoding="utf-8"))["transactions"]


def chain_facts(anchors: dict) -> dict:
    """What replay must reproduce: each transaction's hash, block number, hash and time."""
    return {label: {"sourceId": a["tx_hash"], "blockNumber": a["block_number"],
                    "blockHash": a["block_hash"], "blockTime": a["block_time"]}
            for label, a in anchors.items()}


CLI, BROWSER = "cli", "browser"


def entries(verifier: str) -> list[dict]:
    """The receipts of the corpus for ``verifier`` (CLI or BROWSER), by name: ``{"name",
    "path", "text", "options"}``. A verdict line with ``"only": ["cli"]`` holds for the CLI
    alone, for a step the browser's verifier would lack (none does now: it has every step
    the CLI has); every other line holds for both."""
    return [{"name": name, "path": ASSETS / f"{name}.json",
             "text": (ASSETS / f"{name}.json").read_text(encoding="utf-8"),
             "options": verdict.get("options") or {}}
            for name, verdict in sorted(load_verdicts().items())
            if verifier in verdict.get("only", [CLI, BROWSER])]


def expected(verdict: dict) -> dict:
    """A verdict line as the outcomes are compared: state, exit code, failed step, error."""
    return {key: verdict.get(key) for key in ("state", "exitCode", "failedStep", "error")}


def outcome_of(answer: dict) -> dict:
    """One receipt's answer in ``trialnotary verify --json`` as an outcome (the form the
    browser's runner, tests/web/corpus-runner.mjs, writes too): the verdict, every step
    (and the anchor it belongs to, with several anchors), each anchor's state, time, pin,
    summary and steps, the anchor whose time is proven, and the nodes' notes."""
    if "verdict" not in answer:
        return {"state": UNUSABLE, "exitCode": answer["exitCode"], "failedStep": None,
                "error": answer["error"], "text": None, "note": None, "steps": [],
                "anchors": [], "provenBy": None, "provenTime": None, "pinned": None,
                "nodes": [], "madeAfter": None}
    failed = [step["name"] for step in answer["steps"] if step["ok"] is False]
    return {"state": answer["verdict"]["state"], "exitCode": answer["exitCode"],
            "failedStep": failed[0] if failed else None, "error": None,
            "text": answer["verdict"]["text"], "note": answer["verdict"]["note"],
            "steps": [[step["name"], step["ok"], step["detail"], step.get("anchor")]
                      for step in answer["steps"]],
            "anchors": answer["anchors"], "provenBy": answer.get("provenBy"),
            "provenTime": answer["provenTime"], "pinned": answer["pinned"],
            "nodes": [[node["url"], node["answered"], node["detail"]]
                      for node in answer["nodes"]],
            "madeAfter": answer.get("madeAfter")}


def cli_flags(options: dict) -> list[str]:
    flags = ["--expect-sender", options["expectSender"]] if "expectSender" in options else []
    flags += ["--notary", str(FILES / options["notary"])] if "notary" in options else []
    flags += [flag for name in options.get("require", ()) for flag in ("--require", name)]
    return flags + (["--file", str(FILES / options["file"])] if "file" in options else [])


def browser_options(options: dict) -> dict:
    """An entry's options as the browser's verifyReceipt takes them (the file as its
    digest, size and name, as the page gives them after hashing it; the identity document
    as ``notaryDocument``, which tests/web/corpus-runner.mjs reads with parseIdentity)."""
    given = {"expectSender": options["expectSender"]} if "expectSender" in options else {}
    given |= {"require": options["require"]} if "require" in options else {}
    if "notary" in options:
        given["notaryDocument"] = json.loads((FILES / options["notary"]).read_text())
    if "file" in options:
        content = (FILES / options["file"]).read_bytes()
        given |= {"fileName": options["file"], "fileSize": len(content),
                  "fileSha256": hashlib.sha256(content).hexdigest()}
    return given


def _one(answer: dict, exit_code: int) -> dict:
    """The answer about one receipt in the form of a list's item (``command.py``'s
    ``_Outcome.to_json``): an unusable one names its path and has no ``exitCode``."""
    if "verdict" in answer:
        return answer
    return {"error": answer["error"].split(": not a usable receipt: ", 1)[1],
            "exitCode": exit_code}


def cli_outcomes(rpc_url: str) -> dict[str, dict]:
    """``trialnotary verify --json`` over the whole corpus: one process per set of options,
    and per receipt given with a file."""
    groups: dict[str, list[dict]] = {}
    for entry in entries(CLI):
        key = entry["name"] if "file" in entry["options"] else ""
        groups.setdefault(json.dumps(entry["options"], sort_keys=True) + key, []).append(entry)
    outcomes = {}
    for group in groups.values():
        flags = cli_flags(group[0]["options"])
        ran = subprocess.run([sys.executable, "-m", "trialnotary.cli", "verify", "--json",
                              "--rpc", rpc_url, *flags, *(str(e["path"]) for e in group)],
                             capture_output=True, text=True, timeout=120, env=os.environ)
        answers = json.loads(ran.stdout)
        if not isinstance(answers, list):  # one receipt: its answer alone, the code apart
            answers = [_one(answers, ran.returncode)]
        for entry, answer in zip(group, answers, strict=True):
            outcomes[entry["name"]] = outcome_of(answer)
    return outcomes


def write_corpus() -> None:
    node = start_node()
    try:
        anchors = replay(node)
        proven = with_evidence(node, anchors)
    finally:
        node.stop()
    FILES.mkdir(parents=True, exist_ok=True)
    for name, content in CORPUS_FILES.items():
        (FILES / name).write_bytes(content)
    CHAIN.write_text(json.dumps({"genesis": GENESIS, "nodeOptions": list(NODE_OPTIONS),
                                 "transactions": chain_facts(anchors)}, indent=2) + "\n")
    verdicts = load_verdicts() if VERDICTS.exists() else {}
    for name, entry in ENTRIES.items():
        (ASSETS / f"{name}.json").write_text(entry.build(proven), encoding="utf-8")
        verdicts[name] = entry.verdict()
    VERDICTS.write_text(json.dumps(dict(sorted(verdicts.items())), indent=2) + "\n")


if __name__ == "__main__":
    write_corpus()
