"""Soak: a steady load of registrations for a while, with random faults of every kind, then
the invariants.

    .venv/bin/python bench/soak.py [--minutes 10] [--database postgresql|sqlite]
        [--rate 20] [--fault-every 15] [--seed 1]

Real processes on a real anvil: on PostgreSQL two `serve --no-scheduler` and two `worker`s,
on SQLite one `serve` (with its scheduler). Faults: a worker or server killed (SIGKILL, at
once or at a crash point), the chain node stopped and restarted, crashed and restarted from
older state, all pending transactions dropped, a reorg, mining stalled (anchors stuck until
replaced), the account emptied, fees pushed above the cap. The load client retries with the
same Idempotency-Key, as `trialnotary submit` does.

Prints: registrations accepted, lost (must be 0), batches, duplicate anchors (must be 0),
faults by kind, time from registration to confirmed receipt (p50, p99, longest), and
whether every invariant of `trialnotary check --settled --receipts` holds.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path

import requests
import sqlalchemy as sa
from sqlmodel import Session, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ANVIL, free_port, seed_site  # noqa: E402
from trialnotary import db
from trialnotary.config import load_settings
from trialnotary.notary import consistency
from trialnotary.notary.chain import ChainClient
from trialnotary.notary.faults import POINTS
from trialnotary.notary.models import Anchor, Batch, LeafSlot, Registration

BIN = Path(sys.executable).parent
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
FAULTS = ("kill-worker", "crash-point", "node-restart", "node-crash-older-state",
          "drop-transactions", "reorg", "stalled-mining", "empty-account", "fee-spike")


class Node:
    """The chain: anvil with 1-second blocks, its state dumped every second."""

    def __init__(self, folder: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = folder / "anvil-state.json"
        self.older = folder / "older-state.json"
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(ANVIL), "--port", str(self.port), "--block-time", "1", "--silent",
             "--state", str(self.state), "--state-interval", "1"], stdout=subprocess.DEVNULL)
        for _ in range(200):
            try:
                self.rpc("eth_chainId")
                return
            except requests.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("anvil did not start")

    def rpc(self, method: str, *params):
        reply = requests.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                              "params": list(params)}, timeout=10).json()
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def stop(self, sig=signal.SIGTERM) -> None:
        self.process.send_signal(sig)
        self.process.wait(20)


class Deployment:
    """The notary's processes; each can be killed and started again."""

    def __init__(self, env: dict, database: str):
        self.env = env
        self.ports = [free_port()] + ([free_port()] if database == "postgresql" else [])
        self.servers: dict[int, subprocess.Popen] = {}
        self.workers: list[subprocess.Popen | None] = [None, None] \
            if database == "postgresql" else []
        self.scheduler_in_server = database == "sqlite"
        for port in self.ports:
            self.start_server(port)
        for index in range(len(self.workers)):
            self.start_worker(index)

    def _spawn(self, *command: str, crash_at: str | None = None) -> subprocess.Popen:
        env = {**self.env, **({"TRIALNOTARY_CRASH_AT": crash_at} if crash_at else {})}
        return subprocess.Popen([str(BIN / "trialnotary"), *command], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start_server(self, port: int, crash_at: str | None = None) -> None:
        extra = [] if self.scheduler_in_server else ["--no-scheduler"]
        self.servers[port] = self._spawn("serve", "--port", str(port), *extra,
                                         crash_at=crash_at)

    def start_worker(self, index: int, crash_at: str | None = None) -> None:
        self.workers[index] = self._spawn("worker", crash_at=crash_at)

    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}/api/v1" for port in self.ports]

    def kill_one(self, rng: random.Random, crash_at: str | None = None) -> str:
        """Kill a scheduling process (SIGKILL) and start it again, maybe primed to crash at
        a point; returns which."""
        if self.workers:
            index = rng.randrange(len(self.workers))
            self.workers[index].kill()
            self.workers[index].wait()
            self.start_worker(index, crash_at)
            return f"worker {index}"
        port = self.ports[0]
        self.servers[port].kill()
        self.servers[port].wait()
        self.start_server(port, crash_at)
        return "server"

    def revive(self) -> None:
        """Start again whatever died (a crash point was reached)."""
        for port, process in self.servers.items():
            if process.poll() is not None:
                self.start_server(port)
        for index, process in enumerate(self.workers):
            if process.poll() is not None:
                self.start_worker(index)

    def stop(self) -> None:
        for process in [*self.servers.values(), *self.workers]:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.servers.values(), *self.workers]:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


