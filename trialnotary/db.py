"""Engine, sessions, migrations, and the locks that serialise sealing and chain work."""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import threading
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel

from trialnotary.config import PRIVATE_FILE, make_private, private_folder, private_opener
from trialnotary.errors import TrialnotaryError

# pg_advisory_xact_lock key for the seal/anchor jobs ("TNJOBS" in ASCII).
JOB_LOCK_KEY = 0x544E4A4F4253
# pg_try_advisory_lock key for talking to the chain ("TNCHAIN").
CHAIN_LOCK_KEY = 0x544E434841494E
# How long a write waits for SQLite's writer slot unless the engine says otherwise.
WRITE_TIMEOUT_OPTION = "trialnotary_write_timeout"
DEFAULT_WRITE_TIMEOUT = 5.0

# Named constraints from the first migration on, so Alembic's batch mode can alter them.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime | None) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite hands them back naive)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def UtcDateTime(**kw):  # noqa: N802 - reads like a column type
    return Field(sa_type=sa.DateTime(timezone=True), **kw)


class WriterBusy(TrialnotaryError, RuntimeError):
    """No turn to write came within the wait: the database is busy, try again shortly.

    The web pages and the API answer it with 503 and ``Retry-After``."""

    def __init__(self, waited: float):
        super().__init__(f"the database is busy: no turn to write came within {waited:g} s")
        self.retry_after = max(1, math.ceil(waited))


def make_engine(url: str, *, write_timeout: float = DEFAULT_WRITE_TIMEOUT) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and enforced foreign keys, and
    its files are readable by their owner only. A write waits ``write_timeout`` seconds at
    most for its turn (:func:`sqlite_writer_turn`)."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)

    database = sa.engine.make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        _private_database_files(Path(database))
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    engine.update_execution_options(**{WRITE_TIMEOUT_OPTION: write_timeout})

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


def engine_for(settings) -> Engine:
    """The engine of the configured database, with the configured write timeout."""
    return make_engine(settings.database_url, write_timeout=settings.write_lock_timeout_seconds)


def _private_database_files(database: Path) -> None:
    """Create the database file and its folder for their owner only (SQLite gives its
    ``-wal`` and ``-shm`` files the database file's permissions); make existing ones so."""
    private_folder(database.parent)
    with open(database, "a", opener=private_opener):
        pass
    make_private([database, *(database.with_name(database.name + suffix)
                              for suffix in ("-wal", "-shm", "-journal", ".scheduler.lock")),
                  database.with_suffix(".write.lock"), database.with_suffix(".chain.lock")])


class _WriterTurn:
    """This process's way to the writer slot of one SQLite database: an exclusive ``flock``
    on a file beside it, taken by one thread of the process at a time, waited for at most
    a given time.

    ``flock`` cannot time out, and a sleep-and-retry loop would give up the prompt wake-ups
    it is used for. So when the lock is taken, a helper thread blocks in ``flock`` on the
    waiting thread's behalf, and the waiting thread waits for it with a timeout. If it gives
    up, the helper still gets the lock in the end: it hands it to the next thread that
    waits, or lets it go at once. One helper per process and database, however many waits
    time out.
    """

    def __init__(self, path: Path):
        self.path = path
        self.mutex = threading.Lock()  # one thread of this process in turn or waiting
        self.state = threading.Condition()
        self.blocked_fd: int | None = None  # the helper waits in flock on it
        self.handed_fd: int | None = None   # holds the lock, for the waiting thread
        self.asking = False
        self.helper: threading.Thread | None = None

    def acquire(self, timeout: float) -> int:
        """A descriptor holding the lock; ``WriterBusy`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        if not self.mutex.acquire(timeout=timeout):
            raise WriterBusy(timeout)
        try:
            fd = self._take(deadline)
        except BaseException:
            self.mutex.release()
            raise
        if fd is None:
            self.mutex.release()
            raise WriterBusy(timeout)
        return fd

    def release(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        finally:
            self.mutex.release()

    def _take(self, deadline: float) -> int | None:
        with self.state:
            if self.blocked_fd is not None and not self.helper.is_alive():
                os.close(self.blocked_fd)  # its helper died (it should not): start afresh
                self.blocked_fd = None
            if self.blocked_fd is None:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    self.blocked_fd = fd
                    self._start_helper()
                    self.state.notify_all()
            self.asking = True
            try:
                if self.state.wait_for(lambda: self.handed_fd is not None,
                                       deadline - time.monotonic()):
                    fd, self.handed_fd = self.handed_fd, None
                    return fd
                return None
            finally:
                self.asking = False

    def _start_helper(self) -> None:
        if self.helper is None or not self.helper.is_alive():
            self.helper = threading.Thread(target=self._help, daemon=True,
                                           name=f"writer-turn {self.path.name}")
            self.helper.start()

    def _help(self) -> None:
        while True:
            with self.state:
                self.state.wait_for(lambda: self.blocked_fd is not None)
                fd = self.blocked_fd
            fcntl.flock(fd, fcntl.LOCK_EX)
            with self.state:
                self.blocked_fd = None
                if self.asking:
                    self.handed_fd = fd
                    self.state.notify_all()
                else:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    os.close(fd)


_turns: dict[tuple[int, str], _WriterTurn] = {}
_turns_lock = threading.Lock()


def _writer_turn(path: Path) -> _WriterTurn:
    """The process's ``_WriterTurn`` for a lock file (a forked child makes its own)."""
    key = (os.getpid(), str(path))
    with _turns_lock:
        if key not in _turns:
            _turns[key] = _WriterTurn(path)
        return _turns[key]


@contextlib.contextmanager
def sqlite_writer_turn(engine: Engine) -> Iterator[None]:
    """Wait in the kernel for this SQLite database's one writer slot (an ``flock`` on a file
    beside it), at most the engine's write timeout (then ``WriterBusy``); nothing to do for
    other databases or an in-memory one.

    SQLite lets one transaction write at a time, and its busy handler makes the others
    sleep and retry (1, 2, 5 … 100 ms naps): under 32 concurrent registrations from several
    processes most of the latency was those naps. ``flock`` wakes the next writer the
    moment the lock is released, so writers take turns in order instead.
    """
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    turn = _writer_turn(Path(database).with_suffix(".write.lock"))
    fd = turn.acquire(engine.get_execution_options().get(WRITE_TIMEOUT_OPTION,
                                                         DEFAULT_WRITE_TIMEOUT))
    try:
        yield
    finally:
        turn.release(fd)


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
def chain_lock(engine: Engine, anchor: str = "") -> Iterator[bool]:
    """Try to become the one process that signs, sends and confirms ``anchor``'s anchors
    right now; yields whether it did. Never waits: a process that does not get it skips
    this round. Each anchor has its own lock, so anchors never wait for one another.

    Chain calls are slow, so no database transaction is held meanwhile. PostgreSQL: a
    session advisory lock on a connection of its own; SQLite (one machine by nature): an
    exclusive ``flock`` on a file beside the database.
    """
    key = CHAIN_LOCK_KEY + zlib.crc32(anchor.encode()) if anchor else CHAIN_LOCK_KEY
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            held = conn.scalar(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key})
            conn.commit()
            try:
                yield bool(held)
            finally:
                if held:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
        return
    suffix = f".chain-{anchor}.lock" if anchor else ".chain.lock"
    path = Path(engine.url.database or "trialnotary").with_suffix(suffix)
    with open(path, "w", opener=private_opener) as handle:
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
