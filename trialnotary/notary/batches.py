"""Batches: seal pending registrations into Merkle trees, and build receipts from them.

Batch states: ``sealed`` (tree stored) → ``sent`` (anchor transaction broadcast, maybe
mined) → ``confirmed`` (its block has the required confirmations on the canonical chain);
``anchoring`` moves them. Sealing runs under the database job lock, so any number of
schedulers, workers and ``seal-now`` calls can run side by side and each pending
registration lands in exactly one batch.
"""

from __future__ import annotations

import collections
import functools
import logging
import threading
from collections.abc import Iterator
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from trialnotary.db import job_lock, utcnow
from trialnotary.notary.faults import crash_point
from trialnotary.notary.models import Anchor, Batch, LeafSlot, Pending, Registration, TreePage
from trialnotary.people import audit
from trialnotary.people.models import AuditEntry
from trialnotary.proof import merkle
from trialnotary.proof.receipt import build_receipt, rfc3339_ms

log = logging.getLogger(__name__)



def registration_status(batch_state: str | None) -> str:
    """A registration's status is its batch's state, or ``pending`` before sealing."""
    return "pending" if batch_state is None else batch_state


def pending_count(session: Session) -> int:
    return session.scalar(select(sa.func.count()).select_from(Pending))


# --- sealing -------------------------------------------------------------------------

def seal_one_batch(engine: Engine, max_batch: int, *, full_only: bool = False) -> Batch | None:
    """Seal up to ``max_batch`` leaves into one batch: pending registrations, oldest first,
    then the audit trail's head as the last leaf (with ``full_only``, only if a full batch
    is pending). Never a batch for the audit head alone: that is ``seal_audit_head``'s."""
    for _ in range(3):
        try:
            return _seal(engine, max_batch, full_only)
        except _Raced:
            log.info("a registration committed out of order while sealing: sealing again")
    raise RuntimeError("sealing kept racing with registrations")


class _Raced(Exception):
    """The rows given leaf indexes were not exactly the rows hashed into the tree."""


def _seal(engine: Engine, max_batch: int, full_only: bool) -> Batch | None:
    with job_lock(engine) as session:
        trail = audit.head(session)
        room = max_batch - 1 if trail is not None and max_batch > 1 else max_batch
        rows = _pending(session, room)
        if not rows or (full_only and len(rows) < room):
            return None
        trail = trail if room < max_batch else None
        batch = _store_batch(session, [bytes(leaf) for _, leaf in rows], trail)
        _assign_leaves(session, batch.id, [seq for seq, _ in rows])
        session.expunge(batch)
    crash_point("after-seal")
    log.info("sealed batch %s with %s leaves", batch.id, batch.leaf_count)
    return batch


def _store_batch(session: Session, leaves: list[bytes], trail: audit.Head | None) -> Batch:
    """A new batch over ``leaves`` and then the audit head's leaf, if any, with its tree."""
    leaves = leaves + ([trail.leaf()] if trail else [])
    levels = merkle.build_levels(leaves)
    batch = Batch(root=merkle.root_of(levels), leaf_count=len(leaves),
                  sealed_at=rfc3339_ms(utcnow()),
                  audit_seq=trail.seq if trail else None,
                  audit_head=trail.hash if trail else None)
    session.add(batch)
    session.flush()
    _store_levels(session, batch.id, levels)
    return batch


def unsealed_since(session: Session) -> datetime | None:
    """When the oldest entry that no batch has sealed yet was written, or ``None`` when
    every entry is sealed. Heads are sealed in order, so the newest batch with a head says
    how far the trail is sealed."""
    newest = audit.head(session)
    if newest is None:
        return None
    sealed = session.scalar(select(Batch.audit_seq).where(Batch.audit_seq.is_not(None))
                            .order_by(Batch.id.desc()).limit(1)) or 0
    if sealed >= newest.seq:
        return None
    at = session.scalar(select(AuditEntry.at).where(AuditEntry.seq > sealed)
                        .order_by(AuditEntry.seq).limit(1))
    return None if at is None else datetime.fromisoformat(at)


