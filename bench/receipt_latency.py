"""Receipt downloads from one big confirmed batch, beside a no-op endpoint.

    python bench/receipt_latency.py [--leaves 1000000] [--requests 2000] [--seconds 10]

trialnotary under gunicorn (4 sync workers, as the README deploys it), on SQLite, with a
real anvil.
One client (keep-alive) times random receipts and, as the baseline, `GET /healthz`; then
wrk with 32 connections does the same. Floors: single client p50 ≤ 5 ms; 32 concurrent
p99 ≤ 50 ms and at least half the no-op's throughput.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import requests
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, Figure, free_port, percentiles, report, start_anvil  # noqa: E402
from bench.register_http import gunicorn, wrk_run  # noqa: E402
from bench.seal import fill  # noqa: E402
from trialnotary import db
from trialnotary.config import load_settings
from trialnotary.notary import anchoring, batches
from trialnotary.notary.chain import ChainClient
from trialnotary.notary.models import Registration

BIN = Path(sys.executable).parent


def timed_gets(session: requests.Session, urls: list[str]) -> list[float]:
    samples = []
    for url in urls:
        started = time.perf_counter()
        answer = session.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.text
    return samples


def anchored_batch(tmp: str, rpc_url: str, leaves: int) -> tuple[dict, list[str]]:
    env = {"TRIALNOTARY_INSTANCE_PATH": tmp, "TRIALNOTARY_CHAIN_RPC_URL": rpc_url,
           "TRIALNOTARY_CONFIRMATIONS": "1", "TRIALNOTARY_MAX_BATCH": str(leaves + 1)}
    settings = load_settings(env)
    db.upgrade(settings.database_url)
    engine = db.make_engine(settings.database_url)
    fill(engine, leaves)
    chain = ChainClient(settings)
    batches.seal_all(engine, leaves + 1)
    anchoring.anchor_sealed(engine, chain)
    while not anchoring.confirm_sent(engine, chain):
        time.sleep(0.2)
    with engine.connect() as conn:
        ids = conn.execute(sa.select(Registration.id)).scalars().all()
    engine.dispose()
    return {**os.environ, **env, "TRIALNOTARY_DATABASE_URL": settings.database_url}, ids


def figures(leaves: int = 1_000_000, requests_: int = 2000, seconds: int = 10) -> list[Figure]:
    anvil, rpc_url = start_anvil()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env, ids = anchored_batch(tmp, rpc_url, leaves)
            ids_file = Path(tmp) / "ids.txt"
            ids_file.write_text("\n".join(random.sample(ids, min(len(ids), 100_000))) + "\n")
            port = free_port()
            server = gunicorn("trialnotary.web.app:create_app()", env, port, workers=4, threads=1)
            base = f"http://127.0.0.1:{port}/api/v1"
            try:
                with requests.Session() as client:
                    picks = random.choices(ids, k=requests_)
                    receipt_urls = [f"{base}/submissions/{i}/receipt" for i in picks]
                    noop_urls = [f"{base}/healthz"] * requests_
                    timed_gets(client, receipt_urls[:200] + noop_urls[:200])  # warm up
                    noop = percentiles(timed_gets(client, noop_urls))
                    single = percentiles(timed_gets(client, receipt_urls))
                lua = {"BENCH_IDS": str(ids_file)}
                noop_many = wrk_run(f"{base}/healthz", seconds, None, env=lua)
                many = wrk_run(f"{base}/submissions/x/receipt", seconds,
                               str(ROOT / "bench/receipt.lua"), env=lua)
            finally:
                server.terminate()
                server.wait(10)
    finally:
        anvil.terminate()
    ratio = many["rate"] / noop_many["rate"]
    return [
        Figure(f"receipt from a {leaves:,}-leaf batch, 1 client, p50", single["p50"], "ms",
               f"GET /healthz p50 {noop['p50']:.2f} ms", "≤ 5 ms", single["p50"] <= 5,
               ratio=single["p50"] / noop["p50"]),
        Figure(f"receipt from a {leaves:,}-leaf batch, 32 concurrent, p99", many["p99_ms"],
               "ms", f"GET /healthz p99 {noop_many['p99_ms']:.1f} ms", "≤ 50 ms",
               many["p99_ms"] <= 50 and many["errors"] == 0),
        Figure("receipts per second, 32 concurrent", many["rate"], "/s",
               f"GET /healthz {noop_many['rate']:,.0f}/s", "≥ 0.50 of baseline",
               ratio >= 0.5 and many["errors"] == 0, ratio=ratio),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    found = figures(args.leaves, args.requests, args.seconds)
    return report(found)


if __name__ == "__main__":
    sys.exit(main())
