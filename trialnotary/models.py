"""Database tables. The schema itself is created only by the Alembic migrations."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

# Named constraints from the first migration on, so Alembic's batch mode can alter them.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime | None) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite hands them back naive)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def rfc3339_ms(moment: datetime) -> str:
    """``2026-11-23T18:59:01.123Z``: the exact form of ``submittedAt`` and ``sealedAt``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{moment.microsecond // 1000:03d}Z"


def UtcDateTime(**kw):  # noqa: N802 - reads like a column type
    return Field(sa_type=sa.DateTime(timezone=True), **kw)


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


class SiteToken(SQLModel, table=True):
    """An API token that registers for one site. Only its SHA-256 digest is kept."""

    __tablename__ = "site_token"
    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", index=True)
    digest: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=16)
    name: str | None = Field(default=None, max_length=100)
    created_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = UtcDateTime(default_factory=utcnow)
    expires_at: datetime | None = UtcDateTime(default=None)
    last_used_at: datetime | None = UtcDateTime(default=None)
    revoked_at: datetime | None = UtcDateTime(default=None)


class Batch(SQLModel, table=True):
    """A sealed Merkle tree. ``state``: sealed → sent → confirmed.

    ``audit_seq``/``audit_head``: the audit trail's head when sealed, whose ``auditHead``
    leaf is the tree's last leaf (counted in ``leaf_count``), or ``None``.
    """

    id: int | None = Field(default=None, primary_key=True)
    root: bytes = Field(sa_type=sa.LargeBinary(32))
    leaf_count: int
    sealed_at: str = Field(max_length=24)
    state: str = Field(default="sealed", max_length=16, index=True)
    audit_seq: int | None = None
    audit_head: str | None = Field(default=None, max_length=64)


class TreePage(SQLModel, table=True):
    """Up to ``merkle.PAGE_NODES`` consecutive 32-byte nodes of one level of a batch's tree.

    Derived data, rebuilt from the leaves if lost. Pages keep each proof read small: one
    short blob per level instead of a whole level.
    """

    __tablename__ = "tree_page"
    batch_id: int = Field(foreign_key="batch.id", primary_key=True)
    level: int = Field(primary_key=True)
    page: int = Field(primary_key=True)
    nodes: bytes = Field(sa_type=sa.LargeBinary)


class Submission(SQLModel, table=True):
    """A registration, never changed once stored. ``seq`` fixes the sealing order; ``id``
    is the public UUID4. Whether it is sealed, and where, is kept apart in the narrow
    ``pending`` and ``leaf_slot`` tables. A registration is superseded at most once: the
    unique index on ``supersedes``."""

    __table_args__ = (sa.Index("uq_submission_supersedes", "supersedes", unique=True),)
    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(max_length=36, unique=True)
    trial: str = Field(max_length=64, index=True)
    site: str = Field(max_length=64)
    kind: str = Field(max_length=16)
    dataset: str = Field(max_length=200)
    sha256: str = Field(max_length=64, index=True)
    size_bytes: int | None = Field(default=None, sa_type=sa.BigInteger)
    filename: str | None = Field(default=None, max_length=255)
    supersedes: str | None = Field(default=None, max_length=36)
    submitted_at: str = Field(max_length=24)
    leaf: bytes = Field(sa_type=sa.LargeBinary(32))
    token_id: int | None = Field(default=None, foreign_key="site_token.id")
    user_id: int | None = Field(default=None, foreign_key="app_user.id")
    reason: str | None = Field(default=None, max_length=1000)

    def record(self) -> dict:
        """The record bound into the leaf, with the receipt's key names."""
        return {
            "id": self.id, "trial": self.trial, "site": self.site, "kind": self.kind,
            "dataset": self.dataset, "sha256": self.sha256, "sizeBytes": self.size_bytes,
            "filename": self.filename, "supersedes": self.supersedes,
            "submittedAt": self.submitted_at,
        }


