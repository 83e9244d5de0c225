"""Sealing N pending registrations on SQLite, beside a bare hashlib tree over the same leaves.

    python bench/seal.py [--count 1000000] [--database-url URL]

The seal (tree built with merkletools, leaf slots and tree pages persisted, committed) runs
in a process of its own, so its peak memory (RSS) is its own; the baseline is a tree of the
same shape built with nothing but hashlib over the same leaves, in this process, right before.
Floors: 100,000 in ≤ 5 s (the core's); 1,000,000 in ≤ 10 s with peak RSS ≤ 1 GiB.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Figure, report  # noqa: E402
from trialnotary import db
from trialnotary.db import utcnow
from trialnotary.notary.models import Registration
from trialnotary.notary.registrations import leaf_of
from trialnotary.proof.receipt import rfc3339_ms

# Peak RSS from /proc (VmHWM): getrusage's ru_maxrss would carry the parent's high-water
# mark across exec on Linux.
SEAL_IN_A_CHILD = """
import json, re, sys, time
from trialnotary import db
from trialnotary.notary import batches
engine = db.make_engine(sys.argv[1])
started = time.perf_counter()
[batch] = batches.seal_all(engine, int(sys.argv[2]))
seconds = time.perf_counter() - started
peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
print(json.dumps({"seconds": seconds, "root": batch.root.hex(), "leaves": batch.leaf_count,
                  "rss_kib": peak}))
"""
FLOORS = {100_000: 5.0, 1_000_000: 10.0}
RSS_FLOOR_GIB = 1.0


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


def registration_rows(count: int) -> list[dict]:
    """``count`` valid registrations as ``submission`` rows, their leaves computed."""
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
                     "submitted_at": now, "leaf": leaf_of(record)})
    return rows


def insert(engine, rows: list[dict]) -> None:
    with engine.begin() as conn:
        for start in range(0, len(rows), 20_000):
            conn.execute(sa.insert(Registration), rows[start:start + 20_000])


def fill(engine, count: int) -> list[bytes]:
    """``count`` valid pending registrations, written straight to the database."""
    rows = registration_rows(count)
    insert(engine, rows)
    return [r["leaf"] for r in rows]


def figures(count: int = 1_000_000, database_url: str | None = None) -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite:///{tmp}/bench.sqlite3"
        db.upgrade(url)
        engine = db.make_engine(url)
        leaves = fill(engine, count)
        engine.dispose()
        started = time.perf_counter()
        root = bare_tree(leaves)
        bare = time.perf_counter() - started
        del leaves
        child = subprocess.run([sys.executable, "-c", SEAL_IN_A_CHILD, url, str(count)],
                               capture_output=True, text=True, check=True,
                               cwd=Path(__file__).resolve().parents[1])
        sealed = json.loads(child.stdout.strip().splitlines()[-1])
    assert sealed["root"] == root.hex() and sealed["leaves"] == count
    floor = FLOORS.get(count, 10.0)
    result = [Figure(f"seal {count:,} pending (SQLite, persisted)", sealed["seconds"], "s",
                     f"bare hashlib tree {bare:.2f} s", f"≤ {floor:g} s",
                     sealed["seconds"] <= floor, ratio=sealed["seconds"] / bare)]
    if count >= 1_000_000:
        gib = sealed["rss_kib"] / 1024**2
        result.append(Figure(f"seal {count:,}: peak RSS of the sealing process", gib, "GiB",
                             "", f"≤ {RSS_FLOOR_GIB:g} GiB", gib <= RSS_FLOOR_GIB))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    found = figures(args.count, args.database_url)
    return report(found)


if __name__ == "__main__":
    sys.exit(main())