class Load:
    """Registrations at a steady rate; each retried with its Idempotency-Key until a 201."""

    def __init__(self, deployment: Deployment, token: str, rate: float):
        self.deployment, self.token, self.rate = deployment, token, rate
        self.accepted: list[str] = []
        self.retries = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        session = requests.Session()
        n = 0
        while not self.stopping.is_set():
            started = time.monotonic()
            self.register(session, n)
            n += 1
            time.sleep(max(0.0, 1 / self.rate - (time.monotonic() - started)))

    def register(self, session: requests.Session, n: int) -> None:
        key = str(uuid.uuid4())
        body = {"trial": "NCT01234567", "site": "SITE-01", "dataset": f"soak {n}",
                "sha256": os.urandom(32).hex(), "sizeBytes": n}
        headers = {"Authorization": f"Bearer {self.token}", "Idempotency-Key": key}
        urls = self.deployment.urls()
        for attempt in range(600):
            url = urls[(n + attempt) % len(urls)]
            try:
                answer = session.post(f"{url}/submissions", json=body, headers=headers,
                                      timeout=10)
                if answer.status_code == 201:
                    self.accepted.append(answer.json()["id"])
                    return
            except requests.RequestException:
                pass
            self.retries += 1
            time.sleep(0.2)
        raise RuntimeError(f"registration {n} was never accepted")


def inject(kind: str, rng: random.Random, node: Node, deployment: Deployment,
           address: str) -> None:
    if kind == "kill-worker":
        deployment.kill_one(rng)
    elif kind == "crash-point":
        deployment.kill_one(rng, crash_at=rng.choice(POINTS))
    elif kind == "node-restart":
        node.stop()
        time.sleep(rng.uniform(2, 8))
        node.start()
    elif kind == "node-crash-older-state":
        shutil.copy(node.state, node.older)  # the state of a few seconds ago
        time.sleep(rng.uniform(2, 5))
        node.stop(signal.SIGKILL)
        shutil.copy(node.older, node.state)
        node.start()
    elif kind == "drop-transactions":
        node.rpc("anvil_dropAllTransactions")
    elif kind == "reorg":
        node.rpc("anvil_reorg", rng.randint(1, 3), [])
    elif kind == "stalled-mining":
        node.rpc("evm_setIntervalMining", 0)
        time.sleep(rng.uniform(15, 25))  # past the replace-after time: anchors get replaced
        node.rpc("evm_setIntervalMining", 1)
    elif kind == "empty-account":
        balance = node.rpc("eth_getBalance", address, "latest")
        node.rpc("anvil_setBalance", address, "0x0")
        time.sleep(rng.uniform(5, 10))
        node.rpc("anvil_setBalance", address, balance)
    elif kind == "fee-spike":
        node.rpc("anvil_setNextBlockBaseFeePerGas", hex(500 * 10**9))  # above the cap