def seal_audit_head(engine: Engine, waited_seconds: float) -> Batch | None:
    """A batch holding only the audit trail's head, when nothing is pending and the oldest
    entry no batch holds yet has waited ``waited_seconds``: admin changes are anchored even
    when no registration comes, so that no one can rewrite them unseen. The one exception
    to "never a batch for the audit head alone"; ``None`` when it is not due.

    The cheap look is taken without the job lock (the scheduler asks every second); the
    lock is taken only to seal, and everything is looked at again under it.
    """
    with Session(engine) as session:
        if not _head_due(session, waited_seconds):
            return None
    with job_lock(engine) as session:
        if not _head_due(session, waited_seconds):
            return None
        batch = _store_batch(session, [], audit.head(session))
        session.expunge(batch)
    crash_point("after-seal")
    log.info("sealed batch %s with the audit head alone (entry %s)", batch.id, batch.audit_seq)
    return batch


def _head_due(session: Session, waited_seconds: float) -> bool:
    if pending_count(session):
        return False
    since = unsealed_since(session)
    return since is not None and (utcnow() - since).total_seconds() >= waited_seconds


_PENDING = sa.text("SELECT pending.seq, submission.leaf FROM pending "
                   "JOIN submission ON submission.seq = pending.seq "
                   "ORDER BY pending.seq LIMIT :n")


def _pending(session: Session, limit: int) -> list[tuple[int, bytes]]:
    """The oldest pending (seq, leaf) pairs: a million of them, as the driver's plain
    tuples (building SQLAlchemy rows would cost more than the query)."""
    result = session.connection().execute(_PENDING, {"n": limit})
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


_ASSIGN = sa.text("""
    INSERT INTO leaf_slot (seq, batch_id, leaf_index)
    SELECT seq, :batch, row_number() OVER (ORDER BY seq) - 1 FROM pending
    WHERE seq <= :last ORDER BY seq LIMIT :n""")
_DEQUEUE = sa.text("DELETE FROM pending WHERE seq IN "
                   "(SELECT seq FROM leaf_slot WHERE batch_id = :batch)")


def _assign_leaves(session: Session, batch_id: int, seqs: list[int]) -> None:
    """Give the hashed registrations their slots (batch and leaf index) and take them out
    of the queue: two set-based statements on narrow tables, however many rows.

    The insert takes the oldest pending rows again, so it must find the very rows that
    were hashed: on SQLite the write lock holds every writer off; on PostgreSQL a
    registration committing out of order (an earlier seq, later) could slip in, which the
    count and sum of seqs detect (``_Raced``: the transaction rolls back and is tried again).
    """
    session.execute(_ASSIGN, {"batch": batch_id, "last": seqs[-1], "n": len(seqs)})
    count, total = session.execute(
        select(sa.func.count(), sa.func.sum(LeafSlot.seq))
        .where(LeafSlot.batch_id == batch_id)).one()
    if count != len(seqs) or total != sum(seqs):
        raise _Raced()
    session.execute(_DEQUEUE, {"batch": batch_id})


def _store_levels(session: Session, batch_id: int, levels: list[bytes]) -> None:
    session.execute(sa.insert(TreePage), [
        {"batch_id": batch_id, "level": level, "page": page, "nodes": nodes}
        for level, page, nodes in merkle.pages(levels)
    ])


def seal_all(engine: Engine, max_batch: int, *, full_only: bool = False) -> list[Batch]:
    """Seal everything pending, in batches of at most ``max_batch`` (or only the full
    batches, for the early seal between intervals)."""
    sealed = []
    while (batch := seal_one_batch(engine, max_batch, full_only=full_only)) is not None:
        sealed.append(batch)
        if batch.leaf_count < max_batch:
            break
    return sealed


def batch_leaves(session: Session, batch: Batch) -> list[bytes]:
    """Every leaf of a batch's tree in order: its registrations', then the audit head's."""
    leaves = list(session.scalars(
        select(Registration.leaf).join(LeafSlot, LeafSlot.seq == Registration.seq)
        .where(LeafSlot.batch_id == batch.id).order_by(LeafSlot.leaf_index)))
    if batch.audit_seq is not None:
        leaves.append(audit.Head(batch.audit_seq, batch.audit_head).leaf())
    return leaves


def root_matches(session: Session, batch: Batch) -> bool:
    """Whether the batch's stored leaves (the source of truth) still give its root."""
    return merkle.root_of(merkle.build_levels(batch_leaves(session, batch))) == batch.root


# --- receipts ------------------------------------------------------------------------

def confirmed_anchor(session: Session, batch_id: int) -> Anchor | None:
    return session.exec(select(Anchor).where(Anchor.batch_id == batch_id,
                                             Anchor.state == "confirmed")).first()


