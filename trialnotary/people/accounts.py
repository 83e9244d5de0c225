"""People: users, their roles and grants, and what a change to them takes away.

Every change is written to the audit trail, attributed to ``actor``. Passwords are in
``passwords``, signing in in ``signin``, browser sessions in ``sessions`` and user tokens in
``user_tokens``; the names of the latter that other packages call are importable from here
too. No Flask here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import sqlalchemy as sa
from sqlmodel import Session, select

from trialnotary.db import utcnow
from trialnotary.people import audit, passwords, sites
from trialnotary.people.access import Principal
from trialnotary.people.errors import InvalidInput
from trialnotary.people.models import Site, Trial, User, UserGrant
from trialnotary.people.passwords import check_password, generated_password
from trialnotary.people.sessions import end_sessions_of
from trialnotary.people.sites import SYSTEM, find_site, find_trial
from trialnotary.people.states import ROLES, Role
from trialnotary.validation import validate_text

_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
# Which scope each role's grants name; an admin needs none.
_GRANTED = {Role.SPONSOR: "trial", Role.COORDINATOR: "site"}


# --- users ---------------------------------------------------------------------------

def normalize_email(value) -> str:
    if not isinstance(value, str) or len(value) > 254 or not _EMAIL.fullmatch(value.strip()):
        raise InvalidInput("email", "must be an e-mail address")
    validate_text(value, "email", 254, required=True)  # no NUL, no character posing as another
    return value.strip().lower()


def find_user(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == email.strip().lower())).first()


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput("role", f"must be one of {', '.join(ROLES)}")
    return role


def _user_view(user: User) -> dict:
    return {"email": user.email, "name": user.name, "role": user.role,
            "disabled": user.disabled_at is not None}


def create_user(session: Session, email: str, role: str, *, name: str | None = None,
                password: str | None = None, actor: str = SYSTEM) -> tuple[User, str | None]:
    """A new user; returns it and, when no password was given, a generated one (shown
    once; the user must change it at first sign-in)."""
    email = normalize_email(email)
    _check_role(role)
    if find_user(session, email) is not None:
        raise InvalidInput("email", f"a user {email} already exists")
    generated = None
    if password is None:
        password = generated = generated_password()
    user = User(email=email, role=role, name=validate_text(name, "name", 200, required=False),
                password_hash=passwords.hashed(check_password(password, email)),
                must_change_password=generated is not None, password_changed_at=utcnow())
    session.add(user)
    session.flush()
    audit.record(session, actor=actor, action="user.create", entity="user",
                 entity_id=user.id, new=_user_view(user))
    return user, generated


def set_password(session: Session, user: User, password: str, *, actor: str,
                 temporary: bool = False) -> None:
    """A new password; ``temporary`` ones (set by an admin) must be changed at sign-in.
    Every session of the user ends."""
    user.password_hash = passwords.hashed(check_password(password, user.email))
    user.must_change_password = temporary
    user.password_changed_at = utcnow()
    session.add(user)
    end_sessions_of(session, user)
    audit.record(session, actor=actor, action="user.password", entity="user",
                 entity_id=user.id, new={"email": user.email, "temporary": temporary})


@dataclass(frozen=True)
class UserChange:
    """What changing a user took away with it: the grants of the old role (``trial X``,
    ``site Y``) and the site tokens they made that the change ended."""

    dropped_grants: list[str]
    ended_tokens: list[sites.CreatedToken]


def update_user(session: Session, user: User, *, role: str | None = None,
                name: str | None = None, disabled: bool | None = None,
                actor: str) -> UserChange:
    """Change a user; returns what the change took away with it.

    A grant belongs to the role it was given for: a coordinator made a sponsor loses their
    sites, so that being made a coordinator again later gives back none of them silently.
    The site tokens the person made and may no longer manage end for good (see
    ``end_lapsed_tokens``).
    """
    old = _user_view(user)
    if role is not None:
        user.role = _check_role(role)
    if name is not None:
        user.name = validate_text(name, "name", 200, required=False)
    if disabled is not None:
        user.disabled_at = (user.disabled_at or utcnow()) if disabled else None
        if disabled:
            end_sessions_of(session, user)
    new = _user_view(user)
    if new == old:
        return UserChange([], [])
    session.add(user)
    audit.record(session, actor=actor, action="user.update", entity="user",
                 entity_id=user.id, old=old, new=new)
    dropped = [] if new["role"] == old["role"] else _drop_grants_of_other_roles(
        session, user, reason=f"the role changed from {old['role']} to {new['role']}",
        actor=actor)
    reason = "its creator was disabled" if new["disabled"] else \
        f"its creator's role is now {user.role}"
    return UserChange(dropped, end_lapsed_tokens(session, user, actor=actor, reason=reason))


def _drop_grants_of_other_roles(session: Session, user: User, *, reason: str,
                                actor: str) -> list[str]:
    """Remove the grants the user's role does not take (each one audited)."""
    rows = session.execute(
        select(UserGrant, Trial, Site).select_from(UserGrant)
        .outerjoin(Trial, Trial.id == UserGrant.trial_id)
        .outerjoin(Site, Site.id == UserGrant.site_id)
        .where(UserGrant.user_id == user.id).order_by(UserGrant.id)).all()
    keeps = _GRANTED.get(user.role)
    dropped = []
    for row, trial, site in rows:
        scope = _grant_scope(trial, site)
        if keeps in scope:
            continue
        session.delete(row)
        audit.record(session, actor=actor, action="user.revoke-grant", entity="user",
                     entity_id=user.id, old={"email": user.email, **scope}, reason=reason)
        dropped.append(" ".join(next(iter(scope.items()))))
    session.flush()
    return dropped


