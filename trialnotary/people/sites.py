"""Trials, sites, enrolment and site tokens. Every change is written to the audit trail
in the same transaction, attributed to ``actor`` (``"cli:<os user>"``, ``"user:<id>
<email>"``, or ``"system"``).

A site token made by a person (on the API tokens page) lives only as long as that person may
manage the site's tokens: disabling them, or taking away the role or the grant it relied
on, ends it for good (a later re-grant does not bring it back). A token made with the CLI
(``trialnotary token create``) belongs to no person and lives until it expires or is
revoked.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from trialnotary.db import as_utc, utcnow
from trialnotary.people import audit
from trialnotary.people.access import MANAGE_SITE_TOKENS, Principal, can
from trialnotary.people.errors import InvalidInput
from trialnotary.people.models import Enrolment, Site, SiteToken, Trial, User, UserGrant
from trialnotary.people.states import TokenState
from trialnotary.validation import (
    ValidationError,
    normalize_trial_id,
    validate_site_id,
    validate_text,
)

TOKEN_PREFIX = "tn_site_"
LAST_USED_RESOLUTION = timedelta(minutes=1)


SYSTEM = "system"


def add_trial(session: Session, registry_id: str, *, title: str | None = None,
              protocol_id: bool = False, actor: str = SYSTEM) -> Trial:
    trial_id = normalize_trial_id(registry_id, protocol_id=protocol_id)
    if session.exec(select(Trial).where(Trial.registry_id == trial_id)).first():
        raise InvalidInput("trial", f"trial {trial_id} already exists")
    trial = Trial(registry_id=trial_id, is_protocol_id=protocol_id,
                  title=validate_text(title, "title", 500, required=False))
    session.add(trial)
    session.flush()
    audit.record(session, actor=actor, action="trial.create", entity="trial",
                 entity_id=trial_id, new={"trial": trial_id, "title": trial.title,
                                          "protocolId": protocol_id})
    return trial


def find_trial(session: Session, registry_id: str) -> Trial | None:
    try:
        trial_id = normalize_trial_id(registry_id, protocol_id=True)
    except ValidationError:
        return None
    return session.exec(select(Trial).where(Trial.registry_id == trial_id)).first()


def find_site(session: Session, code: str) -> Site | None:
    try:
        code = validate_site_id(code)
    except ValidationError:
        return None  # never a code, nor anything the database would choke on (NUL)
    return session.exec(select(Site).where(Site.code == code)).first()


def add_site(session: Session, registry_id: str, code: str, *, name: str | None = None,
             actor: str = SYSTEM) -> Site:
    """Create site ``code`` if new and enrol it in the trial."""
    trial = find_trial(session, registry_id)
    if trial is None:
        raise InvalidInput("trial", f"unknown trial {registry_id}")
    code = validate_site_id(code)
    site = find_site(session, code)
    if site is None:
        site = Site(code=code, name=validate_text(name, "name", 200, required=False))
        session.add(site)
        session.flush()
        audit.record(session, actor=actor, action="site.create", entity="site",
                     entity_id=code, new={"site": code, "name": site.name})
    if session.get(Enrolment, (trial.id, site.id)) is None:
        session.add(Enrolment(trial_id=trial.id, site_id=site.id))
        session.flush()
        audit.record(session, actor=actor, action="site.enrol", entity="site", entity_id=code,
                     new={"site": code, "trial": trial.registry_id})
    return site


def token_digest(token: str) -> str:
    """Tokens are high-entropy, so a plain SHA-256 is enough to store them safely."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str) -> tuple[str, str, str]:
    """A fresh random token, its digest, and the prefix shown in listings."""
    token = prefix + secrets.token_urlsafe(32)
    return token, token_digest(token), token[:len(prefix) + 6]


