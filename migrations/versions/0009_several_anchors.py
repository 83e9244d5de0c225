"""several anchors: roll-ups, RFC 3161 stamps, one status per anchor

Each configured anchor now attests roll-ups (``rollup``, ``rollup_batch``): for an anchor of
each batch, a roll-up of that batch alone. An anchoring transaction belongs to a roll-up and
names its anchor (``anchor.name``, ``anchor.rollup_id`` instead of ``anchor.batch_id``); an
RFC 3161 token is a ``stamp`` of a roll-up. ``chain_status`` holds one row per anchor, with
the first batch it anchors.

Existing anchors get one roll-up per batch and chain, named as the notary's identity names
that address (else after the chain). The status rows are dropped: each anchor records its
own at its next round.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

# The chain names of version 0008's presets, by chain id (an anchor's default name).
_CHAIN_NAMES = {31337: "local", 11155111: "sepolia", 560048: "hoodi", 1: "mainnet"}


def upgrade() -> None:
    op.create_table('rollup',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('anchor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('root', sa.LargeBinary(length=32), nullable=False),
    sa.Column('leaf_count', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rollup'))
    )
    with op.batch_alter_table('rollup', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rollup_anchor'), ['anchor'], unique=False)
        batch_op.create_index(batch_op.f('ix_rollup_state'), ['state'], unique=False)
    op.create_table('rollup_batch',
    sa.Column('anchor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('rollup_id', sa.Integer(), nullable=False),
    sa.Column('leaf_index', sa.Integer(), nullable=False),
    sa.Column('proof', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['batch.id'], name=op.f('fk_rollup_batch_batch_id_batch')),
    sa.ForeignKeyConstraint(['rollup_id'], ['rollup.id'], name=op.f('fk_rollup_batch_rollup_id_rollup')),
    sa.PrimaryKeyConstraint('anchor', 'batch_id', name=op.f('pk_rollup_batch'))
    )
    with op.batch_alter_table('rollup_batch', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rollup_batch_rollup_id'), ['rollup_id'], unique=False)
    op.create_table('stamp',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('rollup_id', sa.Integer(), nullable=False),
    sa.Column('token', sa.LargeBinary(), nullable=False),
    sa.Column('gen_time', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('tsa', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['rollup_id'], ['rollup.id'], name=op.f('fk_stamp_rollup_id_rollup')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stamp')),
    sa.UniqueConstraint('rollup_id', name=op.f('uq_stamp_rollup_id'))
    )
    with op.batch_alter_table('stamp', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stamp_name'), ['name'], unique=False)

    with op.batch_alter_table('anchor', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('rollup_id', sa.Integer(), nullable=True))
    _one_rollup_per_anchored_batch()
    with op.batch_alter_table('anchor', schema=None) as batch_op:
        batch_op.alter_column('name', existing_type=sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False)
        batch_op.alter_column('rollup_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_index(batch_op.f('ix_anchor_batch_id'))
        batch_op.drop_constraint(batch_op.f('fk_anchor_batch_id_batch'), type_='foreignkey')
        batch_op.drop_column('batch_id')
        batch_op.create_index(batch_op.f('ix_anchor_name'), ['name'], unique=False)
        batch_op.create_index(batch_op.f('ix_anchor_rollup_id'), ['rollup_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_anchor_rollup_id_rollup'), 'rollup', ['rollup_id'], ['id'])

    op.execute(sa.text("DELETE FROM chain_status"))
    with op.batch_alter_table('chain_status', schema=None) as batch_op:
        batch_op.add_column(sa.Column('anchor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False))
        batch_op.add_column(sa.Column('first_batch_id', sa.Integer(), nullable=False))
        batch_op.create_unique_constraint(batch_op.f('uq_chain_status_anchor'), ['anchor'])


def _one_rollup_per_anchored_batch() -> None:
    conn = op.get_bind()
    names = {(chain_id, address.lower()): name for name, chain_id, address in conn.execute(
        sa.text("SELECT anchor, chain_id, address FROM notary_address"))}
    groups: dict[tuple[int, str], list[int]] = {}
    states: dict[tuple[int, str], set[str]] = {}
    for anchor_id, batch_id, chain_id, sender, state in conn.execute(sa.text(
            "SELECT id, batch_id, chain_id, sender, state FROM anchor ORDER BY id")):
        name = names.get((chain_id, sender.lower())) or _CHAIN_NAMES.get(chain_id,
                                                                          f"chain-{chain_id}")
        groups.setdefault((batch_id, name), []).append(anchor_id)
        states.setdefault((batch_id, name), set()).add(state)
    for (batch_id, name), anchor_ids in groups.items():
        root, sealed_at = conn.execute(sa.text(
            "SELECT root, sealed_at FROM batch WHERE id = :id"), {"id": batch_id}).one()
        state = _rollup_state(states[(batch_id, name)])
        conn.execute(sa.text("INSERT INTO rollup (anchor, root, leaf_count, created_at, state) "
                             "VALUES (:anchor, :root, 1, :at, :state)"),
                     {"anchor": name, "root": root, "at": sealed_at, "state": state})
        rollup_id = conn.execute(sa.text("SELECT max(id) FROM rollup")).scalar()
        conn.execute(sa.text("INSERT INTO rollup_batch (anchor, batch_id, rollup_id, "
                             "leaf_index, proof) VALUES (:anchor, :batch, :rollup, 0, '[]')"),
                     {"anchor": name, "batch": batch_id, "rollup": rollup_id})
        conn.execute(sa.text("UPDATE anchor SET name = :name, rollup_id = :rollup "
                             "WHERE id IN (" + ",".join(str(i) for i in anchor_ids) + ")"),
                     {"name": name, "rollup": rollup_id})


def _rollup_state(anchor_states: set[str]) -> str:
    """A roll-up's state from its own transactions (a batch anchored under two names, after
    a move of chain, has one roll-up per name, each as far as its own transactions went)."""
    if "confirmed" in anchor_states:
        return "confirmed"
    return "sent" if "sent" in anchor_states else "sealed"


def downgrade() -> None:
    """Back to one anchor per batch: possible only while every roll-up holds one batch."""
    conn = op.get_bind()
    if conn.execute(sa.text("SELECT count(*) FROM rollup WHERE leaf_count > 1")).scalar():
        raise RuntimeError("0009 cannot be undone: anchors of several batches (roll-ups) "
                           "have no single batch to go back to")
    with op.batch_alter_table('chain_status', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_chain_status_anchor'), type_='unique')
        batch_op.drop_column('first_batch_id')
        batch_op.drop_column('anchor')
    with op.batch_alter_table('anchor', schema=None) as batch_op:
        batch_op.add_column(sa.Column('batch_id', sa.Integer(), nullable=True))
    conn.execute(sa.text("UPDATE anchor SET batch_id = (SELECT batch_id FROM rollup_batch "
                         "WHERE rollup_batch.rollup_id = anchor.rollup_id)"))
    with op.batch_alter_table('anchor', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_anchor_rollup_id_rollup'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_anchor_rollup_id'))
        batch_op.drop_index(batch_op.f('ix_anchor_name'))
        batch_op.drop_column('rollup_id')
        batch_op.drop_column('name')
        batch_op.alter_column('batch_id', existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(batch_op.f('fk_anchor_batch_id_batch'), 'batch', ['batch_id'], ['id'])
        batch_op.create_index(batch_op.f('ix_anchor_batch_id'), ['batch_id'], unique=False)
    op.drop_table('stamp')
    op.drop_table('rollup_batch')
    op.drop_table('rollup')
