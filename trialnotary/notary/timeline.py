"""A trial's proven timeline from the database, judged by the verifier's own rules
(:mod:`trialnotary.proof.timeline`; docs/verification.md, "Was it pre-specified?").

A registration's proven time is what its receipt would prove: the earliest time among the
confirmed anchors of its batch, over every anchor kind (an EVM transaction's block time, a
time-stamp's genTime; each through the roll-up holding the batch), in the verifier's form
(RFC 3339, whole seconds, ``Z``). So the page, its JSON export and ``trialnotary timeline
--json`` over the trial's receipts zip agree. A registration not yet anchored has none
(its status says why: pending, sealed or sent). A retired chain's anchor counts by its block
time, as a verifier with a node of that chain sees it.

The rules are judged over all the trial's registrations; filters (kind, site) only narrow
what is listed. A trial of 100,000 registrations is read with column selects, not ORM
objects, and kept per process under a fingerprint of what could change it (the newest
registration, the batches and their ``anchors_version``).
"""

from __future__ import annotations

import collections
import contextlib
import gc
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TypeVar

import sqlalchemy as sa
from sqlmodel import Session

from trialnotary.notary.batches import registration_status
from trialnotary.notary.chain import ChainClient
from trialnotary.notary.driver import driver_rows
from trialnotary.notary.errors import ChainError
from trialnotary.notary.models import (
    RECORD_COLUMNS,
    Anchor,
    Batch,
    LeafSlot,
    Registration,
    Rollup,
    RollupBatch,
    Stamp,
    record_of,
)
from trialnotary.notary.states import AnchorState, BatchState, RegistrationStatus
from trialnotary.proof.facts import FAILED
from trialnotary.proof.receipt import block_time
from trialnotary.proof.timeline import SIGN_OFF, Entry, Timeline, Verified, build

PAGE_SIZE = 500
T = TypeVar("T")
_S, _L, _B = Registration.__table__.c, LeafSlot.__table__.c, Batch.__table__.c
_RB, _R, _A, _T = (RollupBatch.__table__.c, Rollup.__table__.c, Anchor.__table__.c,
                   Stamp.__table__.c)


@dataclass
class TrialTimeline:
    """The proven timeline of a trial (``timeline``: every registration, every rule judged;
    each entry's ``verified.state`` its status) and why each correction was made
    (``reasons``, by registration id)."""

    trial: str
    timeline: Timeline
    reasons: dict[str, str] = field(default_factory=dict)
    #: The entries failed by :meth:`failing` (id and why, sorted); ``()`` for none.
    failures: tuple = ()

    @property
    def ok(self) -> bool:
        """Every rule holds and every registration is proven (a receipt given to the
        verifier for each)."""
        return self.timeline.rules_hold and all(entry.proven_time is not None
                                                for entry in self.timeline.entries)

    def kinds(self) -> list[str]:
        return sorted({entry.kind for entry in self.timeline.entries})

    def sites(self) -> list[str]:
        return sorted({entry.field("site") for entry in self.timeline.entries})

    def listed(self, *, kind: str | None = None, site: str | None = None) -> list[Entry]:
        """The entries in proven order, narrowed to a kind and a site where given."""
        return [entry for entry in self.timeline.entries
                if (kind is None or entry.kind == kind)
                and (site is None or entry.field("site") == site)]

    @cached_property
    def _sign_offs(self) -> dict[str, Entry]:
        return {entry.id: entry for entry in self.timeline.entries if entry.kind == SIGN_OFF}

    def signatures(self, entries: Iterable[Entry]) -> dict[str, list[Entry]]:
        """The sign-offs of each of ``entries`` that has any (by entry id), in proven order:
        what the timeline shows attached to the registration signed."""
        return {entry.id: [self._sign_offs[sign_off] for sign_off in entry.sign_offs
                           if sign_off in self._sign_offs]
                for entry in entries if entry.sign_offs}

    @cached_property
    def naming_blocks(self) -> list[Entry]:
        """The entries whose record names a ``notBefore`` block (few: beacons)."""
        return [entry for entry in self.timeline.entries
                if isinstance(entry.field("notBefore"), dict)]

    @cached_property
    def _failing(self) -> dict[tuple, TrialTimeline]:
        return {}

    def failing(self, why: Mapping[str, str]) -> TrialTimeline:
        """This timeline with the entries of ``why`` (by id) failed as the verifier fails
        them (no proven time; their ``not-before`` step fails), judged again; itself when
        none fails. Kept per set of failures, so a page does not judge 100,000 again."""
        if not why:
            return self
        key = tuple(sorted(why.items()))
        if key not in self._failing:
            verified = [replace(entry.verified, proven_time=None, state=FAILED,
                                why=why[entry.id], made_after=None)
                        if entry.id in why else entry.verified
                        for entry in self.timeline.entries]
            failed = TrialTimeline(self.trial, build(verified), self.reasons)
            failed.failures = key
            self._failing[key] = failed
        return self._failing[key]

    def to_json(self, entries: Iterable[Entry] | None = None,
                made_after: Mapping[str, dict] | None = None) -> dict:
        """``trialnotary timeline --json``'s shape (``ok``, ``entries``, ``checks``, each
        entry and check as the verifier writes it), and the trial; each ``madeAfter`` as
        the verifier's from the blocks of ``made_after`` (:func:`made_after`) where given."""
        chosen = self.timeline.entries if entries is None else entries
        return {"ok": self.ok, "trial": self.trial,
                "entries": [_entry_json(entry, made_after) for entry in chosen],
                "checks": [check.to_json() for check in self.timeline.checks]}

    def json_text(self, entries: Iterable[Entry] | None = None,
                  made_after: Mapping[str, dict] | None = None, **extra) -> str:
        """:meth:`to_json` with ``extra`` keys, written as JSON text (the export)."""
        with collector_paused():
            return json.dumps({**self.to_json(entries, made_after), **extra},
                              ensure_ascii=False)


