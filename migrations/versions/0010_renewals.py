"""renewals: retired anchors and the trees that renew them

``chain_status.retired_at`` marks an anchor that ``anchor retire`` stopped. ``renewal``
holds a retired EVM anchor's renewal tree (over the evidence digests of its confirmed
transactions), ``renewal_leaf`` each transaction's leaf index and path in it, and
``renewal_rollup`` the roll-ups (of no batch) by which the remaining anchors attest its
root (docs/receipt.md, "Renewal").

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('renewal',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('anchor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('root', sa.LargeBinary(length=32), nullable=False),
    sa.Column('leaf_count', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_renewal')),
    sa.UniqueConstraint('anchor', name=op.f('uq_renewal_anchor'))
    )
    op.create_table('renewal_rollup',
    sa.Column('rollup_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('renewal_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['renewal_id'], ['renewal.id'], name=op.f('fk_renewal_rollup_renewal_id_renewal')),
    sa.ForeignKeyConstraint(['rollup_id'], ['rollup.id'], name=op.f('fk_renewal_rollup_rollup_id_rollup')),
    sa.PrimaryKeyConstraint('rollup_id', name=op.f('pk_renewal_rollup'))
    )
    with op.batch_alter_table('renewal_rollup', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_renewal_rollup_renewal_id'), ['renewal_id'], unique=False)

    op.create_table('renewal_leaf',
    sa.Column('anchor_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('renewal_id', sa.Integer(), nullable=False),
    sa.Column('leaf_index', sa.Integer(), nullable=False),
    sa.Column('proof', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['anchor_id'], ['anchor.id'], name=op.f('fk_renewal_leaf_anchor_id_anchor')),
    sa.ForeignKeyConstraint(['renewal_id'], ['renewal.id'], name=op.f('fk_renewal_leaf_renewal_id_renewal')),
    sa.PrimaryKeyConstraint('anchor_id', name=op.f('pk_renewal_leaf'))
    )
    with op.batch_alter_table('renewal_leaf', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_renewal_leaf_renewal_id'), ['renewal_id'], unique=False)

    with op.batch_alter_table('chain_status', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('chain_status', schema=None) as batch_op:
        batch_op.drop_column('retired_at')

    with op.batch_alter_table('renewal_leaf', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_renewal_leaf_renewal_id'))

    op.drop_table('renewal_leaf')
    with op.batch_alter_table('renewal_rollup', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_renewal_rollup_renewal_id'))

    op.drop_table('renewal_rollup')
    op.drop_table('renewal')
