"""`trialnotary check` over N registrations on SQLite, beside bare hashlib over the same data.

    python bench/check.py [--count 1000000] [--max-batch 100000]

N registrations written straight to SQLite, sealed into batches of `--max-batch` (each with
the audit trail's head as its last leaf), anchored and confirmed on a throw-away anvil; then
`trialnotary check` run as a whole process (spawn to exit): every leaf recomputed from its
stored record, every root from its leaves, every anchor transaction's input compared with
its root. The baseline, in the same run, is the least any such check computes, with nothing
but `json` and `hashlib` over the same records in memory: each leaf from its record's
canonical JSON, and each batch's tree. Floor: 1,000,000 in ≤ 60 s.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Figure, report, start_anvil  # noqa: E402
from bench.seal import bare_tree, insert, registration_rows  # noqa: E402
from trialnotary import db
from trialnotary.config import load_settings
from trialnotary.notary import anchoring, batches
from trialnotary.notary.chain import ChainClient
from trialnotary.people import sites
from trialnotary.proof.receipt import RECORD_KEYS

BIN = Path(sys.executable).parent
FLOOR_SECONDS = 60.0
COLUMNS = ("id", "trial", "site", "kind", "dataset", "sha256", "size_bytes", "filename",
           "supersedes", "submitted_at")


def bare_check(records: list[dict], max_batch: int) -> float:
    """Seconds for the baseline: every leaf from its record, every batch's tree, hashlib
    only (the audit head's leaf left out: one leaf per batch)."""
    started = time.perf_counter()
    encode = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode
    leaves = [hashlib.sha256(encode(record).encode()).digest() for record in records]
    for start in range(0, len(leaves), max_batch - 1):
        bare_tree(leaves[start:start + max_batch - 1])
    return time.perf_counter() - started


def anchored_notary(env: dict, count: int, max_batch: int) -> list[dict]:
    """The registrations as records, after sealing, anchoring and confirming them all."""
    settings = load_settings(env)
    db.upgrade(settings.database_url)
    engine = db.make_engine(settings.database_url)
    with db.write_session(engine) as session:
        sites.add_trial(session, "NCT01234567")
        sites.add_site(session, "NCT01234567", "SITE-01")
        session.commit()
    rows = registration_rows(count)
    insert(engine, rows)
    sealed = batches.seal_all(engine, max_batch)
    chain = ChainClient(settings)
    anchoring.anchor_sealed(engine, chain)
    confirmed: set[int] = set()
    while len(confirmed) < len(sealed):
        time.sleep(0.2)
        confirmed |= set(anchoring.confirm_sent(engine, chain))
    engine.dispose()
    print(f"{count:,} registrations in {len(sealed)} confirmed batches", flush=True)
    return [dict(zip(RECORD_KEYS, (row[c] for c in COLUMNS), strict=True)) for row in rows]


def timed_check(env: dict) -> float:
    started = time.perf_counter()
    result = subprocess.run([str(BIN / "trialnotary"), "check"], env=env, capture_output=True,
                            text=True)
    elapsed = time.perf_counter() - started
    print(result.stdout.strip(), flush=True)
    if result.returncode != 0:
        sys.exit(f"trialnotary check failed:\n{result.stdout}{result.stderr}")
    return elapsed


def figures(count: int = 1_000_000, max_batch: int = 100_000) -> list[Figure]:
    anvil, rpc_url = start_anvil("--block-time", "1")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "TRIALNOTARY_INSTANCE_PATH": tmp,
                   "TRIALNOTARY_CHAIN_RPC_URL": rpc_url, "TRIALNOTARY_CONFIRMATIONS": "1",
                   "TRIALNOTARY_MAX_BATCH": str(max_batch)}
            records = anchored_notary(env, count, max_batch)
            bare = bare_check(records, max_batch)
            del records
            seconds = timed_check(env)
    finally:
        anvil.terminate()
    return [Figure(f"trialnotary check, {count:,} registrations (SQLite, spawn to exit)",
                   seconds, "s", f"bare json+hashlib {bare:.2f} s", f"≤ {FLOOR_SECONDS:g} s",
                   seconds <= FLOOR_SECONDS, ratio=seconds / bare)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--max-batch", type=int, default=100_000)
    args = parser.parse_args()
    return report(figures(args.count, args.max_batch))


if __name__ == "__main__":
    sys.exit(main())
