"""What the admin pages list: how many trials, sites and people there are, trials with how
many sites they enrol, sites with the trials they are enrolled in, people, and the ids and
codes the pages' forms offer. Read only."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, select

from trialnotary.people.models import Enrolment, Site, Trial, User


def counts(session: Session) -> dict[str, int]:
    """How many trials, sites and users there are."""
    return {name: session.scalar(select(sa.func.count()).select_from(table))
            for name, table in (("trials", Trial), ("sites", Site), ("users", User))}


def trials_with_site_counts(session: Session) -> list:
    """``(trial, number of enrolled sites)`` for every trial, by registry id."""
    return session.execute(
        select(Trial, sa.func.count(Enrolment.site_id))
        .outerjoin(Enrolment, Enrolment.trial_id == Trial.id)
        .group_by(Trial.id).order_by(Trial.registry_id)).all()


def sites_with_trials(session: Session) -> dict[tuple, list[str]]:
    """``(code, name)`` of every site → the registry ids of its trials, by code."""
    rows = session.execute(
        select(Site.code, Site.name, Trial.registry_id)
        .outerjoin(Enrolment, Enrolment.site_id == Site.id)
        .outerjoin(Trial, Trial.id == Enrolment.trial_id)
        .order_by(Site.code, Trial.registry_id)).all()
    enrolled: dict[tuple, list[str]] = {}
    for code, name, trial in rows:
        enrolled.setdefault((code, name), [])
        if trial:
            enrolled[(code, name)].append(trial)
    return enrolled


def trial_ids(session: Session) -> list[str]:
    return list(session.scalars(select(Trial.registry_id).order_by(Trial.registry_id)).all())


def site_codes(session: Session) -> list[str]:
    return list(session.scalars(select(Site.code).order_by(Site.code)).all())


def users(session: Session) -> list[User]:
    """Everyone, by e-mail address."""
    return list(session.exec(select(User).order_by(User.email)).all())


def user(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def emails_by_id(session: Session) -> dict[int, str]:
    """Every user's e-mail address by their id (who owns a token)."""
    return dict(session.execute(select(User.id, User.email)).all())
