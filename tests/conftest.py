"""Shared fixtures: a real anvil node, real SQLite and PostgreSQL databases, the app."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from trialnotary.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
ANVIL = ROOT / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
POSTGRES_URL = os.environ.get("TRIALNOTARY_TEST_POSTGRES_URL",
                              "postgresql://postgres@127.0.0.1:5432/test")
# Anvil's well-known development accounts (public keys, local chains only).
ANVIL_ACCOUNTS = [
    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rpc(url: str, method: str, *params):
    reply = requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                     "params": list(params)}, timeout=10).json()
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


class Anvil:
    """A real anvil process on a free port; ``url`` is its JSON-RPC endpoint."""

    def __init__(self, *extra: str, chain_id: int = 31337, block_time: int | None = 1,
                 port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.chain_id = chain_id
        args = [str(ANVIL), "--port", str(self.port), "--chain-id", str(chain_id), "--silent"]
        if block_time:
            args += ["--block-time", str(block_time)]
        self.args = [*args, *extra]
        self.start()

    def start(self) -> None:
        """Start (or start again, on the same port and with the same state file)."""
        self.process = subprocess.Popen(self.args, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                rpc(self.url, "eth_chainId")
                return
            except requests.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("anvil did not start") from None
                time.sleep(0.05)

    def rpc(self, method: str, *params):
        return rpc(self.url, method, *params)

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", hex(blocks))

    def stop(self) -> None:
        """A clean stop (anvil writes its state file, if it has one)."""
        self.process.terminate()
        self.process.wait(10)

    def kill(self) -> None:
        """A crash: no state written since the last ``--state-interval``."""
        self.process.kill()
        self.process.wait(10)


@pytest.fixture(scope="session")
def anvil():
    if not ANVIL.exists():
        pytest.fail(f"anvil not installed at {ANVIL}: run `npm ci`")
    node = Anvil()
    yield node
    node.stop()


@pytest.fixture(scope="module")
def corpus_chain():
    """The receipt corpus's chain (tests/corpus.py) replayed on a fresh anvil: the node and
    the anchors of its transactions, by label."""
    from tests.corpus import replay, start_node

    node = start_node()
    try:
        yield node, replay(node)
    finally:
        node.stop()


def _postgres_reachable() -> bool:
    try:
        engine = sa.create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"))
        with engine.connect():
            pass
        engine.dispose()
        return True
    except sa.exc.OperationalError:
        return False


@pytest.fixture(scope="session")
def postgres_server():
    """The machine's PostgreSQL. In CI an unreachable server fails; it never skips."""
    if not _postgres_reachable():
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL}")
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL} (fails when CI=true)")
    return POSTGRES_URL


