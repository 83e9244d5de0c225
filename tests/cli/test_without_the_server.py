"""The client's commands in a process where every package that only the server needs cannot
be imported (Flask, SQLAlchemy, SQLModel, web3, eth-account, pydantic…): what `pip install
trialnotary` gives a reviewer or a trial site is enough for `verify`, `submit` and `receipt`
(docs/cli.md). The server they talk to, and the chain, are real."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.cli.test_submit import confirm_everything, in_background
from tests.conftest import ANVIL_ACCOUNTS
from tests.installs import imported_only_by_the_server
from tests.proof.anchored import NOTARY, make_batch, write
from tests.utils import migrated_sqlite
from trialnotary.filenames import receipt_filename

COMMAND = Path(sys.executable).with_name("trialnotary")

# Put first on the path, it makes the names it lists unimportable in that process.
BLOCKER = """\
import importlib.abc
import sys

BLOCKED = frozenset({names!r})


class TheServersPackagesAreNotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, TheServersPackagesAreNotInstalled())
"""


@pytest.fixture(scope="module")
def without_the_server(tmp_path_factory) -> dict[str, str]:
    """The environment of a process that cannot import what only the server needs."""
    blocked = imported_only_by_the_server()
    assert {"flask", "werkzeug", "sqlalchemy", "sqlmodel", "alembic", "web3", "eth_account",
            "pydantic", "waitress", "gunicorn", "blockcerts_merkletools"} <= blocked
    folder = tmp_path_factory.mktemp("blocker")
    (folder / "sitecustomize.py").write_text(BLOCKER.format(names=sorted(blocked)))
    path = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "PYTHONIOENCODING": "utf-8"}


def run(environment, *arguments, check_exit: int | None = 0) -> subprocess.CompletedProcess:
    done = subprocess.run([COMMAND, *map(str, arguments)], env=environment,
                          capture_output=True, text=True, timeout=120, check=False)
    if check_exit is not None:
        assert done.returncode == check_exit, done.stdout + done.stderr
    return done


def test_the_blocked_packages_really_cannot_be_imported(without_the_server):
    done = subprocess.run([sys.executable, "-c", "import flask"], env=without_the_server,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "ModuleNotFoundError: No module named 'flask'" in done.stderr


def test_a_receipts_chain_evidence_is_checked_without_the_server(without_the_server, anvil,
                                                                 tmp_path):
    """Keccak, RLP, the Merkle-Patricia proofs and key recovery need none of the server's
    Ethereum packages (web3, eth-*, rlp, py-trie)."""
    assert {"trie", "rlp", "eth_utils"} <= imported_only_by_the_server()
    batch = make_batch(anvil, tmp_path / "batch", count=2, evidence=True)
    done = run(without_the_server, "verify", write(tmp_path, batch.receipts[0]), "--rpc",
               anvil.url, "--expect-sender", NOTARY)
    assert any(line.startswith("✓ evidence ") for line in done.stdout.splitlines())
    assert done.stdout.splitlines()[-1].startswith("PASS")


def test_verify_runs_without_the_server(without_the_server, anvil, tmp_path):
    batch = make_batch(anvil, tmp_path / "batch", count=2)
    receipt = write(tmp_path, batch.receipts[1])
    done = run(without_the_server, "verify", receipt, "--file", batch.files[1],
               "--rpc", anvil.url, "--expect-sender", NOTARY)
    assert done.stdout.startswith('This file is the one registered as "DS1"')
    assert done.stdout.splitlines()[-1].startswith("PASS")

    forged = copy.deepcopy(batch.receipts[1])
    forged["trialnotary"]["record"]["site"] = "SITE-02"
    done = run(without_the_server, "verify", write(tmp_path, forged, "forged.json"),
               "--rpc", anvil.url, check_exit=1)
    assert "does NOT verify" in done.stdout

    listed = run(without_the_server, "--help").stdout
    assert all(f"  {name} " in listed for name in ("verify", "submit", "receipt", "beacon"))
    assert "pip install 'trialnotary[server]'" in listed


@pytest.fixture
def database_url(tmp_path):
    """SQLite only: the server's database is not what these tests are about."""
    return migrated_sqlite(tmp_path)


@pytest.fixture
def settings_env(settings_env):
    """A short seal interval: the client polls a pending receipt as the server says."""
    return {**settings_env, "TRIALNOTARY_SEAL_INTERVAL_SECONDS": "2"}


def test_submit_and_receipt_run_without_the_server(without_the_server, app, anvil,
                                                   live_server, site_token, tmp_path):
    data = tmp_path / "adsl.xpt"
    data.write_bytes(os.urandom(2048))
    sealer = in_background(confirm_everything, app, anvil, 1)
    run(without_the_server, "submit", data, "--trial", "NCT01234567", "--site",
               "SITE-01",
        "--wait", "--out", tmp_path / "receipts", "--server", live_server, "--token",
        site_token)
    sealer.join_and_check()
    [saved] = (tmp_path / "receipts").iterdir()
    registration_id = saved.name.removesuffix(".receipt.json").rsplit("_", 1)[1]
    assert saved.name == receipt_filename("NCT01234567", "adsl.xpt", registration_id)

    fetched = tmp_path / "fetched.json"
    run(without_the_server, "receipt", registration_id, "-o", fetched, "--server",
        live_server)
    assert fetched.read_bytes() == saved.read_bytes()
    run(without_the_server, "verify", fetched, "--file", data, "--rpc", anvil.url,
        "--expect-sender", ANVIL_ACCOUNTS[0])

    done = run(without_the_server, "receipt", uuid.uuid4(), "--server", live_server,
               check_exit=1)
    assert done.stderr.startswith("error: no registration")
