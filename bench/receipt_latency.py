"""Receipt download latency from one big confirmed batch, beside a no-op endpoint.

    python bench/receipt_latency.py [--leaves 100000] [--requests 2000]

One client, keep-alive, a real WSGI server (waitress) in this process, a real anvil.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import requests
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import percentiles, serve_in_thread, start_anvil  # noqa: E402
from bench.seal import fill  # noqa: E402
from trialnotary import anchoring, batches, db  # noqa: E402
from trialnotary.app import create_app  # noqa: E402
from trialnotary.chain import ChainClient  # noqa: E402
from trialnotary.config import load_settings  # noqa: E402
from trialnotary.models import Submission  # noqa: E402


def timed_gets(session: requests.Session, urls: list[str]) -> list[float]:
    samples = []
    for url in urls:
        started = time.perf_counter()
        answer = session.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.text
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    anvil, rpc_url = start_anvil()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = load_settings({"TRIALNOTARY_INSTANCE_PATH": tmp,
                                      "TRIALNOTARY_CHAIN_RPC_URL": rpc_url,
                                      "TRIALNOTARY_CONFIRMATIONS": "1"})
            db.upgrade(settings.database_url)
            engine = db.make_engine(settings.database_url)
            fill(engine, args.leaves)
            chain = ChainClient(settings)
            batches.seal_all(engine, args.leaves)
            anchoring.anchor_sealed(engine, chain)
            while not anchoring.confirm_sent(engine, chain):
                time.sleep(0.2)
            with engine.connect() as conn:
                ids = conn.execute(sa.select(Submission.id)).scalars().all()
            server, base = serve_in_thread(create_app(settings))
            with requests.Session() as client:
                picks = [random.choice(ids) for _ in range(args.requests)]
                receipt_urls = [f"{base}/api/v1/submissions/{i}/receipt" for i in picks]
                noop_urls = [f"{base}/api/v1/healthz"] * args.requests
                timed_gets(client, receipt_urls[:100] + noop_urls[:100])  # warm up
                noop = percentiles(timed_gets(client, noop_urls))
                receipt = percentiles(timed_gets(client, receipt_urls))
            server.close()
            engine.dispose()
    finally:
        anvil.terminate()
    print(f"{'endpoint (ms)':<40}{'p50':>8}{'p90':>8}{'p99':>8}")
    print(f"{'GET /healthz (no-op baseline)':<40}" + "".join(f"{noop[k]:>8.2f}" for k in noop))
    label = f"GET receipt, {args.leaves:,}-leaf batch"
    print(f"{label:<40}" + "".join(f"{receipt[k]:>8.2f}" for k in receipt))
    print(f"receipt p50 / no-op p50: {receipt['p50'] / noop['p50']:.1f}x   floor: p50 ≤ 10 ms → "
          f"{'holds' if receipt['p50'] <= 10 else 'MISSED'}")


if __name__ == "__main__":
    main()
