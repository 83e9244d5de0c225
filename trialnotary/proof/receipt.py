"""The receipt format: records, leaves, Merkle paths and Chainpoint v2 receipts.

Pure functions over plain data. Nothing here knows about Flask, the database or the
chain, so the stand-alone verifier and the server share exactly the same rules. The format
is docs/receipt.md.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

import rfc8785

from trialnotary.proof.errors import MalformedValue
from trialnotary.proof.facts import (
    ANCHOR_TYPE,
    CHAIN_NAMES,
    CHAINPOINT_CONTEXT,
    CHAINPOINT_TYPE,
    LOCAL_CHAIN_NAME,
    OPTIONAL_RECORD_KEYS,
    RECEIPT_VERSION,
    RECORD_KEYS,
    TIMESTAMP_TYPE,
    chain_name,
)

__all__ = [
    "CHAIN_NAMES", "CHAINPOINT_CONTEXT", "CHAINPOINT_TYPE", "LOCAL_CHAIN_NAME",
    "OPTIONAL_RECORD_KEYS", "RECEIPT_VERSION", "RECORD_KEYS", "anchor_entry", "audit_head_leaf",
    "block_time",
    "build_receipt", "canonical_json", "chain_name", "evidence_digest", "fold_proof",
    "level_sizes", "parse_hash",
    "proof_sides", "record_leaf", "rfc3339_ms", "sibling_positions", "validated_record_leaf",
    "written_record",
]


def rfc3339_ms(moment: datetime) -> str:
    """``2026-11-23T18:59:01.123Z``: the exact form of ``submittedAt`` and ``sealedAt``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{moment.microsecond // 1000:03d}Z"


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) bytes of a JSON value."""
    return rfc8785.dumps(value)


def written_record(record: dict) -> dict:
    """The record as its leaf and its receipt hold it: every key of ``RECORD_KEYS``, then
    each optional key (``notBefore``) only where it has a value, never as ``null``."""
    written = {key: record[key] for key in RECORD_KEYS}
    written.update((key, record[key]) for key in OPTIONAL_RECORD_KEYS
                   if record.get(key) is not None)
    return written


def record_leaf(record: dict) -> bytes:
    """The 32-byte leaf of a registration record: SHA-256 of its canonical JSON."""
    return _leaf(canonical_json(record))


_FAST_CANONICAL = json.JSONEncoder(ensure_ascii=False, allow_nan=False, sort_keys=True,
                                   separators=(",", ":")).encode


def validated_record_leaf(record: dict) -> bytes:
    """``record_leaf(record)``, several times faster, for validated records.

    For a record whose keys are ASCII and whose values are strings without lone
    surrogates, integers below 2**53 and nulls (everything validation lets through),
    RFC 8785 and compact, key-sorted ``json`` with ``ensure_ascii=False`` write the same
    bytes: ASCII keys sort the same by UTF-16 units and by code points, such integers print
    the same, and both escape only ``"``, ``\\`` and U+0000–U+001F, the same way. The
    tests check this against ``rfc8785`` and the vectors of docs/vectors/receipt-v1.json.
    """
    return _leaf(_FAST_CANONICAL(record).encode("utf-8"))


def _leaf(canonical: bytes) -> bytes:
    return hashlib.sha256(canonical).digest()


def evidence_digest(*, chain_id: int, block_number: int, block_hash: str, source_id: str,
                    root: bytes) -> bytes:
    """What a renewal attests of a retired ``ETHData`` anchor (docs/receipt.md, "Renewal"):
    SHA-256 of the RFC 8785 JSON of its ``chainId``, ``blockNumber``, ``blockHash`` (as the
    receipt writes it), ``sourceId`` (64 hex, no 0x) and the root it attests (64 hex). The
    notary's renewal trees and the verifier's ``renewal`` step both use this one."""
    return hashlib.sha256(canonical_json({
        "chainId": chain_id, "blockNumber": block_number, "blockHash": block_hash,
        "sourceId": source_id, "root": root.hex()})).digest()


def audit_head_leaf(seq: int, head_hex: str) -> bytes:
    """The leaf that binds the audit trail's head into a batch."""
    return record_leaf({"type": "auditHead", "seq": seq, "head": head_hex})


def fold_proof(target: bytes, proof: list[dict]) -> bytes:
    """Apply a Chainpoint proof (a list of ``{"left"|"right": hex}``) to a leaf.

    Raises :class:`MalformedValue` (a ``ValueError``) on a step that is not exactly one side
    with 64 hex digits.
    """
    node = target
    for step in proof:
        if not isinstance(step, dict) or len(step) != 1:
            raise MalformedValue(f"proof step {step!r} must have exactly one of 'left' or 'right'")
        (side, sibling_hex), = step.items()
        sibling = parse_hash(sibling_hex, what=f"proof step {side}")
        if side == "left":
            node = hashlib.sha256(sibling + node).digest()
        elif side == "right":
            node = hashlib.sha256(node + sibling).digest()
        else:
            raise MalformedValue(f"proof step side {side!r} is neither 'left' nor 'right'")
    return node


def level_sizes(leaf_count: int) -> list[int]:
    """Number of nodes on each level of a tree with ``leaf_count`` leaves."""
    sizes = [leaf_count]
    while sizes[-1] > 1:
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