def create_token(session: Session, site_code: str, *, expires_in_days: float | None = None,
                 name: str | None = None, created_by_id: int | None = None,
                 actor: str = SYSTEM) -> str:
    """A new site token, returned once; only its digest is stored."""
    site = find_site(session, site_code)
    if site is None:
        raise InvalidInput("site", f"unknown site {site_code}")
    token, digest, prefix = new_token(TOKEN_PREFIX)
    expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    row = SiteToken(site_id=site.id, digest=digest, prefix=prefix, expires_at=expires_at,
                    name=validate_text(name, "name", 100, required=False),
                    created_by_id=created_by_id)
    session.add(row)
    session.flush()
    audit.record(session, actor=actor, action="token.create", entity="site_token",
                 entity_id=row.id, new={"site": site.code, "prefix": prefix, "name": row.name,
                                        "expiresAt": _iso(expires_at)})
    return token


def revoke_token(session: Session, token_id: int, *, actor: str = SYSTEM) -> SiteToken:
    row = session.get(SiteToken, token_id)
    if row is None:
        raise InvalidInput("token", "no such site token")
    return revoke(session, row, entity="site_token", actor=actor)


def revoke(session: Session, row, *, entity: str, actor: str, reason: str | None = None):
    """Revoke a site or user token row (once), and say so (and why) in the audit trail."""
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        session.flush()
        audit.record(session, actor=actor, action="token.revoke", entity=entity,
                     entity_id=row.id, old={"prefix": row.prefix, "revoked": False},
                     new={"prefix": row.prefix, "revoked": True}, reason=reason)
    return row


def token_state(row, *, now: datetime | None = None) -> TokenState:
    """``revoked``, ``expired`` or ``live``: a site or user token as listed."""
    if row.revoked_at is not None:
        return TokenState.REVOKED
    if row.expires_at is not None and as_utc(row.expires_at) <= (now or utcnow()):
        return TokenState.EXPIRED
    return TokenState.LIVE


def may_manage_tokens(creator: Principal | None, site: str) -> bool:
    """Whether a token's creator (``None``: disabled) may still manage ``site``'s tokens:
    the condition a person-made site token lives on."""
    return creator is not None and can(creator, MANAGE_SITE_TOKENS, site=site)


@dataclass(frozen=True)
class CreatedToken:
    """A live site token some person created, and its site."""

    token: SiteToken
    site: str


def live_tokens_created_by(session: Session, user_id: int) -> list[CreatedToken]:
    rows = session.execute(
        select(SiteToken, Site.code).join(Site, Site.id == SiteToken.site_id)
        .where(SiteToken.created_by_id == user_id, SiteToken.revoked_at.is_(None))
        .order_by(SiteToken.id)).all()
    return [CreatedToken(token, code) for token, code in rows
            if token_state(token) == TokenState.LIVE]


def tokens_lapsing(tokens: list[CreatedToken], creator: Principal | None) -> list[CreatedToken]:
    """Those of a person's live ``tokens`` that would end if the person became ``creator``
    (``None``: disabled)."""
    return [item for item in tokens if not may_manage_tokens(creator, item.site)]


def end_tokens(session: Session, tokens: list[CreatedToken], *, actor: str,
               reason: str) -> list[CreatedToken]:
    """Revoke ``tokens`` for ``reason`` (in the audit trail, one entry each)."""
    for item in tokens:
        revoke(session, item.token, entity="site_token", actor=actor, reason=reason)
    return tokens


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


@dataclass(frozen=True)
class TokenIdentity:
    """Who registers through the API: a site token, for its one site."""

    token_id: int
    site: str
    user_id = None

    @property
    def sites(self) -> frozenset[str]:
        return frozenset({self.site})

    @property
    def actor(self) -> str:
        return f"site-token:{self.token_id} ({self.site})"

    def refusal(self) -> str:
        return f"this token registers for site {self.site} only"


# The registration hot path's two look-ups, built once and run as Core statements on the
# session's connection: the ORM's per-query machinery cost more than the queries. A token
# comes with its creator's role, whether they are disabled, and their grant of its site.
_TOKEN, _SITE = SiteToken.__table__, Site.__table__
_CREATOR, _GRANT = User.__table__, UserGrant.__table__
_TOKEN_LOOKUP = (sa.select(_TOKEN.c.id, _TOKEN.c.expires_at, _TOKEN.c.last_used_at,
                           _TOKEN.c.revoked_at, _TOKEN.c.created_by_id, _SITE.c.code,
                           _CREATOR.c.role, _CREATOR.c.disabled_at,
                           _GRANT.c.id.label("grant_id"))
                 .join(_SITE, _SITE.c.id == _TOKEN.c.site_id)
                 .outerjoin(_CREATOR, _CREATOR.c.id == _TOKEN.c.created_by_id)
                 .outerjoin(_GRANT, sa.and_(_GRANT.c.user_id == _TOKEN.c.created_by_id,
                                            _GRANT.c.site_id == _TOKEN.c.site_id))
                 .where(_TOKEN.c.digest == sa.bindparam("digest")))
