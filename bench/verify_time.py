"""`trialnotary verify` of one receipt against a local node, as a whole process.

    python bench/verify_time.py [--runs 20]

A real anvil; one registration sealed, anchored and confirmed; its receipt, file and the
notary's identity written out; then `trialnotary verify RECEIPT --file FILE --rpc URL`, pinned
with `--expect-sender ADDR` and with `--notary IDENTITY-FILE`, run again and again, timed
from spawn to exit (each run must exit 0: every check passed, origin pinned). The baseline,
alternating with them in the same run, is the bare interpreter (`python -c pass`), the
start-up no Python CLI can go under. Floor: median ≤ 300 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Figure, report, start_anvil  # noqa: E402
from trialnotary import db
from trialnotary.config import load_settings
from trialnotary.notary import anchoring, batches, identity, registrations
from trialnotary.notary.chain import ChainClient
from trialnotary.people import sites

BIN = Path(sys.executable).parent
FLOOR_MS = 300


def confirmed_receipt(folder: Path, rpc_url: str) -> tuple[Path, Path, str, Path]:
    """A file, its confirmed receipt (through the real register → seal → anchor path), the
    notary's anchoring address and its identity document, saved."""
    settings = load_settings({"TRIALNOTARY_INSTANCE_PATH": str(folder),
                              "TRIALNOTARY_CHAIN_RPC_URL": rpc_url,
                              "TRIALNOTARY_CONFIRMATIONS": "1"})
    db.upgrade(settings.database_url)
    engine = db.make_engine(settings.database_url)
    data = folder / "visits.csv"
    data.write_bytes(b"subject,visit,value\n1001,1,42\n")
    with db.write_session(engine) as session:
        sites.add_trial(session, "NCT01234567")
        sites.add_site(session, "NCT01234567", "SITE-01")
        token = sites.create_token(session, "SITE-01")
        session.commit()
    answer = registrations.submit(
        engine, token=token, bulk=False, path="/api/v1/submissions",
        render=lambda records: registrations.Answer(201, json.dumps(records)),
        read_payload=lambda: {"trial": "NCT01234567", "site": "SITE-01", "dataset": "visits",
                              "filename": data.name, "sizeBytes": data.stat().st_size,
                              "sha256": hashlib.sha256(data.read_bytes()).hexdigest()})
    [record] = json.loads(answer.body)
    chain = ChainClient(settings)
    batches.seal_all(engine, 10)
    anchoring.anchor_sealed(engine, chain)
    while not anchoring.confirm_sent(engine, chain):
        time.sleep(0.2)
    with db.write_session(engine) as session:
        found = registrations.receipt_of(session, record["id"],
                                         identity.notary_of(settings))
    saved = folder / "identity.json"
    saved.write_text(identity.document_text(engine, settings))
    engine.dispose()
    receipt = folder / "visits.receipt.json"
    receipt.write_text(json.dumps(found.receipt))
    return data, receipt, chain.address, saved


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    elapsed = (time.perf_counter() - started) * 1000
    if result.returncode != 0:
        sys.exit(f"{command[0]} failed:\n{result.stdout}{result.stderr}")
    return elapsed


def figures(runs: int = 20) -> list[Figure]:
    anvil, rpc_url = start_anvil()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            data, receipt, notary, saved = confirmed_receipt(Path(tmp), rpc_url)
            verify = [str(BIN / "trialnotary"), "verify", str(receipt), "--file", str(data),
                      "--rpc", rpc_url]
            pinned = {"--expect-sender": verify + ["--expect-sender", notary],
                      "--notary FILE": verify + ["--notary", str(saved)]}
            bare = [sys.executable, "-c", "pass"]
            timed(bare)  # warm the page cache
            times = {name: [timed(command)] for name, command in pinned.items()}
            theirs = []
            for _ in range(runs):
                for name, command in pinned.items():
                    times[name].append(timed(command))
                theirs.append(timed(bare))
    finally:
        anvil.terminate()
    baseline = statistics.median(theirs)
    return [Figure(f"trialnotary verify {name}, one receipt, local node (median)",
                   statistics.median(runs_of[1:]), "ms", f"python -c pass {baseline:.0f} ms",
                   f"≤ {FLOOR_MS} ms", statistics.median(runs_of[1:]) <= FLOOR_MS,
                   ratio=statistics.median(runs_of[1:]) / baseline)
            for name, runs_of in times.items()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    found = figures(parser.parse_args().runs)
    return report(found)


if __name__ == "__main__":
    sys.exit(main())
