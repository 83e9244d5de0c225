"""Registrations over HTTP: single ones from 32 concurrent clients, and bulk ones of 10,000.

    .venv/bin/python bench/register_http.py [--seconds 15] [--databases sqlite,postgresql]

For each database: `trialnotary serve --no-scheduler` (waitress) in its own process, and
beside it, measured right before with the same server and client, the baseline: a bare Flask
endpoint inserting one row through SQLModel (bench/baseline_app.py). The client is wrk
(`apt-get install wrk`; `make bench` installs it), 2 threads, 32 connections.

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

from bench.common import ROOT, free_port  # noqa: E402
from trialnotary import db, sites  # noqa: E402

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
    with db.write_session(engine) as session:
        sites.add_trial(session, "NCT01234567")
        sites.add_site(session, "NCT01234567", "SITE-01")
        token = sites.create_token(session, "SITE-01")
        session.commit()
    engine.dispose()
    return token


def serve(command: list[str], env: dict, port: int) -> subprocess.Popen:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=1)
            return process
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{command} did not start")


def wrk(url: str, seconds: int, token: str | None) -> dict:
    env = {**os.environ, **({"BENCH_TOKEN": token} if token else {})}
    output = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency",
         "-s", str(ROOT / "bench/post.lua"), url],
        env=env, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {"rate": rate, "p50_ms": _latency(output, "50%"), "p99_ms": _latency(output, "99%"),
            "errors": int(errors.group(1)) if errors else 0}


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


def measure(kind: str, seconds: int, folder: Path) -> dict:
    env = {**os.environ, "TRIALNOTARY_INSTANCE_PATH": str(folder / "instance"),
           "TRIALNOTARY_CHAIN": "local", "TRIALNOTARY_CHAIN_RPC_URL": "http://127.0.0.1:9"}
    result = {}
    base_url, drop_base = fresh_database(kind, folder)
    port = free_port()
    baseline = serve([sys.executable, "-m", "bench.baseline_app", "--database-url", base_url,
                      "--port", str(port)], env, port)
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
    server = serve([str(BIN / "trialnotary"), "serve", "--no-scheduler", "--port", str(port)],
                   {**env, "TRIALNOTARY_DATABASE_URL": url}, port)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk (make bench installs it)")
    held = True
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'what':<46}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
        for kind in args.databases.split(","):
            result = measure(kind, args.seconds, Path(tmp))
            base, single = result["baseline"], result["single"]
            for label, row in ((f"{kind}: bare Flask + SQLModel insert (baseline)", base),
                               (f"{kind}: POST /api/v1/submissions", single)):
                print(f"{label:<46}{row['rate']:>9.0f}{row['p50_ms']:>9.1f}"
                      f"{row['p99_ms']:>9.1f}{row['errors']:>8}")
            ratio = single["rate"] / base["rate"]
            holds = (single["rate"] >= FLOORS["rate"] and single["p99_ms"] <= FLOORS["p99_ms"]
                     and ratio >= FLOORS["ratio"] and single["errors"] == 0)
            print(f"  {kind}: ratio to baseline {ratio:.2f}; floor ≥ 700/s, p99 ≤ 100 ms, "
                  f"≥ 0.60 of baseline → {'holds' if holds else 'MISSED'}")
            bulk_holds = result["bulk_rate"] >= FLOORS["bulk_rate"]
            print(f"  {kind}: bulk, 10,000 per call: {result['bulk_rate']:,.0f} registrations/s; "
                  f"floor ≥ 20,000/s → {'holds' if bulk_holds else 'MISSED'}")
            held = held and holds and bulk_holds
    return 0 if held else 1


if __name__ == "__main__":
    sys.exit(main())
