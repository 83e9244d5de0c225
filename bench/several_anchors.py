"""Three anchors instead of one: registrations per second, seal time, receipt downloads.

    python bench/several_anchors.py [--registrations 1000] [--leaves 100000] [--downloads 2000]

The same notary twice, each on its own SQLite database: with one anchor (a local anvil
chain), and with three (two anvil chains of other ids and a real RFC 3161 authority,
`openssl ts -reply` as the tests run it), measured one after the other in the same run.

- registrations per second: POST /api/v1/submissions in-process (Flask's test client)
  while every anchor's rounds run in a thread beside it, as the scheduler runs them;
- seal time: sealing `--leaves` pending registrations, plus each anchor's roll-up of the
  new batch (the work sealing gives every anchor);

Each figure is measured for the two notaries in turn, three times over, and the medians
compared (the machines are shared and noisy).
- receipt downloads per second: GET /api/v1/submissions/<id>/receipt of random confirmed
  registrations, once every anchor has confirmed them (three anchors: a longer receipt,
  with a time-stamp token).

Floors (issue 11): each three-anchor figure ≥ 0.9 × the one-anchor figure.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlmodel import Session  # noqa: E402

from bench.common import Figure, report, start_anvil  # noqa: E402
from bench.seal import fill  # noqa: E402
from tests.tsa import LocalTsa  # noqa: E402
from trialnotary import db  # noqa: E402
from trialnotary.config import ANVIL_DEV_KEY, load_settings  # noqa: E402
from trialnotary.notary import anchoring, batches, rollups  # noqa: E402
from trialnotary.notary.models import Registration  # noqa: E402
from trialnotary.people import sites  # noqa: E402
from trialnotary.web.app import create_app  # noqa: E402

FLOOR = 0.9
TRIAL, SITE = "NCT01234567", "SITE-01"


def one_anchor(instance: Path, urls: list[str], _tsa: LocalTsa) -> str:
    return f'[[anchors]]\nname = "local"\nkind = "evm"\nchain = "local"\nrpc = ["{urls[0]}"]\n'


def three_anchors(instance: Path, urls: list[str], tsa: LocalTsa) -> str:
    key = instance / "b.key"
    key.write_text(ANVIL_DEV_KEY)  # anvil's public development key: local chains only
    key.chmod(0o600)
    return one_anchor(instance, urls, tsa) + f"""
[[anchors]]
name = "b"
kind = "evm"
chain = 31338
rpc = ["{urls[1]}"]
key_file = "{key}"
confirmations = 1

