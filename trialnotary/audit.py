"""The audit trail: every change to trials, sites, people, grants and tokens, and every
correction, as an append-only chain of entries.

Each entry's hash covers its content and the previous entry's hash, so no entry can be
changed, removed or inserted without breaking every hash after it. The head (the newest
entry's seq and hash) is sealed into every batch as its last leaf (``auditHead``), and
alone in a batch of its own once entries have waited a seal interval with no registration
pending (``batches.seal_audit_head``), so the trail itself is anchored on chain:
``trialnotary audit verify`` checks the whole chain against those anchored heads.

Entries are appended inside the transaction of the change they describe, under a lock
(PostgreSQL: an advisory transaction lock; SQLite: the caller's write lock), so seq numbers
have no gaps and entries commit in order.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from .models import AuditEntry, Batch, rfc3339_ms, utcnow
from .receipt import audit_head_leaf, canonical_json

GENESIS = "0" * 64
# pg_advisory_xact_lock key for appending ("TNAUDIT" in ASCII).
AUDIT_LOCK_KEY = 0x544E4155444954


def entry_hash(entry: dict) -> str:
    """SHA-256 of the RFC 8785 form of an entry's fields (``old``/``new`` as JSON values)."""
    return hashlib.sha256(canonical_json(entry)).hexdigest()


def _fields(row: AuditEntry) -> dict:
    return {
        "seq": row.seq, "at": row.at, "actor": row.actor, "action": row.action,
        "entity": row.entity, "entityId": row.entity_id,
        "old": None if row.old is None else json.loads(row.old),
        "new": None if row.new is None else json.loads(row.new),
        "reason": row.reason, "prev": row.prev,
    }


def _json_text(value: Any) -> str | None:
    return None if value is None else canonical_json(value).decode("utf-8")


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str

    def leaf(self) -> bytes:
        return audit_head_leaf(self.seq, self.hash)


def head(session: Session) -> Head | None:
    """The newest committed entry, or ``None`` for an empty trail."""
    row = session.execute(select(AuditEntry.seq, AuditEntry.hash)
                          .order_by(AuditEntry.seq.desc()).limit(1)).first()
    return None if row is None else Head(row.seq, row.hash)


def unsealed_since(session: Session) -> datetime | None:
    """When the oldest entry that no batch has sealed yet was written, or ``None`` when
    every entry is sealed. Heads are sealed in order, so the newest batch with a head says
    how far the trail is sealed."""
    newest = head(session)
    if newest is None:
        return None
    sealed = session.scalar(select(Batch.audit_seq).where(Batch.audit_seq.is_not(None))
                            .order_by(Batch.id.desc()).limit(1)) or 0
    if sealed >= newest.seq:
        return None
    at = session.scalar(select(AuditEntry.at).where(AuditEntry.seq > sealed)
                        .order_by(AuditEntry.seq).limit(1))
    return None if at is None else datetime.fromisoformat(at)


def record(session: Session, *, actor: str, action: str, entity: str, entity_id: Any,
           old: dict | None = None, new: dict | None = None,
           reason: str | None = None) -> AuditEntry:
    """Append an entry in the caller's transaction (committed with the change itself).

    On SQLite the caller must hold the write lock (``db.write_session``); on PostgreSQL
    the advisory lock taken here is held until the transaction ends.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK_KEY})
    last = head(session)
    row = AuditEntry(
        seq=1 if last is None else last.seq + 1, at=rfc3339_ms(utcnow()), actor=actor[:300],
        action=action, entity=entity, entity_id=str(entity_id), old=_json_text(old),
        new=_json_text(new), reason=reason, prev=GENESIS if last is None else last.hash,
        hash="")
    row.hash = entry_hash(_fields(row))
    session.add(row)
    session.flush()
    return row


def entries(session: Session, *, after: int = 0, before: int | None = None,
            limit: int | None = None, descending: bool = False) -> list[dict]:
    """Entries with ``after < seq < before`` as dicts (the hashed fields plus ``hash``),
    oldest first unless ``descending``."""
    query = select(AuditEntry).where(AuditEntry.seq > after)
    if before is not None:
        query = query.where(AuditEntry.seq < before)
    query = query.order_by(AuditEntry.seq.desc() if descending else AuditEntry.seq)
    if limit is not None:
        query = query.limit(limit)
    return [{**_fields(row), "hash": row.hash} for row in session.exec(query)]


# --- checking ------------------------------------------------------------------------

@dataclass(frozen=True)
class SealedHead:
    batch_id: int
    seq: int
    head: str
    state: str


@dataclass
class ChainCheck:
    """What ``verify_chain`` found: ``ok`` when every entry's hash and link hold and every
    batch's sealed head is an entry of the trail."""

    entries: int
    problems: list[str]
    sealed: list[SealedHead]

    @property
    def ok(self) -> bool:
        return not self.problems

    def anchored(self) -> SealedHead | None:
        """The newest head sealed in a confirmed batch."""
        confirmed = [head for head in self.sealed if head.state == "confirmed"]
        return max(confirmed, key=lambda head: head.seq, default=None)


PAGE = 5000


def verify_chain(session: Session) -> ChainCheck:
    """Recompute every entry's hash and link, and check each batch's sealed head against
    the entry it names. (That the head's leaf is in the batch's tree, and the tree's root
    on chain, is checked by ``batches`` and the verifier: see ``trialnotary audit verify``.)
    """
    problems: list[str] = []
    hashes: dict[int, str] = {}
    previous, expected_seq = GENESIS, 1
    while page := entries(session, after=expected_seq - 1, limit=PAGE):
        for entry in page:
            if entry["seq"] != expected_seq:
                problems.append(f"entry {expected_seq} is missing (the next is {entry['seq']})")
            stated = entry.pop("hash")
            if entry["prev"] != previous:
                problems.append(f"entry {entry['seq']} does not link to the entry before it")
            if entry_hash(entry) != stated:
                problems.append(f"entry {entry['seq']} was changed: its content no longer "
                                "gives its hash")
            hashes[entry["seq"]] = stated
            previous, expected_seq = stated, entry["seq"] + 1
    sealed = [SealedHead(*row) for row in session.execute(
        select(Batch.id, Batch.audit_seq, Batch.audit_head, Batch.state)
        .where(Batch.audit_seq.is_not(None)).order_by(Batch.id)).all()]
    for item in sealed:
        if hashes.get(item.seq) != item.head:
            problems.append(f"batch {item.batch_id} sealed entry {item.seq} with hash "
                            f"{item.head[:12]}…, which the trail does not hold")
    return ChainCheck(entries=len(hashes), problems=problems, sealed=sealed)
