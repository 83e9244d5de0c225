"""The ``trialnotary`` command. Every command reads the same configuration as the server."""

from __future__ import annotations

import contextlib
import logging
import sys
import time

import click

# Imports stay inside the commands: `verify` must start fast, without the server's modules.


def _settings(*, create: bool = False):
    """The server's configuration, and on stderr which instance and database it names.
    Only commands that set an instance up (``serve``, ``db upgrade``) pass ``create``."""
    from trialnotary.config import ConfigError, load_settings

    try:
        settings = load_settings(create=create)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(settings.location(), err=True)
    return settings


def _missing_sqlite_file(database_url: str):
    """The SQLite file the URL names, if it does not exist (connecting would create it)."""
    from pathlib import Path

    import sqlalchemy as sa

    url = sa.engine.make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    if url.database.startswith("file:"):
        return None
    path = Path(url.database)
    return None if path.exists() else path


def _engine(settings):
    """An engine on the existing, migrated database; never creates one."""
    import sqlalchemy as sa

    from trialnotary.db import engine_for, is_current

    missing = _missing_sqlite_file(settings.database_url)
    if missing is not None:
        raise click.ClickException(
            f"no database at {missing}. Run this in the project folder (where `make run` "
            "keeps instance/) or below it, or set TRIALNOTARY_INSTANCE_PATH (or "
            "TRIALNOTARY_DATABASE_URL) to the server's; `trialnotary db upgrade` sets up a "
            "new one.")
    engine = engine_for(settings)
    try:
        current = is_current(engine)
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise click.ClickException(f"cannot open the database: {reason}") from None
    if not current:
        raise click.ClickException("the database is not migrated: run `trialnotary db upgrade`")
    return engine


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.group()
@click.version_option(package_name="trialnotary")
def main() -> None:
    """trialnotary: register SHA-256 hashes of trial data, anchor them, verify receipts."""


# --- running -------------------------------------------------------------------------

@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-scheduler", is_flag=True, help="Web and API only; run `worker`s apart.")
@click.option("--threads", default=16, show_default=True, type=int)
def serve(host: str, port: int, no_scheduler: bool, threads: int) -> None:
    """Serve the web pages and the API (and the scheduler, unless --no-scheduler)."""
    from trialnotary.cli.interrupts import stop_on_signals
    from trialnotary.cli.localdev import require_free_port
    from trialnotary.config import ConfigError
    from trialnotary.notary import scheduler
    from trialnotary.web.app import SERVER_MAX_BODY_BYTES, create_app

    stop_on_signals()
    _setup_logging()
    settings = _settings(create=True)
    engine = _engine(settings)
    engine.dispose()
    require_free_port(host, port, f"choose another with --port {port + 1}")
    try:
        app = create_app(settings)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        jobs = None if no_scheduler else scheduler.start(settings, background=True)
    except scheduler.SchedulerAlreadyRunning as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"trialnotary serving on http://{host}:{port}"
               + ("" if no_scheduler else " (with the scheduler)"))
    try:
        import waitress

        waitress.serve(app, host=host, port=port, threads=threads, ident="trialnotary",
                       max_request_body_size=SERVER_MAX_BODY_BYTES)
    finally:
        if jobs is not None:
            jobs.shutdown(wait=True)


@main.command()
def worker() -> None:
    """Run the scheduler only: seal, anchor, confirm."""
    from trialnotary.cli.interrupts import stop_on_signals
    from trialnotary.notary import scheduler

    stop_on_signals()
    _setup_logging()
    settings = _settings()
    _engine(settings).dispose()
    click.echo("trialnotary worker running (Ctrl-C to stop)")
    try:
        scheduler.start(settings, background=False)
    except scheduler.SchedulerAlreadyRunning as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def up(host: str, port: int) -> None:
    """The local default in one go: local chain, migrated SQLite, demo data, server."""
    from trialnotary.cli import localdev

    localdev.up(host=host, port=port)