def latest_anchors(session: Session, batch_ids: set[int]) -> dict[int, Anchor]:
    """The newest anchor of each batch (re-sent or replaced ones come later)."""
    if not batch_ids:
        return {}
    latest = {}
    for anchor in session.exec(select(Anchor).where(Anchor.batch_id.in_(batch_ids))
                               .order_by(Anchor.id)):
        latest[anchor.batch_id] = anchor
    return latest


def anchor_view(anchor: Anchor | None) -> dict | None:
    """The JSON shape of an anchor in the API."""
    if anchor is None:
        return None
    return {
        "state": anchor.state, "txHash": anchor.tx_hash, "chainId": anchor.chain_id,
        "sender": anchor.sender, "nonce": anchor.nonce, "blockNumber": anchor.block_number,
        "blockHash": anchor.block_hash, "blockTime": anchor.block_time,
    }


@functools.lru_cache(maxsize=64)
def _sibling_query(depth: int) -> sa.TextClause:
    """One statement reading the 32-byte sibling of each of ``depth`` levels."""
    parts = [f"SELECT {i} AS step, substr(nodes, :o{i}, {merkle.NODE}) AS node FROM tree_page "
             f"WHERE batch_id = :b AND level = :l{i} AND page = :p{i}" for i in range(depth)]
    return sa.text(" UNION ALL ".join(parts))


def proof_for(session: Session, batch: Batch, leaf_index: int) -> list[dict]:
    """The Merkle path of a leaf: one small page read per level of the stored tree."""
    proof = _stored_proof(session.connection(), batch.id, leaf_index, batch.leaf_count,
                          batch.root)
    if proof is None:
        return merkle.proof_from_levels(rebuild_levels(session, batch), leaf_index)
    return proof


def _stored_proof(connection: sa.Connection, batch_id: int, leaf_index: int,
                  leaf_count: int, root: bytes) -> list[dict] | None:
    """The path from the stored tree: the lower levels' siblings in one small read, the
    upper levels' from memory. ``None`` if any page is missing."""
    positions = merkle.sibling_positions(leaf_index, leaf_count)
    upper = _upper_levels(connection, batch_id, bytes(root), leaf_count)
    if upper is None:
        return None
    lower = [p for p in positions if p[0] < UPPER_LEVELS_FROM]
    params = {"b": batch_id}
    for step, (level, index, _) in enumerate(lower):
        page, offset = merkle.page_of(index)
        params.update({f"l{step}": level, f"p{step}": page, f"o{step}": offset + 1})
    found = dict(_driver_rows(connection, _sibling_query(len(lower)), params)) if lower else {}
    nodes = [found.get(step) for step in range(len(lower))] + [
        upper[level][index * merkle.NODE:(index + 1) * merkle.NODE]
        for level, index, _ in positions[len(lower):]]
    if any(node is None or len(node) != merkle.NODE for node in nodes):
        return None
    return merkle.proof_from_nodes(positions, [bytes(node) for node in nodes])


class _LevelCache:
    """Batches' upper tree levels, shared by a process's request threads: the least recently
    used batch goes first once the bytes held pass ``budget`` (the newest always stays)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._entries: collections.OrderedDict[tuple[int, bytes], dict[int, bytes]] = (
            collections.OrderedDict())
        self._held = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[int, bytes]) -> dict[int, bytes] | None:
        with self._lock:
            levels = self._entries.get(key)
            if levels is not None:
                self._entries.move_to_end(key)
            return levels

    def put(self, key: tuple[int, bytes], levels: dict[int, bytes]) -> None:
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = levels
            self._held += _size(levels)
            while len(self._entries) > 1 and self._held > self.budget:
                _, dropped = self._entries.popitem(last=False)
                self._held -= _size(dropped)

    def keys(self) -> list[tuple[int, bytes]]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._held = 0


def _size(levels: dict[int, bytes]) -> int:
    return sum(len(nodes) for nodes in levels.values())


# The tree's levels from this one up are kept in memory, recently used batches' worth up to
# a byte budget: together they hold about 1/8 as many nodes as there are leaves (4 MiB for a
# batch of a million), and a proof then reads only its four lowest siblings from the
# database (each level read costs about as much as the whole rest of the proof's work).
UPPER_LEVELS_FROM = 4
_UPPER_CACHE = _LevelCache(budget=32 * 2**20)


def _upper_levels(connection: sa.Connection, batch_id: int, root: bytes,
                  leaf_count: int) -> dict[int, bytes] | None:
    """A batch's stored levels from ``UPPER_LEVELS_FROM`` up (pages never change once
    written: the tree is derived from immutable leaves), or ``None`` if some are missing."""
    key = (batch_id, root)
    if (levels := _UPPER_CACHE.get(key)) is not None:
        return levels
    sizes = merkle.level_sizes(leaf_count)
    pages: dict[int, list[bytes]] = {}
    for level, nodes in _driver_rows(connection, _UPPER_PAGES, {"b": batch_id,
                                                                "from": UPPER_LEVELS_FROM}):
        pages.setdefault(level, []).append(bytes(nodes))
    levels = {level: b"".join(pages.get(level, [])) for level in
              range(UPPER_LEVELS_FROM, len(sizes))}
    if any(len(levels[level]) != sizes[level] * merkle.NODE for level in levels):
        return None
    _UPPER_CACHE.put(key, levels)
    return levels


_UPPER_PAGES = sa.text("SELECT level, nodes FROM tree_page WHERE batch_id = :b "
                       "AND level >= :from ORDER BY level, page")


@functools.lru_cache(maxsize=256)
def _driver_sql(statement: sa.ClauseElement, dialect_class: type) -> str:
    """The statement in the driver's own SQL, with named parameters."""
    style = "named" if dialect_class.name == "sqlite" else "pyformat"
    return str(statement.compile(dialect=dialect_class(paramstyle=style)))


