"""The tables of people and their trials: trials, sites and enrolment, site tokens, users,
their grants, sessions, sign-in attempts and user tokens, and the audit trail. The schema
itself is created only by the Alembic migrations."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from trialnotary.db import UtcDateTime, utcnow


class Trial(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    registry_id: str = Field(max_length=64, unique=True)
    title: str | None = Field(default=None, max_length=500)
    is_protocol_id: bool = False
    created_at: datetime = UtcDateTime(default_factory=utcnow)


class Site(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64, unique=True)
    name: str | None = Field(default=None, max_length=200)
    created_at: datetime = UtcDateTime(default_factory=utcnow)


class Enrolment(SQLModel, table=True):
    trial_id: int = Field(foreign_key="trial.id", primary_key=True)
    site_id: int = Field(foreign_key="site.id", primary_key=True)


class _Token(SQLModel):
    """The columns every API token has: only its SHA-256 digest is kept, and the prefix
    shown in listings."""

    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=16)
    name: str | None = Field(default=None, max_length=100)
    created_at: datetime = UtcDateTime(default_factory=utcnow)
    expires_at: datetime | None = UtcDateTime(default=None)
    last_used_at: datetime | None = UtcDateTime(default=None)
    revoked_at: datetime | None = UtcDateTime(default=None)


class SiteToken(_Token, table=True):
    """An API token that registers for one site; ``created_by_id`` is the person who made
    it (``None``: made with the CLI)."""

    __tablename__ = "site_token"
    site_id: int = Field(foreign_key="site.id", index=True)
    created_by_id: int | None = Field(default=None, foreign_key="app_user.id")


class User(SQLModel, table=True):
    """A person who signs in. ``role``: admin, sponsor or coordinator; what a sponsor or
    coordinator may see and do is further limited by their grants."""

    __tablename__ = "app_user"
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True)
    name: str | None = Field(default=None, max_length=200)
    role: str = Field(max_length=16)
    password_hash: str = Field(max_length=255, repr=False)
    must_change_password: bool = False
    created_at: datetime = UtcDateTime(default_factory=utcnow)
    password_changed_at: datetime | None = UtcDateTime(default=None)
    disabled_at: datetime | None = UtcDateTime(default=None)


class UserGrant(SQLModel, table=True):
    """A sponsor's trial or a coordinator's site."""

    __tablename__ = "user_grant"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "trial_id", "site_id", name="uq_user_grant_scope"),
        sa.CheckConstraint("(trial_id IS NULL) <> (site_id IS NULL)", name="one_scope"),
    )
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    trial_id: int | None = Field(default=None, foreign_key="trial.id")
    site_id: int | None = Field(default=None, foreign_key="site.id")


class UserSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; only its digest is kept."""

    __tablename__ = "user_session"
    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    created_at: datetime = UtcDateTime(default_factory=utcnow)
    last_seen_at: datetime = UtcDateTime(default_factory=utcnow)


class ShownOnce(SQLModel, table=True):
    """A secret (a new token, a temporary password) waiting to be shown once, on the page a
    form redirects to. Only the secret XOR a one-time pad is kept here; the pad travels in
    the browser's session cookie. Neither half alone reveals the secret, and showing it
    deletes the row, so a reload shows it no more."""

    __tablename__ = "shown_once"
    key: str = Field(primary_key=True, max_length=32)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    sealed: bytes = Field(sa_type=sa.LargeBinary)
    created_at: datetime = UtcDateTime(default_factory=utcnow)


class LoginAttempt(SQLModel, table=True):
    """Sign-in events per e-mail address: ``failure``, ``success``, ``locked`` (the
    lock-out began) and ``unlock`` (an admin lifted it)."""

    __tablename__ = "login_attempt"
    __table_args__ = (sa.Index("ix_login_attempt_email_at", "email", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254)
    user_id: int | None = Field(default=None, foreign_key="app_user.id")
    kind: str = Field(max_length=16)
    at: datetime = UtcDateTime(default_factory=utcnow)
    ip: str | None = Field(default=None, max_length=45)


class UserToken(_Token, table=True):
    """An API token that reads as its user (a sponsor's or admin's trial endpoints)."""

    __tablename__ = "user_token"
    user_id: int = Field(foreign_key="app_user.id", index=True)


class AuditEntry(SQLModel, table=True):
    """One change, hash-chained to the one before; append-only (database triggers refuse
    updates and deletes). ``old``/``new`` are canonical JSON text."""

    __tablename__ = "audit_entry"
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: str = Field(max_length=24)
    actor: str = Field(max_length=300)
    action: str = Field(max_length=64)
    entity: str = Field(max_length=32)
    entity_id: str = Field(max_length=64)
    old: str | None = Field(default=None, sa_type=sa.Text)
    new: str | None = Field(default=None, sa_type=sa.Text)
    reason: str | None = Field(default=None, max_length=1000)
    prev: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)