@main.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations (the only way the schema is created)."""
    from trialnotary.db import upgrade

    settings = _settings(create=True)
    upgrade(settings.database_url)
    click.echo("database is up to date")


# --- administration ------------------------------------------------------------------

def _actor() -> str:
    """How the audit trail names whoever runs an admin command."""
    import getpass

    return f"cli:{getpass.getuser()}"


def _admin(action):
    """Run ``action(session)`` in one write transaction (the audit trail needs its lock)."""
    from trialnotary.db import write_session
    from trialnotary.validation import ValidationError

    with _busy_is_an_error(), write_session(_engine(_settings())) as session:
        try:
            result = action(session)
        except ValidationError as exc:
            raise click.ClickException(f"{exc.field}: {exc.message}" if exc.field
                                       else exc.message) from None
        session.commit()
        return result


@contextlib.contextmanager
def _busy_is_an_error():
    """A database whose write lock stays taken is a one-line error, not a traceback."""
    from trialnotary.db import WriterBusy

    try:
        yield
    except WriterBusy as exc:
        raise click.ClickException(f"{exc}; nothing was changed. Try again, or look for a "
                                   "process that holds the database's write lock.") from None


@main.group("trial")
def trial_group() -> None:
    """Trials."""


@trial_group.command("add")
@click.argument("trial")
@click.option("--title")
@click.option("--protocol-id", is_flag=True,
              help="TRIAL is a sponsor's protocol id, not (yet) a registry id.")
def trial_add(trial: str, title: str | None, protocol_id: bool) -> None:
    """Create a trial."""
    from trialnotary.people import sites

    created = _admin(lambda s: sites.add_trial(s, trial, title=title, protocol_id=protocol_id,
                                               actor=_actor()))
    click.echo(f"trial {created.registry_id} created")


@main.group("site")
def site_group() -> None:
    """Sites."""


@site_group.command("add")
@click.argument("trial")
@click.argument("site")
@click.option("--name")
def site_add(trial: str, site: str, name: str | None) -> None:
    """Create SITE if new and enrol it in TRIAL."""
    from trialnotary.people import sites

    _admin(lambda s: sites.add_site(s, trial, site, name=name, actor=_actor()))
    click.echo(f"site {site} enrolled in {trial.upper()}")


@main.group("token")
def token_group() -> None:
    """Site tokens."""


@token_group.command("create")
@click.argument("site")
@click.option("--expires-in", type=click.FloatRange(min=0, min_open=True), metavar="DAYS",
              help="Days until it expires [default: TRIALNOTARY_SITE_TOKEN_DAYS, 90].")
def token_create(site: str, expires_in: float | None) -> None:
    """Print a new token for SITE (shown once, stored only as a digest). It belongs to no
    person: it lives until it expires or is revoked."""
    from trialnotary.people import sites

    days = expires_in or _settings().site_token_days
    token = _admin(lambda s: sites.create_token(s, site, expires_in_days=days,
                                                actor=_actor()))
    click.echo(f"token for site {site}" + (f", expires in {days:g} days" if days
                                           else ", never expires") + " (shown once):",
               err=True)
    click.echo(token)


@token_group.command("revoke")
@click.argument("prefix")
def token_revoke(prefix: str) -> None:
    """Revoke the site or user token whose listed prefix is PREFIX (e.g. tn_site_AbC123)."""
    from sqlmodel import select

    from trialnotary.people import accounts, sites
    from trialnotary.people.models import SiteToken, UserToken
    from trialnotary.validation import ValidationError

    def revoke(session):
        site_token = session.exec(select(SiteToken).where(SiteToken.prefix == prefix)).all()
        user_token = session.exec(select(UserToken).where(UserToken.prefix == prefix)).all()
        found = [("site", t) for t in site_token] + [("user", t) for t in user_token]
        if len(found) != 1:
            raise ValidationError("prefix", "names no token" if not found
                                  else "names several tokens: revoke them in the admin pages")
        kind, token = found[0]
        if kind == "site":
            sites.revoke_token(session, token.id, actor=_actor())
        else:
            accounts.revoke_user_token(session, token.id, actor=_actor())

    _admin(revoke)
    click.echo(f"token {prefix}… revoked")


@main.group("user")
def user_group() -> None:
    """People who sign in to the web pages."""


@user_group.command("add")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(["admin", "sponsor", "coordinator"]))
@click.option("--name")
def user_add(email: str, role: str, name: str | None) -> None:
    """Create a user; print a temporary password (shown once) as the last line."""
    from trialnotary.people import accounts

    user, password = _admin(lambda s: accounts.create_user(s, email, role, name=name,
                                                            actor=_actor()))
    click.echo(f"user {user.email} ({role}) created; temporary password (shown once, to be "
               "changed at first sign-in):", err=True)
    click.echo(password)


@user_group.command("grant")
@click.argument("email")
@click.option("--trial", help="A trial, for a sponsor.")
@click.option("--site", help="A site, for a coordinator.")
def user_grant(email: str, trial: str | None, site: str | None) -> None:
    """Grant a sponsor a trial, or a coordinator a site."""
    from trialnotary.people import accounts
    from trialnotary.validation import ValidationError

    def grant(session):
        user = accounts.find_user(session, email)
        if user is None:
            raise ValidationError("email", f"no user {email}")
        accounts.grant(session, user, trial=trial, site=site, actor=_actor())

    _admin(grant)
    click.echo(f"{email} may now see {'trial ' + trial.upper() if trial else 'site ' + site}")


@user_group.command("reset-password")
@click.argument("email")
def user_reset_password(email: str) -> None:
    """Set a new temporary password (printed once) and end the user's sessions."""
    from trialnotary.people import accounts
    from trialnotary.validation import ValidationError

    def reset(session):
        user = accounts.find_user(session, email)
        if user is None:
            raise ValidationError("email", f"no user {email}")
        password = accounts.generated_password()
        accounts.set_password(session, user, password, actor=_actor(), temporary=True)
        return password

    password = _admin(reset)
    click.echo(f"temporary password for {email} (shown once):", err=True)
    click.echo(password)


