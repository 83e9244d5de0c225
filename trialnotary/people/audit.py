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
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from trialnotary.db import utcnow
from trialnotary.people.models import AuditEntry
from trialnotary.proof.receipt import audit_head_leaf, canonical_json, rfc3339_ms

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


@dataclass(frozen=True)
class Filters:
    """What the trail can be narrowed to (all optional)."""

    actor: str | None = None      # part of the actor, any case
    action: str | None = None     # an action, or its family with a trailing "." ("user.")
    entity: str | None = None
    date_from: str | None = None  # YYYY-MM-DD, on ``at`` (UTC), inclusive
    date_to: str | None = None    # YYYY-MM-DD, inclusive

    def where(self) -> list:
        clauses = []
        if self.actor:
            clauses.append(AuditEntry.actor.icontains(self.actor, autoescape=True))
        if self.action and self.action.endswith("."):
            clauses.append(AuditEntry.action.startswith(self.action, autoescape=True))
        elif self.action:
            clauses.append(AuditEntry.action == self.action)
        if self.entity:
            clauses.append(AuditEntry.entity == self.entity)
        if self.date_from:
            clauses.append(AuditEntry.at >= self.date_from)
        if self.date_to and date.fromisoformat(self.date_to) < date.max:
            day_after = date.fromisoformat(self.date_to) + timedelta(days=1)
            clauses.append(AuditEntry.at < day_after.isoformat())
        return clauses


def entries(session: Session, *, after: int = 0, before: int | None = None,
            limit: int | None = None, descending: bool = False,
            filters: Filters | None = None) -> list[dict]:
    """Entries with ``after < seq < before`` (and ``filters``) as dicts (the hashed fields
    plus ``hash``), oldest first unless ``descending``."""
    query = select(AuditEntry).where(AuditEntry.seq > after,
                                     *(filters.where() if filters else ()))
    if before is not None:
        query = query.where(AuditEntry.seq < before)
    query = query.order_by(AuditEntry.seq.desc() if descending else AuditEntry.seq)
    if limit is not None:
        query = query.limit(limit)
    return [{**_fields(row), "hash": row.hash} for row in session.exec(query)]


@dataclass(frozen=True)
class Page:
    """A page of the trail, newest first, and the cursors of its neighbours: ``older`` for
    ``before=``, ``newer`` for ``after=`` (``None`` where the trail ends)."""

    entries: list[dict]
    older: int | None
    newer: int | None


def page(session: Session, filters: Filters, *, before: int | None = None,
         after: int | None = None, size: int = 100) -> Page:
    """The newest ``size`` matching entries before ``before``, or the oldest after
    ``after`` (shown newest first either way)."""
    if after is not None:
        rows = entries(session, after=after, limit=size, filters=filters)[::-1]
    else:
        rows = entries(session, before=before, limit=size, descending=True, filters=filters)
    if not rows:
        return Page([], None, None)

    def exists(*where) -> bool:
        return session.execute(select(AuditEntry.seq).where(*where, *filters.where())
                               .limit(1)).first() is not None
    return Page(rows,
                older=rows[-1]["seq"] if exists(AuditEntry.seq < rows[-1]["seq"]) else None,
                newer=rows[0]["seq"] if exists(AuditEntry.seq > rows[0]["seq"]) else None)


def kinds(session: Session) -> tuple[list[str], list[str]]:
    """The actions and the entities the trail holds, for choosing filters."""
    actions = session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action))
    entities = session.scalars(select(AuditEntry.entity).distinct().order_by(AuditEntry.entity))
    return list(actions), list(entities)


def changes(old, new) -> list[dict]:
    """An entry's values as readable lines: ``{"key", "old", "new", "change"}`` for every key
    of either side (in the order written), ``change`` one of ``changed``, ``same``, ``set``
    (only new) or ``removed`` (only old). Values are text; an absent or null one is ``None``."""
    old, new = _as_mapping(old), _as_mapping(new)
    lines = []
    for key in [*old, *(key for key in new if key not in old)]:
        before, after = old.get(key, _ABSENT), new.get(key, _ABSENT)
        if before is _ABSENT:
            change = "set"
        elif after is _ABSENT:
            change = "removed"
        else:
            change = "same" if before == after else "changed"
        lines.append({"key": key, "old": _text(before), "new": _text(after), "change": change})
    return lines


_ABSENT = object()


def _as_mapping(value) -> dict:
    if value is None:
        return {}
    return value if isinstance(value, dict) else {"value": value}


def _text(value) -> str | None:
    if value is _ABSENT or value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


# --- checking ------------------------------------------------------------------------

@dataclass
class LinkCheck:
    """What ``verify_links`` found: the trail's entries, each one's stated hash, and what
    does not hold (an entry missing, changed, or not linked to the one before)."""

    hashes: dict[int, str]
    problems: list[str]


PAGE = 5000


def verify_links(session: Session) -> LinkCheck:
    """Recompute every entry's hash and link. (Which heads the batches sealed, and whether
    they are on chain, is the notary's to check: ``trialnotary.notary.audit_check``.)"""
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
    return LinkCheck(hashes=hashes, problems=problems)
