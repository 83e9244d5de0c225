"""Engine, sessions, migrations, and the locks that serialise sealing and chain work."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

# pg_advisory_xact_lock key for the seal/anchor jobs ("TNJOBS" in ASCII).
JOB_LOCK_KEY = 0x544E4A4F4253
# pg_try_advisory_lock key for talking to the chain ("TNCHAIN").
CHAIN_LOCK_KEY = 0x544E434841494E


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and enforced foreign keys."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)

    database = sa.engine.make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):
        # Let SQLAlchemy, not the driver, decide when transactions begin, so that
        # ``BEGIN IMMEDIATE`` below really takes the write lock first.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _sqlite_begin(conn):
        if not conn.info.get("read_only"):
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("write_lock") else "BEGIN")

    return engine


@contextlib.contextmanager
def sqlite_writer_turn(engine: Engine) -> Iterator[None]:
    """Wait in the kernel for this SQLite database's one writer slot (an ``flock`` on a file
    beside it); nothing to do for other databases or an in-memory one.

    SQLite lets one transaction write at a time, and its busy handler makes the others
    sleep and retry (1, 2, 5 … 100 ms naps): under 32 concurrent registrations from several
    processes most of the latency was those naps. ``flock`` wakes the next writer the
    moment the lock is released, so writers take turns in order instead.
    """
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    with open(Path(database).with_suffix(".write.lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session whose transactions take SQLite's write lock at ``BEGIN`` (IMMEDIATE),
    after waiting for the writer's turn (:func:`sqlite_writer_turn`).

    A deferred SQLite transaction that reads and then writes fails at once (it does not
    wait) when another connection wrote in between; taking the lock first makes concurrent
    writers queue instead. PostgreSQL needs nothing special.
    """
    with sqlite_writer_turn(engine), engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.info["write_lock"] = True
        try:
            with Session(bind=conn, expire_on_commit=False) as session:
                yield session
        finally:
            conn.info.pop("write_lock", None)


@contextlib.contextmanager
def read_connection(engine: Engine) -> Iterator[sa.Connection]:
    """A connection for a few reads of rows that never change once written (a confirmed
    receipt): on SQLite each statement runs on its own, with no ``BEGIN`` round trip."""
    with engine.connect() as conn:
        conn.info["read_only"] = True
        try:
            yield conn
        finally:
            conn.info.pop("read_only", None)


@contextlib.contextmanager
def job_lock(engine: Engine):
    """A session holding the database-wide job lock until it commits or rolls back.

    PostgreSQL: a transaction-scoped advisory lock; SQLite: ``BEGIN IMMEDIATE`` (the
    write lock). Every process that seals or anchors takes it, so a batch is sealed once
    and anchored once whichever process acts.
    """
    with sqlite_writer_turn(engine), engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.info["write_lock"] = True
        with Session(bind=conn) as session:
            try:
                if engine.dialect.name == "postgresql":
                    session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"),
                                    {"k": JOB_LOCK_KEY})
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
            finally:
                conn.info.pop("write_lock", None)


@contextlib.contextmanager
def chain_lock(engine: Engine) -> Iterator[bool]:
    """Try to become the one process that signs, sends and confirms anchors right now;
    yields whether it did. Never waits: a process that does not get it skips this round.

    Chain calls are slow, so no database transaction is held meanwhile. PostgreSQL: a
    session advisory lock on a connection of its own; SQLite (one machine by nature): an
    exclusive ``flock`` on a file beside the database.
    """
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            held = conn.scalar(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": CHAIN_LOCK_KEY})
            conn.commit()
            try:
                yield bool(held)
            finally:
                if held:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": CHAIN_LOCK_KEY})
                    conn.commit()
        return
    path = Path(engine.url.database or "trialnotary").with_suffix(".chain.lock")
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def alembic_config(url: str):
    from alembic.config import Config

    migrations = files("trialnotary.migrations")
    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply the migrations: the only way the schema is created."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def is_current(engine: Engine) -> bool:
    """Whether the database is at the newest migration."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(str(engine.url)))
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads()) == set(script.get_heads())