@main.group("audit")
def audit_group() -> None:
    """The audit trail."""


@audit_group.command("verify")
@click.option("--rpc", "rpc_urls", multiple=True,
              help="Also check each sealed head's batch root on this chain node.")
def audit_verify(rpc_urls: tuple[str, ...]) -> None:
    """Check every entry's hash and link, that each batch holds the head it sealed, and
    (with --rpc) that those batches' roots are anchored on chain. Exit 0 only if all hold."""
    from sqlmodel import Session

    from trialnotary.notary import audit_check

    with Session(_engine(_settings())) as session:
        report = audit_check.run(session, rpc_urls=list(rpc_urls))
    for line in report.lines:
        click.echo(line)
    sys.exit(0 if report.ok else 1)


# --- sealing and the chain -----------------------------------------------------------

@main.command("seal-now")
@click.option("--wait", is_flag=True, help="Wait until every anchor is confirmed.")
def seal_now(wait: bool) -> None:
    """Seal everything pending (registrations, and audit entries no batch holds yet: with no
    registration pending, in a batch of the audit head alone) and send the anchors."""
    from trialnotary.notary import anchoring, batches
    from trialnotary.notary.chain import ChainClient, ChainError

    settings = _settings()
    engine = _engine(settings)
    chain = ChainClient(settings)
    with _busy_is_an_error():
        sealed = batches.seal_all(engine, settings.max_batch)
        if (head := batches.seal_audit_head(engine, waited_seconds=0)) is not None:
            sealed.append(head)
    try:
        sent = anchoring.anchor_sealed(engine, chain)
    except ChainError as exc:
        raise click.ClickException(f"sealed {len(sealed)} batch(es), but anchoring failed: "
                                   f"{exc}. The scheduler will retry.") from None
    if not sealed and not sent:
        click.echo("nothing pending")
    for batch in sealed:
        held = f"{batch.leaf_count} leaves" if batch is not head else \
            f"the audit head alone (entry {batch.audit_seq})"
        click.echo(f"sealed batch {batch.id}: {held}, root {batch.root.hex()}")
    for anchor in sent:
        click.echo(f"batch {anchor.batch_id}: transaction 0x{anchor.tx_hash}")
    if wait:
        _wait_until_confirmed(engine, chain, {b.id for b in sealed} | {a.batch_id for a in sent})


def _wait_until_confirmed(engine, chain, waiting: set[int]) -> None:
    """Run chain rounds until these batches are confirmed, whoever confirms them (a
    running scheduler may well be first)."""
    from sqlmodel import Session, select

    from trialnotary.notary import anchoring
    from trialnotary.notary.models import Batch

    backoff = anchoring.Backoff()
    while waiting:
        time.sleep(1)
        anchoring.chain_round(engine, chain, backoff)
        with Session(engine) as session:
            done = set(session.scalars(select(Batch.id).where(Batch.id.in_(waiting),
                                                              Batch.state == "confirmed")))
        for batch_id in sorted(done):
            click.echo(f"batch {batch_id}: confirmed")
        waiting -= done


@main.command("check")
@click.option("--settled", is_flag=True,
              help="Also require that nothing is pending and every batch is confirmed.")
@click.option("--receipts", is_flag=True, help="Also verify every receipt on the chain node.")
def check_command(settled: bool, receipts: bool) -> None:
    """Check that no registration is lost and no batch anchored twice; exit 0 if so."""
    from sqlmodel import Session

    from trialnotary.notary import consistency
    from trialnotary.notary.chain import ChainClient, ChainError

    settings = _settings()
    with Session(_engine(settings)) as session:
        try:
            found = consistency.check(session, ChainClient(settings), settled=settled,
                                      receipts=receipts)
        except ChainError as exc:
            raise click.ClickException(f"could not check the anchors: {exc}") from None
    click.echo("  ".join(f"{name.replace('_', ' ')}: {count}"
                         for name, count in found.counts.items()))
    for problem in found.problems:
        click.echo(f"✗ {problem}")
    click.echo("consistent" if found.ok else f"{len(found.problems)} problem(s)")
    sys.exit(0 if found.ok else 1)


