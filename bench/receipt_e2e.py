"""Registration → confirmed receipt, end to end, as a client sees it.

    python bench/receipt_e2e.py [--seconds 60] [--rate 10]

anvil mining a block every second; `trialnotary serve` (the local default: one process with
the scheduler) sealing every 5 s and confirming at 2 confirmations, on SQLite. A client
registers `--rate` files a second for `--seconds`; a poller asks for the oldest outstanding
registration's status every 100 ms. A batch is ready the moment the poller first sees one
of its registrations confirmed (its receipt downloadable); each registration's latency runs
from its `201` to that moment. The baseline is what the set-up alone costs: a 5 s seal
interval plus two 1 s blocks, the wait a registration made just after a seal cannot beat.
Floor: p99 ≤ 10 s.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Figure, free_port, percentiles, report, start_anvil  # noqa: E402
from bench.register_http import seeded  # noqa: E402

BIN = Path(sys.executable).parent
SEAL_SECONDS, BLOCK_SECONDS, CONFIRMATIONS = 5, 1, 2
FLOOR_S = 10.0


def start_server(folder: Path, rpc_url: str) -> tuple[subprocess.Popen, str, str]:
    url = f"sqlite:///{folder / 'e2e.sqlite3'}"
    token = seeded(url)
    port = free_port()
    env = {**os.environ, "TRIALNOTARY_INSTANCE_PATH": str(folder),
           "TRIALNOTARY_DATABASE_URL": url, "TRIALNOTARY_CHAIN": "local",
           "TRIALNOTARY_CHAIN_RPC_URL": rpc_url,
           "TRIALNOTARY_SEAL_INTERVAL_SECONDS": str(SEAL_SECONDS),
           "TRIALNOTARY_CONFIRMATIONS": str(CONFIRMATIONS)}
    server = subprocess.Popen([str(BIN / "trialnotary"), "serve", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/api/v1"
    for _ in range(300):
        try:
            requests.get(f"{base}/healthz", timeout=2)
            return server, base, token
        except requests.RequestException:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("trialnotary serve did not start")


def register(base: str, token: str, count: int, rate: float, outstanding: collections.deque,
             done: threading.Event) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    started = time.monotonic()
    for i in range(count):
        time.sleep(max(0.0, started + i / rate - time.monotonic()))
        answer = session.post(f"{base}/submissions", timeout=30, json={
            "trial": "NCT01234567", "site": "SITE-01", "dataset": "e2e",
            "filename": f"f{i}.csv", "sha256": hashlib.sha256(f"e2e {i}".encode()).hexdigest()})
        answer.raise_for_status()
        outstanding.append((answer.json()["id"], time.monotonic()))
    done.set()


def poll(base: str, outstanding: collections.deque, done: threading.Event) -> list[float]:
    """Latencies in seconds, one per registration, batch by batch as they are confirmed."""
    session = requests.Session()
    ready_at: dict[int, float] = {}
    latencies = []
    deadline = None
    while not (done.is_set() and not outstanding):
        if done.is_set():
            deadline = deadline or time.monotonic() + 60
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(outstanding)} registrations never confirmed")
        while outstanding:
            registration_id, registered = outstanding[0]
            seen = time.monotonic()
            status = session.get(f"{base}/submissions/{registration_id}", timeout=30).json()
            if status["status"] != "confirmed":
                break
            batch = ready_at.setdefault(status["batch"]["id"], seen)
            latencies.append(batch - registered)
            outstanding.popleft()
        time.sleep(0.1)
    return latencies


def figures(seconds: int = 60, rate: float = 10) -> list[Figure]:
    anvil, rpc_url = start_anvil("--block-time", str(BLOCK_SECONDS))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            server, base, token = start_server(Path(tmp), rpc_url)
            try:
                outstanding: collections.deque = collections.deque()
                done = threading.Event()
                client = threading.Thread(target=register, daemon=True, args=(
                    base, token, int(seconds * rate), rate, outstanding, done))
                client.start()
                latencies = poll(base, outstanding, done)
                client.join()
            finally:
                server.terminate()
                server.wait(30)
    finally:
        anvil.terminate()
    cut = percentiles(latencies)
    floor_of_setup = SEAL_SECONDS + CONFIRMATIONS * BLOCK_SECONDS
    return [Figure(f"registration → confirmed receipt, p99 ({len(latencies)} registrations; "
                   f"p50 {cut['p50']:.1f} s, max {max(latencies):.1f} s)", cut["p99"], "s",
                   f"seal interval + {CONFIRMATIONS} blocks {floor_of_setup} s",
                   f"≤ {FLOOR_S:.0f} s", cut["p99"] <= FLOOR_S,
                   ratio=cut["p99"] / floor_of_setup)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--rate", type=float, default=10)
    args = parser.parse_args()
    found = figures(args.seconds, args.rate)
    return report(found)


if __name__ == "__main__":
    sys.exit(main())
