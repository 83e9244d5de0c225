"""Check a receipt step by step: file, leaf, Merkle path, and the anchor on chain nodes.

A verifier people must be able to trust and read on their own: it imports only the standard
library, ``requests`` and the pure helpers of :mod:`trialnotary.receipt`, never the server's
configuration, database or web3. It talks plain JSON-RPC to whichever nodes it is given, so
``trialnotary verify`` starts fast and asks nothing of the notary.

The step names and their meaning are a contract (DESIGN.md, "Verification steps").
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from trialnotary.proof.receipt import (
    CHAIN_NAMES,
    CHAINPOINT_TYPE,
    RECEIPT_VERSION,
    RECORD_KEYS,
    block_time,
    chain_name,
    fold_proof,
    parse_hash,
    record_leaf,
)

OFFLINE_STEPS = ("file-hash", "leaf", "merkle-path")
CHAIN_STEPS = ("chain", "anchor-tx", "sender", "block", "confirmations")
STEPS = OFFLINE_STEPS + CHAIN_STEPS

#: Nodes asked when none is given, by chain id. Public endpoints need no key.
DEFAULT_RPC_URLS = {
    31337: "http://127.0.0.1:8545",
    11155111: "https://ethereum-sepolia-rpc.publicnode.com",
    560048: "https://ethereum-hoodi-rpc.publicnode.com",
    1: "https://ethereum-rpc.publicnode.com",
}
CHAIN_IDS_BY_NAME = {name: chain_id for chain_id, name in CHAIN_NAMES.items()}

RPC_TIMEOUT = 5.0
CHUNK = 1024 * 1024
MAX_RECEIPT_BYTES = 16 * 1024 * 1024
FINALIZED = "finalized"

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_BLOCK_HASH = re.compile(r"0x[0-9a-f]{64}")
_BLOCK_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
_RPC_URL = re.compile(r"https?://[^\s/?#]+(?:[/?#]\S*)?", re.IGNORECASE)

#: What a report's first line answers (``Verdict.state``; also in the JSON output).
VERIFIED = "verified"  # the file given is the receipt's, and the anchor holds
VERIFIED_NO_FILE = "verified-no-file"  # the receipt holds, but no file was compared
WRONG_FILE = "wrong-file"  # the file given is not the receipt's
FAILED = "failed"  # the receipt itself fails a step
UNCHECKED = "unchecked"  # nothing could be checked on chain: no node answered

#: ``trialnotary verify``'s exit codes (a contract: README, "Verifying a receipt").
EXIT_PASS, EXIT_FAILED, EXIT_UNUSABLE, EXIT_NOT_PINNED, EXIT_UNCHECKED = 0, 1, 2, 3, 4
#: Best first. With several receipts the worst one's code is the command's.
EXIT_ORDER = (EXIT_PASS, EXIT_NOT_PINNED, EXIT_UNCHECKED, EXIT_FAILED, EXIT_UNUSABLE)


class ReceiptError(ValueError):
    """The receipt cannot be read as a receipt at all (as opposed to failing a step)."""


class NodeUnreachable(Exception):
    """A node gave no JSON-RPC answer: connection refused, timeout, not JSON."""


class RpcError(Exception):
    """A node answered with a JSON-RPC error object."""


# --- results -------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    name: str
    ok: bool | None  # None: skipped
    detail: str


@dataclass
class NodeNote:
    url: str
    answered: bool
    detail: str
    chain_id: int | None = None
    head: int | None = None


@dataclass(frozen=True)
class Anchor:
    """The receipt's ``ETHData`` anchor; ``None`` where a plain Chainpoint receipt is silent."""

    tx_hash: str
    chain_id: int | None
    chain: str | None
    sender: str | None
    block_number: int | None
    block_hash: str | None
    block_time: str | None


@dataclass(frozen=True)
class Claims:
    """What a receipt asserts, validated for shape."""

    target: bytes
    root: bytes
    proof: list
    anchor: Anchor
    record: dict | None


@dataclass(frozen=True)
class Verdict:
    """The answer in words: ``text`` is the report's first line, ``note`` an optional
    second one; ``state`` is one of the verdict states above."""

    state: str
    text: str
    note: str | None
    exit_code: int


