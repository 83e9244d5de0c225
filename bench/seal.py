"""Sealing N pending registrations on SQLite, beside a bare hashlib tree over the same leaves.

    python bench/seal.py [--count 100000] [--database-url URL]

Prints the time to seal (tree built, leaf indexes and tree levels persisted, committed) and
its ratio to the bare tree (same leaves, same process, measured right before).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trialnotary import batches, db  # noqa: E402
from trialnotary.models import Submission, rfc3339_ms, utcnow  # noqa: E402
from trialnotary.receipt import record_leaf  # noqa: E402


def bare_tree(leaves: list[bytes]) -> bytes:
    """The baseline: the same tree shape with nothing but hashlib."""
    level = leaves
    sha = hashlib.sha256
    while len(level) > 1:
        nxt = [sha(level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def fill(engine, count: int) -> list[bytes]:
    now = rfc3339_ms(utcnow())
    rows = []
    for i in range(count):
        record = {"id": str(uuid.uuid4()), "trial": "NCT01234567", "site": "SITE-01",
                  "kind": "dataset", "dataset": "bench", "sha256": os.urandom(32).hex(),
                  "sizeBytes": i, "filename": f"f{i}.csv", "supersedes": None,
                  "submittedAt": now}
        rows.append({"id": record["id"], "trial": record["trial"], "site": record["site"],
                     "kind": "dataset", "dataset": "bench", "sha256": record["sha256"],
                     "size_bytes": i, "filename": record["filename"], "supersedes": None,
                     "submitted_at": now, "leaf": record_leaf(record)})
    with engine.begin() as conn:
        for start in range(0, count, 20_000):
            conn.execute(sa.insert(Submission), rows[start:start + 20_000])
    return [r["leaf"] for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.sqlite3"
        db.upgrade(url)
        engine = db.make_engine(url)
        leaves = fill(engine, args.count)
        started = time.perf_counter()
        root = bare_tree(leaves)
        bare = time.perf_counter() - started
        started = time.perf_counter()
        [batch] = batches.seal_all(engine, max_batch=args.count)
        sealed = time.perf_counter() - started
        assert batch.root == root and batch.leaf_count == args.count
        engine.dispose()
    print(f"{'what':<44}{'seconds':>10}")
    print(f"{'bare hashlib tree, ' + format(args.count, ',') + ' leaves':<44}{bare:>10.3f}")
    print(f"{'seal ' + format(args.count, ',') + ' pending (persisted)':<44}{sealed:>10.3f}")
    print(f"ratio seal / bare tree: {sealed / bare:.1f}x   floor: seal ≤ 5 s → "
          f"{'holds' if sealed <= 5 else 'MISSED'}")


if __name__ == "__main__":
    main()
