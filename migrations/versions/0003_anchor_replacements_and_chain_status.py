"""anchor replacements and chain status

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('chain_status',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reachable', sa.Boolean(), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), nullable=False),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('alert', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chain_status'))
    )
    with op.batch_alter_table('anchor', schema=None) as batch_op:
        batch_op.add_column(sa.Column('replaces_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_anchor_replaces_id_anchor'), 'anchor', ['replaces_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('anchor', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_anchor_replaces_id_anchor'), type_='foreignkey')
        batch_op.drop_column('note')
        batch_op.drop_column('replaces_id')

    op.drop_table('chain_status')
