"""Reading a receipt: the file as JSON, its shape checked, what it claims as plain data.

Also the parsers of the verifier's options (confirmations, the pinned sender, node URLs)
and of a node's hex quantities: every value that comes from outside is checked here, so the
checks can trust what they are given.
"""

from __future__ import annotations

import base64
import binascii
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
    INTEGER_RECORD_KEYS,
    LOCAL_CHAIN_NAME,
    MAX_JSON_DEPTH,
    MAX_RECEIPT_BYTES,
    NOT_BEFORE_KEYS,
    NULLABLE_RECORD_KEYS,
    OPTIONAL_RECORD_KEYS,
    RECEIPT_VERSIONS,
    RECORD_KEYS,
    TIMESTAMP_TYPE,
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
class Rollup:
    """An anchor of a roll-up: ``proof`` folds the root below it (``merkleRoot``, or the
    renewal's root) to ``root``, which the anchor attests instead (docs/receipt.md)."""

    root: bytes
    proof: tuple  # of (side, hex) pairs: proof_steps() gives them as a receipt writes them


@dataclass(frozen=True)
class Renewal:
    """A retired chain's anchor renewed: ``evidence_digest`` (the digest of the entry's
    chainId, blockNumber, blockHash, sourceId and root) folds through ``proof`` to ``root``,
    which each of ``anchors`` attests."""

    evidence_digest: bytes
    proof: tuple
    root: bytes
    anchors: tuple


@dataclass(frozen=True)
class TimeStamp:
    """An ``RFC3161`` anchor: a time-stamp token (DER) over the attested root."""

    name: str
    token: bytes
    gen_time: str
    rollup: Rollup | None = None
    type = TIMESTAMP_TYPE


@dataclass(frozen=True)
class Anchor:
    """An ``ETHData`` anchor; ``None`` where a plain Chainpoint receipt is silent."""

    tx_hash: str
    chain_id: int | None
    chain: str | None
    sender: str | None
    block_number: int | None
    block_hash: str | None
    block_time: str | None
    evidence: Evidence | None = None
    name: str | None = None  # the anchor's configured name (version 2)
    rollup: Rollup | None = None
    renewal: Renewal | None = None
    type = ANCHOR_TYPE


@dataclass(frozen=True)
class Position:
    """Where a trialnotary receipt puts its leaf: leaf ``index`` of a tree of ``count``."""

    index: int
    count: int


@dataclass(frozen=True)
class Claims:
    """What a receipt asserts, validated for shape. ``position`` is ``None`` for a plain
    Chainpoint receipt, which does not say where its leaf is. ``notary`` is the version 2
    receipt's ``{"name", "url"}``: what the notary calls itself, never a pin.

    ``anchors`` holds every entry (:class:`Anchor`, :class:`TimeStamp`), and ``anchor`` the
    first ``ETHData`` one (``None`` when there is none). ``root`` is the root the anchor
    checked must carry, ``root_name`` how messages call it: a roll-up's anchor carries
    ``rollup.root``, a renewal's anchor ``renewal.root``."""

    target: bytes
    root: bytes
    proof: list
    anchor: Anchor | None
    record: dict | None
    position: Position | None = None
    version: int | None = None
    notary: dict | None = None
    anchors: tuple = ()
    root_name: str = "merkleRoot"

    @property
    def several(self) -> bool:
        """Whether the receipt needs the verification of several anchors: more than one
        entry, or one that is not a lone ``ETHData`` anchor of the batch (a roll-up, a
        time-stamp, a renewal). Other receipts are verified as they always were."""
        if len(self.anchors) != 1:
            return True
        entry = self.anchors[0]
        return not isinstance(entry, Anchor) or entry.rollup is not None \
            or entry.renewal is not None


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
    return read_receipt(data)


def read_receipt(data: bytes) -> dict:
    """A receipt's bytes (a file's, a zip entry's) as JSON, read as strictly as
    :func:`load_receipt` says; :class:`ReceiptError` if they are not a receipt's."""
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
    if version is not None and version >= 2:
        anchors = _parse_entries(receipt.get("anchors"), "anchors")
        anchor = next((entry for entry in anchors if isinstance(entry, Anchor)), None)
    else:
        anchor = _parse_anchor(receipt.get("anchors"), full=record is not None)
        anchors = (anchor,)
    return Claims(target=target, root=root, proof=proof, anchor=anchor, record=record,
                  position=position, version=version, notary=notary, anchors=anchors)


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
    extra = sorted(set(record) - set(RECORD_KEYS) - set(OPTIONAL_RECORD_KEYS))
    if missing or extra:
        raise ReceiptError("trialnotary.record must have exactly the version-1 keys"
                           + (f"; missing: {', '.join(missing)}" if missing else "")
                           + (f"; unknown: {', '.join(extra)}" if extra else ""))
    for key in RECORD_KEYS:
        _check_record_type(record, key)
    _hash_field(record, "sha256", "trialnotary.record.")
    if "notBefore" in record:
        _check_not_before(record["notBefore"])
    return version, record, notary


