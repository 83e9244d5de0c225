"""The operator's commands: run the notary (``serve``, ``worker``, ``up``, ``db upgrade``),
seal and anchor now, and check it (``check``, ``audit verify``, ``chain status``). Each
reads the same configuration as the server; docs/cli.md describes them.

Imports stay inside the commands: `verify` must start fast, without the server's modules.
"""

from __future__ import annotations

import sys
import time

import click

from trialnotary.cli import instance


@click.command()
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
    instance.setup_logging()
    settings = instance.settings(create=True)
    instance.engine(settings).dispose()
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


@click.command()
def worker() -> None:
    """Run the scheduler only: seal, anchor, confirm."""
    from trialnotary.cli.interrupts import stop_on_signals
    from trialnotary.notary import scheduler

    stop_on_signals()
    instance.setup_logging()
    settings = instance.settings()
    instance.engine(settings).dispose()
    click.echo("trialnotary worker running (Ctrl-C to stop)")
    try:
        scheduler.start(settings, background=False)
    except scheduler.SchedulerAlreadyRunning as exc:
        raise click.ClickException(str(exc)) from None


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def up(host: str, port: int) -> None:
    """The local default in one go: local chain, migrated SQLite, demo data, server."""
    from trialnotary.cli import localdev

    localdev.up(host=host, port=port)


