"""the notary's identity: its anchoring addresses over time, and each published version

``notary_address`` holds every anchoring address per chain id with the time it was in use
and, if its key leaked, the time from which its anchors must not be trusted;
``notary_identity`` holds each version of ``/.well-known/trialnotary.json`` as served. The
history is seeded from the anchors already sent when the notary first runs (in code, where
the configured anchor's name is known).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('notary_address',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('anchor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('chain_id', sa.BigInteger(), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
    sa.Column('valid_from', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('retired_at', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('until', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('compromised_from', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('key_file', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notary_address')),
    sa.UniqueConstraint('chain_id', 'address', name=op.f('uq_notary_address_chain_id'))
    )
    op.create_table('notary_identity',
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('version', name=op.f('pk_notary_identity'))
    )


def downgrade() -> None:
    op.drop_table('notary_identity')
    op.drop_table('notary_address')
