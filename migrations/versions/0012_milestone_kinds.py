"""milestone kinds: a registration's kind holds up to 32 characters

The milestone kinds (``database-lock``, ``unblinding``, ``randomisation-list``,
``analysis-results``, ``csr``; docs/receipt.md) are longer than the 16 characters the
column allowed. PostgreSQL widens the column in place. SQLite never enforces a declared
length, and the declared type's affinity (text) stays: only the table's declared schema
changes, by SQLite's documented procedure for changes that leave the stored rows as they
are (https://sqlite.org/lang_altertable.html, "Making Other Kinds Of Table Schema Changes").
Rebuilding the table instead would copy every registration and fight the rows that
reference them.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

import sqlmodel
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def _kind_length(old: int, new: int) -> None:
    if op.get_bind().dialect.name == "sqlite":
        _declared_length_on_sqlite(old, new)
        return
    op.alter_column('submission', 'kind',
                    existing_type=sqlmodel.sql.sqltypes.AutoString(length=old),
                    type_=sqlmodel.sql.sqltypes.AutoString(length=new), existing_nullable=False)


def _declared_length_on_sqlite(old: int, new: int) -> None:
    conn = op.get_bind()
    where = "WHERE type = 'table' AND name = 'submission'"
    schema = conn.exec_driver_sql(f"SELECT sql FROM sqlite_master {where}").scalar()
    declared = f"kind VARCHAR({old}) NOT NULL"
    if declared not in schema:
        raise RuntimeError(f"submission.kind is not declared as {declared!r}")
    version = conn.exec_driver_sql("PRAGMA schema_version").scalar()
    conn.exec_driver_sql("PRAGMA writable_schema = ON")
    conn.exec_driver_sql(f"UPDATE sqlite_master SET sql = ? {where}",
                         (schema.replace(declared, f"kind VARCHAR({new}) NOT NULL", 1),))
    conn.exec_driver_sql(f"PRAGMA schema_version = {version + 1}")
    conn.exec_driver_sql("PRAGMA writable_schema = OFF")


def upgrade() -> None:
    _kind_length(16, 32)


def downgrade() -> None:
    _kind_length(32, 16)
