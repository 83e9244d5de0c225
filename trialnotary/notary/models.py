"""The notary's tables: registrations, the pending queue, batches and their trees, leaf
slots, anchors, idempotency keys and the chain's status. The schema itself is created only
by the Alembic migrations."""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from trialnotary.db import UtcDateTime, utcnow
from trialnotary.notary.states import AnchorState, BatchState
from trialnotary.people import models as _people  # noqa: F401  (the tables referred to)
from trialnotary.proof.receipt import OPTIONAL_RECORD_KEYS, RECORD_KEYS, canonical_json

# The columns of ``submission`` that hold the record, in the order of ``RECORD_KEYS``, then
# one column for each of ``OPTIONAL_RECORD_KEYS``: its RFC 8785 JSON, or NULL.
OPTIONAL_COLUMNS = ("not_before", "sign_off")
RECORD_COLUMNS = ("id", "trial", "site", "kind", "dataset", "sha256", "size_bytes", "filename",
                  "supersedes", "submitted_at", *OPTIONAL_COLUMNS)


def record_of(values) -> dict:
    """The record of the values of ``RECORD_COLUMNS``, each optional key only where stored."""
    record = dict(zip(RECORD_KEYS, values[:len(RECORD_KEYS)], strict=True))
    for key, stored in zip(OPTIONAL_RECORD_KEYS, values[len(RECORD_KEYS):], strict=True):
        if stored is not None:
            record[key] = json.loads(stored)
    return record


def stored_values(record: dict) -> tuple:
    """The values of ``RECORD_COLUMNS`` that hold a record."""
    return (*(record[key] for key in RECORD_KEYS),
            *(None if record.get(key) is None else canonical_json(record[key]).decode("utf-8")
              for key in OPTIONAL_RECORD_KEYS))


class Batch(SQLModel, table=True):
    """A sealed Merkle tree. ``state``: sealed → sent → confirmed.

    ``audit_seq``/``audit_head``: the audit trail's head when sealed, whose ``auditHead``
    leaf is the tree's last leaf (counted in ``leaf_count``), or ``None``.
    """

    id: int | None = Field(default=None, primary_key=True)
    root: bytes = Field(sa_type=sa.LargeBinary(32))
    leaf_count: int
    sealed_at: str = Field(max_length=24)
    state: str = Field(default=BatchState.SEALED, max_length=16, index=True)
    audit_seq: int | None = None
    audit_head: str | None = Field(default=None, max_length=64)
    # Raised whenever what its receipts say of their anchors may have changed (a roll-up's
    # state, evidence taken, a renewal confirmed): the receipt cache's key (``receipts``).
    anchors_version: int = 0


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


class Registration(SQLModel, table=True):
    """A registration, never changed once stored. ``seq`` fixes the sealing order; ``id``
    is the public UUID4. Whether it is sealed, and where, is kept apart in the narrow
    ``pending`` and ``leaf_slot`` tables. A registration is superseded at most once: the
    unique index on ``supersedes``. A sign-off (proof/signoff.py) names the registration it
    signs in ``signs``. The table keeps its first name, ``submission``."""

    __tablename__ = "submission"

    __table_args__ = (sa.Index("uq_submission_supersedes", "supersedes", unique=True),)
    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(max_length=36, unique=True)
    trial: str = Field(max_length=64, index=True)
    site: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    dataset: str = Field(max_length=200)
    sha256: str = Field(max_length=64, index=True)
    size_bytes: int | None = Field(default=None, sa_type=sa.BigInteger)
    filename: str | None = Field(default=None, max_length=255)
    supersedes: str | None = Field(default=None, max_length=36)
    submitted_at: str = Field(max_length=24)
    not_before: str | None = Field(default=None, max_length=200)
    # A sign-off's ``signOff`` (RFC 8785 JSON), and the id of the registration it signs.
    sign_off: str | None = Field(default=None, sa_type=sa.Text)
    signs: str | None = Field(default=None, max_length=36, index=True)
    leaf: bytes = Field(sa_type=sa.LargeBinary(32))
    token_id: int | None = Field(default=None, foreign_key="site_token.id")
    user_id: int | None = Field(default=None, foreign_key="app_user.id")
    reason: str | None = Field(default=None, max_length=1000)

    def record(self) -> dict:
        """The record bound into the leaf, with the receipt's key names."""
        return record_of([getattr(self, column) for column in RECORD_COLUMNS])


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


