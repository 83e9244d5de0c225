"""Statements run straight on the database driver, for the hottest reads and the
whole-table passes, where SQLAlchemy's per-row work would cost as much as the database's.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import sqlalchemy as sa


@functools.lru_cache(maxsize=256)
def driver_sql(statement: sa.ClauseElement, dialect_class: type) -> str:
    """The statement in the driver's own SQL, with named parameters."""
    style = "named" if dialect_class.name == "sqlite" else "pyformat"
    return str(statement.compile(dialect=dialect_class(paramstyle=style)))


def driver_rows(connection: sa.Connection, statement: sa.ClauseElement,
                 params: dict) -> list[tuple]:
    """Rows of a cached statement straight from the driver, on the connection's transaction.

    For the receipt download, the hottest read: SQLAlchemy's per-execution work (parameter
    and result processing) cost as much as SQLite's. Both drivers in use take a dict for
    their paramstyle (``:name`` and ``%(name)s``), and every column read this way comes back
    from them as the right Python type (``str``, ``int``, ``bytes``).
    """
    sql = driver_sql(statement, type(connection.dialect))
    cursor = connection.connection.driver_connection.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()
    finally:
        cursor.close()


def driver_stream(connection: sa.Connection, statement: sa.ClauseElement,
                  chunk: int = 10_000) -> Iterator[tuple]:
    """Every row of a statement straight from the driver, ``chunk`` at a time, on the
    connection's transaction: a server-side cursor on PostgreSQL, SQLite's own stepping
    elsewhere, so a million rows are never all in memory. For whole-table passes
    (``trialnotary check``), where building SQLAlchemy rows would cost as much as the
    database's own work."""
    sql = driver_sql(statement, type(connection.dialect))
    driver = connection.connection.driver_connection
    server_side = connection.dialect.name == "postgresql"
    cursor = driver.cursor(name="trialnotary_stream") if server_side else driver.cursor()
    try:
        cursor.execute(sql, {})
        while rows := cursor.fetchmany(chunk):
            yield from rows
    finally:
        cursor.close()