@click.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations (the only way the schema is created)."""
    from trialnotary.db import upgrade

    settings = instance.settings(create=True)
    upgrade(settings.database_url)
    click.echo("database is up to date")


@click.group("audit")
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

    with Session(instance.engine(instance.settings())) as session:
        report = audit_check.run(session, rpc_urls=list(rpc_urls))
    for line in report.lines:
        click.echo(line)
    sys.exit(0 if report.ok else 1)


@click.command("seal-now")
@click.option("--wait", is_flag=True, help="Wait until every anchor is confirmed.")
def seal_now(wait: bool) -> None:
    """Seal everything pending (registrations, and audit entries no batch holds yet: with no
    registration pending, in a batch of the audit head alone) and send the anchors."""
    from trialnotary.notary import anchoring, operations
    from trialnotary.notary.chain import ChainError

    settings = instance.settings()
    engine = instance.engine(settings)
    workers = anchoring.anchorers(settings)
    with instance.busy_is_an_error():
        for worker in workers:
            worker.prepare(engine)
        sealed = operations.seal_everything(engine, settings.max_batch)
    sent, stamped = [], set()
    for worker in workers:
        if isinstance(worker, anchoring.EvmAnchorer):
            try:
                sent += anchoring.anchor_sealed(engine, worker.chain)
            except ChainError as exc:
                raise click.ClickException(
                    f"sealed {len(sealed.batches)} batch(es), but anchoring on {worker.name} "
                    f"failed: {exc}. The scheduler will retry.") from None
        elif (done := worker.run(engine, wait=30)) is not None:
            stamped.update(done.confirmed)
    if not sealed.batches and not sent and not stamped:
        click.echo("nothing pending")
    for batch in sealed.batches:
        held = f"{batch.leaf_count} leaves" if batch is not sealed.audit_head else \
            f"the audit head alone (entry {batch.audit_seq})"
        click.echo(f"sealed batch {batch.id}: {held}, root {batch.root.hex()}")
    for anchor in sent:
        held = operations.batches_of(engine, [anchor])
        click.echo(f"batch {', '.join(map(str, sorted(held)))}: transaction "
                   f"0x{anchor.tx_hash} on {anchor.name}")
    for batch_id in sorted(stamped):
        click.echo(f"batch {batch_id}: time-stamped")
    if wait:
        waiting = {b.id for b in sealed.batches} | operations.batches_of(engine, sent)
        _wait_until_confirmed(engine, workers, waiting - stamped)


def _wait_until_confirmed(engine, workers: list, waiting: set[int]) -> None:
    """Run every anchor's rounds until these batches are confirmed, whoever confirms them
    (a running scheduler may well be first)."""
    from trialnotary.notary import anchoring, operations

    while waiting:
        time.sleep(1)
        anchoring.run_rounds(engine, workers)
        done = operations.confirmed_among(engine, waiting)
        for batch_id in sorted(done):
            click.echo(f"batch {batch_id}: confirmed")
        waiting -= done


@click.command("check")
@click.option("--settled", is_flag=True,
              help="Also require that nothing is pending and every batch is confirmed.")
@click.option("--receipts", is_flag=True, help="Also verify every receipt on the chain node.")
def check_command(settled: bool, receipts: bool) -> None:
    """Check that no registration is lost and no batch anchored twice; exit 0 if so."""
    from sqlmodel import Session

    from trialnotary.anchor_config import EVM
    from trialnotary.notary import consistency, renewal
    from trialnotary.notary.chain import ChainClient, ChainError

    settings = instance.settings()
    with Session(instance.engine(settings)) as session:
        retired = set(renewal.retired_names(session))
        chains = [ChainClient(settings, anchor=spec) for spec in settings.anchors
                  if spec.kind == EVM and spec.name not in retired]
        try:
            found = consistency.check(session, chains, settled=settled, receipts=receipts)
        except ChainError as exc:
            raise click.ClickException(f"could not check the anchors: {exc}") from None
    click.echo("  ".join(f"{name.replace('_', ' ')}: {count}"
                         for name, count in found.counts.items()))
    for problem in found.problems:
        click.echo(f"✗ {problem}")
    click.echo("consistent" if found.ok else f"{len(found.problems)} problem(s)")
    sys.exit(0 if found.ok else 1)


@click.group("chain")
def chain_group() -> None:
    """The anchoring account on its chain."""


@chain_group.command("status")
def chain_status() -> None:
    """Each anchor: chain id, account, balance, nonce, node head (or the authority's URL);
    then the anchors in flight."""
    from trialnotary.anchor_config import EVM
    from trialnotary.notary import operations
    from trialnotary.notary.chain import ChainClient

    settings = instance.settings()
    engine = instance.engine(settings)
    for spec in settings.anchors:
        retires = f", retires {spec.retire_on.isoformat()}" if spec.retire_on else ""
        click.echo(f"anchor:       {spec.name} ({spec.kind}, every {spec.every}{retires})")
        if spec.kind == EVM:
            _evm_status(engine, ChainClient(settings, anchor=spec))
        else:
            click.echo(f"authority:    {spec.url}")
    click.echo(f"in flight:    {operations.anchors_in_flight(engine)} anchor transaction(s)")


def _evm_status(engine, chain) -> None:
    from trialnotary.notary import identity
    from trialnotary.notary.chain import ChainError

    settings = chain.settings
    click.echo(f"chain:        {settings.chain} (expected chain id {settings.chain_id})")
    click.echo(f"rpc:          {', '.join(settings.rpc_urls)}")
    try:
        identity.prepare_signer(engine, chain)  # the current key, after any rotation
    except ChainError as exc:
        click.echo(f"key:          {exc}")
    click.echo(f"account:      {chain.address}")
    try:
        click.echo(f"node chain:   {chain.chain_id()}")
        click.echo(f"head:         {chain.head()}")
        click.echo(f"balance:      {chain.balance() / 10**18:.6f} ETH")
        click.echo(f"nonce:        {chain.pending_nonce()} (pending)")
    except ChainError as exc:
        click.echo(f"node:         unreachable ({exc})")


@chain_group.command("rotate-key")
@click.option("--anchor", "anchor_name", required=True, metavar="NAME",
              help="The anchor whose key changes (`local`, `sepolia`, …: the chain's name).")
@click.option("--key-file", required=True, metavar="FILE",
              type=click.Path(exists=True, dir_okay=False),
              help="The new anchoring account's private key (kept where it is; the database "
                   "keeps only its path).")
def chain_rotate_key(anchor_name: str, key_file: str) -> None:
    """Anchor with a new key from now on. Anchors in flight, signed with the old key, still
    confirm, and every earlier receipt keeps verifying: the identity publishes the old
    address until its last anchor is confirmed, the new one from now."""
    from pathlib import Path

    from trialnotary.notary import identity
    from trialnotary.notary.errors import IdentityRefused

    settings = instance.settings()
    try:
        old, new = identity.rotate(instance.engine(settings), settings, anchor_name,
                                   Path(key_file))
    except IdentityRefused as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"anchor {anchor_name}: anchoring moves from {old or 'no address'} to {new}")
    click.echo(f"fund {new} on chain {settings.chain_id}; the identity now lists it")


@chain_group.command("revoke-key")
@click.argument("address")
@click.option("--since", required=True, metavar="TIME",
              help="From when the key must not be trusted: an RFC 3339 time "
                   "(2026-12-01T10:00:00Z) or a date (midnight UTC).")
def chain_revoke_key(address: str, since: str) -> None:
    """Record that ADDRESS's key leaked: anchors in blocks at or after --since fail the
    verifier's notary step; earlier ones still pass."""
    from trialnotary.notary import identity
    from trialnotary.notary.errors import IdentityRefused

    settings = instance.settings()
    try:
        row = identity.revoke(instance.engine(settings), settings, address,
                              identity.parse_time(since))
    except IdentityRefused as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{row.address} is compromised from {row.compromised_from}")
    if row.retired_at is None:
        click.echo("it is still the anchoring key: move to a new one with "
                   "`trialnotary chain rotate-key` (anchoring stops until then)")


@click.group("anchor")
def anchor_group() -> None:
    """The configured anchors ([[anchors]] in config.toml)."""


@anchor_group.command("retire")
@click.argument("name")
@click.option("--force", is_flag=True,
              help="Renew the anchor's transactions whose chain evidence can be had, and "
                   "leave the others out (their receipts get no renewal).")
def anchor_retire(name: str, force: bool) -> None:
    """Stop anchor NAME and renew what it attested: a tree over the chain evidence of its
    confirmed transactions, anchored on every remaining anchor. Returns once those
    anchors are sent; receipts carry the renewal once one of them is confirmed."""
    from trialnotary.notary import renewal
    from trialnotary.notary.errors import NotaryError, RetireRefused

    settings = instance.settings()
    engine = instance.engine(settings)
    try:
        with instance.busy_is_an_error():
            done = renewal.retire(engine, settings, name, force=force)
    except RetireRefused as exc:
        raise click.ClickException(str(exc)) from None
    when = done.retired_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    click.echo(f"anchor {name}: retired {'before, ' if done.already else ''}at {when}; it "
               "anchors nothing new")
    if done.backfilled:
        click.echo(f"chain evidence taken for {done.backfilled} transaction(s)")
    for item in done.left_out:
        click.echo(f"left out (no chain evidence): 0x{item.tx_hash} (block {item.block_number})")
    if done.in_flight:
        click.echo(f"{done.in_flight} transaction(s) still in flight on {name} are no longer "
                   "followed: their batches rely on the other anchors")
    if done.renewal is None:
        click.echo("nothing to renew")
        return
    click.echo(f"renewal {done.renewal.id}: {done.renewal.leaf_count} transaction(s) of "
               f"{name}, root {bytes(done.renewal.root).hex()}")
    try:
        sent = renewal.send_renewal(engine, settings, done.renewal.id)
    except NotaryError as exc:
        raise click.ClickException(f"the renewal is built, but sending it failed: {exc}. The "
                                   "scheduler sends it, or run this command again.") from None
    for item in sent:
        carried = f"transaction 0x{item.tx_hash}" if item.tx_hash else \
            f"time-stamp of {item.gen_time}" if item.gen_time else "nothing yet"
        click.echo(f"  on {item.name}: {carried} ({item.state})")
    if any(item.tx_hash is None and item.gen_time is None for item in sent):
        sys.exit(1)


COMMANDS = (serve, worker, up, db_group, audit_group, seal_now, check_command, chain_group,
            anchor_group)
