"""Reading a receipt: the file as JSON, its shape checked, what it claims as plain data.

Also the parsers of the verifier's options (confirmations, the pinned sender, node URLs)
and of a node's hex quantities: every value that comes from outside is checked here, so the
checks can trust what they are given.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trialnotary.proof.errors import MalformedValue, ReceiptError
from trialnotary.proof.evm import Evidence
from trialnotary.proof.facts import (
    ANCHOR_TYPE,
    CHAIN_IDS_BY_NAME,
    CHAINPOINT_CONTEXT,
    CHAINPOINT_TYPE,
    LOCAL_CHAIN_NAME,
    MAX_JSON_DEPTH,
    MAX_RECEIPT_BYTES,
    RECEIPT_VERSIONS,
    RECORD_KEYS,
    chain_name,
)
from trialnotary.proof.receipt import fold_proof, parse_hash

FINALIZED = "finalized"
#: The largest integer every JSON reader holds exactly (JavaScript's Number.MAX_SAFE_INTEGER).
EXACT_INTEGER = 2**53 - 1

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_BLOCK_HASH = re.compile(r"0x[0-9a-f]{64}")
_BLOCK_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
_HEX_BYTES = re.compile(r"0x(?:[0-9a-f]{2})+")
_RPC_URL = re.compile(r"https?://[^\s/?#]+(?:[/?#]\S*)?", re.IGNORECASE)


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
    evidence: Evidence | None = None
    name: str | None = None  # the anchor's configured name (version 2)


@dataclass(frozen=True)
class Position:
    """Where a trialnotary receipt puts its leaf: leaf ``index`` of a tree of ``count``."""

    index: int
    count: int


@dataclass(frozen=True)
class Claims:
    """What a receipt asserts, validated for shape. ``position`` is ``None`` for a plain
    Chainpoint receipt, which does not say where its leaf is. ``notary`` is the version 2
    receipt's ``{"name", "url"}``: what the notary calls itself, never a pin."""

    target: bytes
    root: bytes
    proof: list
    anchor: Anchor
    record: dict | None
    position: Position | None = None
    version: int | None = None
    notary: dict | None = None


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
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ReceiptError("not UTF-8 text") from None
    if _nested_too_deep(text):
        raise ReceiptError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(text, parse_constant=_refuse_constant,
                           object_pairs_hook=_refuse_duplicates)
    except json.JSONDecodeError as exc:
        raise ReceiptError(f"not valid JSON ({exc})") from None
    except ValueError as exc:
        raise ReceiptError(str(exc)) from None
    if not isinstance(value, dict):
        raise ReceiptError("a receipt is a JSON object")
    return value


_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")