def _driver_rows(connection: sa.Connection, statement: sa.ClauseElement,
                 params: dict) -> list[tuple]:
    """Rows of a cached statement straight from the driver, on the connection's transaction.

    For the receipt download, the hottest read: SQLAlchemy's per-execution work (parameter
    and result processing) cost as much as SQLite's. Both drivers in use take a dict for
    their paramstyle (``:name`` and ``%(name)s``), and every column read this way comes back
    from them as the right Python type (``str``, ``int``, ``bytes``).
    """
    sql = _driver_sql(statement, type(connection.dialect))
    cursor = connection.connection.driver_connection.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()
    finally:
        cursor.close()


def driver_stream(connection: sa.Connection, statement: sa.ClauseElement,
                  chunk: int = 10_000) -> Iterator[tuple]:
    """Every row of a statement straight from the driver, ``chunk`` at a time, on the
    connection's transaction: a server-side cursor on PostgreSQL, SQLite's own stepping
    elsewhere, so a million rows are never all in memory. For whole-table passes
    (``trialnotary check``), where building SQLAlchemy rows would cost as much as the
    database's own work."""
    sql = _driver_sql(statement, type(connection.dialect))
    driver = connection.connection.driver_connection
    server_side = connection.dialect.name == "postgresql"
    cursor = driver.cursor(name="trialnotary_stream") if server_side else driver.cursor()
    try:
        cursor.execute(sql, {})
        while rows := cursor.fetchmany(chunk):
            yield from rows
    finally:
        cursor.close()


def rebuild_levels(session: Session, batch: Batch) -> list[bytes]:
    """Rebuild a batch's tree from its leaves (the source of truth) and store it again."""
    levels = merkle.build_levels(batch_leaves(session, batch))
    if merkle.root_of(levels) != batch.root:
        raise RuntimeError(f"batch {batch.id}: its leaves no longer give its root")
    session.execute(sa.delete(TreePage).where(TreePage.batch_id == batch.id))
    _store_levels(session, batch.id, levels)
    session.commit()
    log.warning("batch %s: tree levels rebuilt from the leaves", batch.id)
    return levels


def slot_of(session: Session, registration: Registration) -> LeafSlot | None:
    """Where a registration was sealed, or ``None`` while it is pending."""
    return session.get(LeafSlot, registration.seq)


def receipt_for(session: Session, registration: Registration) -> dict | None:
    """The receipt of a registration, or ``None`` until its anchor is confirmed."""
    slot = slot_of(session, registration)
    if slot is None:
        return None
    batch = session.get(Batch, slot.batch_id)
    if batch is None or batch.state != "confirmed":
        return None
    anchor = confirmed_anchor(session, batch.id)
    if anchor is None:
        return None
    return _receipt(registration, slot, batch, anchor,
                    proof_for(session, batch, slot.leaf_index))


_CONFIRMED_STATE = sa.literal_column("'confirmed'")
_S, _L, _B, _A = (Registration.__table__.c, LeafSlot.__table__.c, Batch.__table__.c,
                  Anchor.__table__.c)
