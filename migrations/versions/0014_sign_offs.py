"""sign-offs: a registration may be a sign-off of another

A sign-off's ``signOff`` (docs/receipt.md, "Sign-offs"), stored as its RFC 8785 JSON, and the
id of the registration it signs, indexed to list a registration's sign-offs. Two nullable
columns and an index: plain ``ADD COLUMN`` and ``CREATE INDEX`` on SQLite and PostgreSQL
alike; no stored registration is copied or changed.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('submission', sa.Column('sign_off', sa.Text(), nullable=True))
    op.add_column('submission', sa.Column(
        'signs', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True))
    op.create_index(op.f('ix_submission_signs'), 'submission', ['signs'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_submission_signs'), table_name='submission')
    op.drop_column('submission', 'signs')
    op.drop_column('submission', 'sign_off')
