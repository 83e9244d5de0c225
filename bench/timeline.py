"""A trial's proven timeline page and JSON export over 100,000 registrations (SQLite).

    python bench/timeline.py [--count 100000] [--batches 50] [--requests 30]

N registrations of one trial (ten sites; a protocol and its amendments, a SAP, a lock, an
unblinding and results among datasets) written straight to the database, sealed into
``--batches`` batches, each confirmed by an anchor row written directly (a roll-up, its
batch, a confirmed transaction with a block time one minute after the previous). Then,
through the app's test client as a signed-in sponsor: the timeline page (first 500 entries)
p50 over ``--requests`` requests; the JSON export of every entry, the first built afresh
(no timeline kept) and the next from the process's copy. Baseline in the same run: the
trial's dashboard page (p50). Floors: page ≤ 500 ms p50, JSON export ≤ 2 s (the cold one).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Figure, report  # noqa: E402
from bench.seal import insert  # noqa: E402
from trialnotary import db  # noqa: E402
from trialnotary.config import load_settings  # noqa: E402
from trialnotary.notary import batches  # noqa: E402
from trialnotary.notary import timeline as trial_timelines  # noqa: E402
from trialnotary.notary.models import Anchor, Batch, Rollup, RollupBatch  # noqa: E402
from trialnotary.people import accounts, sessions, sites  # noqa: E402
from trialnotary.proof.receipt import record_leaf, rfc3339_ms  # noqa: E402

TRIAL = "NCT01234567"
SITES = [f"SITE-{n:02d}" for n in range(1, 11)]
PAGE_FLOOR_MS, EXPORT_FLOOR_S = 500.0, 2.0
#: The milestones among the datasets, at these fractions of the registrations.
MILESTONES = {0.0: "protocol", 0.001: "randomisation-list", 0.1: "protocol", 0.2: "protocol",
              0.3: "sap", 0.9: "database-lock", 0.95: "unblinding", 0.99: "analysis-results"}


def rows(count: int) -> list[dict]:
    """``count`` registrations as ``submission`` rows in registration order: the protocol's
    versions a chain, every other kind once, datasets of ten sites in between."""
    at = {round(fraction * count): kind for fraction, kind in MILESTONES.items()}
    start = datetime(2026, 1, 1, tzinfo=UTC)
    found, previous_protocol = [], None
    for i in range(count):
        kind = at.get(i, "dataset")
        record = {"id": str(uuid.uuid4()), "trial": TRIAL, "site": SITES[i % len(SITES)],
                  "kind": kind, "dataset": f"{kind} {i}", "sha256": os.urandom(32).hex(),
                  "sizeBytes": i, "filename": f"f{i}.csv",
                  "supersedes": previous_protocol if kind == "protocol" else None,
                  "submittedAt": rfc3339_ms(start + timedelta(seconds=i))}
        if kind == "protocol":
            previous_protocol = record["id"]
        found.append({"id": record["id"], "trial": TRIAL, "site": record["site"], "kind": kind,
                      "dataset": record["dataset"], "sha256": record["sha256"],
                      "size_bytes": i, "filename": record["filename"],
                      "supersedes": record["supersedes"], "submitted_at": record["submittedAt"],
                      "leaf": record_leaf(record),
                      "reason": "amended" if record["supersedes"] else None})
    return found


def confirm_directly(engine, batch_ids: list[int]) -> None:
    """Each batch a roll-up of its own, confirmed by a transaction a minute after the
    previous batch's (rows written directly: the bench is the reading, not the chain)."""
    start = datetime(2026, 6, 1, tzinfo=UTC)
    with engine.begin() as conn:
        for index, batch_id in enumerate(batch_ids):
            root = conn.execute(sa.select(Batch.root).where(Batch.id == batch_id)).scalar_one()
            rollup = conn.execute(sa.insert(Rollup).values(
                anchor="local", root=root, leaf_count=1, created_at=rfc3339_ms(start),
                state="confirmed")).inserted_primary_key[0]
            conn.execute(sa.insert(RollupBatch).values(anchor="local", batch_id=batch_id,
                                                       rollup_id=rollup, leaf_index=0,
                                                       proof="[]"))
            when = start + timedelta(minutes=index)
            conn.execute(sa.insert(Anchor).values(
                name="local", rollup_id=rollup, chain_id=31337, sender="0x" + "11" * 20,
                nonce=index, tx_hash=os.urandom(32).hex(), raw=b"\x00", gas=30_000,
                max_fee_per_gas=1, max_priority_fee_per_gas=1, state="confirmed",
                block_number=100 + index, block_hash="0x" + os.urandom(32).hex(),
                block_time=when.strftime("%Y-%m-%dT%H:%M:%SZ"), created_at=when,
                confirmed_at=when))
            conn.execute(sa.update(Batch).where(Batch.id == batch_id).values(
                state="confirmed", anchors_version=Batch.anchors_version + 1))