_CONFIRMED = (
    sa.select(_S.id, _S.trial, _S.site, _S.kind, _S.dataset, _S.sha256, _S.size_bytes,
              _S.filename, _S.supersedes, _S.submitted_at, _S.leaf, _L.leaf_index,
              _L.batch_id, _B.leaf_count, _B.sealed_at, _B.root, _A.tx_hash, _A.chain_id,
              _A.sender, _A.block_number, _A.block_hash, _A.block_time)
    .join_from(Registration.__table__, LeafSlot.__table__, _L.seq == _S.seq)
    .join(Batch.__table__, _B.id == _L.batch_id)
    .join(Anchor.__table__, _A.batch_id == _B.id)
    .where(_S.id == sa.bindparam("id"), _B.state == _CONFIRMED_STATE,
           _A.state == _CONFIRMED_STATE))


_ConfirmedRow = collections.namedtuple("_ConfirmedRow",
                                       [c.name for c in _CONFIRMED.selected_columns])


def confirmed_receipt(connection: sa.Connection, registration_id: str) -> dict | None:
    """The receipt of a confirmed registration in two indexed reads and no ORM objects
    (the download path: several times cheaper than :func:`receipt_for`); ``None`` when it
    is not confirmed, or its stored tree needs rebuilding (:func:`receipt_for` does that)."""
    rows = _driver_rows(connection, _CONFIRMED, {"id": registration_id})
    if not rows:
        return None
    row = _ConfirmedRow(*rows[0])
    proof = _stored_proof(connection, row.batch_id, row.leaf_index, row.leaf_count, row.root)
    if proof is None:
        return None
    record = {"id": row.id, "trial": row.trial, "site": row.site, "kind": row.kind,
              "dataset": row.dataset, "sha256": row.sha256, "sizeBytes": row.size_bytes,
              "filename": row.filename, "supersedes": row.supersedes,
              "submittedAt": row.submitted_at}
    return build_receipt(
        record=record, leaf=bytes(row.leaf), root=bytes(row.root), proof=proof,
        anchor={"tx_hash": row.tx_hash, "chain_id": row.chain_id, "sender": row.sender,
                "block_number": row.block_number, "block_hash": row.block_hash,
                "block_time": row.block_time},
        batch={"id": row.batch_id, "leaf_index": row.leaf_index,
               "leaf_count": row.leaf_count, "sealed_at": row.sealed_at})


def receipts_of(session: Session, sealed: list[tuple[Registration, LeafSlot]]) -> Iterator[
        tuple[Registration, dict]]:
    """Receipts of many sealed registrations (a trial's bundle): each batch's anchor and
    stored tree are read once, not once per receipt. Unconfirmed ones are left out."""
    by_batch: dict[int, list[tuple[Registration, LeafSlot]]] = {}
    for registration, slot in sealed:
        by_batch.setdefault(slot.batch_id, []).append((registration, slot))
    for batch_id, members in by_batch.items():
        batch = session.get(Batch, batch_id)
        anchor = confirmed_anchor(session, batch_id) if batch.state == "confirmed" else None
        if anchor is None:
            continue
        levels = stored_levels(session, batch)
        for registration, slot in members:
            proof = merkle.proof_from_levels(levels, slot.leaf_index)
            yield registration, _receipt(registration, slot, batch, anchor, proof)


def stored_levels(session: Session, batch: Batch) -> list[bytes]:
    """A batch's whole stored tree, or the tree rebuilt from its leaves if pages are lost."""
    rows = session.execute(select(TreePage.level, TreePage.nodes)
                           .where(TreePage.batch_id == batch.id)
                           .order_by(TreePage.level, TreePage.page)).all()
    levels: dict[int, list[bytes]] = {}
    for level, nodes in rows:
        levels.setdefault(level, []).append(bytes(nodes))
    joined = [b"".join(levels.get(i, [])) for i in range(len(levels))]
    sizes = merkle.level_sizes(batch.leaf_count)
    if [len(level) for level in joined] != [size * merkle.NODE for size in sizes]:
        return rebuild_levels(session, batch)
    return joined


def _receipt(registration: Registration, slot: LeafSlot, batch: Batch, anchor: Anchor,
             proof: list[dict]) -> dict:
    return build_receipt(
        record=registration.record(),
        leaf=registration.leaf,
        root=batch.root,
        proof=proof,
        anchor={"tx_hash": anchor.tx_hash, "chain_id": anchor.chain_id,
                "sender": anchor.sender, "block_number": anchor.block_number,
                "block_hash": anchor.block_hash, "block_time": anchor.block_time},
        batch={"id": batch.id, "leaf_index": slot.leaf_index,
               "leaf_count": batch.leaf_count, "sealed_at": batch.sealed_at},
    )