@dataclass
class Report:
    claims: Claims
    confirmations: int | str
    steps: list[Step]
    nodes: list[NodeNote] = field(default_factory=list)
    seen_block_time: str | None = None
    pinned: str | None = None
    wrong_file: bool = False  # a file was read and its SHA-256 is not the receipt's

    @property
    def chain_checked(self) -> bool:
        """Whether any node answered: without one, the chain steps say nothing either way."""
        return any(note.answered for note in self.nodes)

    @property
    def ok(self) -> bool:
        return self.chain_checked and all(step.ok is not False for step in self.steps)

    @property
    def block_time(self) -> str | None:
        return self.claims.anchor.block_time or self.seen_block_time

    @property
    def proven_time(self) -> str | None:
        return self.block_time if self.ok else None

    @property
    def transaction(self) -> str:
        return "0x" + self.claims.anchor.tx_hash

    @property
    def chain_label(self) -> str:
        anchor = self.claims.anchor
        if anchor.chain_id is None:
            return anchor.chain or "an unnamed chain"
        return f"{anchor.chain or chain_name(anchor.chain_id)} (chain {anchor.chain_id})"

    def step(self, name: str) -> Step:
        return next(step for step in self.steps if step.name == name)

    @property
    def verdict(self) -> Verdict:
        return verdict_of(self)

    def to_json(self) -> dict:
        anchor = self.claims.anchor
        verdict = self.verdict
        return {
            "ok": self.ok,
            "verdict": {"state": verdict.state, "text": verdict.text, "note": verdict.note},
            "exitCode": verdict.exit_code,
            "pinned": self.pinned is not None,
            "steps": [{"name": s.name, "ok": s.ok, "detail": s.detail} for s in self.steps],
            "nodes": [{"url": n.url, "answered": n.answered, "detail": n.detail,
                       "chainId": n.chain_id, "head": n.head} for n in self.nodes],
            "provenTime": self.proven_time,
            "blockTime": self.block_time,
            "transaction": self.transaction,
            "chain": anchor.chain or (chain_name(anchor.chain_id) if anchor.chain_id else None),
            "chainId": anchor.chain_id,
            "blockNumber": anchor.block_number,
            "targetHash": self.claims.target.hex(),
            "merkleRoot": self.claims.root.hex(),
            "confirmations": self.confirmations,
        }


# --- reading a receipt ---------------------------------------------------------------

def load_receipt(path: str | Path) -> dict:
    """The receipt file as JSON; :class:`ReceiptError` if it is not a JSON object.

    Duplicate keys and NaN/Infinity are refused: different JSON parsers would read them
    differently, and a receipt must mean one thing.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_RECEIPT_BYTES + 1)
    except OSError as exc:
        raise ReceiptError(f"cannot read the file: {exc.strerror or exc}") from None
    if len(data) > MAX_RECEIPT_BYTES:
        raise ReceiptError("larger than 16 MiB: not a receipt")
    try:
        value = json.loads(data.decode("utf-8-sig"), parse_constant=_refuse_constant,
                           object_pairs_hook=_refuse_duplicates)
    except UnicodeDecodeError:
        raise ReceiptError("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ReceiptError(f"not valid JSON ({exc})") from None
    except ValueError as exc:
        raise ReceiptError(str(exc)) from None
    if not isinstance(value, dict):
        raise ReceiptError("a receipt is a JSON object")
    return value


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _refuse_duplicates(pairs: list) -> dict:
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def parse_receipt(receipt: Any) -> Claims:
    """Validate a receipt's shape; :class:`ReceiptError` names the first bad field."""
    if not isinstance(receipt, dict):
        raise ReceiptError("a receipt is a JSON object")
    if receipt.get("type") != CHAINPOINT_TYPE:
        raise ReceiptError(f"type must be {CHAINPOINT_TYPE!r}, not {receipt.get('type')!r}")
    target = _hash_field(receipt, "targetHash")
    root = _hash_field(receipt, "merkleRoot")
    proof = _required(receipt, "proof", "")
    if not isinstance(proof, list):
        raise ReceiptError("proof must be a list")
    try:
        fold_proof(target, proof)
    except ValueError as exc:
        raise ReceiptError(str(exc)) from None
    extension = receipt.get("trialnotary")
    record = _parse_extension(extension) if extension is not None else None
    anchor = _parse_anchor(receipt.get("anchors"), full=record is not None)
    return Claims(target=target, root=root, proof=proof, anchor=anchor, record=record)


def _required(obj: dict, key: str, where: str) -> Any:
    if key not in obj:
        raise ReceiptError(f"{where}{key} is missing")
    return obj[key]


def _hash_field(obj: dict, key: str, where: str = "") -> bytes:
    try:
        return parse_hash(_required(obj, key, where), what=where + key)
    except ValueError as exc:
        raise ReceiptError(str(exc)) from None