def _nested_too_deep(text: str) -> bool:
    """Whether arrays and objects nest deeper than ``MAX_JSON_DEPTH`` (brackets in strings
    aside). Checked before parsing: ``json`` recurses once per level, and a text of a few
    thousand ``[`` crashes the process rather than raise ``RecursionError``."""
    depth = 0
    for bracket in _NOT_A_BRACKET.sub("", _JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > MAX_JSON_DEPTH:
            return True
    return False


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
    if receipt.get("@context") != CHAINPOINT_CONTEXT:
        raise ReceiptError(f"@context must be {CHAINPOINT_CONTEXT!r}, "
                           f"not {receipt.get('@context')!r}")
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
    version, record, notary = (_parse_extension(extension) if extension is not None
                               else (None, None, None))
    position = _parse_position(extension) if extension is not None else None
    anchor = _parse_anchor(receipt.get("anchors"), full=record is not None,
                           named=version is not None and version >= 2)
    return Claims(target=target, root=root, proof=proof, anchor=anchor, record=record,
                  position=position, version=version, notary=notary)


def _required(obj: dict, key: str, where: str) -> Any:
    if key not in obj:
        raise ReceiptError(f"{where}{key} is missing")
    return obj[key]


def _hash_field(obj: dict, key: str, where: str = "") -> bytes:
    try:
        return parse_hash(_required(obj, key, where), what=where + key)
    except ValueError as exc:
        raise ReceiptError(str(exc)) from None


def _parse_extension(extension: Any) -> tuple[int, dict, dict | None]:
    """The version, the record and (version 2) the notary's name and URL."""
    if not isinstance(extension, dict):
        raise ReceiptError("trialnotary must be an object")
    version = _required(extension, "receiptVersion", "trialnotary.")
    if not is_int(version) or version not in RECEIPT_VERSIONS:
        raise ReceiptError(f"trialnotary.receiptVersion {version!r} is not supported "
                           f"(this verifier reads versions "
                           f"{', '.join(map(str, RECEIPT_VERSIONS))})")
    notary = _parse_notary(extension) if version >= 2 else None
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
    return version, record, notary


def _parse_notary(extension: dict) -> dict:
    notary = _required(extension, "notary", "trialnotary.")
    if not isinstance(notary, dict):
        raise ReceiptError("trialnotary.notary must be an object")
    if not isinstance(_required(notary, "name", "trialnotary.notary."), str):
        raise ReceiptError("trialnotary.notary.name must be a string")
    url = _required(notary, "url", "trialnotary.notary.")
    if url is not None and not isinstance(url, str):
        raise ReceiptError("trialnotary.notary.url must be a string (or null: no public URL)")
    return {"name": notary["name"], "url": notary["url"]}


def _parse_position(extension: dict) -> Position:
    """``trialnotary.batch``'s leafIndex and leafCount (its other fields are claims)."""
    batch = _required(extension, "batch", "trialnotary.")
    if not isinstance(batch, dict):
        raise ReceiptError("trialnotary.batch must be an object")
    where = "trialnotary.batch."
    index = _required(batch, "leafIndex", where)
    if not is_int(index) or index < 0:
        raise ReceiptError(f"{where}leafIndex must be a non-negative integer")
    count = _required(batch, "leafCount", where)
    if not is_int(count) or count < 1:
        raise ReceiptError(f"{where}leafCount must be a positive integer")
    if index >= count:
        raise ReceiptError(f"{where}leafIndex {index} is not below leafCount {count}")
    return Position(index, count)


#: The chain names a receipt may write; any other name is only read in a plain Chainpoint
#: receipt (where it is not checked against chainId).
_OUR_CHAIN_NAMES = frozenset([*CHAIN_IDS_BY_NAME, LOCAL_CHAIN_NAME])


def _check_chain_name(chain: str | None, chain_id: int | None, where: str,
                      *, full: bool) -> None:
    """``chainId`` is authoritative; a ``chain`` name beside it must be that id's name."""
    if chain is None or chain_id is None or (chain not in _OUR_CHAIN_NAMES and not full):
        return
    if chain != chain_name(chain_id):
        raise ReceiptError(f"{where}chain {chain!r} does not name chainId {chain_id} "
                           f"(that is {chain_name(chain_id)!r})")


def _parse_anchor(anchors: Any, *, full: bool, named: bool = False) -> Anchor:
    """The one ``ETHData`` anchor. A trialnotary receipt must carry every field; a plain
    Chainpoint receipt may carry only ``sourceId``. Other anchor types are ignored."""
    if not isinstance(anchors, list):
        raise ReceiptError("anchors must be a list")
    eth = [a for a in anchors if isinstance(a, dict) and a.get("type") == ANCHOR_TYPE]
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

    name = (_required(anchor, "name", where) if named else None)
    if named and not isinstance(name, str):
        raise ReceiptError(f"{where}name must be a string")
    evidence = None
    if "evidence" in anchor:
        evidence = _parse_evidence(anchor["evidence"], where + "evidence")
        full = True  # evidence is checked against every field of the anchor
    chain = optional("chain", lambda v: isinstance(v, str), "a string")
    chain_id = optional("chainId", lambda v: is_int(v) and v > 0, "a positive integer")
    _check_chain_name(chain, chain_id, where, full=full)
    return Anchor(
        tx_hash=tx_hash,
        chain_id=chain_id if chain_id is not None else CHAIN_IDS_BY_NAME.get(chain),
        chain=chain,
        sender=optional("sender", _is_match(_ADDRESS), "0x and 40 hex digits"),
        block_number=optional("blockNumber", lambda v: is_int(v) and v >= 0,
                              "a non-negative integer"),
        block_hash=optional("blockHash", _is_match(_BLOCK_HASH),
                            "0x and 64 lowercase hex digits"),
        block_time=optional("blockTime", _is_match(_BLOCK_TIME),
                            "an RFC 3339 UTC time like 2026-11-23T19:00:12Z"),
        evidence=evidence,
        name=name,
    )


#: The evidence's keys, and the field of :class:`Evidence` each one fills.
EVIDENCE_KEYS = {"transaction": "transaction", "transactionIndex": "transaction_index",
                 "transactionProof": "transaction_proof", "receipt": "receipt",
                 "receiptProof": "receipt_proof", "header": "header"}


def _parse_evidence(evidence: Any, where: str) -> Evidence:
    """The shape of an anchor's ``evidence`` (docs/receipt.md): lowercase ``0x`` hex bytes,
    lists of them, an index. Whether the bytes prove anything is the ``evidence`` step's."""
    if not isinstance(evidence, dict):
        raise ReceiptError(f"{where} must be an object")
    missing = [key for key in EVIDENCE_KEYS if key not in evidence]
    extra = sorted(set(evidence) - set(EVIDENCE_KEYS))
    if missing or extra:
        raise ReceiptError(f"{where} must have exactly the keys {', '.join(EVIDENCE_KEYS)}"
                           + (f"; missing: {', '.join(missing)}" if missing else "")
                           + (f"; unknown: {', '.join(extra)}" if extra else ""))
    index = evidence["transactionIndex"]
    if not is_int(index) or index < 0:
        raise ReceiptError(f"{where}.transactionIndex must be a non-negative integer")
    values = {"transaction_index": index}
    for key in ("transaction", "receipt", "header"):
        values[EVIDENCE_KEYS[key]] = _hex_bytes(evidence[key], f"{where}.{key}")
    for key in ("transactionProof", "receiptProof"):
        nodes = evidence[key]
        if not isinstance(nodes, list) or not nodes:
            raise ReceiptError(f"{where}.{key} must be a non-empty list")
        values[EVIDENCE_KEYS[key]] = tuple(_hex_bytes(node, f"{where}.{key}[{i}]")
                                           for i, node in enumerate(nodes))
    return Evidence(**values)


def _hex_bytes(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not _HEX_BYTES.fullmatch(value):
        raise ReceiptError(f"{what} must be 0x and lowercase hex bytes")
    return bytes.fromhex(value[2:])


def is_int(value: Any) -> bool:
    """An integer written as one (``32``, not ``32.0`` or ``3.2e1``, which JSON reads as
    floats), not a ``bool`` (JSON's ``true`` is no number), and small enough for every
    JSON reader to hold exactly (|n| ≤ 2^53−1), as the browser's verifier reads it too."""
    return (isinstance(value, int) and not isinstance(value, bool)
            and -EXACT_INTEGER <= value <= EXACT_INTEGER)


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
        raise MalformedValue(f"confirmations must be a positive number or 'finalized', "
                             f"not {value!r}")
    return number


def parse_address(value: str) -> str:
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise MalformedValue(f"an address is 0x and 40 hex digits, not {value!r}")
    return value


def parse_rpc_url(value: str) -> str:
    """A node's URL: http(s), with a host."""
    if isinstance(value, str) and _RPC_URL.fullmatch(value.strip()):
        return value.strip()
    raise MalformedValue(f"{value!r} is not an http(s) URL")


def quantity(value: Any) -> int:
    """A JSON-RPC hex quantity (``"0x1b4"``) as a number."""
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ValueError(f"{value!r} is not a hex quantity")
    return int(value, 16)
