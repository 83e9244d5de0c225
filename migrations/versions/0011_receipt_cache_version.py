"""a batch's anchors version: the key of the receipt cache

``batch.anchors_version`` is raised whenever what the batch's receipts say of their anchors
may have changed (a roll-up's state, evidence taken late, a renewal confirmed), so that a
process may keep the anchors' part of its receipts and know when it is stale.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('batch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('anchors_version', sa.Integer(), nullable=False,
                                      server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('batch', schema=None) as batch_op:
        batch_op.drop_column('anchors_version')
