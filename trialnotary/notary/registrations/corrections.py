"""Corrections: a registration superseded by a later one of the same trial and site.

A registration is superseded at most once (the unique index on ``supersedes``); to correct
it again, one corrects its correction. Registering checks this; the look-ups show who
corrects what.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlmodel import Session

from trialnotary.notary.models import Registration

REGISTRATION = Registration.__table__


def first_corrections(targets=None):
    """A subquery: for each corrected registration (``target``; only those of ``targets``,
    a list or an expanding bind parameter, when given), the ``seq`` of the registration that
    supersedes it. One per target since the unique index on ``supersedes``; a database from
    before it may hold several, and the earliest stands."""
    query = (sa.select(REGISTRATION.c.supersedes.label("target"),
                       sa.func.min(REGISTRATION.c.seq).label("seq"))
             .where(REGISTRATION.c.supersedes.is_not(None)))
    if targets is not None:
        query = query.where(REGISTRATION.c.supersedes.in_(targets))
    return query.group_by(REGISTRATION.c.supersedes).subquery("first_correction")


# Built once and run as a Core statement: a status look-up asks it every time.
_FIRST = first_corrections(sa.bindparam("targets", expanding=True))
_CORRECTIONS_OF = (sa.select(_FIRST.c.target, REGISTRATION.c.id, REGISTRATION.c.submitted_at,
                             REGISTRATION.c.reason)
                   .join_from(_FIRST, REGISTRATION, REGISTRATION.c.seq == _FIRST.c.seq))


def corrections_by_target(session: Session, targets: Iterable[str]) -> dict[str, dict]:
    """``{target id: {"id", "submittedAt", "reason"}}``: the correction superseding each of
    the given registrations that has one."""
    targets = list(targets)
    if not targets:
        return {}
    rows = session.connection().execute(_CORRECTIONS_OF, {"targets": targets})
    return {target: {"id": registration_id, "submittedAt": submitted_at, "reason": reason}
            for target, registration_id, submitted_at, reason in rows}


def already_corrected(target: str, correction: dict) -> str:
    """Why a second correction of ``target`` is refused, naming the one that stands."""
    return (f"registration {target} is already superseded by {correction['id']} "
            f"(registered {correction['submittedAt']}): a registration is superseded at most "
            f"once; to correct it again, correct {correction['id']}")