def _entry_json(entry: Entry, made_after: Mapping[str, dict] | None) -> dict:
    answer = entry.to_json()
    if made_after and "madeAfter" in answer:
        answer["madeAfter"] = interval_start(entry, made_after.get(entry.id))
    return answer


def batch_proven_times(session: Session, batch_ids: Iterable[int] | None = None,
                       *, trial: str | None = None) -> dict[int, str]:
    """Per confirmed batch (of those given, or holding a registration of ``trial``), the
    earliest time its confirmed anchors prove: what its receipts' verification proves."""
    times: dict[int, str] = {}
    for query in _proven_queries():
        if trial is not None:
            query = query.where(_RB.batch_id.in_(
                sa.select(_L.batch_id).join(Registration.__table__, _S.seq == _L.seq)
                .where(_S.trial == trial)))
        elif batch_ids is not None:
            query = query.where(_RB.batch_id.in_(list(batch_ids)))
        for batch_id, proven in session.execute(query):
            if proven is not None and (batch_id not in times or proven < times[batch_id]):
                times[batch_id] = proven
    return times


def _proven_queries() -> list[sa.Select]:
    """The earliest EVM block time and the earliest genTime of each confirmed batch's
    confirmed roll-ups (the anchors a receipt of the batch carries)."""
    held = (sa.select(_RB.batch_id).join(Rollup.__table__, _R.id == _RB.rollup_id)
            .join(Batch.__table__, _B.id == _RB.batch_id)
            .where(_R.state == BatchState.CONFIRMED, _B.state == BatchState.CONFIRMED)
            .group_by(_RB.batch_id))
    evm = held.add_columns(sa.func.min(_A.block_time)).join(
        Anchor.__table__, sa.and_(_A.rollup_id == _R.id, _A.state == AnchorState.CONFIRMED))
    stamped = held.add_columns(sa.func.min(_T.gen_time)).join(Stamp.__table__,
                                                              _T.rollup_id == _R.id)
    return [evm, stamped]


_ROWS = (sa.select(*(_S[column] for column in RECORD_COLUMNS), _S.reason, _L.batch_id,
                   _B.state)
         .outerjoin(LeafSlot.__table__, _L.seq == _S.seq)
         .outerjoin(Batch.__table__, _B.id == _L.batch_id)
         .where(_S.trial == sa.bindparam("trial")))
#: An entry's ``receipt``: where the notary serves it (the API's receipt of one registration).
RECEIPT_PATH = "/api/v1/submissions/{}/receipt"


def build_timeline(session: Session, trial: str) -> TrialTimeline:
    """Every registration of ``trial`` with its proven time, ordered and judged. Rows come
    straight from the driver, and the collector pauses while the objects are made: for a
    trial of 100,000 registrations both halve the time."""
    proven = batch_proven_times(session, trial=trial)
    verified, reasons = [], {}
    columns = len(RECORD_COLUMNS)
    with collector_paused():
        for row in driver_rows(session.connection(), _ROWS, {"trial": trial}):
            record = record_of(row[:columns])
            registration_id = record["id"]
            reason, batch_id, state = row[columns:]
            status = registration_status(state)
            when = proven.get(batch_id)
            verified.append(Verified(RECEIPT_PATH.format(registration_id), record, when,
                                     status, None if when is not None else _why(status)))
            if reason is not None:
                reasons[registration_id] = reason
        return TrialTimeline(trial, build(verified), reasons)


