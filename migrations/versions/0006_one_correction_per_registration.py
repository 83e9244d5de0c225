"""one correction per registration

A registration is superseded at most once: a unique index on ``submission.supersedes``
(registrations that correct nothing hold NULL, which a unique index lets repeat).

Registrations are never changed or deleted (each is bound into an anchored receipt), so a
database that already holds two corrections of one registration keeps them: the earliest
(lowest ``seq``) stands as the correction, and the later ones are left out of the index by
their ``seq``, named in a warning. Every correction stored from now on is checked against
all of them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

INDEX = 'uq_submission_supersedes'
log = logging.getLogger("alembic.runtime.migration")


def _later_duplicates() -> list[tuple[int, str, str]]:
    """(seq, id, supersedes) of each correction of a registration corrected before."""
    return [tuple(row) for row in op.get_bind().execute(sa.text(
        "SELECT s.seq, s.id, s.supersedes FROM submission s WHERE s.supersedes IS NOT NULL "
        "AND EXISTS (SELECT 1 FROM submission e WHERE e.supersedes = s.supersedes "
        "AND e.seq < s.seq) ORDER BY s.seq"))]


def upgrade() -> None:
    duplicates = _later_duplicates()
    where = None
    if duplicates:
        for seq, submission_id, target in duplicates:
            log.warning("registration %s (seq %s) corrects %s, which an earlier registration "
                        "already corrects: it is kept, and left out of the one-correction "
                        "index", submission_id, seq, target)
        where = sa.text(f"seq NOT IN ({', '.join(str(int(seq)) for seq, _, _ in duplicates)})")
    op.create_index(INDEX, 'submission', ['supersedes'], unique=True,
                    sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    op.drop_index(INDEX, table_name='submission')
