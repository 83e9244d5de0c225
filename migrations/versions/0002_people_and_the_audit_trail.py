"""people and the audit trail

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


APPEND_ONLY = "audit entries are append-only"


def _append_only_triggers() -> None:
    """The audit trail refuses updates and deletes, whoever asks (the hash chain and its
    anchored heads make even a database owner's edit evident)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION audit_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$""")
        op.execute("CREATE TRIGGER audit_entry_append_only BEFORE UPDATE OR DELETE ON "
                   "audit_entry FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only()")
        op.execute("CREATE TRIGGER audit_entry_no_truncate BEFORE TRUNCATE ON audit_entry "
                   "FOR EACH STATEMENT EXECUTE FUNCTION audit_entry_append_only()")
        return
    for event in ("UPDATE", "DELETE"):
        op.execute(f"CREATE TRIGGER audit_entry_no_{event.lower()} BEFORE {event} ON "
                   f"audit_entry BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END")


def _drop_append_only_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_entry_no_truncate ON audit_entry")
        op.execute("DROP TRIGGER audit_entry_append_only ON audit_entry")
        op.execute("DROP FUNCTION audit_entry_append_only()")
        return
    for event in ("update", "delete"):
        op.execute(f"DROP TRIGGER audit_entry_no_{event}")


def upgrade() -> None:
    op.create_table('app_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('must_change_password', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_app_user')),
    sa.UniqueConstraint('email', name=op.f('uq_app_user_email'))
    )
    op.create_table('audit_entry',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('entity', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('entity_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('old', sa.Text(), nullable=True),
    sa.Column('new', sa.Text(), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('prev', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_audit_entry')),
    sa.UniqueConstraint('hash', name=op.f('uq_audit_entry_hash'))
    )
    _append_only_triggers()
    op.create_table('login_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ip', sqlmodel.sql.sqltypes.AutoString(length=45), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_login_attempt_user_id_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_attempt'))
    )
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.create_index('ix_login_attempt_email_at', ['email', 'at'], unique=False)

    op.create_table('user_grant',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('trial_id', sa.Integer(), nullable=True),
    sa.Column('site_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('(trial_id IS NULL) <> (site_id IS NULL)', name=op.f('ck_user_grant_one_scope')),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_user_grant_site_id_site')),
    sa.ForeignKeyConstraint(['trial_id'], ['trial.id'], name=op.f('fk_user_grant_trial_id_trial')),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_user_grant_user_id_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_grant')),
    sa.UniqueConstraint('user_id', 'trial_id', 'site_id', name='uq_user_grant_scope')
    )
    with op.batch_alter_table('user_grant', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_grant_user_id'), ['user_id'], unique=False)

    op.create_table('user_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_user_session_user_id_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_session')),
    sa.UniqueConstraint('digest', name=op.f('uq_user_session_digest'))
    )
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_session_user_id'), ['user_id'], unique=False)

    op.create_table('user_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('prefix', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_user_token_user_id_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_token')),
    sa.UniqueConstraint('digest', name=op.f('uq_user_token_digest'))
    )
    with op.batch_alter_table('user_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_token_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('batch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('audit_seq', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('audit_head', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))

    with op.batch_alter_table('site_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
        batch_op.add_column(sa.Column('created_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_site_token_created_by_id_app_user'), 'app_user', ['created_by_id'], ['id'])

    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.add_column(sa.Column('user_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_submission_user_id_app_user'), 'app_user', ['user_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_submission_user_id_app_user'), type_='foreignkey')
        batch_op.drop_column('reason')
        batch_op.drop_column('user_id')

    with op.batch_alter_table('site_token', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_site_token_created_by_id_app_user'), type_='foreignkey')
        batch_op.drop_column('created_by_id')
        batch_op.drop_column('name')

    with op.batch_alter_table('batch', schema=None) as batch_op:
        batch_op.drop_column('audit_head')
        batch_op.drop_column('audit_seq')

    with op.batch_alter_table('user_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_token_user_id'))

    op.drop_table('user_token')
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_session_user_id'))

    op.drop_table('user_session')
    with op.batch_alter_table('user_grant', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_grant_user_id'))

    op.drop_table('user_grant')
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.drop_index('ix_login_attempt_email_at')

    op.drop_table('login_attempt')
    _drop_append_only_triggers()
    op.drop_table('audit_entry')
    op.drop_table('app_user')
