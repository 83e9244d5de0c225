"""The receipt-v1 test vectors (docs/vectors/receipt-v1.json): records with their canonical
bytes and leaves, the audit-head leaf, and trees with roots and proofs. Every implementation,
Python and JavaScript, must reproduce them (docs/receipt.md, "Test vectors")."""

from __future__ import annotations

import json
from pathlib import Path

VECTORS_FILE = Path(__file__).parents[2] / "docs/vectors/receipt-v1.json"
#: Pinning the origin with an identity document (docs/verification.md, the notary step).
PIN_VECTORS_FILE = VECTORS_FILE.with_name("notary-pin.json")


def load_vectors() -> dict:
    return json.loads(VECTORS_FILE.read_text(encoding="utf-8"))


def load_pin_vectors() -> dict:
    return json.loads(PIN_VECTORS_FILE.read_text(encoding="utf-8"))
