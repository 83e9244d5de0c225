"""The receipt format: records, leaves, Merkle paths and Chainpoint v2 receipts.

Pure functions over plain data. Nothing here knows about Flask, the database or the
chain, so the stand-alone verifier and the server share exactly the same rules.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

import rfc8785

RECEIPT_VERSION = 1
CHAINPOINT_CONTEXT = "https://w3id.org/chainpoint/v2"
CHAINPOINT_TYPE = "ChainpointSHA256v2"

RECORD_KEYS = (
    "id", "trial", "site", "kind", "dataset", "sha256",
    "sizeBytes", "filename", "supersedes", "submittedAt",
)

CHAIN_NAMES = {
    1: "ethereumMainnet",
    11155111: "ethereumSepolia",
    560048: "ethereumHoodi",
}
LOCAL_CHAIN_NAME = "ethereumLocal"


def rfc3339_ms(moment: datetime) -> str:
    """``2026-11-23T18:59:01.123Z``: the exact form of ``submittedAt`` and ``sealedAt``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{moment.microsecond // 1000:03d}Z"


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) bytes of a JSON value."""
    return rfc8785.dumps(value)


def record_leaf(record: dict) -> bytes:
    """The 32-byte leaf of a registration record: SHA-256 of its canonical JSON."""
    return hashlib.sha256(canonical_json(record)).digest()


def audit_head_leaf(seq: int, head_hex: str) -> bytes:
    """The leaf that binds the audit trail's head into a batch."""
    return record_leaf({"type": "auditHead", "seq": seq, "head": head_hex})


def fold_proof(target: bytes, proof: list[dict]) -> bytes:
    """Apply a Chainpoint proof (a list of ``{"left"|"right": hex}``) to a leaf.

    Raises ``ValueError`` on a step that is not exactly one side with 64 hex digits.
    """
    node = target
    for step in proof:
        if not isinstance(step, dict) or len(step) != 1:
            raise ValueError(f"proof step {step!r} must have exactly one of 'left' or 'right'")
        (side, sibling_hex), = step.items()
        sibling = parse_hash(sibling_hex, what=f"proof step {side}")
        if side == "left":
            node = hashlib.sha256(sibling + node).digest()
        elif side == "right":
            node = hashlib.sha256(node + sibling).digest()
        else:
            raise ValueError(f"proof step side {side!r} is neither 'left' nor 'right'")
    return node


_HEX64 = re.compile(r"[0-9a-f]{64}")


def parse_hash(value: Any, *, what: str = "hash") -> bytes:
    """32 bytes from 64 lowercase hex digits; ``ValueError`` otherwise."""
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise ValueError(f"{what} must be 64 lowercase hex digits")
    return bytes.fromhex(value)


def block_time(timestamp: int) -> str:
    """A block's timestamp as the receipt writes it: RFC 3339, whole seconds, ``Z``."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def chain_name(chain_id: int) -> str:
    return CHAIN_NAMES.get(chain_id, LOCAL_CHAIN_NAME)


def build_receipt(
    *,
    record: dict,
    leaf: bytes,
    root: bytes,
    proof: list[dict],
    anchor: dict,
    batch: dict,
) -> dict:
    """Assemble a version-1 receipt.

    ``anchor`` holds ``tx_hash`` (hex, no 0x), ``chain_id``, ``sender`` (checksummed),
    ``block_number``, ``block_hash`` (0x hex) and ``block_time`` (RFC 3339, seconds, Z);
    ``batch`` holds ``id``, ``leaf_index``, ``leaf_count`` and ``sealed_at``.
    """
    return {
        "@context": CHAINPOINT_CONTEXT,
        "type": CHAINPOINT_TYPE,
        "targetHash": leaf.hex(),
        "merkleRoot": root.hex(),
        "proof": proof,
        "anchors": [{
            "type": "ETHData",
            "sourceId": anchor["tx_hash"],
            "chain": chain_name(anchor["chain_id"]),
            "chainId": anchor["chain_id"],
            "sender": anchor["sender"],
            "blockNumber": anchor["block_number"],
            "blockHash": anchor["block_hash"],
            "blockTime": anchor["block_time"],
        }],
        "trialnotary": {
            "receiptVersion": RECEIPT_VERSION,
            "record": {key: record[key] for key in RECORD_KEYS},
            "batch": {
                "id": batch["id"],
                "leafIndex": batch["leaf_index"],
                "leafCount": batch["leaf_count"],
                "sealedAt": batch["sealed_at"],
            },
        },
    }


_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_DOT_RUNS = re.compile(r"\.{2,}")
# The longest file name most file systems take (bytes; a safe name is ASCII).
MAX_FILENAME = 255
RECEIPT_SUFFIX = ".receipt.json"


def safe_filename(name: str) -> str:
    """A download name made safe wherever it is saved or unzipped: every character outside
    ``A-Z a-z 0-9 . _ -`` replaced by ``_``, every run of dots made one dot, a leading dot
    made ``_`` (no hidden files, no ``..``), never empty, at most ``MAX_FILENAME`` long
    (keeping its extension). A safe name is left as it is."""
    name = _DOT_RUNS.sub(".", _fit(_UNSAFE_NAME_CHARS.sub("_", name)))
    if name.startswith("."):
        name = "_" + name[1:]
    return name or "_"


def _fit(name: str) -> str:
    if len(name) <= MAX_FILENAME:
        return name
    stem, _, extension = name.rpartition(".")
    if stem and len(extension) < 16:
        return f"{stem[:MAX_FILENAME - len(extension) - 1]}.{extension}"
    return name[:MAX_FILENAME]


def receipt_filename(trial: str, dataset: str, registration_id: str) -> str:
    """``<trial>_<dataset>_<id>.receipt.json``, made safe; a long label is cut so that the
    name fits ``MAX_FILENAME`` with its id whole (the id keeps names apart)."""
    tail = safe_filename(f"_{registration_id}") + RECEIPT_SUFFIX
    head = safe_filename(f"{trial}_{dataset}")[:MAX_FILENAME - len(tail)]
    return safe_filename(head + tail)
