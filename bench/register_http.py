"""Registrations over HTTP: single ones from 32 concurrent clients, and bulk ones of 10,000.

    .venv/bin/python bench/register_http.py [--seconds 15] [--databases sqlite,postgresql]

For each database: trialnotary's app under gunicorn (the production set-up the README
gives: `gunicorn -w 4 'trialnotary.web.app:create_app()'`, sync workers; the scheduler
in a `trialnotary worker` of its own), and beside it, measured right before with the same
server and client, the baseline: a bare Flask endpoint inserting one row through SQLModel
(bench/baseline_app.py). The client is wrk (`apt-get install wrk`; `make bench` installs
it), 2 threads, 32 connections, on the same 2 cores.

Bulk: one client posting 10,000 registrations per call, several calls.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import baseline_app  # noqa: E402
from bench.common import ROOT, Figure, free_port, report, seed_site  # noqa: E402
from trialnotary import db

BIN = Path(sys.executable).parent
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
CONNECTIONS = 32
FLOORS = {"rate": 700, "p99_ms": 100, "ratio": 0.60, "bulk_rate": 20_000}


def fresh_database(kind: str, folder: Path) -> tuple[str, callable]:
    if kind == "sqlite":
        return f"sqlite:///{folder / f'bench-{uuid.uuid4().hex[:6]}.sqlite3'}", lambda: None
    name = "bench_" + uuid.uuid4().hex[:8]
    admin = sa.create_engine(POSTGRES.replace("postgresql://", "postgresql+psycopg://"),
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop():
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    return POSTGRES.rsplit("/", 1)[0] + "/" + name, drop


def seeded(url: str) -> str:
    db.upgrade(url)
    engine = db.make_engine(url)
    token = seed_site(engine)
    engine.dispose()
    return token


def gunicorn(app: str, env: dict, port: int, workers: int, threads: int) -> subprocess.Popen:
    kind = ["-k", "gthread", "--threads", str(threads)] if threads > 1 else ["-k", "sync"]
    command = [str(BIN / "gunicorn"), "-w", str(workers), *kind, "-b", f"127.0.0.1:{port}",
               app]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=5)
            return process
        except requests.RequestException:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{command} did not start")


def wrk_run(url: str, seconds: int, script: str | None, env: dict | None = None) -> dict:
    """wrk with 2 threads and 32 connections (GET, or what ``script`` makes): rate,
    p50 and p99 latency, and the count of answers that were not 2xx/3xx."""
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency"]
    command += ["-s", script] if script else []
    output = subprocess.run([*command, url], env={**os.environ, **(env or {})},
                            capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {"rate": rate, "p50_ms": _latency(output, "50%"), "p99_ms": _latency(output, "99%"),
            "errors": int(errors.group(1)) if errors else 0}


def wrk(url: str, seconds: int, token: str | None) -> dict:
    return wrk_run(url, seconds, str(ROOT / "bench/post.lua"),
                   {"BENCH_TOKEN": token} if token else None)


def _latency(output: str, label: str) -> float:
    value, unit = re.search(rf"^\s+{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", output,
                            re.MULTILINE).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def bulk(url: str, token: str, calls: int) -> float:
    """Registrations per second, posting 10,000 per call, one call after another."""
    session = requests.Session()
    auth = {"Authorization": f"Bearer {token}"}
    bodies = [json.dumps({"submissions": [
        {"trial": "NCT01234567", "site": "SITE-01", "dataset": "bulk", "filename": f"f{i}.csv",
         "sha256": f"{call:016x}{i:048x}", "sizeBytes": i} for i in range(10_000)]})
        for call in range(calls + 1)]
    session.post(url, data=bodies[0], headers={**auth, "Content-Type": "application/json"},
                 timeout=120).raise_for_status()  # warm-up
    started = time.perf_counter()
    for body in bodies[1:]:
        answer = session.post(url, data=body, timeout=120,
                              headers={**auth, "Content-Type": "application/json"})
        answer.raise_for_status()
    return calls * 10_000 / (time.perf_counter() - started)


def measure(kind: str, seconds: int, folder: Path, workers: int, threads: int) -> dict:
    env = {**os.environ, "TRIALNOTARY_INSTANCE_PATH": str(folder / "instance"),
           "TRIALNOTARY_CHAIN": "local", "TRIALNOTARY_CHAIN_RPC_URL": "http://127.0.0.1:9"}
    result = {}
    base_url, drop_base = fresh_database(kind, folder)
    port = free_port()
    baseline_app.create_app(base_url)  # its table, once, before the workers start
    baseline = gunicorn("bench.baseline_app:from_env()", {**env, "BENCH_DATABASE_URL": base_url},
                        port, workers, threads)
    try:
        wrk(f"http://127.0.0.1:{port}/insert", 3, None)  # warm-up
        result["baseline"] = wrk(f"http://127.0.0.1:{port}/insert", seconds, None)
    finally:
        baseline.terminate()
        baseline.wait(10)
        drop_base()
    url, drop = fresh_database(kind, folder)
    token = seeded(url)
    port = free_port()
    server = gunicorn("trialnotary.web.app:create_app()", {**env, "TRIALNOTARY_DATABASE_URL": url},
                      port, workers, threads)
    api = f"http://127.0.0.1:{port}/api/v1/submissions"
    try:
        wrk(api, 3, token)
        result["single"] = wrk(api, seconds, token)
        result["bulk_rate"] = bulk(f"{api}/bulk", token, calls=5)
    finally:
        server.terminate()
        server.wait(10)
        drop()
    return result


def figures(seconds: int = 15, databases: str = "sqlite,postgresql", workers: int = 4,
            threads: int = 1) -> list[Figure]:
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk (make bench installs it)")
    found = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in databases.split(","):
            result = measure(kind, seconds, Path(tmp), workers, threads)
            base, single = result["baseline"], result["single"]
            ratio = single["rate"] / base["rate"]
            ok = single["errors"] == 0
            found += [
                Figure(f"{kind}: single registrations, 32 clients", single["rate"], "/s",
                       f"bare Flask+SQLModel insert {base['rate']:,.0f}/s",
                       "≥ 700/s and ≥ 0.60 of baseline",
                       ok and single["rate"] >= FLOORS["rate"] and ratio >= FLOORS["ratio"],
                       ratio=ratio),
                Figure(f"{kind}: single registrations, p99", single["p99_ms"], "ms",
                       f"baseline p99 {base['p99_ms']:.1f} ms", "≤ 100 ms",
                       ok and single["p99_ms"] <= FLOORS["p99_ms"]),
                Figure(f"{kind}: bulk registrations, 10,000 per call", result["bulk_rate"],
                       "/s", "", "≥ 20,000/s", result["bulk_rate"] >= FLOORS["bulk_rate"]),
            ]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    found = figures(args.seconds, args.databases, args.workers, args.threads)
    return report(found)


if __name__ == "__main__":
    sys.exit(main())
