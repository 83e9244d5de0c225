"""The local default in one command: anvil, a migrated SQLite database, demo data, server.

Everything lives in the instance folder: the database, the chain's state (dumped every few
seconds and on a clean stop), and the demo token, so a restart finds every registration,
batch and receipt again, still verifiable. What `up` does and prints: docs/cli.md.
"""

from __future__ import annotations

import atexit
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import click
import requests
from sqlmodel import Session

from trialnotary.cli.interrupts import stop_on_signals
from trialnotary.config import Settings, load_settings, private_folder, private_opener
from trialnotary.db import engine_for, upgrade, write_session
from trialnotary.notary import scheduler
from trialnotary.people import accounts, passwords, sites
from trialnotary.people.states import Role
from trialnotary.proof.facts import IDENTITY_PATH

DEMO_TRIAL = "NCT01234567"
DEMO_SITE = "DEMO-SITE"
ANVIL_RELATIVE = Path("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
STATE_INTERVAL_SECONDS = 5


def find_anvil() -> Path:
    """The platform binary (not the npm wrapper, whose death would orphan the node)."""
    candidates = [Path.cwd() / ANVIL_RELATIVE, Path(__file__).resolve().parents[2] / ANVIL_RELATIVE]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    found = shutil.which("anvil")
    if found:
        return Path(found)
    raise click.ClickException("anvil is not installed: run `npm ci` in the project folder")


def _answers(url: str) -> bool:
    """Whether a chain node answers JSON-RPC at ``url`` (not merely some program)."""
    try:
        reply = requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId",
                                         "params": []}, timeout=2)
        return "result" in reply.json()
    except (requests.RequestException, ValueError):
        return False


def port_problem(host: str, port: int) -> str | None:
    """Why a server could not listen on ``host:port`` now, or None if it could: tried by
    binding a socket as waitress does (so a port left in TIME_WAIT counts as free)."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot listen on {host}: {exc.strerror}"
    for family, kind, proto, _name, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return f"port {port} on {host} is already in use"
                return f"cannot listen on {host}:{port}: {exc.strerror}"
    return None


def require_free_port(host: str, port: int, way_out: str) -> None:
    """One line that says why the server cannot start and what to do, before anything
    else has started."""
    problem = port_problem(host, port)
    if problem is not None:
        raise click.ClickException(f"{problem} (another trialnotary, or another program): "
                                   f"stop it, or {way_out}")


def start_local_chain(settings: Settings) -> LocalChain | None:
    """Start anvil on the configured local URL unless a node already answers there."""
    url = settings.rpc_urls[0]
    if _answers(url):
        click.echo(f"using the chain node already running at {url}")
        return None
    host, port = urlparse(url).hostname or "127.0.0.1", urlparse(url).port or 8545
    if port_problem(host, port) is not None:
        raise click.ClickException(
            f"port {port} of the local chain ({url}) is taken by a program that is not a "
            f"chain node: stop it, or run the chain on another port: "
            f"TRIALNOTARY_CHAIN_RPC_URL=http://127.0.0.1:{port + 1} make run (put it in .env "
            "so that every command uses it)")
    state = settings.instance_path / "anvil-state.json"
    private_folder(settings.instance_path)
    # A session of its own: Ctrl-C in the terminal reaches `up` alone, which stops the
    # server first and then the chain, and a chain that exits by itself is a fault.
    process = subprocess.Popen(
        [str(find_anvil()), "--port", str(port), "--chain-id", str(settings.chain_id),
         "--block-time", "1", "--state", str(state),
         "--state-interval", str(STATE_INTERVAL_SECONDS), "--silent"],
        stdout=subprocess.DEVNULL, start_new_session=True,
        umask=0o077)  # its state file: the owner's alone
    deadline = time.monotonic() + 20
    while not _answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise click.ClickException("the local chain (anvil) did not start")
        time.sleep(0.1)
    click.echo(f"local chain (anvil) on {url}, state in {state}")
    return LocalChain(process)


class LocalChain:
    """The anvil that `up` started. If it exits while `up` runs, `up` says so and stops
    rather than restart it: a restart would come back from the last saved state (up to
    STATE_INTERVAL_SECONDS old), and a notary without its chain takes registrations it
    cannot anchor."""

    def __init__(self, process: subprocess.Popen):
        self.process = process
        self.exit_code: int | None = None  # set when anvil exited while `up` ran
        self._stopping = threading.Event()
        threading.Thread(target=self._watch, name="anvil-watch", daemon=True).start()

    def _watch(self) -> None:
        code = self.process.wait()
        if self._stopping.is_set():
            return
        self.exit_code = code
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        click.echo(f"the local chain (anvil) stopped by itself ({how}); stopping trialnotary. "
                   "`make run` starts both again from the saved state.", err=True)
        os.kill(os.getpid(), signal.SIGTERM)

    def stop(self) -> None:
        """SIGTERM, so anvil writes its state before it exits."""
        self._stopping.set()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        click.echo("stopped: the local chain's state and the database are kept in the "
                   "instance folder; `make run` starts them again")


DEMO_USERS = {Role.ADMIN: "admin@demo.local", Role.SPONSOR: "sponsor@demo.local",
              Role.COORDINATOR: "coordinator@demo.local"}
SEEDER = "system:local-default"


def _private_file(path: Path, text: str) -> None:
    with open(path, "w", opener=private_opener) as handle:
        handle.write(text)


def seed_demo(settings: Settings) -> tuple[str, dict[str, str]]:
    """Create the demo trial, site, site token and one user per role, once; returns the
    token and the users' passwords. Both are kept in the instance folder, readable only by
    its owner: the database holds only their digests."""
    engine = engine_for(settings)
    token_file = settings.instance_path / "demo-token"
    logins_file = settings.instance_path / "demo-logins.json"
    with write_session(engine) as session:
        if sites.find_trial(session, DEMO_TRIAL) is None:
            sites.add_trial(session, DEMO_TRIAL, title="Demo trial (local default)",
                            actor=SEEDER)
        if sites.find_site(session, DEMO_SITE) is None:
            sites.add_site(session, DEMO_TRIAL, DEMO_SITE, name="Demo site", actor=SEEDER)
        token = token_file.read_text().strip() if token_file.exists() else None
        if token is None or sites.authenticate(session, token) is None:
            token = sites.create_token(session, DEMO_SITE, name="demo", actor=SEEDER,
                                       expires_in_days=settings.site_token_days)
            _private_file(token_file, token + "\n")
        logins = _seed_users(session, logins_file)
        session.commit()
    engine.dispose()
    return token, logins


def _seed_users(session: Session, logins_file: Path) -> dict[str, str]:
    """One demo user per role, with a random password (no change forced: a demo)."""
    logins = json.loads(logins_file.read_text()) if logins_file.exists() else {}
    for role, email in DEMO_USERS.items():
        if accounts.find_user(session, email) is not None and email in logins:
            continue
        password = passwords.generated_password()
        user = accounts.find_user(session, email)
        if user is None:
            user, _ = accounts.create_user(session, email, role, name=f"Demo {role}",
                                           password=password, actor=SEEDER)
        else:
            accounts.set_password(session, user, password, actor=SEEDER)
        if role == Role.SPONSOR:
            accounts.grant(session, user, trial=DEMO_TRIAL, actor=SEEDER)
        elif role == Role.COORDINATOR:
            accounts.grant(session, user, site=DEMO_SITE, actor=SEEDER)
        logins[email] = password
    _private_file(logins_file, json.dumps(logins, indent=2) + "\n")
    return logins


def _print_welcome(settings: Settings, token: str, logins: dict[str, str], host: str,
                   port: int) -> None:
    server = f"http://{host}:{port}"
    here = f"http://127.0.0.1:{port}" if host in ("0.0.0.0", "::") else server
    verify = (f"trialnotary verify receipts/*.receipt.json --rpc {settings.rpc_urls[0]} "
              f"--notary {here}")
    people = "\n".join(f"  {role:<12}{email}  password {logins[email]}"
                       for role, email in DEMO_USERS.items())
    click.echo(f"""
