"""secrets shown once after a redirect

A new token or a temporary password is shown on the page its form redirects to, once. Until
then only the secret XOR a one-time pad waits here (the pad is in the browser's session).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('shown_once',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('sealed', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'],
                            name=op.f('fk_shown_once_user_id_app_user')),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_shown_once'))
    )
    with op.batch_alter_table('shown_once', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shown_once_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('shown_once', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_shown_once_user_id'))
    op.drop_table('shown_once')