def _fresh_postgres_database(server_url: str) -> str:
    """A new, empty database on the server; returns its URL."""
    name = "trialnotary_test_" + secrets.token_hex(6)
    admin = sa.create_engine(server_url.replace("postgresql://", "postgresql+psycopg://"),
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return server_url.rsplit("/", 1)[0] + "/" + name


def _drop_postgres_database(server_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = sa.create_engine(server_url.replace("postgresql://", "postgresql+psycopg://"),
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(scope="module")
def quick_argon2():
    """Argon2id at its smallest cost for a whole module whose tests sign in many times
    (``pytestmark = pytest.mark.usefixtures("quick_argon2")``); see
    ``utils.quick_password_hashing``."""
    from tests.utils import quick_password_hashing

    with quick_password_hashing():
        yield


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """A migrated, empty database of each kind."""
    from tests.utils import migrated_database

    with migrated_database(request, tmp_path) as url:
        yield url


@pytest.fixture
def settings_env(tmp_path, database_url, anvil):
    """Configuration of a notary on the test anvil, as environment variables."""
    return {
        "TRIALNOTARY_INSTANCE_PATH": str(tmp_path / "instance"),
        "TRIALNOTARY_DATABASE_URL": database_url,
        "TRIALNOTARY_CHAIN": "local",
        "TRIALNOTARY_CHAIN_RPC_URL": anvil.url,
        "TRIALNOTARY_SEAL_INTERVAL_SECONDS": "3600",
    }


@pytest.fixture
def settings(settings_env):
    return load_settings(settings_env)


@pytest.fixture
def app(settings):
    from trialnotary.web.app import create_app

    app = create_app(settings, {"TESTING": True})
    yield app
    app.extensions["trialnotary"].engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def engine(settings):
    """An engine on the test database (domain tests need no Flask app)."""
    from trialnotary.db import make_engine

    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def site_token(engine):
    """A trial NCT01234567 with site SITE-01 enrolled, and a token for that site."""
    from sqlmodel import Session

    from trialnotary.people import sites

    with Session(engine) as session:
        sites.add_trial(session, "NCT01234567", title="Test trial")
        sites.add_site(session, "NCT01234567", "SITE-01")
        token = sites.create_token(session, "SITE-01")
        session.commit()
    return token


def new_uuid() -> str:
    return str(uuid.uuid4())


def insert_registrations(engine, count: int, *, trial: str = "NCT01234567",
                       site: str = "SITE-01") -> list[dict]:
    """Store ``count`` valid registrations directly (the API has its own tests)."""
    import hashlib

    import sqlalchemy as sa

    from trialnotary.db import utcnow
    from trialnotary.notary.models import Registration
    from trialnotary.proof.receipt import record_leaf, rfc3339_ms

    records = []
    for i in range(count):
        records.append({
            "id": new_uuid(), "trial": trial, "site": site, "kind": "dataset",
            "dataset": f"dataset {i}", "sha256": hashlib.sha256(f"file {i}".encode()).hexdigest(),
            "sizeBytes": 6 + len(str(i)), "filename": f"file-{i}.csv", "supersedes": None,
            "submittedAt": rfc3339_ms(utcnow()),
        })
    rows = [{
        "id": r["id"], "trial": r["trial"], "site": r["site"], "kind": r["kind"],
        "dataset": r["dataset"], "sha256": r["sha256"], "size_bytes": r["sizeBytes"],
        "filename": r["filename"], "supersedes": None, "submitted_at": r["submittedAt"],
        "leaf": record_leaf(r),
    } for r in records]
    with engine.begin() as conn:
        conn.execute(sa.insert(Registration), rows)
    return records


@pytest.fixture
def chain(settings):
    """The notary's chain client on the test anvil (anvil's first dev account)."""
    from trialnotary.notary.chain import ChainClient

    return ChainClient(settings)


@pytest.fixture
def live_server(app):
    """The app behind a real WSGI server (waitress) on a free port; yields its base URL."""
    import threading

    import waitress

    from trialnotary.web.app import SERVER_MAX_BODY_BYTES

    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=8,
                                    max_request_body_size=SERVER_MAX_BODY_BYTES)
    stopping = threading.Event()

    def serve() -> None:
        # Closing the server from this thread can close a kept-alive connection while the
        # server's loop waits on it in select() (EBADF): only then is the error expected.
        try:
            server.run()
        except OSError:
            if not stopping.is_set():
                raise

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    stopping.set()
    server.task_dispatcher.shutdown()  # let the request threads finish before the sockets go
    server.close()
    thread.join(5)


# --- the browser ---------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
SCREENSHOTS = ROOT / "build" / "screenshots"


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (never Playwright's own download)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install chromium` (make test does)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh browser context (no cookies) and page; downloads allowed."""
    context = browser.new_context(viewport={"width": 1280, "height": 900},
                                  accept_downloads=True, locale="en-GB",
                                  timezone_id="Europe/Berlin")
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot under build/screenshots (the README shows the best)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="session")
def tsa(tmp_path_factory):
    """A real RFC 3161 TSA (tests/tsa.py): its own CA, openssl ts -reply over loopback HTTP."""
    from tests.tsa import LocalTsa

    authority = LocalTsa(tmp_path_factory.mktemp("tsa"))
    yield authority
    authority.stop()


@pytest.fixture(scope="session")
def other_tsa(tmp_path_factory):
    """Another TSA, under an unrelated CA: its tokens do not chain to ``tsa``'s."""
    from tests.tsa import LocalTsa

    authority = LocalTsa(tmp_path_factory.mktemp("other-tsa"), name="Other TSA")
    yield authority
    authority.stop()