def sibling_positions(leaf_index: int, leaf_count: int) -> list[tuple[int, int, str]]:
    """``(level, index, side)`` of each sibling on the path of a leaf, leaf level first.

    Follows merkletools' rule: an odd last node is carried up with no sibling, so that
    level adds no step to the proof (the tree has RFC 6962's shape).
    """
    positions = []
    index = leaf_index
    for level, size in enumerate(level_sizes(leaf_count)[:-1]):
        if not (index == size - 1 and size % 2 == 1):
            if index % 2:
                positions.append((level, index - 1, "left"))
            else:
                positions.append((level, index + 1, "right"))
        index //= 2
    return positions


def proof_sides(leaf_index: int, leaf_count: int) -> list[str]:
    """The sides (``"left"``/``"right"``) a proof of leaf ``leaf_index`` has, in order."""
    return [side for _, _, side in sibling_positions(leaf_index, leaf_count)]


_HEX64 = re.compile(r"[0-9a-f]{64}")


def parse_hash(value: Any, *, what: str = "hash") -> bytes:
    """32 bytes from 64 lowercase hex digits; :class:`MalformedValue` otherwise."""
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise MalformedValue(f"{what} must be 64 lowercase hex digits")
    return bytes.fromhex(value)


#: 9999-12-31T23:59:59Z: the last block time a receipt can write (RFC 3339 has four-digit
#: years).
LAST_BLOCK_TIME = 253402300799


def block_time(timestamp: int) -> str:
    """A block's timestamp as the receipt writes it: RFC 3339, whole seconds, ``Z``.
    ValueError for a time before 1970 or past the year 9999 (a node's odd answer)."""
    if not 0 <= timestamp <= LAST_BLOCK_TIME:
        raise ValueError(f"block time {timestamp} is not between 1970 and the year 9999")
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_receipt(
    *,
    record: dict,
    leaf: bytes,
    root: bytes,
    proof: list[dict],
    batch: dict,
    anchor: dict | None = None,
    anchors: list[dict] | None = None,
    notary: dict | None = None,
) -> dict:
    """Assemble a receipt: version 2 when ``notary`` (``{"name", "url"}``) is given, else
    version 1 (kept for the verifier's tests: version 1 receipts verify as they always did).

    ``anchors`` (or one ``anchor``) are given as :func:`anchor_entry` takes them; ``batch``
    holds ``id``, ``leaf_index``, ``leaf_count`` and ``sealed_at``.
    """
    given = anchors if anchors is not None else [anchor]
    extension = {"receiptVersion": 1}
    if notary is not None:
        extension = {"receiptVersion": RECEIPT_VERSION,
                     "notary": {"name": notary["name"], "url": notary["url"]}}
    return {
        "@context": CHAINPOINT_CONTEXT,
        "type": CHAINPOINT_TYPE,
        "targetHash": leaf.hex(),
        "merkleRoot": root.hex(),
        "proof": proof,
        "anchors": [anchor_entry(item, named=notary is not None) for item in given],
        "trialnotary": {
            **extension,
            "record": written_record(record),
            "batch": {
                "id": batch["id"],
                "leafIndex": batch["leaf_index"],
                "leafCount": batch["leaf_count"],
                "sealedAt": batch["sealed_at"],
            },
        },
    }


def anchor_entry(anchor: dict, *, named: bool = True) -> dict:
    """One entry of a receipt's ``anchors`` (docs/receipt.md).

    An ``ETHData`` anchor (the default ``type``) holds ``tx_hash`` (hex, no 0x),
    ``chain_id``, ``sender`` (checksummed), ``block_number``, ``block_hash`` (0x hex) and
    ``block_time`` (RFC 3339, seconds, Z), and may hold ``evidence`` (written as given when
    not ``None``). An ``RFC3161`` one holds ``token`` (DER bytes) and ``gen_time``. Either
    holds ``name`` (written when ``named``: version 2) and may hold ``rollup``
    (``{"root", "proof"}``, written when its proof is not empty). An ``ETHData`` anchor of
    a retired chain may hold ``renewal``: ``{"evidence_digest", "proof", "root", "anchors"}``
    (hex, a proof, hex, and the renewal root's anchors as this function takes them).
    """
    kind = anchor.get("type", ANCHOR_TYPE)
    name = {"name": anchor["name"]} if named else {}
    if kind == TIMESTAMP_TYPE:
        entry = {"type": TIMESTAMP_TYPE, **name,
                 "token": base64.b64encode(anchor["token"]).decode("ascii"),
                 "genTime": anchor["gen_time"]}
    else:
        entry = {
            "type": ANCHOR_TYPE, **name,
            "sourceId": anchor["tx_hash"],
            "chain": chain_name(anchor["chain_id"]),
            "chainId": anchor["chain_id"],
            "sender": anchor["sender"],
            "blockNumber": anchor["block_number"],
            "blockHash": anchor["block_hash"],
            "blockTime": anchor["block_time"],
        }
        if anchor.get("evidence") is not None:
            entry["evidence"] = anchor["evidence"]
    rollup = anchor.get("rollup")
    if rollup and rollup["proof"]:
        entry["rollup"] = {"root": rollup["root"], "proof": rollup["proof"]}
    renewal = anchor.get("renewal")
    if renewal is not None:
        entry["renewal"] = {"evidenceDigest": renewal["evidence_digest"],
                            "proof": renewal["proof"], "root": renewal["root"],
                            "anchors": [anchor_entry(item) for item in renewal["anchors"]]}
    return entry
