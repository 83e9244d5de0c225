"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-23 19:39:15.689167
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('batch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('root', sa.LargeBinary(length=32), nullable=False),
    sa.Column('leaf_count', sa.Integer(), nullable=False),
    sa.Column('sealed_at', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_batch'))
    )
    with op.batch_alter_table('batch', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_batch_state'), ['state'], unique=False)

    op.create_table('site',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_site')),
    sa.UniqueConstraint('code', name=op.f('uq_site_code'))
    )
    op.create_table('trial',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('registry_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('is_protocol_id', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trial')),
    sa.UniqueConstraint('registry_id', name=op.f('uq_trial_registry_id'))
    )
    op.create_table('anchor',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('chain_id', sa.Integer(), nullable=False),
    sa.Column('sender', sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
    sa.Column('nonce', sa.BigInteger(), nullable=False),
    sa.Column('tx_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.Column('gas', sa.BigInteger(), nullable=False),
    sa.Column('max_fee_per_gas', sa.Numeric(precision=40, scale=0), nullable=False),
    sa.Column('max_priority_fee_per_gas', sa.Numeric(precision=40, scale=0), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('block_number', sa.BigInteger(), nullable=True),
    sa.Column('block_hash', sqlmodel.sql.sqltypes.AutoString(length=66), nullable=True),
    sa.Column('block_time', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['batch_id'], ['batch.id'], name=op.f('fk_anchor_batch_id_batch')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_anchor')),
    sa.UniqueConstraint('tx_hash', name=op.f('uq_anchor_tx_hash'))
    )
    with op.batch_alter_table('anchor', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_anchor_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_anchor_state'), ['state'], unique=False)

    op.create_table('enrolment',
    sa.Column('trial_id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_enrolment_site_id_site')),
    sa.ForeignKeyConstraint(['trial_id'], ['trial.id'], name=op.f('fk_enrolment_trial_id_trial')),
    sa.PrimaryKeyConstraint('trial_id', 'site_id', name=op.f('pk_enrolment'))
    )
    op.create_table('site_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('prefix', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_site_token_site_id_site')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_site_token')),
    sa.UniqueConstraint('digest', name=op.f('uq_site_token_digest'))
    )
    with op.batch_alter_table('site_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_site_token_site_id'), ['site_id'], unique=False)

    op.create_table('tree_page',
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('page', sa.Integer(), nullable=False),
    sa.Column('nodes', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['batch.id'], name=op.f('fk_tree_page_batch_id_batch')),
    sa.PrimaryKeyConstraint('batch_id', 'level', 'page', name=op.f('pk_tree_page'))
    )
    op.create_table('idempotency_key',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('request_digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('response_body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['token_id'], ['site_token.id'], name=op.f('fk_idempotency_key_token_id_site_token')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_key')),
    sa.UniqueConstraint('token_id', 'key', name='uq_idempotency_key_token_key')
    )
    with op.batch_alter_table('idempotency_key', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotency_key_created_at'), ['created_at'], unique=False)

    op.create_table('submission',
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('trial', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('site', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('dataset', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=True),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('supersedes', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('submitted_at', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('leaf', sa.LargeBinary(length=32), nullable=False),
    sa.Column('token_id', sa.Integer(), nullable=True),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('leaf_index', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['batch_id'], ['batch.id'], name=op.f('fk_submission_batch_id_batch')),
    sa.ForeignKeyConstraint(['token_id'], ['site_token.id'], name=op.f('fk_submission_token_id_site_token')),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_submission')),
    sa.UniqueConstraint('id', name=op.f('uq_submission_id'))
    )
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.create_index('ix_submission_batch_leaf', ['batch_id', 'leaf_index'], unique=True)
        batch_op.create_index('ix_submission_pending', ['seq'], unique=False, sqlite_where=sa.text('batch_id IS NULL'), postgresql_where=sa.text('batch_id IS NULL'))
        batch_op.create_index(batch_op.f('ix_submission_sha256'), ['sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_submission_trial'), ['trial'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_submission_trial'))
        batch_op.drop_index(batch_op.f('ix_submission_sha256'))
        batch_op.drop_index('ix_submission_pending', sqlite_where=sa.text('batch_id IS NULL'), postgresql_where=sa.text('batch_id IS NULL'))
        batch_op.drop_index('ix_submission_batch_leaf')

    op.drop_table('submission')
    with op.batch_alter_table('idempotency_key', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_key_created_at'))

    op.drop_table('idempotency_key')
    op.drop_table('tree_page')
    with op.batch_alter_table('site_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_site_token_site_id'))

    op.drop_table('site_token')
    op.drop_table('enrolment')
    with op.batch_alter_table('anchor', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_anchor_state'))
        batch_op.drop_index(batch_op.f('ix_anchor_batch_id'))

    op.drop_table('anchor')
    op.drop_table('trial')
    op.drop_table('site')
    with op.batch_alter_table('batch', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_batch_state'))

    op.drop_table('batch')