@main.group("chain")
def chain_group() -> None:
    """The anchoring account on its chain."""


@chain_group.command("status")
def chain_status() -> None:
    """Chain id, account, balance, nonce, node head, anchors in flight."""
    from sqlmodel import Session, func, select

    from trialnotary.notary.chain import ChainClient, ChainError
    from trialnotary.notary.models import Anchor

    settings = _settings()
    engine = _engine(settings)
    chain = ChainClient(settings)
    click.echo(f"chain:        {settings.chain} (expected chain id {settings.chain_id})")
    click.echo(f"rpc:          {', '.join(settings.rpc_urls)}")
    click.echo(f"account:      {chain.address}")
    try:
        click.echo(f"node chain:   {chain.chain_id()}")
        click.echo(f"head:         {chain.head()}")
        click.echo(f"balance:      {chain.balance() / 10**18:.6f} ETH")
        click.echo(f"nonce:        {chain.pending_nonce()} (pending)")
    except ChainError as exc:
        click.echo(f"node:         unreachable ({exc})")
    with Session(engine) as session:
        in_flight = session.scalar(select(func.count()).select_from(Anchor)
                                   .where(Anchor.state.in_(("signed", "sent"))))
    click.echo(f"in flight:    {in_flight} anchor transaction(s)")


# --- clients: submit, receipt, verify ------------------------------------------------

@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--trial", required=True)
@click.option("--site", required=True)
@click.option("--kind", default="dataset", show_default=True)
@click.option("--dataset", help="Label; defaults to the file name, or the folder's name.")
@click.option("--supersedes", metavar="ID", help="The registration this one corrects.")
@click.option("--reason", help="Why it is corrected (with --supersedes); kept in the audit "
                               "trail.")
@click.option("--wait", is_flag=True, help="Wait for the receipts.")
@click.option("--out", type=click.Path(file_okay=False), help="Save receipts here.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--server", envvar="TRIALNOTARY_SERVER_URL", default="http://127.0.0.1:5000",
              show_default=True)
@click.option("--token", envvar="TRIALNOTARY_TOKEN", required=True)
def submit(**options) -> None:
    """Hash files or folders locally and register them."""
    from trialnotary.cli import client as submitting

    sys.exit(submitting.run(**options))


@main.command()
@click.argument("registration_id", metavar="ID")
@click.option("-o", "--out", "output", metavar="FILE|DIR", type=click.Path(),
              help="Save the receipt as FILE, or in DIR under its download name (a folder "
                   "that exists, or a name ending with /).")
@click.option("--server", envvar="TRIALNOTARY_SERVER_URL", default="http://127.0.0.1:5000",
              show_default=True)
def receipt(registration_id: str, output: str | None, server: str) -> None:
    """Fetch a receipt from the server: printed to stdout, or saved with -o."""
    from trialnotary.cli import client as submitting

    sys.exit(submitting.fetch_receipt(server, registration_id, output))


@main.command()
@click.argument("receipt_paths", metavar="RECEIPT...", nargs=-1, required=True,
                type=click.Path(dir_okay=False))
@click.option("--file", "file_path", type=click.Path(exists=True, dir_okay=False),
              help="The file the receipt was issued for (with one receipt only).")
@click.option("--rpc", "rpc_urls", multiple=True, metavar="URL",
              help="A chain node (http or https); repeat for several.")
@click.option("--confirmations", default="1", show_default=True,
              help="A number, or 'finalized'.")
@click.option("--expect-sender", metavar="ADDR", help="Pin the notary's anchoring address.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object; a list of them with several receipts.")
def verify(receipt_paths, file_path, rpc_urls, confirmations, expect_sender, as_json) -> None:
    """Check receipts (and a file) step by step, the verdict first.

    Exit 0 if every check passed and the sender is pinned (--expect-sender), 1 if a check
    failed, 2 for unusable input, 3 if every check passed but the sender is not pinned, 4 if
    no chain node answered. With several receipts the worst wins (2 > 1 > 4 > 3 > 0).
    """
    from trialnotary.proof import verify as verifier

    sys.exit(verifier.main(receipt_paths, file_path=file_path, rpc_urls=list(rpc_urls),
                           confirmations=confirmations, expect_sender=expect_sender,
                           as_json=as_json))