def _parse_extension(extension: Any) -> dict:
    if not isinstance(extension, dict):
        raise ReceiptError("trialnotary must be an object")
    version = _required(extension, "receiptVersion", "trialnotary.")
    if version != RECEIPT_VERSION:
        raise ReceiptError(f"trialnotary.receiptVersion {version!r} is not supported "
                           f"(this verifier reads version {RECEIPT_VERSION})")
    record = _required(extension, "record", "trialnotary.")
    if not isinstance(record, dict):
        raise ReceiptError("trialnotary.record must be an object")
    missing = [key for key in RECORD_KEYS if key not in record]
    extra = sorted(set(record) - set(RECORD_KEYS))
    if missing or extra:
        raise ReceiptError("trialnotary.record must have exactly the version-1 keys"
                           + (f"; missing: {', '.join(missing)}" if missing else "")
                           + (f"; unknown: {', '.join(extra)}" if extra else ""))
    _hash_field(record, "sha256", "trialnotary.record.")
    return record


def _parse_anchor(anchors: Any, *, full: bool) -> Anchor:
    """The one ``ETHData`` anchor. A trialnotary receipt must carry every field; a plain
    Chainpoint receipt may carry only ``sourceId``. Other anchor types are ignored."""
    if not isinstance(anchors, list):
        raise ReceiptError("anchors must be a list")
    eth = [a for a in anchors if isinstance(a, dict) and a.get("type") == "ETHData"]
    if len(eth) != 1:
        raise ReceiptError(f"anchors must hold exactly one ETHData anchor, not {len(eth)}")
    anchor, where = eth[0], f"anchors[{anchors.index(eth[0])}]."
    tx_hash = _hash_field(anchor, "sourceId", where).hex()

    def optional(key, check, description):
        if key not in anchor and not full:
            return None
        value = _required(anchor, key, where)
        if not check(value):
            raise ReceiptError(f"{where}{key} must be {description}")
        return value

    chain = optional("chain", lambda v: isinstance(v, str), "a string")
    chain_id = optional("chainId", lambda v: _is_int(v) and v > 0, "a positive integer")
    return Anchor(
        tx_hash=tx_hash,
        chain_id=chain_id if chain_id is not None else CHAIN_IDS_BY_NAME.get(chain),
        chain=chain,
        sender=optional("sender", _is_match(_ADDRESS), "0x and 40 hex digits"),
        block_number=optional("blockNumber", lambda v: _is_int(v) and v >= 0,
                              "a non-negative integer"),
        block_hash=optional("blockHash", _is_match(_BLOCK_HASH),
                            "0x and 64 lowercase hex digits"),
        block_time=optional("blockTime", _is_match(_BLOCK_TIME),
                            "an RFC 3339 UTC time like 2026-11-23T19:00:12Z"),
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_match(pattern: re.Pattern):
    return lambda value: isinstance(value, str) and pattern.fullmatch(value) is not None


def parse_confirmations(value: int | str) -> int | str:
    """A positive number of confirmations, or ``"finalized"``."""
    if isinstance(value, str) and value.strip().lower() == FINALIZED:
        return FINALIZED
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1 or isinstance(value, bool):
        raise ValueError(f"confirmations must be a positive number or 'finalized', "
                         f"not {value!r}")
    return number


def parse_address(value: str) -> str:
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise ValueError(f"an address is 0x and 40 hex digits, not {value!r}")
    return value


def parse_rpc_url(value: str) -> str:
    """A node's URL: http(s), with a host."""
    if isinstance(value, str) and _RPC_URL.fullmatch(value.strip()):
        return value.strip()
    raise ValueError(f"{value!r} is not an http(s) URL")


def default_rpc_urls(chain_id: int | None) -> list[str]:
    return [DEFAULT_RPC_URLS[chain_id]] if chain_id in DEFAULT_RPC_URLS else []


# --- steps without a node ------------------------------------------------------------

def _short(hex_value: str) -> str:
    prefix = "0x" if hex_value.startswith("0x") else ""
    return prefix + hex_value[len(prefix):][:8] + "…"


def _file_sha256(path: str | Path) -> tuple[str, int]:
    """The file's SHA-256 (hex) and its size in bytes."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _check_file(claims: Claims, file_path: str | Path | None) -> tuple[Step, bool]:
    """The file-hash step, and whether the file is another one than the receipt's.

    The record's ``sizeBytes``, when it holds a number, must be the file's size too.
    """
    if file_path is None:
        return Step("file-hash", None, "no file given"), False
    if claims.record is not None:
        expected, against = claims.record["sha256"], "record.sha256"
    else:
        expected, against = claims.target.hex(), "targetHash"
    name = Path(file_path).name
    try:
        actual, size = _file_sha256(file_path)
    except OSError as exc:
        return Step("file-hash", False, f"cannot read {name}: {exc.strerror or exc}"), False
    expected_size = claims.record.get("sizeBytes") if claims.record is not None else None
    sized = _is_int(expected_size)
    wrong_size = (f"{name} is {size} bytes, not record.sizeBytes {expected_size}"
                  if sized and size != expected_size else None)
    if actual != expected:
        detail = f"the SHA-256 of {name} is {_short(actual)}, not {against} {_short(expected)}"
        return Step("file-hash", False, detail + (f"; {wrong_size}" if wrong_size else "")), True
    matched = f"the SHA-256 of {name} is {against} {_short(expected)}"
    if wrong_size:
        return Step("file-hash", False, f"{matched}, but {wrong_size}"), False
    return Step("file-hash", True, matched + (f"; its {size} bytes match record.sizeBytes"
                                              if sized else "")), False


def _check_leaf(claims: Claims) -> Step:
    if claims.record is None:
        return Step("leaf", None, "no trialnotary record: a plain Chainpoint receipt")
    try:
        leaf = record_leaf(claims.record)
    except ValueError as exc:  # e.g. an integer beyond 2^53, a lone surrogate
        return Step("leaf", False, f"the record has no canonical form: {exc}")
    if leaf != claims.target:
        return Step("leaf", False, f"the canonical record hashes to {_short(leaf.hex())}, "
                                   f"not targetHash {_short(claims.target.hex())}")
    return Step("leaf", True, f"the canonical record hashes to targetHash "
                              f"{_short(claims.target.hex())}")


def _check_merkle_path(claims: Claims) -> Step:
    folded = fold_proof(claims.target, claims.proof)
    if folded != claims.root:
        return Step("merkle-path", False, f"folding the proof gives {_short(folded.hex())}, "
                                          f"not the merkleRoot {_short(claims.root.hex())}")
    return Step("merkle-path", True, f"folding {len(claims.proof)} proof step(s) from "
                                     f"targetHash gives merkleRoot {_short(claims.root.hex())}")


# --- one node ------------------------------------------------------------------------

class Node:
    """One JSON-RPC endpoint; each answer is asked for once."""

    def __init__(self, url: str, session: requests.Session, timeout: float = RPC_TIMEOUT):
        self.url = url
        self.session = session
        self.timeout = timeout
        self._answers: dict = {}
        self._next_id = 0
        self.seen_block_time: str | None = None

    def call(self, method: str, *params) -> Any:
        key = (method, params)
        if key not in self._answers:
            self._answers[key] = self._post(method, list(params))
        return self._answers[key]

    def _post(self, method: str, params: list) -> Any:
        self._next_id += 1
        request = {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params}
        try:
            reply = self.session.post(self.url, json=request, timeout=self.timeout)
        except requests.RequestException as exc:
            raise NodeUnreachable(_why_unreachable(exc, self.timeout)) from None
        try:
            body = reply.json()
        except ValueError:
            raise NodeUnreachable(f"HTTP {reply.status_code}, not a JSON-RPC answer") from None
        if not isinstance(body, dict) or ("result" not in body and "error" not in body):
            raise NodeUnreachable(f"HTTP {reply.status_code}, not a JSON-RPC answer")
        if body.get("error") is not None:
            raise RpcError(_describe_rpc_error(method, body["error"]))
        return body["result"]

    def chain_id(self) -> int:
        return _quantity(self.call("eth_chainId"))

    def head(self) -> int:
        return _quantity(self.call("eth_blockNumber"))

    def transaction(self, tx_hash: str) -> dict | None:
        return self.call("eth_getTransactionByHash", "0x" + tx_hash)

    def tx_receipt(self, tx_hash: str) -> dict | None:
        return self.call("eth_getTransactionReceipt", "0x" + tx_hash)

    def block(self, number: int | str) -> dict | None:
        tag = hex(number) if isinstance(number, int) else number
        return self.call("eth_getBlockByNumber", tag, False)


def _why_unreachable(exc: requests.RequestException, timeout: float) -> str:
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout:g} s"
    reason = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(exc))
    return reason.group(1).strip() if reason else f"{type(exc).__name__}: {exc}"


def _describe_rpc_error(method: str, error: Any) -> str:
    if isinstance(error, dict):
        return f"{method}: {error.get('message', 'error')} (code {error.get('code')})"
    return f"{method}: {error}"


def _quantity(value: Any) -> int:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ValueError(f"{value!r} is not a hex quantity")
    return int(value, 16)


def _check_chain(node: Node, claims: Claims) -> tuple[bool, str]:
    actual, expected = node.chain_id(), claims.anchor.chain_id
    if expected is None:
        return True, f"the node is on chain {actual} (the receipt names no chain id)"
    if actual != expected:
        return False, f"the node is on chain {actual}, not the anchor's chain {expected}"
    return True, f"the node is on chain {actual} ({claims.anchor.chain or chain_name(actual)})"


def _check_anchor_tx(node: Node, claims: Claims) -> tuple[bool, str]:
    tx_hash = claims.anchor.tx_hash
    tx = node.transaction(tx_hash)
    label = f"transaction {_short('0x' + tx_hash)}"
    if tx is None:
        return False, f"{label} is not known to the node"
    problems = []
    receipt = node.tx_receipt(tx_hash)
    if receipt is None:
        problems.append("it is not mined yet")
    elif receipt.get("status") is None or _quantity(receipt["status"]) != 1:
        problems.append(f"it failed (receipt status {receipt.get('status')})")
    data = str(tx.get("input", "")).lower()
    if data != "0x" + claims.root.hex():
        problems.append(f"its input is {_describe_data(data)}, not 0x + merkleRoot "
                        f"{_short(claims.root.hex())}")
    if problems:
        return False, f"{label}: " + "; ".join(problems)
    return True, f"{label} succeeded with input 0x + merkleRoot"


def _describe_data(data: str) -> str:
    size = max(len(data) - 2, 0) // 2
    if size == 0:
        return "empty"
    return f"{size} bytes {_short(data)}" if size != 32 else _short(data)


def _check_sender(node: Node, claims: Claims, pinned: str | None) -> tuple[bool, str]:
    sender = node.transaction(claims.anchor.tx_hash)["from"]
    problems = []
    if claims.anchor.sender and claims.anchor.sender.lower() != sender.lower():
        problems.append(f"the receipt's sender is {claims.anchor.sender}")
    if pinned and pinned.lower() != sender.lower():
        problems.append(f"the expected sender is {pinned}")
    if problems:
        return False, f"sent by {sender}, but " + " and ".join(problems)
    shown = claims.anchor.sender or sender
    return True, f"sent by {shown}" + (" (the expected sender)" if pinned else "")


def _check_block(node: Node, claims: Claims) -> tuple[bool, str]:
    anchor = claims.anchor
    tx_block = _quantity(node.transaction(anchor.tx_hash)["blockNumber"])
    number = tx_block if anchor.block_number is None else anchor.block_number
    problems = []
    if tx_block != number:
        problems.append(f"the transaction is in block {tx_block}, not {number}")
    block = node.block(number)
    if block is None:
        return False, "; ".join([*problems, f"the node has no block {number}"])
    block_hash, seen_time = block["hash"].lower(), block_time(_quantity(block["timestamp"]))
    if anchor.block_hash and block_hash != anchor.block_hash:
        problems.append(f"block {number} on the node's canonical chain is "
                        f"{_short(block_hash)}, not the receipt's blockHash "
                        f"{_short(anchor.block_hash)}")
    if anchor.block_time and seen_time != anchor.block_time:
        problems.append(f"block {number}'s time is {seen_time}, not the receipt's blockTime "
                        f"{anchor.block_time}")
    if problems:
        return False, "; ".join(problems)
    node.seen_block_time = seen_time
    return True, f"block {number} {_short(block_hash)} at {seen_time} is on the canonical chain"


def _check_confirmations(node: Node, claims: Claims, need: int | str) -> tuple[bool, str]:
    number = _quantity(node.transaction(claims.anchor.tx_hash)["blockNumber"])
    head = node.head()
    if need == FINALIZED:
        finalized = _quantity(node.block(FINALIZED)["number"])
        if number > finalized:
            return False, (f"block {number} is not finalized yet (the node's finalized block "
                           f"is {finalized}, head {head})")
        return True, f"block {number} is finalized (the node's finalized block is {finalized})"
    have = head - number + 1
    if have < need:
        return False, f"{have} confirmation(s), {need} required (head {head})"
    return True, f"{have} confirmations, {need} required"


def _run(name: str, check, *args) -> Step:
    """One chain step on one node; node errors and odd answers fail the step.

    :class:`NodeUnreachable` passes through: an unreachable node fails no step by itself.
    """
    try:
        ok, detail = check(*args)
    except RpcError as exc:
        return Step(name, False, f"the node answered with an error: {exc}")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return Step(name, False, f"unexpected answer from the node ({type(exc).__name__}: "
                                 f"{exc})")
    return Step(name, ok, detail)


def _skipped(names: tuple[str, ...], reason: str) -> list[Step]:
    return [Step(name, None, reason) for name in names]


def _node_steps(node: Node, claims: Claims, need: int | str, pinned: str | None) -> list[Step]:
    """The chain steps on one node, later ones skipped where an earlier one makes them moot."""
    steps = [_run("chain", _check_chain, node, claims)]
    if steps[0].ok is not True:
        return steps + _skipped(CHAIN_STEPS[1:], "not checked: the node is not on the "
                                                 "anchor's chain")
    steps.append(_run("anchor-tx", _check_anchor_tx, node, claims))
    try:
        tx = node.transaction(claims.anchor.tx_hash)
    except RpcError:
        tx = None
    if not isinstance(tx, dict):
        return steps + _skipped(CHAIN_STEPS[2:], "not checked: no transaction to check")
    steps.append(_run("sender", _check_sender, node, claims, pinned))
    if tx.get("blockNumber") is None:
        return steps + _skipped(CHAIN_STEPS[3:], "not checked: the transaction is not mined")
    steps.append(_run("block", _check_block, node, claims))
    steps.append(_run("confirmations", _check_confirmations, node, claims, need))
    return steps


def _note(node: Node, error: NodeUnreachable | None) -> NodeNote:
    if error is not None:
        return NodeNote(node.url, False, f"unreachable: {error}")
    try:
        chain_id, head = node.chain_id(), node.head()
    except (RpcError, NodeUnreachable, ValueError):
        return NodeNote(node.url, True, "answered")
    return NodeNote(node.url, True, f"answered (chain {chain_id}, head {head})", chain_id, head)


# --- several nodes -------------------------------------------------------------------

def _combine(name: str, results: list[tuple[str, Step]]) -> Step:
    """One verdict for a step from every node that answered.

    Nodes that skipped the step do not count towards it (their ``chain`` step already
    fails); a pass on one node and a failure on another is a disagreement, which fails.
    """
    decided = [(url, step) for url, step in results if step.ok is not None]
    skipped = [url for url, step in results if step.ok is None]
    if not decided:
        return Step(name, None, results[0][1].detail)
    passing = [url for url, step in decided if step.ok]
    failing = [(url, step.detail) for url, step in decided if not step.ok]
    if failing and passing:
        return Step(name, False, f"nodes disagree: passes on {', '.join(passing)}; fails on "
                                 + "; ".join(f"{url} ({detail})" for url, detail in failing))
    if failing:
        if len(failing) == 1:
            return Step(name, False, failing[0][1])
        return Step(name, False, "; ".join(f"{url}: {detail}" for url, detail in failing))
    detail = decided[0][1].detail
    if len(decided) > 1:
        detail += f" ({len(decided)} nodes agree)"
    if skipped:
        detail += f"; not checked on {', '.join(skipped)}"
    return Step(name, True, detail)


def _ask_nodes(urls: list[str], claims: Claims, need: int | str, pinned: str | None):
    """Chain steps per answering node, notes on every node, and a block time seen."""
    answers, notes, seen = [], [], None
    with requests.Session() as session:
        for url in urls:
            node = Node(url, session)
            try:
                steps = _node_steps(node, claims, need, pinned)
            except NodeUnreachable as exc:
                notes.append(_note(node, exc))
                continue
            answers.append((url, steps))
            notes.append(_note(node, None))
            seen = seen or node.seen_block_time
    return answers, notes, seen


NO_NODE_ANSWERED = "no node answered"


def _chain_steps(urls: list[str], claims: Claims, need: int | str, pinned: str | None):
    """The chain steps over every node; skipped (not failed) when no node answers."""
    if not urls:
        chain = claims.anchor.chain_id
        reason = ("no chain node to ask: give one with --rpc"
                  + (f" (there is no default node for chain {chain})" if chain else ""))
        return _skipped(CHAIN_STEPS, reason), [], None
    answers, notes, seen = _ask_nodes(urls, claims, need, pinned)
    if not answers:
        return _skipped(CHAIN_STEPS, NO_NODE_ANSWERED), notes, seen
    steps = [_combine(name, [(url, node_steps[i]) for url, node_steps in answers])
             for i, name in enumerate(CHAIN_STEPS)]
    return steps, notes, seen


# --- entry points --------------------------------------------------------------------

def check(claims: Claims, *, file_path: str | Path | None = None,
          rpc_urls: list[str] | None = None, confirmations: int | str = 1,
          expect_sender: str | None = None) -> Report:
    """Run every step on validated claims. ``rpc_urls=None`` asks the chain's default node;
    an empty list asks none (nothing is then checked on chain)."""
    need = parse_confirmations(confirmations)
    pinned = parse_address(expect_sender) if expect_sender else None
    urls = default_rpc_urls(claims.anchor.chain_id) if rpc_urls is None else list(rpc_urls)
    file_step, wrong_file = _check_file(claims, file_path)
    offline = [file_step, _check_leaf(claims), _check_merkle_path(claims)]
    chain, notes, seen = _chain_steps(urls, claims, need, pinned)
    return Report(claims=claims, confirmations=need, steps=offline + chain, nodes=notes,
                  seen_block_time=seen, pinned=pinned, wrong_file=wrong_file)


def verify_receipt(receipt: dict, *, file_path: str | Path | None = None,
                   rpc_urls: list[str] | None = None, confirmations: int | str = 1,
                   expect_sender: str | None = None) -> Report:
    """Verify a receipt (already parsed from JSON).

    Raises :class:`ReceiptError` for a malformed receipt and ``ValueError`` for a bad
    ``confirmations`` or ``expect_sender``; every other problem is a failed step.
    """
    return check(parse_receipt(receipt), file_path=file_path, rpc_urls=rpc_urls,
                 confirmations=confirmations, expect_sender=expect_sender)


# --- the verdict in words ------------------------------------------------------------
# The same sentences as the verify page's (static/js/receipt-verify.js, verdictOf): a
# reviewer reads one answer, whichever verifier they use.

def verdict_of(report: Report) -> Verdict:
    """What the report answers, in a journal reviewer's words."""
    failed = [step for step in report.steps if step.ok is False]
    if report.wrong_file:
        return Verdict(WRONG_FILE, "This is NOT the file this receipt was issued for: its "
                       "SHA-256 is not the one in the receipt.", None, EXIT_FAILED)
    if failed:
        also = f" (also failed: {', '.join(s.name for s in failed[1:])})" if failed[1:] else ""
        return Verdict(FAILED, f"This receipt does NOT verify: {failed[0].name} failed — "
                               f"{failed[0].detail}{also}", None, EXIT_FAILED)
    if not report.chain_checked:
        return Verdict(UNCHECKED, _unchecked_text(report), "Nothing was checked on chain: the "
                       "receipt is neither confirmed nor refuted. Try another node.",
                       EXIT_UNCHECKED)
    record, when = report.claims.record, _when(report.proven_time)
    if report.step("file-hash").ok:
        state = VERIFIED
        text = (f"This file is the one registered as {_registered_as(record)}, and it existed "
                f"no later than {when}." if record is not None else
                f"This file is the one this receipt was issued for, and it existed no later "
                f"than {when}.")
    else:
        state = VERIFIED_NO_FILE
        text = ("The receipt is genuine, but no file was checked: the file registered as "
                f"{_registered_as(record)} existed no later than {when}." if record is not None
                else "The receipt is genuine, but no file was checked: the file it was issued "
                f"for existed no later than {when}.")
    if report.pinned:
        return Verdict(state, text, None, EXIT_PASS)
    return Verdict(state, text, _not_pinned(report.claims.anchor.sender), EXIT_NOT_PINNED)


def _unchecked_text(report: Report) -> str:
    if report.nodes:
        return f"Could not check the anchor: {NO_NODE_ANSWERED}."
    chain = report.claims.anchor.chain_id
    return ("Could not check the anchor: no chain node was given"
            + (f" and there is no default node for chain {chain}."
               if chain and chain not in DEFAULT_RPC_URLS else "."))


def _not_pinned(sender: str | None) -> str:
    told = f"the anchor was sent by {sender}; give" if sender else "give"
    return (f"Not pinned: {told} the notary's published address as the expected sender to "
            "check that the notary sent it.")


def _registered_as(record: dict) -> str:
    """``"Label" (file name) in trial T, site S``: the record's own words."""
    label, filename = _as_text(record["dataset"]), _as_text(record["filename"])
    named = f'"{label}"' + ("" if filename == label else f" ({filename})")
    return f"{named} in trial {_as_text(record['trial'])}, site {_as_text(record['site'])}"


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _when(time: str | None) -> str:
    """A block time as people read it: ``2026-11-23 19:00:12 UTC``."""
    return (time or "an unknown time").replace("T", " ").removesuffix("Z") + " UTC"


def exit_code_of(codes: Iterable[int]) -> int:
    """Several receipts' codes as one: the worst wins (2 > 1 > 4 > 3 > 0)."""
    return max(codes, key=EXIT_ORDER.index, default=EXIT_PASS)


# --- the command ---------------------------------------------------------------------

def _marks() -> dict:
    """✓ ✗ – where the terminal can print them, ASCII otherwise."""
    try:
        "✓✗–…—".encode(sys.stdout.encoding or "ascii")
        return {True: "✓", False: "✗", None: "–"}
    except (UnicodeEncodeError, LookupError):
        return {True: "+", False: "x", None: "-"}


def render_text(report: Report) -> str:
    """The verdict first, then each step, the nodes asked and a one-line summary."""
    marks = _marks()
    verdict = report.verdict
    width = max(len(name) for name in STEPS)
    lines = [verdict.text] + ([verdict.note] if verdict.note else [])
    lines += [f"{marks[s.ok]} {s.name:<{width}}  {s.detail}" for s in report.steps]
    lines += [f"  node {n.url}: {n.detail}" for n in report.nodes]
    where = f"transaction {report.transaction} on {report.chain_label}"
    claimed = f"claimed time {report.block_time or 'unknown'} (not proven)"
    if report.ok:
        lines.append(f"PASS  proven time {report.block_time}  {where}")
    elif verdict.state == UNCHECKED:
        lines.append(f"NOT CHECKED  {claimed}  {where}")
    else:
        failed = ", ".join(s.name for s in report.steps if s.ok is False)
        lines.append(f"FAIL  failed: {failed}  {claimed}  {where}")
    return _printable("\n".join(lines), marks)


def _printable(text: str, marks: dict) -> str:
    if marks[True] != "✓":
        text = text.replace("…", "...").replace("—", "-")
    return text


#: How the command's summary of several receipts names each exit code.
_OUTCOMES = {EXIT_PASS: "passed", EXIT_NOT_PINNED: "passed but not pinned",
             EXIT_UNCHECKED: "not checked on chain", EXIT_FAILED: "failed",
             EXIT_UNUSABLE: "unusable"}


@dataclass
class _Outcome:
    """One receipt given to the command: its report, or why it cannot be used."""

    path: str
    report: Report | None = None
    error: str | None = None

    @property
    def exit_code(self) -> int:
        return self.report.verdict.exit_code if self.report is not None else EXIT_UNUSABLE

    def to_json(self) -> dict:
        if self.report is None:
            return {"receipt": self.path, "ok": False, "error": self.error,
                    "exitCode": EXIT_UNUSABLE}
        return {"receipt": self.path, **self.report.to_json()}

    def text(self) -> str:
        if self.report is None:
            return f"Not a usable receipt: {self.error}"
        return render_text(self.report)


def main(receipt_paths: str | Path | Iterable[str | Path], *,
         file_path: str | Path | None = None, rpc_urls: list[str],
         confirmations: str = "1", expect_sender: str | None = None,
         as_json: bool = False) -> int:
    """``trialnotary verify RECEIPT...``; the exit code is the contract of the README:
    0 every check passed and the sender is pinned, 1 a check failed, 2 unusable input,
    3 every check passed but the sender is not pinned, 4 no node answered. With several
    receipts the worst wins; ``--json`` then prints a list."""
    paths = ([receipt_paths] if isinstance(receipt_paths, str | Path)
             else list(receipt_paths))
    try:
        need = parse_confirmations(confirmations)
        pinned = parse_address(expect_sender) if expect_sender else None
        urls = _parse_rpc_options(rpc_urls)
        if not paths:
            raise ValueError("give at least one receipt")
        if file_path is not None and len(paths) > 1:
            raise ValueError(f"--file goes with one receipt, not {len(paths)}: verify "
                             "each file with its own receipt")
    except ValueError as exc:
        return _usage_error(str(exc), as_json)
    outcomes = [_verify_path(str(path), file_path, urls, need, pinned) for path in paths]
    for outcome in outcomes:
        if outcome.error is not None:
            print(f"error: {outcome.path}: not a usable receipt: {outcome.error}",
                  file=sys.stderr)
    if len(outcomes) == 1:
        _print_one(outcomes[0], as_json)
    else:
        _print_several(outcomes, as_json)
    return exit_code_of(outcome.exit_code for outcome in outcomes)


def _parse_rpc_options(rpc_urls: list[str]) -> list[str]:
    try:
        return [parse_rpc_url(url) for url in rpc_urls]
    except ValueError as exc:
        raise ValueError(f"--rpc: {exc}") from None


def _verify_path(path: str, file_path: str | Path | None, urls: list[str],
                 need: int | str, pinned: str | None) -> _Outcome:
    try:
        claims = parse_receipt(load_receipt(path))
    except ReceiptError as exc:
        return _Outcome(path, error=str(exc))
    return _Outcome(path, check(claims, file_path=file_path, rpc_urls=urls or None,
                                confirmations=need, expect_sender=pinned))


def _print_one(outcome: _Outcome, as_json: bool) -> None:
    if as_json:
        answer = (outcome.to_json() if outcome.report is not None
                  else {"ok": False, "error": f"{outcome.path}: not a usable receipt: "
                                             f"{outcome.error}"})
        print(json.dumps(answer, indent=2))
    elif outcome.report is not None:
        print(outcome.text())


def _print_several(outcomes: list[_Outcome], as_json: bool) -> None:
    if as_json:
        print(json.dumps([outcome.to_json() for outcome in outcomes], indent=2))
        return
    for outcome in outcomes:
        print(f"== {outcome.path}")
        print(outcome.text())
        print()
    counts = {code: sum(o.exit_code == code for o in outcomes) for code in EXIT_ORDER}
    print(f"{len(outcomes)} receipts: " + ", ".join(
        f"{count} {_OUTCOMES[code]}" for code, count in counts.items() if count))


def _usage_error(message: str, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"ok": False, "error": message}))
    print(f"error: {message}", file=sys.stderr)
    return EXIT_UNUSABLE