# --- grants --------------------------------------------------------------------------

def grant(session: Session, user: User, *, trial: str | None = None, site: str | None = None,
          actor: str = SYSTEM) -> None:
    """Give a sponsor a trial, or a coordinator a site."""
    trial_row, site_row = _grant_target(session, user, trial=trial, site=site)
    if session.exec(_grant_query(select(UserGrant), user, trial_row, site_row)).first():
        return
    session.add(UserGrant(user_id=user.id, trial_id=trial_row.id if trial_row else None,
                          site_id=site_row.id if site_row else None))
    session.flush()
    audit.record(session, actor=actor, action="user.grant", entity="user", entity_id=user.id,
                 new={"email": user.email, **_grant_scope(trial_row, site_row)})


def revoke_grant(session: Session, user: User, *, trial: str | None = None,
                 site: str | None = None, actor: str) -> list[sites.CreatedToken]:
    """Take a grant away; returns the site tokens of the user's that it ended."""
    trial_row, site_row = _grant_target(session, user, trial=trial, site=site)
    if not session.execute(_grant_query(sa.delete(UserGrant), user, trial_row,
                                        site_row)).rowcount:
        return []
    audit.record(session, actor=actor, action="user.revoke-grant", entity="user",
                 entity_id=user.id, old={"email": user.email,
                                         **_grant_scope(trial_row, site_row)})
    scope = f"trial {trial_row.registry_id}" if trial_row else f"site {site_row.code}"
    return end_lapsed_tokens(session, user, actor=actor,
                             reason=f"its creator's grant of {scope} was revoked")


def end_lapsed_tokens(session: Session, user: User, *, actor: str,
                      reason: str) -> list[sites.CreatedToken]:
    """End, for good, the live site tokens ``user`` made that they may no longer manage
    as they are now: a later grant or enabling does not bring them back."""
    now = principal_of(session, user) if user.disabled_at is None else None
    return sites.end_tokens(session, sites.tokens_lapsing(
        sites.live_tokens_created_by(session, user.id), now), actor=actor, reason=reason)


@dataclass(frozen=True)
class TokenEndings:
    """Which of a person's live site tokens each change on their admin page would end."""

    disable: list[sites.CreatedToken]
    role: dict[str, list[sites.CreatedToken]]          # by the new role
    revoke_site: dict[str, list[sites.CreatedToken]]   # by the site whose grant goes


def token_endings(session: Session, user: User) -> TokenEndings:
    tokens = sites.live_tokens_created_by(session, user.id)
    now = principal_of(session, user)
    return TokenEndings(
        disable=sites.tokens_lapsing(tokens, None),
        role={role: sites.tokens_lapsing(tokens, replace(now, role=role)) for role in ROLES
              if role != user.role},
        revoke_site={site: sites.tokens_lapsing(tokens, replace(now, sites=now.sites - {site}))
                     for site in now.sites})


def _grant_query(statement, user: User, trial: Trial | None, site: Site | None):
    # ``== None`` is SQL's IS NULL here.
    return statement.where(UserGrant.user_id == user.id,
                           UserGrant.trial_id == (trial.id if trial else None),
                           UserGrant.site_id == (site.id if site else None))


def _grant_target(session: Session, user: User, *, trial: str | None, site: str | None):
    """The trial or site row a grant to ``user`` names, as ``(trial, site)``: a sponsor is
    granted trials, a coordinator sites."""
    kind = _GRANTED.get(user.role)
    if kind is None:
        raise InvalidInput("role", "an admin needs no grants")
    wanted, other = (trial, site) if kind == "trial" else (site, trial)
    if not wanted or other:
        raise InvalidInput(kind, f"a {user.role} is granted {kind}s")
    found = (find_trial if kind == "trial" else find_site)(session, wanted)
    if found is None:
        raise InvalidInput(kind, f"unknown {kind} {wanted}")
    return (found, None) if kind == "trial" else (None, found)


def _grant_scope(trial: Trial | None, site: Site | None) -> dict:
    return {"trial": trial.registry_id} if trial else {"site": site.code}


def grants_of(session: Session, user_id: int) -> tuple[frozenset[str], frozenset[str]]:
    """A user's granted trials and sites."""
    rows = session.execute(
        select(Trial.registry_id, Site.code).select_from(UserGrant)
        .outerjoin(Trial, Trial.id == UserGrant.trial_id)
        .outerjoin(Site, Site.id == UserGrant.site_id)
        .where(UserGrant.user_id == user_id)).all()
    return (frozenset(t for t, _ in rows if t), frozenset(s for _, s in rows if s))


def principal_of(session: Session, user: User) -> Principal:
    trials, sites_ = grants_of(session, user.id)
    return Principal(user_id=user.id, email=user.email, role=user.role, trials=trials,
                     sites=sites_, must_change_password=user.must_change_password)
