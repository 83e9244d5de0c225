"""The instance a server-side command works on: the server's configuration, its migrated
database, and the one-line refusals when either is missing (docs/configuration.md says how
a command finds them).

Imports stay inside the functions: `verify` must start fast, without the server's modules.
"""

from __future__ import annotations

import contextlib
import logging

import click


def settings(*, create: bool = False):
    """The server's configuration, and on stderr which instance and database it names.
    Only commands that set an instance up (``serve``, ``db upgrade``) pass ``create``."""
    from trialnotary.config import ConfigError, load_settings

    try:
        loaded = load_settings(create=create)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(loaded.location(), err=True)
    return loaded


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


def engine(settings):
    """An engine on the existing, migrated database ``settings`` name; never creates one."""
    import sqlalchemy as sa

    from trialnotary.db import engine_for, is_current

    missing = _missing_sqlite_file(settings.database_url)
    if missing is not None:
        raise click.ClickException(
            f"no database at {missing}. Run this in the project folder (where `make run` "
            "keeps instance/) or below it, or set TRIALNOTARY_INSTANCE_PATH (or "
            "TRIALNOTARY_DATABASE_URL) to the server's; `trialnotary db upgrade` sets up a "
            "new one.")
    opened = engine_for(settings)
    try:
        current = is_current(opened)
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise click.ClickException(f"cannot open the database: {reason}") from None
    if not current:
        raise click.ClickException("the database is not migrated: run `trialnotary db upgrade`")
    return opened


@contextlib.contextmanager
def busy_is_an_error():
    """A database whose write lock stays taken is a one-line error, not a traceback."""
    from trialnotary.db import WriterBusy

    try:
        yield
    except WriterBusy as exc:
        raise click.ClickException(f"{exc}; nothing was changed. Try again, or look for a "
                                   "process that holds the database's write lock.") from None


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
