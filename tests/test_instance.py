"""The instance folder is its owner's alone, and its write lock never hangs a request:
folder 0700 and files 0600 when created, loose ones tightened at start with a warning; a
write that finds the SQLite write lock held waits at most the configured time, then the
API and the pages answer 503 with ``Retry-After``, the CLI one line, and nothing is lost."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import waitress

from tests.utils import PASSWORD, Page, add_person
from trialnotary import db
from trialnotary.config import load_settings
from trialnotary.people import sites
from trialnotary.web.app import create_app

SITE, TRIAL = "SITE-01", "NCT01234567"
HOLD = ("import fcntl, sys\n"
        "handle = open(sys.argv[1], 'a')\n"
        "fcntl.flock(handle, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "sys.stdin.read()\n")


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def loose_files(folder: Path) -> dict[str, int]:
    return {path.name: mode(path) for path in folder.iterdir() if mode(path) & 0o077}


@pytest.fixture
def usual_umask():
    """The umask of most shells (files 0644, folders 0755), whatever the runner's."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def local_env(instance: Path, **extra: str) -> dict:
    return {"TRIALNOTARY_INSTANCE_PATH": str(instance), "TRIALNOTARY_CHAIN": "local",
            **{f"TRIALNOTARY_{key}": value for key, value in extra.items()}}


def write_something(engine) -> None:
    with db.write_session(engine) as session:
        sites.add_trial(session, TRIAL)
        sites.add_site(session, TRIAL, SITE)
        session.commit()


@contextlib.contextmanager
def lock_held_elsewhere(lock_file: Path):
    """Another process holds ``lock_file``'s flock until the block ends."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock_file)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait(10)


def lock_is_free(lock_file: Path) -> bool:
    with open(lock_file, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


# --- permissions ---------------------------------------------------------------------

def test_a_new_instance_folder_and_its_files_are_its_owners_only(tmp_path, usual_umask):
    instance = tmp_path / "new" / "instance"
    settings = load_settings(local_env(instance))
    db.upgrade(settings.database_url)
    engine = db.engine_for(settings)
    write_something(engine)
    with engine.connect():  # WAL and SHM exist while a connection is open
        names = {path.name for path in instance.iterdir()}
        assert {"secret_key", "trialnotary.sqlite3", "trialnotary.sqlite3-wal",
                "trialnotary.sqlite3-shm", "trialnotary.write.lock"} <= names
        assert mode(instance) == 0o700
        assert loose_files(instance) == {}
    engine.dispose()


def test_loose_modes_are_tightened_at_start_with_a_warning(tmp_path, usual_umask, caplog):
    instance = tmp_path / "instance"
    settings = load_settings(local_env(instance))
    db.upgrade(settings.database_url)
    write_something(db.engine_for(settings))
    for path in instance.iterdir():
        path.chmod(0o644)
    instance.chmod(0o755)
    assert set(loose_files(instance)) >= {"secret_key", "trialnotary.sqlite3"}
    with caplog.at_level(logging.WARNING, logger="trialnotary"):
        app = create_app(load_settings(local_env(instance)), {"TESTING": True})
    assert mode(instance) == 0o700 and loose_files(instance) == {}
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert str(instance / "secret_key") in warned and str(instance / "trialnotary.sqlite3") \
        in warned
    app.extensions["trialnotary"].engine.dispose()

    caplog.clear()  # nothing left to tighten: no warning the next time
    with caplog.at_level(logging.WARNING, logger="trialnotary"):
        load_settings(local_env(instance))
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_a_database_outside_the_instance_gets_its_files_tightened(tmp_path, usual_umask):
    elsewhere = tmp_path / "data"
    elsewhere.mkdir()
    database = elsewhere / "notary.sqlite3"
    database.touch(mode=0o644)
    (elsewhere / "notary.write.lock").touch(mode=0o644)
    (elsewhere / "unrelated.txt").touch(mode=0o644)
    db.make_engine(f"sqlite:///{database}").dispose()
    assert mode(database) == 0o600 and mode(elsewhere / "notary.write.lock") == 0o600
    assert mode(elsewhere / "unrelated.txt") == 0o644  # not ours


# --- the write lock ------------------------------------------------------------------

@pytest.fixture
def notary(tmp_path, anvil):
    """A served notary on SQLite whose writes wait half a second for their turn; yields
    its URL, a site token, its app and the write lock's path."""
    instance = tmp_path / "instance"
    env = {**local_env(instance, CHAIN_RPC_URL=anvil.url, WRITE_LOCK_TIMEOUT_SECONDS="0.5",
                       SEAL_INTERVAL_SECONDS="3600")}
    settings = load_settings(env)
    db.upgrade(settings.database_url)
    app = create_app(settings, {"TESTING": True})
    engine = app.extensions["trialnotary"].engine
    write_something(engine)
    with db.write_session(engine) as session:
        token = sites.create_token(session, SITE)
        session.commit()
    add_person(engine, "coordinator@example.org", "coordinator", sites=[SITE])
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
    stopping = threading.Event()

    def serve():
        try:
            server.run()
        except Exception:  # the loop may trip over its sockets being closed under it
            if not stopping.is_set():
                raise
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield (f"http://127.0.0.1:{server.effective_port}", token, app,
           instance / "trialnotary.write.lock")
    stopping.set()
    server.close()
    thread.join(5)
    engine.dispose()