def _check_record_type(record: dict, key: str) -> None:
    """A record key's value is of its type (docs/receipt.md): a string, an integer from 0
    (``sizeBytes``; one beyond 2^53−1 has no canonical form: the leaf step fails), or
    ``null`` where the key allows it."""
    value = record[key]
    if value is None and key in NULLABLE_RECORD_KEYS:
        return
    integer = key in INTEGER_RECORD_KEYS
    whole = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if whole if integer else isinstance(value, str):
        return
    what = "a non-negative integer" if integer else "a string"
    raise ReceiptError(f"trialnotary.record.{key} must be {what}"
                       + (" or null" if key in NULLABLE_RECORD_KEYS else ""))


_BLOCK_HASH = re.compile(r"0x[0-9a-f]{64}")


def _check_not_before(not_before: Any) -> None:
    """``notBefore``: exactly a positive ``chainId``, a ``blockNumber`` from 0 and a
    ``blockHash`` of 0x and 64 lowercase hex digits (docs/receipt.md)."""
    where = "trialnotary.record.notBefore"
    if not isinstance(not_before, dict) or sorted(not_before) != sorted(NOT_BEFORE_KEYS):
        raise ReceiptError(f"{where} must be an object of exactly blockHash, blockNumber "
                           "and chainId")
    if not is_int(not_before["chainId"]) or not_before["chainId"] < 1:
        raise ReceiptError(f"{where}.chainId must be a positive integer")
    if not is_int(not_before["blockNumber"]) or not_before["blockNumber"] < 0:
        raise ReceiptError(f"{where}.blockNumber must be a non-negative integer")
    block_hash = not_before["blockHash"]
    if not isinstance(block_hash, str) or not _BLOCK_HASH.fullmatch(block_hash):
        raise ReceiptError(f"{where}.blockHash must be 0x and 64 lowercase hex digits")


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


def _parse_anchor(anchors: Any, *, full: bool) -> Anchor:
    """The one ``ETHData`` anchor of a version 1 or plain Chainpoint receipt. A trialnotary
    receipt must carry every field; a plain Chainpoint receipt may carry only ``sourceId``.
    Other anchor types are ignored."""
    if not isinstance(anchors, list):
        raise ReceiptError("anchors must be a list")
    eth = [a for a in anchors if isinstance(a, dict) and a.get("type") == ANCHOR_TYPE]
    if len(eth) != 1:
        raise ReceiptError(f"anchors must hold exactly one ETHData anchor, not {len(eth)}")
    return _parse_eth_data(eth[0], f"anchors[{anchors.index(eth[0])}].", full=full,
                           named=False)


def _parse_entries(anchors: Any, where: str) -> tuple:
    """Every entry of a version 2 receipt's ``anchors`` (or of a renewal's): ``ETHData``
    and ``RFC3161`` ones, each named, the names unique."""
    if not isinstance(anchors, list):
        raise ReceiptError(f"{where} must be a list")
    if not anchors:
        raise ReceiptError(f"{where} must hold at least one anchor")
    entries, names = [], set()
    for index, entry in enumerate(anchors):
        at = f"{where}[{index}]."
        if not isinstance(entry, dict):
            raise ReceiptError(f"{where}[{index}] must be an object")
        kind = entry.get("type")
        if kind == ANCHOR_TYPE:
            parsed = _parse_eth_data(entry, at, full=True, named=True)
        elif kind == TIMESTAMP_TYPE:
            parsed = _parse_time_stamp(entry, at)
        else:
            raise ReceiptError(f"{at}type must be {ANCHOR_TYPE!r} or {TIMESTAMP_TYPE!r}, "
                               f"not {kind!r}")
        if parsed.name in names:
            raise ReceiptError(f"{at}name {parsed.name!r} is not unique in {where}")
        names.add(parsed.name)
        entries.append(parsed)
    return tuple(entries)


