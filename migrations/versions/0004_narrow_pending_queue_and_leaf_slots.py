"""narrow pending queue and leaf slots

Sealing used to write each registration's row (batch and leaf index); a million wide rows
rewritten took most of a seal. Registrations now stay as stored: the queue of pending
ones and the sealed ones' places live in two narrow tables, filled here from the old
columns. A trigger puts every new registration in the queue.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def _queue_trigger() -> None:
    """Every stored registration enters the pending queue, whoever stores it. PostgreSQL
    does it once per statement, from the statement's new rows (a bulk ``COPY`` of 10,000
    fires it once, not 10,000 times)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION submission_enters_queue() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN INSERT INTO pending (seq) SELECT seq FROM new_submissions; RETURN NULL; END
            $$""")
        op.execute("CREATE TRIGGER submission_enters_queue AFTER INSERT ON submission "
                   "REFERENCING NEW TABLE AS new_submissions "
                   "FOR EACH STATEMENT EXECUTE FUNCTION submission_enters_queue()")
        return
    op.execute("CREATE TRIGGER submission_enters_queue AFTER INSERT ON submission "
               "BEGIN INSERT INTO pending (seq) VALUES (NEW.seq); END")


def _drop_queue_trigger() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER submission_enters_queue ON submission")
        op.execute("DROP FUNCTION submission_enters_queue()")
        return
    op.execute("DROP TRIGGER submission_enters_queue")


def upgrade() -> None:
    # The old columns' facts go to plain copies first: SQLite rebuilds the submission table
    # to drop columns, which it cannot do under rows that reference it.
    op.execute("CREATE TABLE slot_copy AS SELECT seq, batch_id, leaf_index FROM submission "
               "WHERE batch_id IS NOT NULL")
    op.execute("CREATE TABLE pending_copy AS SELECT seq FROM submission WHERE batch_id IS NULL")
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_submission_batch_leaf'))
        batch_op.drop_index(batch_op.f('ix_submission_pending'),
                            sqlite_where=sa.text('batch_id IS NULL'))
        batch_op.drop_constraint(batch_op.f('fk_submission_batch_id_batch'), type_='foreignkey')
        batch_op.drop_column('leaf_index')
        batch_op.drop_column('batch_id')
    op.create_table('leaf_slot',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('leaf_index', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['batch.id'], name=op.f('fk_leaf_slot_batch_id_batch')),
    sa.ForeignKeyConstraint(['seq'], ['submission.seq'], name=op.f('fk_leaf_slot_seq_submission')),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_leaf_slot')),
    sa.UniqueConstraint('batch_id', 'leaf_index', name='uq_leaf_slot_batch_leaf')
    )
    op.create_table('pending',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.ForeignKeyConstraint(['seq'], ['submission.seq'], name=op.f('fk_pending_seq_submission')),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_pending'))
    )
    op.execute("INSERT INTO leaf_slot (seq, batch_id, leaf_index) "
               "SELECT seq, batch_id, leaf_index FROM slot_copy")
    op.execute("INSERT INTO pending (seq) SELECT seq FROM pending_copy")
    op.drop_table("slot_copy")
    op.drop_table("pending_copy")
    _queue_trigger()


def downgrade() -> None:
    _drop_queue_trigger()
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.add_column(sa.Column('batch_id', sa.INTEGER(), nullable=True))
        batch_op.add_column(sa.Column('leaf_index', sa.INTEGER(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_submission_batch_id_batch'), 'batch',
                                    ['batch_id'], ['id'])
        batch_op.create_index(batch_op.f('ix_submission_pending'), ['seq'], unique=False,
                              sqlite_where=sa.text('batch_id IS NULL'),
                              postgresql_where=sa.text('batch_id IS NULL'))
        batch_op.create_index(batch_op.f('ix_submission_batch_leaf'),
                              ['batch_id', 'leaf_index'], unique=True)
    op.execute("UPDATE submission SET batch_id = (SELECT batch_id FROM leaf_slot "
               "WHERE leaf_slot.seq = submission.seq), leaf_index = (SELECT leaf_index "
               "FROM leaf_slot WHERE leaf_slot.seq = submission.seq)")
    op.drop_table('pending')
    op.drop_table('leaf_slot')