class Pending(SQLModel, table=True):
    """The registrations waiting to be sealed, by ``seq``. A database trigger adds one row
    per stored registration (none can skip the queue); sealing takes them away."""

    __tablename__ = "pending"
    seq: int = Field(primary_key=True, foreign_key="submission.seq",
                     sa_column_kwargs={"autoincrement": False})


class LeafSlot(SQLModel, table=True):
    """Where a sealed registration sits: its batch and leaf index. Narrow on purpose:
    sealing a million registrations writes a million of these, never the records."""

    __tablename__ = "leaf_slot"
    __table_args__ = (sa.UniqueConstraint("batch_id", "leaf_index",
                                          name="uq_leaf_slot_batch_leaf"),)
    seq: int = Field(primary_key=True, foreign_key="submission.seq",
                     sa_column_kwargs={"autoincrement": False})
    batch_id: int = Field(foreign_key="batch.id")
    leaf_index: int


class Anchor(SQLModel, table=True):
    """One signed anchoring transaction of a batch; its signed bytes are kept to re-send.

    ``state``: signed → sent → confirmed; or ``replaced`` (another anchor of the batch with
    the same nonce, higher fees, won), ``dropped`` (the nonce was taken by a transaction
    not ours: the batch is signed again with a new one) or ``failed`` (mined, reverted).
    A batch's live anchors share one nonce, so at most one of them survives on chain.
    """

    id: int | None = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="batch.id", index=True)
    chain_id: int
    sender: str = Field(max_length=42)
    nonce: int = Field(sa_type=sa.BigInteger)
    tx_hash: str = Field(max_length=64, unique=True)
    raw: bytes = Field(sa_type=sa.LargeBinary)
    gas: int = Field(sa_type=sa.BigInteger)
    max_fee_per_gas: int = Field(sa_type=sa.Numeric(40, 0))
    max_priority_fee_per_gas: int = Field(sa_type=sa.Numeric(40, 0))
    state: str = Field(default="signed", max_length=16, index=True)
    replaces_id: int | None = Field(default=None, foreign_key="anchor.id")
    note: str | None = Field(default=None, max_length=300)
    created_at: datetime = UtcDateTime(default_factory=utcnow)
    sent_at: datetime | None = UtcDateTime(default=None)
    block_number: int | None = Field(default=None, sa_type=sa.BigInteger)
    block_hash: str | None = Field(default=None, max_length=66)
    block_time: str | None = Field(default=None, max_length=20)
    confirmed_at: datetime | None = UtcDateTime(default=None)


class IdempotencyKey(SQLModel, table=True):
    """The first answer to a request with an ``Idempotency-Key``, per token, for 24 h."""

    __tablename__ = "idempotency_key"
    __table_args__ = (sa.UniqueConstraint("token_id", "key", name="uq_idempotency_key_token_key"),)
    id: int | None = Field(default=None, primary_key=True)
    token_id: int = Field(foreign_key="site_token.id")
    key: str = Field(max_length=255)
    request_digest: str = Field(max_length=64)
    status_code: int
    response_body: str = Field(sa_type=sa.Text)
    created_at: datetime = UtcDateTime(default_factory=utcnow, index=True)


# --- people --------------------------------------------------------------------------

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


class UserToken(SQLModel, table=True):
    """An API token that reads as its user (a sponsor's or admin's trial endpoints)."""

    __tablename__ = "user_token"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    digest: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=16)
    name: str | None = Field(default=None, max_length=100)
    created_at: datetime = UtcDateTime(default_factory=utcnow)
    expires_at: datetime | None = UtcDateTime(default=None)
    last_used_at: datetime | None = UtcDateTime(default=None)
    revoked_at: datetime | None = UtcDateTime(default=None)


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


class ChainStatus(SQLModel, table=True):
    """What the anchorer last saw of the chain (one row), for readiness and the admin page:
    reachable or not and since when, and the alert that stops anchoring, if any."""

    __tablename__ = "chain_status"
    id: int = Field(default=1, primary_key=True)
    reachable: bool
    since: datetime = UtcDateTime(default_factory=utcnow)
    checked_at: datetime = UtcDateTime(default_factory=utcnow)
    alert: str | None = Field(default=None, max_length=500)
