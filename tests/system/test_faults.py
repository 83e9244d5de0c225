"""Real processes, real faults: workers killed with SIGKILL at every crash point, a chain
node that crashes and comes back from older state, and several workers and servers on one
PostgreSQL. After each: every registration in exactly one batch, every batch with exactly
one confirmed anchor on the canonical chain, as many anchor transactions on chain as
batches, and every receipt verifies."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from sqlmodel import Session, select

from tests.conftest import Anvil, free_port, insert_registrations
from trialnotary import db
from trialnotary.config import load_settings
from trialnotary.notary import consistency
from trialnotary.notary.chain import ChainClient
from trialnotary.notary.faults import POINTS
from trialnotary.notary.models import Anchor
from trialnotary.people import sites

BIN = Path(sys.executable).parent
SETTLE_SECONDS = 60


@pytest.fixture
def node(tmp_path):
    """A private anvil with 1-second blocks and its state dumped every second."""
    node = Anvil("--state", str(tmp_path / "anvil-state.json"), "--state-interval", "1")
    yield node
    if node.process.poll() is None:
        node.stop()


def notary_env(tmp_path, database_url: str, node: Anvil) -> dict:
    return {**os.environ, "TRIALNOTARY_INSTANCE_PATH": str(tmp_path / "instance"),
            "TRIALNOTARY_DATABASE_URL": database_url, "TRIALNOTARY_CHAIN": "local",
            "TRIALNOTARY_CHAIN_RPC_URL": node.url, "TRIALNOTARY_SEAL_INTERVAL_SECONDS": "1",
            "TRIALNOTARY_CONFIRMATIONS": "2", "TRIALNOTARY_RESEND_AFTER_SECONDS": "2"}


def start(env: dict, *command: str, crash_at: str | None = None) -> subprocess.Popen:
    env = {**env, **({"TRIALNOTARY_CRASH_AT": crash_at} if crash_at else {})}
    return subprocess.Popen([str(BIN / "trialnotary"), *command], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop(process: subprocess.Popen) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    return output


def wait_until_settled(engine, chain: ChainClient, processes=()) -> consistency.Findings:
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        with Session(engine) as session:
            found = consistency.check(session, chain, settled=True)
        if found.ok:
            with Session(engine) as session:
                return consistency.check(session, chain, settled=True, receipts=True)
        for process in processes:
            if process.poll() is not None:
                pytest.fail("a process died:\n" + process.stdout.read())
        time.sleep(0.5)
    pytest.fail(f"not settled after {SETTLE_SECONDS} s: {found.problems}")


@pytest.fixture
def sqlite_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'trialnotary.sqlite3'}"
    db.upgrade(url)
    return url


@pytest.mark.parametrize("point", POINTS)
def test_a_worker_killed_at_any_point_loses_nothing_and_anchors_once(tmp_path, sqlite_url,
                                                                   node, point):
    env = notary_env(tmp_path, sqlite_url, node)
    engine = db.make_engine(sqlite_url)
    chain = ChainClient(load_settings(env))
    insert_registrations(engine, 5)
    crashing = start(env, "worker", crash_at=point)
    try:
        crashing.wait(timeout=SETTLE_SECONDS)
    except subprocess.TimeoutExpired:
        crashing.kill()
        pytest.fail(f"the worker never reached {point}:\n" + crashing.communicate()[0])
    assert crashing.returncode == -signal.SIGKILL
    insert_registrations(engine, 3)  # more work waits meanwhile
    worker = start(env, "worker")
    try:
        found = wait_until_settled(engine, chain, [worker])
    finally:
        stop(worker)
    assert found.ok, found.problems
    assert found.counts["registrations"] == found.counts["receipts_verified"] == 8
    assert found.counts["account_transactions"] == found.counts["batches"]
    engine.dispose()


def test_a_chain_node_that_crashes_and_comes_back_from_older_state(tmp_path, sqlite_url,
                                                                  node):
    env = notary_env(tmp_path, sqlite_url, node)
    engine = db.make_engine(sqlite_url)
    site_token = seed(engine)
    chain = ChainClient(load_settings(env))
    state_file, older = tmp_path / "anvil-state.json", tmp_path / "older-state.json"
    _wait_for_file(state_file)
    shutil.copy(state_file, older)  # the chain before any anchor
    server_port = free_port()
    server = start(env, "serve", "--port", str(server_port))
    api = f"http://127.0.0.1:{server_port}/api/v1"
    try:
        _wait_for(f"{api}/healthz")
        body = {"trial": "NCT01234567", "site": "SITE-01", "dataset": "before",
                "sha256": "aa" * 32}
        auth = {"Authorization": f"Bearer {site_token}"}
        assert requests.post(f"{api}/submissions", json=body, headers=auth,
                             timeout=10).status_code == 201
        wait_until_settled(engine, chain, [server])
        first, *_ = _confirmed(engine)  # the seed's audit entries may have a batch too
        node.kill()
        for i in range(3):  # registrations are still accepted, and sealed
            answer = requests.post(f"{api}/submissions", headers=auth, timeout=10,
                                   json={**body, "dataset": f"during {i}",
                                         "sha256": f"{i:064x}"})
            assert answer.status_code == 201
        ready = _wait_for_readyz(api, reachable=False)
        assert ready["status"] == "ok" and ready["chain"]["anchorer"]["since"]
        shutil.copy(older, state_file)
        node.start()  # from older state: it has never seen the first anchor
        assert chain.mined_nonce() == 0
        found = wait_until_settled(engine, chain, [server])
        assert _wait_for_readyz(api, reachable=True)["chain"]["anchorer"]["alert"] is None
    finally:
        stop(server)
    assert found.ok and found.counts["registrations"] == found.counts["receipts_verified"] == 4
    again = {a.tx_hash: a for a in _confirmed(engine)}[first.tx_hash]  # the same transaction
    assert again.block_hash != first.block_hash  # mined again, in the new chain
    engine.dispose()


def test_several_workers_and_servers_on_one_postgresql(tmp_path, postgres_server, node):
    from tests.conftest import _drop_postgres_database, _fresh_postgres_database

    url = _fresh_postgres_database(postgres_server)
    db.upgrade(url)
    env = notary_env(tmp_path, url, node)
    engine = db.make_engine(url)
    token = seed(engine)
    chain = ChainClient(load_settings(env))
    ports = [free_port(), free_port()]
    processes = [start(env, "serve", "--no-scheduler", "--port", str(p)) for p in ports]
    processes += [start(env, "worker") for _ in range(3)]
    try:
        for port in ports:
            _wait_for(f"http://127.0.0.1:{port}/api/v1/healthz")
        failures = []

        def register(port: int, offset: int) -> None:
            auth = {"Authorization": f"Bearer {token}"}
            for i in range(offset, offset + 150):
                answer = requests.post(
                    f"http://127.0.0.1:{port}/api/v1/submissions", headers=auth, timeout=30,
                    json={"trial": "NCT01234567", "site": "SITE-01", "dataset": f"d{i}",
                          "sha256": f"{i:064x}"})
                if answer.status_code != 201:
                    failures.append(answer.text)

        threads = [threading.Thread(target=register, args=(port, 150 * n))
                   for n, port in enumerate(ports)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        found = wait_until_settled(engine, chain, processes)
    finally:
        outputs = [stop(process) for process in processes]
    assert found.ok, found.problems
    assert found.counts["registrations"] == found.counts["receipts_verified"] == 300
    assert found.counts["account_transactions"] == found.counts["batches"] >= 2
    with Session(engine) as session:  # no batch was ever even signed twice
        anchors = session.scalar(select(sa.func.count()).select_from(Anchor))
    assert anchors == found.counts["batches"], outputs
    engine.dispose()
    _drop_postgres_database(postgres_server, url)


def seed(engine) -> str:
    """Trial NCT01234567 with site SITE-01; returns a token of the site."""
    with db.write_session(engine) as session:
        sites.add_trial(session, "NCT01234567")
        sites.add_site(session, "NCT01234567", "SITE-01")
        token = sites.create_token(session, "SITE-01")
        session.commit()
    return token


def _confirmed(engine) -> list[Anchor]:
    with Session(engine) as session:
        return list(session.exec(select(Anchor).where(Anchor.state == "confirmed")
                                 .order_by(Anchor.nonce)))


def _wait_for_file(path: Path) -> None:
    deadline = time.monotonic() + 10
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert path.exists(), f"anvil wrote no state to {path}"


def _wait_for(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} never answered")


def _wait_for_readyz(api: str, *, reachable: bool) -> dict:
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        body = requests.get(f"{api}/readyz", timeout=10).json()
        anchorer = body["chain"].get("anchorer") or {}
        if anchorer.get("reachable") is reachable:
            return body
        time.sleep(0.5)
    pytest.fail(f"readyz never said the chain is {'reachable' if reachable else 'down'}")
