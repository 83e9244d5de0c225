"""anchor evidence

Each confirmed anchor keeps the chain evidence its receipts carry (docs/receipt.md,
``evidence``): the signed transaction, its receipt, their Merkle-Patricia proofs and the
block header, as the receipt's JSON. Kept once per anchor (so once per batch), never per
registration; cleared when a reorg withdraws the confirmation and taken again from the new
block. Anchors confirmed before this revision have none: their receipts verify as before.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('anchor', sa.Column('evidence', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('anchor', schema=None) as batch_op:
        batch_op.drop_column('evidence')
