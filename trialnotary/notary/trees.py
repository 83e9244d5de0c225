"""The stored trees of sealed batches and the proofs read from them.

A batch's tree is kept as pages of each level (``TreePage``): derived data, rebuilt from
the batch's leaves (the source of truth) whenever a page is missing. A proof reads one small
page per lower level; the upper levels of recently used batches stay in memory.
"""

from __future__ import annotations

import collections
import functools
import logging
import threading

import sqlalchemy as sa
from sqlmodel import Session, select

from trialnotary.notary import merkle
from trialnotary.notary.batches import batch_leaves, store_levels
from trialnotary.notary.driver import driver_rows
from trialnotary.notary.errors import TreeBroken
from trialnotary.notary.models import Batch, TreePage
from trialnotary.proof.receipt import level_sizes, sibling_positions

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=64)
def _sibling_query(depth: int) -> sa.TextClause:
    """One statement reading the 32-byte sibling of each of ``depth`` levels."""
    parts = [f"SELECT {i} AS step, substr(nodes, :o{i}, {merkle.NODE}) AS node FROM tree_page "
             f"WHERE batch_id = :b AND level = :l{i} AND page = :p{i}" for i in range(depth)]
    return sa.text(" UNION ALL ".join(parts))


def proof_for(session: Session, batch: Batch, leaf_index: int) -> list[dict]:
    """The Merkle path of a leaf: one small page read per level of the stored tree."""
    proof = stored_proof(session.connection(), batch.id, leaf_index, batch.leaf_count,
                          batch.root)
    if proof is None:
        return merkle.proof_from_levels(rebuild_levels(session, batch), leaf_index)
    return proof


def stored_proof(connection: sa.Connection, batch_id: int, leaf_index: int,
                  leaf_count: int, root: bytes) -> list[dict] | None:
    """The path from the stored tree: the lower levels' siblings in one small read, the
    upper levels' from memory. ``None`` if any page is missing."""
    positions = sibling_positions(leaf_index, leaf_count)
    upper = _upper_levels(connection, batch_id, bytes(root), leaf_count)
    if upper is None:
        return None
    lower = [p for p in positions if p[0] < UPPER_LEVELS_FROM]
    params = {"b": batch_id}
    for step, (level, index, _) in enumerate(lower):
        page, offset = merkle.page_of(index)
        params.update({f"l{step}": level, f"p{step}": page, f"o{step}": offset + 1})
    found = dict(driver_rows(connection, _sibling_query(len(lower)), params)) if lower else {}
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
    sizes = level_sizes(leaf_count)
    pages: dict[int, list[bytes]] = {}
    for level, nodes in driver_rows(connection, _UPPER_PAGES, {"b": batch_id,
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


def rebuild_levels(session: Session, batch: Batch) -> list[bytes]:
    """Rebuild a batch's tree from its leaves (the source of truth) and store it again."""
    levels = merkle.build_levels(batch_leaves(session, batch))
    if merkle.root_of(levels) != batch.root:
        raise TreeBroken(f"batch {batch.id}: its leaves no longer give its root")
    session.execute(sa.delete(TreePage).where(TreePage.batch_id == batch.id))
    store_levels(session, batch.id, levels)
    session.commit()
    log.warning("batch %s: tree levels rebuilt from the leaves", batch.id)
    return levels


def stored_levels(session: Session, batch: Batch) -> list[bytes]:
    """A batch's whole stored tree, or the tree rebuilt from its leaves if pages are lost."""
    rows = session.execute(select(TreePage.level, TreePage.nodes)
                           .where(TreePage.batch_id == batch.id)
                           .order_by(TreePage.level, TreePage.page)).all()
    levels: dict[int, list[bytes]] = {}
    for level, nodes in rows:
        levels.setdefault(level, []).append(bytes(nodes))
    joined = [b"".join(levels.get(i, [])) for i in range(len(levels))]
    sizes = level_sizes(batch.leaf_count)
    if [len(level) for level in joined] != [size * merkle.NODE for size in sizes]:
        return rebuild_levels(session, batch)
    return joined