def settle(engine, chain: ChainClient, deployment: Deployment, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        deployment.revive()
        with Session(engine) as session:
            if consistency.check(session, chain, settled=True).ok:
                return time.monotonic() - started
        time.sleep(1)
    return float("nan")


def latencies(engine) -> list[float]:
    """Seconds from each registration's submittedAt to its anchor's confirmation."""
    with Session(engine) as session:
        rows = session.execute(
            select(Registration.submitted_at, Anchor.confirmed_at)
            .join(LeafSlot, LeafSlot.seq == Registration.seq)
            .join(Batch, Batch.id == LeafSlot.batch_id)
            .join(Anchor, sa.and_(Anchor.batch_id == Batch.id, Anchor.state == "confirmed"))
        ).all()
    out = []
    for submitted, confirmed in rows:
        start = datetime.fromisoformat(submitted.replace("Z", "+00:00"))
        end = confirmed if confirmed.tzinfo else confirmed.replace(tzinfo=start.tzinfo)
        out.append((end - start).total_seconds())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--rate", type=float, default=20, help="registrations per second")
    parser.add_argument("--fault-every", type=float, default=15, help="seconds")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="soak-"))
    node = Node(folder)
    if args.database == "postgresql":
        name = "soak_" + uuid.uuid4().hex[:8]
        admin = sa.create_engine(POSTGRES.replace("postgresql://", "postgresql+psycopg://"),
                                 isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = POSTGRES.rsplit("/", 1)[0] + "/" + name
    else:
        url = f"sqlite:///{folder / 'soak.sqlite3'}"
    db.upgrade(url)
    env = {**os.environ, "TRIALNOTARY_INSTANCE_PATH": str(folder / "instance"),
           "TRIALNOTARY_DATABASE_URL": url, "TRIALNOTARY_CHAIN": "local",
           "TRIALNOTARY_CHAIN_RPC_URL": node.url, "TRIALNOTARY_SEAL_INTERVAL_SECONDS": "5",
           "TRIALNOTARY_CONFIRMATIONS": "2", "TRIALNOTARY_RESEND_AFTER_SECONDS": "3",
           "TRIALNOTARY_REPLACE_AFTER_SECONDS": "10"}
    engine = db.make_engine(url)
    token = seed_site(engine)
    chain = ChainClient(load_settings(env))
    deployment = Deployment(env, args.database)
    time.sleep(3)
    load = Load(deployment, token, args.rate)
    load.thread.start()
    faults: Counter = Counter()
    end = time.monotonic() + args.minutes * 60
    try:
        while time.monotonic() < end:
            time.sleep(min(args.fault_every, max(0.0, end - time.monotonic())))
            if time.monotonic() >= end:
                break
            kind = rng.choice(FAULTS)
            inject(kind, rng, node, deployment, chain.address)
            faults[kind] += 1
            deployment.revive()
        load.stopping.set()
        load.thread.join(120)
        settled_after = settle(engine, chain, deployment, timeout=300)
    finally:
        deployment.stop()
    with Session(engine) as session:
        found = consistency.check(session, chain, settled=True, receipts=True)
        stored = set(session.scalars(select(Registration.id)))
        duplicate = session.scalar(select(sa.func.count()).select_from(
            select(Anchor.batch_id).where(Anchor.state == "confirmed")
            .group_by(Anchor.batch_id).having(sa.func.count() > 1).subquery()))
    lost = [i for i in load.accepted if i not in stored]
    times = sorted(latencies(engine))
    node.stop()
    print(f"soak: {args.minutes:g} min on {args.database}, {args.rate:g} registrations/s, "
          f"a fault every {args.fault_every:g} s (seed {args.seed})")
    print(f"{'registrations accepted':<40}{len(load.accepted):>10}")
    print(f"{'  retried by the client':<40}{load.retries:>10}")
    print(f"{'registrations lost (must be 0)':<40}{len(lost):>10}")
    print(f"{'batches':<40}{found.counts.get('batches', 0):>10}")
    print(f"{'duplicate anchors (must be 0)':<40}{duplicate:>10}")
    print(f"{'account transactions on chain':<40}{found.counts.get('account_transactions', 0):>10}")
    print(f"{'receipts verified':<40}{found.counts.get('receipts_verified', 0):>10}")
    for kind in FAULTS:
        print(f"{'fault: ' + kind:<40}{faults[kind]:>10}")
    if times:
        p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
        print(f"{'registration → confirmed, p50 (s)':<40}{statistics.median(times):>10.1f}")
        print(f"{'registration → confirmed, p99 (s)':<40}{p99:>10.1f}")
        print(f"{'registration → confirmed, longest (s)':<40}{times[-1]:>10.1f}")
    print(f"{'settled after the load stopped (s)':<40}{settled_after:>10.1f}")
    print("invariants: " + ("all hold" if found.ok and not lost and not duplicate
                            else "BROKEN: " + "; ".join(found.problems)))
    engine.dispose()
    return 0 if found.ok and not lost and not duplicate else 1


if __name__ == "__main__":
    sys.exit(main())