[[anchors]]
name = "tsa"
kind = "rfc3161"
url = "{tsa.url}"
ca_file = "{tsa.ca_file}"
"""


class Notary:
    """A notary on its own database and instance, configured by ``tables``."""

    def __init__(self, folder: Path, tables, urls: list[str], tsa: LocalTsa):
        instance = folder / "instance"
        instance.mkdir(mode=0o700, parents=True)
        config = instance / "config.toml"
        config.write_text(tables(instance, urls, tsa))
        config.chmod(0o600)
        self.settings = load_settings({"TRIALNOTARY_INSTANCE_PATH": str(instance),
                                       "TRIALNOTARY_SEAL_INTERVAL_SECONDS": "3600"})
        db.upgrade(self.settings.database_url)
        self.engine = db.make_engine(self.settings.database_url)
        self.workers = anchoring.anchorers(self.settings)
        self.app = create_app(self.settings, {"TESTING": True})
        with Session(self.engine) as session:
            sites.add_trial(session, TRIAL)
            sites.add_site(session, TRIAL, SITE)
            self.token = sites.create_token(session, SITE)
            session.commit()

    def rounds_beside(self, stop: threading.Event) -> threading.Thread:
        def run():
            while not stop.is_set():
                anchoring.run_rounds(self.engine, self.workers)
                stop.wait(0.2)
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def confirmed_everywhere(self, seconds: float = 120) -> None:
        names = len(self.settings.anchors)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            anchoring.run_rounds(self.engine, self.workers)
            with self.engine.connect() as conn:
                waiting = conn.exec_driver_sql(
                    "SELECT count(*) FROM batch WHERE (SELECT count(*) FROM rollup_batch rb "
                    "JOIN rollup r ON r.id = rb.rollup_id WHERE rb.batch_id = batch.id AND "
                    "r.state = 'confirmed') < ?", (names,)).scalar()
            if not waiting:
                return
            time.sleep(0.3)
        raise RuntimeError("the anchors did not confirm every batch")


def registrations_per_second(notary: Notary, count: int) -> float:
    client = notary.app.test_client()
    auth = {"Authorization": f"Bearer {notary.token}"}
    stop = threading.Event()
    notary.rounds_beside(stop)
    try:
        started = time.perf_counter()
        for i in range(count):
            content = f"bench {i} {random.random()}".encode()
            answer = client.post("/api/v1/submissions", headers=auth, json={
                "trial": TRIAL, "site": SITE, "kind": "dataset", "dataset": f"part {i}",
                "sha256": hashlib.sha256(content).hexdigest(), "sizeBytes": len(content)})
            assert answer.status_code == 201, answer.get_data(as_text=True)
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
    return count / elapsed


def seal_seconds(notary: Notary, leaves: int) -> float:
    batches.seal_all(notary.engine, 10**7)  # what the registrations left pending
    fill(notary.engine, leaves)
    started = time.perf_counter()
    batches.seal_all(notary.engine, 10**7)
    rollups.register_anchors(notary.engine, notary.settings.anchors)
    for spec in notary.settings.anchors:
        rollups.roll_up(notary.engine, spec)
    return time.perf_counter() - started


def downloads_per_second(notary: Notary, count: int) -> tuple[float, int]:
    with notary.engine.connect() as conn:
        ids = [row[0] for row in conn.execute(
            Registration.__table__.select().with_only_columns(Registration.id))]
    client = notary.app.test_client()
    picks = random.choices(ids, k=count)
    size = len(client.get(f"/api/v1/submissions/{picks[0]}/receipt").data)
    started = time.perf_counter()
    for registration_id in picks:
        answer = client.get(f"/api/v1/submissions/{registration_id}/receipt")
        assert answer.status_code == 200, answer.status
    return count / (time.perf_counter() - started), size


def alternating(measure, notaries: dict, rounds: int) -> dict:
    """``measure(notary)`` for each notary in turn, ``rounds`` times over; the median of
    each (a shared, noisy machine slows both alike)."""
    found = {label: [] for label in notaries}
    for _ in range(rounds):
        for label, notary in notaries.items():
            found[label].append(measure(notary))
    return {label: sorted(values)[len(values) // 2] for label, values in found.items()}


def figures(registrations: int = 1000, leaves: int = 100_000, downloads: int = 2000,
            rounds: int = 3) -> list[Figure]:
    nodes = [start_anvil("--block-time", "1"),
             start_anvil("--block-time", "1", "--chain-id", "31338")]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tsa = LocalTsa(Path(tmp) / "tsa")
            urls = [url for _, url in nodes]
            notaries = {label: Notary(Path(tmp) / label, tables, urls, tsa)
                        for label, tables in (("one", one_anchor), ("three", three_anchors))}
            registered = alternating(lambda n: registrations_per_second(n, registrations),
                                     notaries, rounds)
            sealed = alternating(lambda n: seal_seconds(n, leaves), notaries, rounds)
            for notary in notaries.values():
                notary.confirmed_everywhere()
            fetched = alternating(lambda n: downloads_per_second(n, downloads), notaries,
                                  rounds)
            for notary in notaries.values():
                notary.engine.dispose()
            tsa.stop()
    finally:
        for process, _ in nodes:
            process.terminate()
    reg1, reg3 = registered["one"], registered["three"]
    seal1, seal3 = sealed["one"], sealed["three"]
    (get1, size1), (get3, size3) = fetched["one"], fetched["three"]
    floor = f"≥ {FLOOR} × one anchor"
    return [
        Figure("registrations per second, three anchors' rounds beside", reg3, "/s",
               f"one anchor {reg1:,.0f}/s", floor, reg3 >= FLOOR * reg1, ratio=reg3 / reg1),
        Figure(f"seal {leaves:,} pending + each anchor's roll-up, three anchors", seal3, "s",
               f"one anchor {seal1:.2f} s", "speed ≥ 0.9 × one anchor", seal1 >= FLOOR * seal3,
               ratio=seal1 / seal3),
        Figure(f"receipt downloads per second, three anchors ({size3:,} bytes)", get3, "/s",
               f"one anchor {get1:,.0f}/s ({size1:,} bytes)", floor, get3 >= FLOOR * get1,
               ratio=get3 / get1),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registrations", type=int, default=1000)
    parser.add_argument("--leaves", type=int, default=100_000)
    parser.add_argument("--downloads", type=int, default=2000)
    args = parser.parse_args()
    return report(figures(args.registrations, args.leaves, args.downloads))


if __name__ == "__main__":
    sys.exit(main())