class Rollup(SQLModel, table=True):
    """What one anchor attests: the root of a tree over batch roots, in batch order. An
    anchor of each batch has one roll-up per batch (its root is the batch's, no path); an
    anchor with a period has one per period, over the batches sealed in it.

    ``state``: sealed → sent → confirmed, as a batch's; a batch is confirmed as soon as one
    roll-up holding it is.
    """

    id: int | None = Field(default=None, primary_key=True)
    anchor: str = Field(max_length=64, index=True)
    root: bytes = Field(sa_type=sa.LargeBinary(32))
    leaf_count: int
    created_at: str = Field(max_length=24)
    state: str = Field(default=BatchState.SEALED, max_length=16, index=True)


class RollupBatch(SQLModel, table=True):
    """A batch in one anchor's roll-up: its leaf index and the path from its root to the
    roll-up's (a receipt's ``rollup.proof``, as JSON; ``[]`` for a roll-up of one batch).
    One per anchor and batch."""

    __tablename__ = "rollup_batch"
    anchor: str = Field(max_length=64, primary_key=True)
    batch_id: int = Field(foreign_key="batch.id", primary_key=True)
    rollup_id: int = Field(foreign_key="rollup.id", index=True)
    leaf_index: int
    proof: str = Field(sa_type=sa.Text)


class Anchor(SQLModel, table=True):
    """One signed anchoring transaction of a roll-up (``name``: the configured EVM anchor);
    its signed bytes are kept to re-send.

    ``state``: signed → sent → confirmed; or ``replaced`` (another anchor of the roll-up
    with the same nonce, higher fees, won), ``dropped`` (the nonce was taken by a
    transaction not ours: the roll-up is signed again with a new one) or ``failed`` (mined,
    reverted). A roll-up's live anchors share one nonce, so at most one of them survives on
    chain. ``evidence``: once confirmed, the chain evidence its receipts carry (JSON, see
    ``notary.evidence``), or ``None`` (taken before evidence existed, or the node could not
    give it).
    """

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, index=True)
    rollup_id: int = Field(foreign_key="rollup.id", index=True)
    chain_id: int
    sender: str = Field(max_length=42)
    nonce: int = Field(sa_type=sa.BigInteger)
    tx_hash: str = Field(max_length=64, unique=True)
    raw: bytes = Field(sa_type=sa.LargeBinary)
    gas: int = Field(sa_type=sa.BigInteger)
    max_fee_per_gas: int = Field(sa_type=sa.Numeric(40, 0))
    max_priority_fee_per_gas: int = Field(sa_type=sa.Numeric(40, 0))
    state: str = Field(default=AnchorState.SIGNED, max_length=16, index=True)
    replaces_id: int | None = Field(default=None, foreign_key="anchor.id")
    note: str | None = Field(default=None, max_length=300)
    created_at: datetime = UtcDateTime(default_factory=utcnow)
    sent_at: datetime | None = UtcDateTime(default=None)
    block_number: int | None = Field(default=None, sa_type=sa.BigInteger)
    block_hash: str | None = Field(default=None, max_length=66)
    block_time: str | None = Field(default=None, max_length=20)
    confirmed_at: datetime | None = UtcDateTime(default=None)
    evidence: str | None = Field(default=None, sa_type=sa.Text)


