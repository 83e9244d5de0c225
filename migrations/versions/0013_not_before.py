"""not before: a registration may name a block it was made after

The record's optional ``notBefore`` (docs/receipt.md), stored as its RFC 8785 JSON in a new
nullable column. Adding a nullable column is a plain ``ADD COLUMN`` on SQLite and
PostgreSQL alike: no stored registration is copied or changed.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('submission', sa.Column(
        'not_before', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))


def downgrade() -> None:
    op.drop_column('submission', 'not_before')
