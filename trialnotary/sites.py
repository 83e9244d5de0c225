"""Trials, sites, enrolment and site tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from .models import Enrolment, Site, SiteToken, Trial, utcnow
from .validation import ValidationError, normalize_trial_id, validate_site_id, validate_text

TOKEN_PREFIX = "tn_site_"
LAST_USED_RESOLUTION = timedelta(minutes=1)


def add_trial(session: Session, registry_id: str, *, title: str | None = None,
              protocol_id: bool = False) -> Trial:
    trial_id = normalize_trial_id(registry_id, protocol_id=protocol_id)
    if session.exec(select(Trial).where(Trial.registry_id == trial_id)).first():
        raise ValidationError("trial", f"trial {trial_id} already exists")
    trial = Trial(registry_id=trial_id, is_protocol_id=protocol_id,
                  title=validate_text(title, "title", 500, required=False))
    session.add(trial)
    session.flush()
    return trial


def add_site(session: Session, registry_id: str, code: str, *, name: str | None = None) -> Site:
    """Create site ``code`` if new and enrol it in the trial."""
    trial_id = normalize_trial_id(registry_id, protocol_id=True)
    trial = session.exec(select(Trial).where(Trial.registry_id == trial_id)).first()
    if trial is None:
        raise ValidationError("trial", f"unknown trial {trial_id}")
    code = validate_site_id(code)
    site = session.exec(select(Site).where(Site.code == code)).first()
    if site is None:
        site = Site(code=code, name=validate_text(name, "name", 200, required=False))
        session.add(site)
        session.flush()
    if session.get(Enrolment, (trial.id, site.id)) is None:
        session.add(Enrolment(trial_id=trial.id, site_id=site.id))
        session.flush()
    return site


def token_digest(token: str) -> str:
    """Tokens are high-entropy, so a plain SHA-256 is enough to store them safely."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, site_code: str, *, expires_in_days: float | None = None) -> str:
    """A new site token, returned once; only its digest is stored."""
    site = session.exec(select(Site).where(Site.code == site_code)).first()
    if site is None:
        raise ValidationError("site", f"unknown site {site_code}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    session.add(SiteToken(site_id=site.id, digest=token_digest(token),
                          prefix=token[:len(TOKEN_PREFIX) + 6], expires_at=expires_at))
    session.flush()
    return token


@dataclass(frozen=True)
class TokenIdentity:
    token_id: int
    site: str


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)


def authenticate(session: Session, token: str) -> TokenIdentity | None:
    """The site a live token registers for, or ``None``. Notes "last used" at most once a
    minute so that checking a token rarely writes."""
    row = session.exec(
        select(SiteToken, Site.code).join(Site, Site.id == SiteToken.site_id)
        .where(SiteToken.digest == token_digest(token))
    ).first()
    if row is None:
        return None
    stored, site_code = row
    now = utcnow()
    if stored.revoked_at is not None or (
            stored.expires_at is not None and _aware(stored.expires_at) <= now):
        return None
    if stored.last_used_at is None or now - _aware(stored.last_used_at) > LAST_USED_RESOLUTION:
        session.execute(sa.update(SiteToken).where(SiteToken.id == stored.id)
                        .values(last_used_at=now))
        session.commit()
    return TokenIdentity(token_id=stored.id, site=site_code)


def enrolled_pairs(session: Session, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of the ``(trial, site)`` pairs exist with the site enrolled in the trial."""
    if not pairs:
        return set()
    trials = {t for t, _ in pairs}
    rows = session.execute(
        select(Trial.registry_id, Site.code)
        .join(Enrolment, Enrolment.trial_id == Trial.id)
        .join(Site, Site.id == Enrolment.site_id)
        .where(Trial.registry_id.in_(trials))
    ).all()
    return {tuple(r) for r in rows} & pairs
