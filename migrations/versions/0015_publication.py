"""publication: a trial's timeline published at /t/<trial>

One row per published trial: the kinds published, whether site codes are shown and whether
the published receipts are offered (docs/api.md, "Timeline"). A new table: no stored row is
copied or changed.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('publication',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trial', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('kinds', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('show_sites', sa.Boolean(), nullable=False),
    sa.Column('offer_receipts', sa.Boolean(), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['published_by'], ['app_user.id'], name=op.f('fk_publication_published_by_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_publication')),
    sa.UniqueConstraint('trial', name=op.f('uq_publication_trial'))
    )


def downgrade() -> None:
    op.drop_table('publication')