def notary(folder: str, count: int, batch_count: int):
    """The app on a trial of ``count`` registrations in ``batch_count`` confirmed batches,
    and a test client signed in as the trial's sponsor."""
    from trialnotary.web.app import create_app

    env = {"TRIALNOTARY_INSTANCE_PATH": folder,
           "TRIALNOTARY_DATABASE_URL": f"sqlite:///{folder}/bench.sqlite3",
           "TRIALNOTARY_CHAIN": "local", "TRIALNOTARY_CHAIN_RPC_URL": "http://127.0.0.1:9"}
    settings = load_settings(env)
    db.upgrade(settings.database_url)
    engine = db.make_engine(settings.database_url)
    with db.write_session(engine) as session:
        sites.add_trial(session, TRIAL)
        for site in SITES:
            sites.add_site(session, TRIAL, site)
        user, _ = accounts.create_user(session, "sponsor@example.org", "sponsor",
                                       password="a long bench password")
        accounts.grant(session, user, trial=TRIAL)
        cookie = sessions.start_session(session, user)
        session.commit()
    started = time.perf_counter()
    insert(engine, rows(count))
    sealed = batches.seal_all(engine, -(-count // batch_count) + 1)
    confirm_directly(engine, [batch.id for batch in sealed])
    print(f"{count:,} registrations in {len(sealed)} confirmed batches "
          f"({time.perf_counter() - started:.1f} s to make)", flush=True)
    engine.dispose()
    app = create_app(settings)
    client = app.test_client()
    client.set_cookie("tn_session", cookie)
    return app, client


def timed(client, path: str) -> float:
    started = time.perf_counter()
    answer = client.get(path)
    elapsed = time.perf_counter() - started
    assert answer.status_code == 200, (path, answer.status, answer.get_data()[:300])
    return elapsed


def p50_ms(client, path: str, requests: int) -> float:
    return statistics.median(timed(client, path) for _ in range(requests)) * 1000


def figures(count: int = 100_000, batch_count: int = 50, requests: int = 30) -> list[Figure]:
    with tempfile.TemporaryDirectory() as folder:
        app, client = notary(folder, count, batch_count)
        page = f"/trials/{TRIAL}/timeline"
        cold_page = timed(client, page) * 1000
        page_p50 = p50_ms(client, page, requests)
        dashboard = p50_ms(client, f"/trials/{TRIAL}", requests)
        trial_timelines.KEPT.clear()
        export_cold = timed(client, f"/trials/{TRIAL}/timeline.json")
        export_warm = timed(client, f"/trials/{TRIAL}/timeline.json")
        size = len(client.get(f"/trials/{TRIAL}/timeline.json").data)
        app.extensions["trialnotary"].engine.dispose()
    print(f"first page request (timeline built) {cold_page:.0f} ms; JSON export "
          f"{size / 1e6:.1f} MB, cold {export_cold:.2f} s, warm {export_warm:.2f} s",
          flush=True)
    return [
        Figure(f"timeline page, first 500 of {count:,} (p50 of {requests})", page_p50, "ms",
               f"trial dashboard p50 {dashboard:.0f} ms", f"≤ {PAGE_FLOOR_MS:g} ms",
               page_p50 <= PAGE_FLOOR_MS, ratio=page_p50 / dashboard),
        Figure(f"timeline JSON export, {count:,} entries (built afresh)", export_cold, "s",
               f"trial dashboard p50 {dashboard:.0f} ms", f"≤ {EXPORT_FLOOR_S:g} s",
               export_cold <= EXPORT_FLOOR_S, ratio=export_cold * 1000 / dashboard),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    return report(figures(args.count, args.batches, args.requests))


if __name__ == "__main__":
    sys.exit(main())