@contextlib.contextmanager
def collector_paused():
    """The cyclic garbage collector paused: building or writing the 100,000 entries of a
    trial's timeline makes millions of objects and no cycle, and the collector's passes
    over them cost a fifth of the time."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _why(status: str) -> str:
    if status == RegistrationStatus.PENDING:
        return "not yet proven: waiting to be sealed"
    return f"not yet proven: its batch is {status}, no anchor confirmed yet"


def fingerprint(session: Session) -> tuple:
    """What changes whenever any trial's timeline may, in one query: the registrations (how
    many, and the newest: on PostgreSQL a lower ``seq`` may commit after a higher one, so
    the newest alone would miss it), and the batches (sealing adds one; a state or an
    anchor changing raises ``anchors_version``)."""
    over = [(Registration.__table__, sa.func.count()), (Registration.__table__,
                                                        sa.func.max(_S.seq)),
            (Batch.__table__, sa.func.count()), (Batch.__table__, sa.func.max(_B.id)),
            (Batch.__table__, sa.func.sum(_B.anchors_version))]
    return tuple(session.execute(sa.select(*(sa.select(value).select_from(table)
                                             .scalar_subquery()
                                             for table, value in over))).one())


class Kept:
    """What this process built lately from the registrations (a trial's timeline, its
    published view), each with the fingerprint it was built under: a page of a trial of
    100,000 registrations is then a slice, not a rebuild. Bounded by the entries held in
    all (``size`` of each), the least recently used dropped first; the newest is always
    kept."""

    def __init__(self, max_entries: int = 300_000):
        self.max_entries, self.held = max_entries, 0
        self.kept: collections.OrderedDict = collections.OrderedDict()
        self.lock = threading.Lock()

    def get(self, session: Session, key: tuple, build: Callable[[], T],
            size: Callable[[T], int]) -> T:
        key = (str(session.get_bind().url), *key)
        mark = fingerprint(session)
        with self.lock:
            found = self.kept.get(key)
            if found is not None and found[0] == mark:
                self.kept.move_to_end(key)
                return found[1]
        built = build()
        with self.lock:
            if key in self.kept:
                self.held -= self.kept.pop(key)[2]
            self.kept[key] = (mark, built, size(built))
            self.held += self.kept[key][2]
            while self.held > self.max_entries and len(self.kept) > 1:
                self.held -= self.kept.popitem(last=False)[1][2]
        return built


    def clear(self) -> None:
        with self.lock:
            self.kept.clear()
            self.held = 0


def entries_in(timeline: TrialTimeline) -> int:
    return len(timeline.timeline.entries)


#: Every timeline and published view this process keeps: 300,000 entries in all.
KEPT = Kept()


def trial_timeline(session: Session, trial: str) -> TrialTimeline:
    """:func:`build_timeline`, kept while nothing it depends on changes."""
    return KEPT.get(session, ("trial", trial), lambda: build_timeline(session, trial),
                    entries_in)


def checked_timeline(session: Session, trial: str, chain: ChainClient | None,
                     *, limit: int | None = 200) -> TrialTimeline:
    """:func:`trial_timeline` with every record whose ``notBefore`` the verifier's
    ``not-before`` step would fail shown failed, not proven (:func:`not_before_failures`):
    the page says what ``trialnotary timeline`` says."""
    kept = trial_timeline(session, trial)
    return kept.failing(not_before_failures(chain, kept.naming_blocks, limit=limit))


def page_of(entries: list[Entry], page: int) -> list[Entry]:
    start = (max(page, 1) - 1) * PAGE_SIZE
    return entries[start:start + PAGE_SIZE]


# --- "made after": the block a record's notBefore names ----------------------------------

class _BlockTimes:
    """The times of the blocks records name as ``notBefore``, asked of the notary's own
    node with a short timeout and kept for the process: only definitive answers (a block's
    time never changes; nor does another hash at a number the node has)."""

    def __init__(self):
        self.kept: dict[tuple, str | object] = {}
        self.lock = threading.Lock()

    def known(self, key: tuple) -> tuple[bool, str | object | None]:
        with self.lock:
            return key in self.kept, self.kept.get(key)

    def keep(self, key: tuple, time: str | object) -> None:
        with self.lock:
            self.kept[key] = time


_BLOCK_TIMES = _BlockTimes()
#: What ``_block_time`` answers when the node does not.
_NO_ANSWER = object()
#: What ``_block_time`` answers when the node has another block at that number.
OFF_CHAIN = object()
#: ... and when it has no block of that number yet (not on the chain now; not kept).
NOT_YET = object()


def _block_time(chain: ChainClient, chain_id, number, block_hash):
    """The block's time; ``OFF_CHAIN``; ``NOT_YET``; ``None`` for another chain than the
    node's (not checked here); ``_NO_ANSWER``."""
    if chain_id != chain.settings.chain_id or not isinstance(number, int):
        return None
    try:
        block = chain.block_if_any(number)
    except ChainError:
        return _NO_ANSWER
    if not isinstance(block, dict) or not block.get("hash"):
        return NOT_YET
    if block["hash"].lower() != block_hash:
        return OFF_CHAIN
    return block_time(int(block["timestamp"], 16))