trialnotary is running (local default: SQLite + local chain {settings.chain_id})
  server      {server}
  demo trial  {DEMO_TRIAL}
  demo site   {DEMO_SITE}
  site token  {token}
  sealing     every {settings.seal_interval_seconds:g} s (or now: trialnotary seal-now)

Sign in at {server}/login (demo accounts, local only):
{people}

Register a file and wait for its receipt:
  export TRIALNOTARY_SERVER_URL={server} TRIALNOTARY_TOKEN={token}
  trialnotary submit README.md --trial {DEMO_TRIAL} --site {DEMO_SITE} --wait --out receipts/
Verify every receipt there without us (exit 0: each checks out and was anchored by an
address this notary publishes in its identity, {here}{IDENTITY_PATH}):
  {verify}
Stop with Ctrl-C; everything is kept in {settings.instance_path}.
""")


def up(*, host: str = "127.0.0.1", port: int = 5000) -> None:
    stop_on_signals()
    settings = load_settings(create=False)  # created once the checks below pass
    if settings.chain != "local":
        raise click.ClickException("`up` runs the local default; on a public chain use "
                                   "`db upgrade` and `serve`")
    _require_instance_free(settings)
    require_free_port(host, port, f"start on another port: PORT={port + 1} make run "
                                  f"(or trialnotary up --port {port + 1})")
    chain = start_local_chain(settings)
    if chain is not None:
        atexit.register(chain.stop)
    try:
        upgrade(settings.database_url)
        token, logins = seed_demo(settings)
        _print_welcome(settings, token, logins, host, port)
        from trialnotary.cli.operator import serve

        serve.main(["--host", host, "--port", str(port)], standalone_mode=False)
    finally:
        if chain is not None and chain.exit_code is not None:
            sys.exit(1)


def _require_instance_free(settings: Settings) -> None:
    """A second `up` on one instance stops here, before it starts or changes anything."""
    try:
        scheduler.require_none_running(settings.database_url)
    except scheduler.SchedulerAlreadyRunning:
        raise click.ClickException(
            f"trialnotary already runs on this instance ({settings.instance_path}): stop it "
            "first (Ctrl-C where it runs), or run another instance: "
            "TRIALNOTARY_INSTANCE_PATH=FOLDER PORT=PORT make run") from None