def _parse_eth_data(anchor: dict, where: str, *, full: bool, named: bool) -> Anchor:
    """An ``ETHData`` entry; with ``named`` (version 2) its ``name``, ``rollup`` and
    ``renewal`` too."""
    tx_hash = _hash_field(anchor, "sourceId", where).hex()

    def optional(key, check, description):
        if key not in anchor and not full:
            return None
        value = _required(anchor, key, where)
        if not check(value):
            raise ReceiptError(f"{where}{key} must be {description}")
        return value

    name = _name(anchor, where) if named else None
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
        rollup=_parse_rollup(anchor, where) if named else None,
        renewal=_parse_renewal(anchor, where) if named else None,
    )


def _name(entry: dict, where: str) -> str:
    name = _required(entry, "name", where)
    if not isinstance(name, str):
        raise ReceiptError(f"{where}name must be a string")
    return name


def _parse_time_stamp(entry: dict, where: str) -> TimeStamp:
    """An ``RFC3161`` entry: ``name``, ``token`` (base64 DER), ``genTime``, ``rollup``.
    Whether the token holds is the ``tsa`` step's."""
    name = _name(entry, where)
    token = _required(entry, "token", where)
    try:
        raw = base64.b64decode(token, validate=True) if isinstance(token, str) else b""
    except binascii.Error:
        raw = b""
    if not raw:
        raise ReceiptError(f"{where}token must be a time-stamp token in base64 (DER)")
    gen_time = _required(entry, "genTime", where)
    if not _is_match(_BLOCK_TIME)(gen_time):
        raise ReceiptError(f"{where}genTime must be an RFC 3339 UTC time like "
                           "2026-11-23T19:00:13Z")
    return TimeStamp(name=name, token=raw, gen_time=gen_time,
                     rollup=_parse_rollup(entry, where))


def _parse_rollup(entry: dict, where: str) -> Rollup | None:
    if "rollup" not in entry:
        return None
    rollup, where = entry["rollup"], where + "rollup"
    if not isinstance(rollup, dict):
        raise ReceiptError(f"{where} must be an object")
    _exact_keys(rollup, ("root", "proof"), where)
    return Rollup(root=_hash_field(rollup, "root", where + "."),
                  proof=_parse_proof(rollup["proof"], where + ".proof"))


def _parse_renewal(entry: dict, where: str) -> Renewal | None:
    if "renewal" not in entry:
        return None
    renewal, where = entry["renewal"], where + "renewal"
    if not isinstance(renewal, dict):
        raise ReceiptError(f"{where} must be an object")
    _exact_keys(renewal, ("evidenceDigest", "proof", "root", "anchors"), where)
    return Renewal(evidence_digest=_hash_field(renewal, "evidenceDigest", where + "."),
                   proof=_parse_proof(renewal["proof"], where + ".proof"),
                   root=_hash_field(renewal, "root", where + "."),
                   anchors=_parse_entries(renewal["anchors"], where + ".anchors"))


def _exact_keys(value: dict, keys: tuple[str, ...], where: str) -> None:
    missing = [key for key in keys if key not in value]
    extra = sorted(set(value) - set(keys))
    if missing or extra:
        raise ReceiptError(f"{where} must have exactly the keys {', '.join(keys)}"
                           + (f"; missing: {', '.join(missing)}" if missing else "")
                           + (f"; unknown: {', '.join(extra)}" if extra else ""))


def _parse_proof(proof: Any, where: str) -> tuple:
    """A roll-up's or a renewal's proof: ``{"left"|"right": 64 hex}`` steps, kept as
    ``(side, hex)`` pairs (hashable, so that an anchor is checked once per run)."""
    if not isinstance(proof, list):
        raise ReceiptError(f"{where} must be a list")
    steps = []
    for index, step in enumerate(proof):
        side = next(iter(step), None) if isinstance(step, dict) and len(step) == 1 else None
        if side not in ("left", "right"):
            raise ReceiptError(f"{where}[{index}] must have exactly one of 'left' or 'right'")
        _hash_field(step, side, f"{where}[{index}].")
        steps.append((side, step[side]))
    return tuple(steps)


def proof_steps(pairs: tuple) -> list[dict]:
    """``(side, hex)`` pairs as the proof steps :func:`fold_proof` folds."""
    return [{side: sibling} for side, sibling in pairs]


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