def _definitive(answer) -> bool:
    """Worth keeping: a block's time, or another hash at a number the node has (a number
    it has not yet may still come with that hash)."""
    return isinstance(answer, str) or answer is OFF_CHAIN


def block_answers(chain: ChainClient | None, entries: Iterable[Entry], *,
                  limit: int | None = 20) -> dict[str, str | object | None]:
    """Per entry id whose record names a ``notBefore`` block: the block's time, ``OFF_CHAIN``,
    ``NOT_YET`` or ``None`` (not known: another chain, or the node silent). At most
    ``limit`` blocks not yet kept are asked for (every one for ``None``), and none after
    the node failed to answer once, so a page waits for the node a bounded time."""
    found, asked, answering = {}, 0, chain is not None
    for entry in entries:
        not_before = entry.field("notBefore")
        if not isinstance(not_before, dict):
            continue
        key = (not_before.get("chainId"), not_before.get("blockNumber"),
               not_before.get("blockHash"))
        known, time = _BLOCK_TIMES.known(key)
        if not known and answering and (limit is None or asked < limit):
            asked += 1
            time = _block_time(chain, *key)
            if time is _NO_ANSWER:
                answering, time = False, None
            elif _definitive(time):
                _BLOCK_TIMES.keep(key, time)
        found[entry.id] = time
    return found


def not_before_failures(chain: ChainClient | None, entries: Iterable[Entry], *,
                        limit: int | None = 200) -> dict[str, str]:
    """Per proven entry whose ``notBefore`` the verifier's ``not-before`` step fails, why:
    its block is not on the chain, or its time is after the proven time. A block not known
    (the node silent, another chain) fails nothing: the entry stays proven, "not checked"."""
    failures = {}
    chosen = {entry.id: entry for entry in entries if entry.proven_time is not None}
    for entry_id, time in block_answers(chain, chosen.values(), limit=limit).items():
        entry = chosen[entry_id]
        named = entry.field("notBefore")
        if time is OFF_CHAIN or time is NOT_YET:
            failures[entry_id] = (f"not-before failed: block {named['blockNumber']} of chain "
                                  f"{named['chainId']} is not {named['blockHash']}: the "
                                  "record names a block not on the chain")
        elif isinstance(time, str) and time > entry.proven_time:
            failures[entry_id] = (f"not-before failed: made after block "
                                  f"{named['blockNumber']} at {time}, later than the proven "
                                  f"time {entry.proven_time}")
    return failures


def made_after(chain: ChainClient | None, entries: Iterable[Entry], *,
               limit: int | None = 20) -> dict[str, dict]:
    """Per entry id whose record names a ``notBefore`` block: that ``notBefore`` with the
    block's ``blockTime`` (``None`` when not known or not on the chain), the blocks asked
    as :func:`block_answers` asks them."""
    entries = list(entries)
    answers = block_answers(chain, entries, limit=limit)
    return {entry.id: {**entry.field("notBefore"),
                       "blockTime": time if isinstance(time, str) else None}
            for entry in entries if entry.id in answers
            for time in (answers[entry.id],)}


def interval_start(entry: Entry, after: dict | None) -> dict | None:
    """The verifier's ``madeAfter`` (``verify --json``, ``timeline --json``): the block
    named, with its time, when its ``not-before`` step passes (the block is this chain's, as
    named, and no later than the entry's proven time); else ``None``."""
    if (after is None or after.get("blockTime") is None or entry.proven_time is None
            or after["blockTime"] > entry.proven_time):
        return None
    return after