class Stamp(SQLModel, table=True):
    """An RFC 3161 time-stamp token over a roll-up's root, from the anchor ``name``'s
    time-stamp authority; kept only once it verified against the configured CA."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, index=True)
    rollup_id: int = Field(foreign_key="rollup.id", unique=True)
    token: bytes = Field(sa_type=sa.LargeBinary)
    gen_time: str = Field(max_length=20)
    tsa: str = Field(max_length=300)
    created_at: datetime = UtcDateTime(default_factory=utcnow)


class Renewal(SQLModel, table=True):
    """The renewal of a retired EVM anchor (docs/receipt.md, "Renewal"): a tree over the
    evidence digests of its confirmed transactions, in the order they were confirmed, whose
    root the remaining anchors attest (a roll-up of each, ``renewal_rollup``). One per
    retired anchor."""

    id: int | None = Field(default=None, primary_key=True)
    anchor: str = Field(max_length=64, unique=True)
    root: bytes = Field(sa_type=sa.LargeBinary(32))
    leaf_count: int
    created_at: str = Field(max_length=24)


class RenewalLeaf(SQLModel, table=True):
    """A retired anchor's transaction in its renewal: its leaf index and the path from its
    evidence digest to the renewal's root (a receipt's ``renewal.proof``, as JSON)."""

    __tablename__ = "renewal_leaf"
    anchor_id: int = Field(foreign_key="anchor.id", primary_key=True,
                           sa_column_kwargs={"autoincrement": False})
    renewal_id: int = Field(foreign_key="renewal.id", index=True)
    leaf_index: int
    proof: str = Field(sa_type=sa.Text)


class RenewalRollup(SQLModel, table=True):
    """The roll-up by which one remaining anchor attests a renewal's root: a roll-up of no
    batch, signed or stamped by the anchor's rounds like any other."""

    __tablename__ = "renewal_rollup"
    rollup_id: int = Field(foreign_key="rollup.id", primary_key=True,
                           sa_column_kwargs={"autoincrement": False})
    renewal_id: int = Field(foreign_key="renewal.id", index=True)


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


class ChainStatus(SQLModel, table=True):
    """One configured anchor as the notary knows it: from which batch on it anchors (an
    anchor added later does not go back over older batches), and what it last saw of its
    chain or time-stamp authority, for readiness and the admin page: reachable or not and
    since when, and the alert that stops it, if any. ``retired_at``: when ``anchor retire``
    stopped it (it anchors nothing new from then on; see ``notary.renewal``)."""

    __tablename__ = "chain_status"
    id: int | None = Field(default=None, primary_key=True)
    anchor: str = Field(max_length=64, unique=True)
    first_batch_id: int = 1
    reachable: bool = True
    since: datetime = UtcDateTime(default_factory=utcnow)
    checked_at: datetime = UtcDateTime(default_factory=utcnow)
    alert: str | None = Field(default=None, max_length=500)
    retired_at: datetime | None = UtcDateTime(default=None)


class NotaryAddress(SQLModel, table=True):
    """An anchoring address of the notary on one chain, and when it was the notary's: the
    address history its identity document publishes (docs/receipt.md, "The notary's
    identity"). Times are RFC 3339 UTC in whole seconds.

    ``valid_from`` is at or before the address's first anchor's block time; ``retired_at``
    is when anchoring moved to another key, and ``until`` is set once the last anchor
    signed with this one is confirmed. ``key_file`` is where ``chain rotate-key`` found the
    key (a path, never the key), used while the address is the current one.
    """

    __tablename__ = "notary_address"
    __table_args__ = (sa.UniqueConstraint("chain_id", "address"),)
    id: int | None = Field(default=None, primary_key=True)
    anchor: str = Field(max_length=64)
    chain_id: int = Field(sa_type=sa.BigInteger)
    address: str = Field(max_length=42)
    valid_from: str = Field(max_length=20)
    retired_at: str | None = Field(default=None, max_length=20)
    until: str | None = Field(default=None, max_length=20)
    compromised_from: str | None = Field(default=None, max_length=20)
    key_file: str | None = Field(default=None, max_length=1000)


class IdentityVersion(SQLModel, table=True):
    """One version of the notary's identity document, exactly as served (``document`` is
    its JSON text); each is also an audit entry holding its SHA-256."""

    __tablename__ = "notary_identity"
    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    document: str = Field(sa_type=sa.Text)
    sha256: str = Field(max_length=64)


class Publication(SQLModel, table=True):
    """A trial's timeline published at ``/t/<trial>`` (docs/api.md, "Timeline"): which
    kinds (``kinds``, comma-separated), whether site codes are shown and whether the
    published receipts are offered. Unpublishing removes the row; both are audit entries."""

    id: int | None = Field(default=None, primary_key=True)
    trial: str = Field(max_length=64, unique=True)
    kinds: str = Field(max_length=500)
    show_sites: bool = False
    offer_receipts: bool = False
    published_at: datetime = UtcDateTime(default_factory=utcnow)
    published_by: int | None = Field(default=None, foreign_key="app_user.id")
