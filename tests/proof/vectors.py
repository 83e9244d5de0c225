"""The receipt-v1 test vectors (docs/vectors/receipt-v1.json): records with their canonical
bytes and leaves, the audit-head leaf, and trees with roots and proofs. Every implementation,
Python and JavaScript, must reproduce them (docs/receipt.md, "Test vectors")."""

from __future__ import annotations

import json
from pathlib import Path

VECTORS_FILE = Path(__file__).parents[2] / "docs/vectors/receipt-v1.json"


def load_vectors() -> dict:
    return json.loads(VECTORS_FILE.read_text(encoding="utf-8"))