def registration(n: int) -> dict:
    return {"trial": TRIAL, "site": SITE, "dataset": f"D{n}", "sha256": f"{n:064x}"}


def test_a_held_write_lock_answers_503_with_retry_after_and_loses_nothing(notary):
    url, token, _app, lock_file = notary
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token}"
    with lock_held_elsewhere(lock_file):
        started = time.monotonic()
        busy = api.post(f"{url}/api/v1/submissions", json=registration(1), timeout=10)
        assert time.monotonic() - started < 3
        assert busy.status_code == 503
        assert busy.headers["Retry-After"] == "1"
        assert busy.json()["error"]["code"] == "unavailable"
        assert "busy" in busy.json()["error"]["message"]

        browser = requests.Session()
        form = Page(browser.get(f"{url}/login", timeout=10).text)
        page = browser.post(f"{url}/login", timeout=10, data={
            "email": "coordinator@example.org", "password": PASSWORD,
            "csrf_token": form.csrf_token})
        assert page.status_code == 503 and page.headers["Retry-After"] == "1"
        assert "text/html" in page.headers["Content-Type"] and "Try again" in page.text
    # Nothing was half-done, and the same requests now go through.
    created = api.post(f"{url}/api/v1/submissions", json=registration(1), timeout=10)
    assert created.status_code == 201
    found = requests.get(f"{url}/api/v1/submissions", params={"sha256": f"{1:064x}"},
                         timeout=10).json()["submissions"]
    assert len(found) == 1


def within(seconds: float, action):
    """``action()``'s result or exception, or a failure if it takes longer (never a hang)."""
    outcome = {}

    def run():
        try:
            outcome["result"] = action()
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            outcome["error"] = exc
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still waiting after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def test_a_write_waits_for_a_short_hold_and_the_lock_is_let_go_after_a_timeout(tmp_path):
    database = tmp_path / "notary.sqlite3"
    lock_file = database.with_suffix(".write.lock")
    engine = db.make_engine(f"sqlite:///{database}", write_timeout=0.3)

    def write():
        with db.sqlite_writer_turn(engine):
            pass
    with lock_held_elsewhere(lock_file):
        started = time.monotonic()
        with pytest.raises(db.WriterBusy):
            within(5, write)
        assert 0.25 < time.monotonic() - started < 2
    # The abandoned wait does not keep the lock once the holder lets go.
    deadline = time.monotonic() + 5
    while not lock_is_free(lock_file):
        assert time.monotonic() < deadline, "the lock stayed taken after the holder ended"
        time.sleep(0.01)

    patient = db.make_engine(f"sqlite:///{database}", write_timeout=10)
    with lock_held_elsewhere(lock_file) as holder:
        got = threading.Event()

        def write():
            with db.sqlite_writer_turn(patient):
                got.set()
        writer = threading.Thread(target=write)
        writer.start()
        assert not got.wait(0.3)  # waiting, not refused
        holder.kill()
        assert got.wait(5)
        writer.join(5)
    with db.sqlite_writer_turn(engine):  # and the next writer of this process gets it
        assert not lock_is_free(lock_file)
    assert lock_is_free(lock_file)
    engine.dispose()
    patient.dispose()


def test_the_cli_says_the_database_is_busy_in_one_line(tmp_path):
    instance = tmp_path / "instance"
    env = {**os.environ, **local_env(instance, WRITE_LOCK_TIMEOUT_SECONDS="0.2")}
    db.upgrade(load_settings(env).database_url)

    def add_trial():
        return subprocess.run([sys.executable, "-m", "trialnotary.cli", "trial", "add", TRIAL],
                              env=env, capture_output=True, text=True, timeout=30)
    with lock_held_elsewhere(instance / "trialnotary.write.lock"):
        refused = add_trial()
    assert refused.returncode == 1
    assert "database is busy" in refused.stderr and "nothing was changed" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert add_trial().returncode == 0