_ENROLMENT = Enrolment.__table__
_ENROLLED = (sa.select(Trial.__table__.c.registry_id, _SITE.c.code)
             .join(_ENROLMENT, _ENROLMENT.c.trial_id == Trial.__table__.c.id)
             .join(_SITE, _SITE.c.id == _ENROLMENT.c.site_id)
             .where(Trial.__table__.c.registry_id.in_(sa.bindparam("trials", expanding=True))))


def authenticate(session: Session, token: str) -> TokenIdentity | None:
    """The site a live token registers for, or ``None``. Notes "last used" at most once a
    minute so that checking a token rarely writes.

    A person's token whose creator may no longer manage its site's tokens is refused and
    revoked now, so that it stays ended whatever later happens to its creator. The caller
    holds the write lock (``db.write_session``)."""
    row = session.connection().execute(_TOKEN_LOOKUP, {"digest": token_digest(token)}).first()
    if row is None:
        return None
    now = utcnow()
    if row.revoked_at is not None or (
            row.expires_at is not None and as_utc(row.expires_at) <= now):
        return None
    if row.created_by_id is not None and not may_manage_tokens(_creator(row), row.code):
        revoke(session, session.get(SiteToken, row.id), entity="site_token", actor=SYSTEM,
               reason="its creator may no longer manage this site's tokens")
        session.commit()
        return None
    if row.last_used_at is None or now - as_utc(row.last_used_at) > LAST_USED_RESOLUTION:
        session.execute(sa.update(SiteToken).where(SiteToken.id == row.id)
                        .values(last_used_at=now))
        session.commit()
    return TokenIdentity(token_id=row.id, site=row.code)


def _creator(row) -> Principal | None:
    """What a token's creator may do now, as far as its site goes (``None``: disabled)."""
    if row.disabled_at is not None:
        return None
    return Principal(user_id=row.created_by_id, role=row.role,
                     sites=frozenset({row.code}) if row.grant_id is not None else frozenset())


def enrolled_pairs(session: Session, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of the ``(trial, site)`` pairs exist with the site enrolled in the trial."""
    if not pairs:
        return set()
    rows = session.connection().execute(_ENROLLED, {"trials": sorted({t for t, _ in pairs})})
    return {tuple(r) for r in rows} & pairs


def site_code_of(session: Session, site_id: int) -> str | None:
    return session.scalar(select(Site.code).where(Site.id == site_id))


def enrolments_of(session: Session, site_codes: frozenset[str]) -> list[dict]:
    """The (trial, site) pairs the given sites are enrolled in, for the register form."""
    if not site_codes:
        return []
    rows = session.execute(
        select(Trial.registry_id, Trial.title, Site.code, Site.name)
        .join(Enrolment, Enrolment.trial_id == Trial.id)
        .join(Site, Site.id == Enrolment.site_id)
        .where(Site.code.in_(site_codes)).order_by(Trial.registry_id, Site.code)).all()
    return [{"trial": t, "title": title, "site": code, "siteName": name}
            for t, title, code, name in rows]


def tokens_of_sites(session: Session, site_codes: frozenset[str] | None) -> list[dict]:
    """Site tokens (never their value) of the given sites, or of all with ``None``, with
    their creator's e-mail address (``None``: made with the CLI, tied to no person)."""
    query = (select(SiteToken, Site.code, User.email).join(Site, Site.id == SiteToken.site_id)
             .outerjoin(User, User.id == SiteToken.created_by_id)
             .order_by(SiteToken.id.desc()))
    if site_codes is not None:
        query = query.where(Site.code.in_(site_codes))
    return [{"token": token, "site": code, "creator": email}
            for token, code, email in session.execute(query).all()]
