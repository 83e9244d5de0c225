"""What the pages show: registrations as a principal may see them, a trial's dashboard,
its audit-report rows and its receipts. Read-only queries, no Flask.

Scope follows ``access``: an admin sees everything, a sponsor its granted trials, a
coordinator its granted sites; callers pass the principal and get only that.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from trialnotary.db import as_utc, utcnow
from trialnotary.filenames import receipt_filename
from trialnotary.notary.anchoring import chain_status
from trialnotary.notary.batches import registration_status
from trialnotary.notary.models import (
    Anchor,
    Batch,
    LeafSlot,
    Registration,
    Rollup,
    RollupBatch,
    Stamp,
)
from trialnotary.notary.receipts import latest_anchors, receipts_of
from trialnotary.notary.registrations import first_corrections
from trialnotary.notary.states import AnchorState, BatchState, RegistrationStatus
from trialnotary.people.access import Principal, sees_every_trial
from trialnotary.people.models import SiteToken, Trial, User, UserToken
from trialnotary.people.states import Role

PAGE_SIZE = 100
ID_SLICE = 1000  # ids per query: a database binds only so many parameters
EXPLORERS = {
    1: "https://etherscan.io/tx/",
    11155111: "https://sepolia.etherscan.io/tx/",
    560048: "https://hoodi.etherscan.io/tx/",
}


def explorer_url(chain_id: int | None, tx_hash: str | None) -> str | None:
    """A public block explorer's page of a transaction (public chains only)."""
    if not tx_hash or chain_id not in EXPLORERS:
        return None
    return EXPLORERS[chain_id] + "0x" + tx_hash.removeprefix("0x")


def _scoped(query, principal: Principal):
    if sees_every_trial(principal):
        return query
    if principal.role == Role.SPONSOR:
        return query.where(Registration.trial.in_(principal.trials))
    if principal.role == Role.COORDINATOR:
        return query.where(Registration.site.in_(principal.sites))
    return query.where(sa.false())


def _first_confirmed_anchor():
    """Per batch, its first confirmed EVM transaction (of any anchor)."""
    return (select(RollupBatch.batch_id, sa.func.min(Anchor.id).label("anchor_id"))
            .join(Anchor, Anchor.rollup_id == RollupBatch.rollup_id)
            .where(Anchor.state == AnchorState.CONFIRMED)
            .group_by(RollupBatch.batch_id).subquery("first_anchor"))


_CORRECTION = aliased(Registration, name="correction")


def _rows_query():
    """Registrations with their slot, batch, confirmed anchor and the correction that
    supersedes them (``None`` where there is none)."""
    first = first_corrections()
    confirmed = _first_confirmed_anchor()
    return (select(Registration, LeafSlot.batch_id, LeafSlot.leaf_index, Batch.state,
                   Anchor.tx_hash, Anchor.chain_id, Anchor.block_number, Anchor.block_time,
                   _CORRECTION.id, _CORRECTION.reason)
            .outerjoin(LeafSlot, LeafSlot.seq == Registration.seq)
            .outerjoin(Batch, Batch.id == LeafSlot.batch_id)
            .outerjoin(confirmed, confirmed.c.batch_id == Batch.id)
            .outerjoin(Anchor, Anchor.id == confirmed.c.anchor_id)
            .outerjoin(first, first.c.target == Registration.id)
            .outerjoin(_CORRECTION, _CORRECTION.seq == first.c.seq))


def _row_view(registration: Registration, batch_id, leaf_index, state, tx_hash, chain_id,
              block_number, block_time, superseded_by, superseded_reason) -> dict:
    record = registration.record()
    return {
        **record, "status": registration_status(state),
        "reason": registration.reason,
        "batchId": batch_id, "leafIndex": leaf_index,
        "txHash": None if tx_hash is None else "0x" + tx_hash, "chainId": chain_id,
        "blockNumber": block_number, "blockTime": block_time,
        "supersededBy": superseded_by, "supersededReason": superseded_reason,
        "signOff": record.get("signOff"),
    }


@dataclass(frozen=True)
class Filters:
    """What the registrations list can be narrowed to (all optional)."""

    trial: str | None = None
    site: str | None = None
    kind: str | None = None
    label: str | None = None       # part of the label or the file name
    status: str | None = None
    date_from: str | None = None   # YYYY-MM-DD, on submittedAt (UTC), inclusive
    date_to: str | None = None     # YYYY-MM-DD, inclusive
    sha256: str | None = None


def _filtered(query, filters: Filters):
    if filters.trial:
        query = query.where(Registration.trial == filters.trial)
    if filters.site:
        query = query.where(Registration.site == filters.site)
    if filters.kind:
        query = query.where(Registration.kind == filters.kind)
    if filters.label:
        pattern = "%" + filters.label.replace("\\", "\\\\").replace("%", "\\%") \
            .replace("_", "\\_") + "%"
        query = query.where(sa.or_(Registration.dataset.ilike(pattern, escape="\\"),
                                   Registration.filename.ilike(pattern, escape="\\")))
    if filters.date_from:
        query = query.where(Registration.submitted_at >= filters.date_from)
    last = date.fromisoformat(filters.date_to) if filters.date_to else date.max
    if last < date.max:  # the end of 9999-12-31 is after every time: no bound to add
        query = query.where(Registration.submitted_at < (last + timedelta(days=1)).isoformat())
    if filters.sha256:
        query = query.where(Registration.sha256 == filters.sha256.lower())
    if filters.status == RegistrationStatus.PENDING:
        query = query.where(LeafSlot.seq.is_(None))
    elif filters.status:
        query = query.where(Batch.state == filters.status)
    return query


def list_registrations(session: Session, principal: Principal, filters: Filters, *,
                       page: int = 1) -> tuple[list[dict], int]:
    """One page of registrations the principal may see, newest first, and the total."""
    base = _filtered(_scoped(_rows_query(), principal), filters)
    total = session.scalar(select(sa.func.count()).select_from(base.subquery()))
    rows = session.execute(base.order_by(Registration.seq.desc())
                           .offset((max(page, 1) - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    return [_row_view(*row) for row in rows], total


def newer_registrations(session: Session, principal: Principal, filters: Filters,
                        after_id: str | None) -> list[dict]:
    """Registrations the principal may see, matching the filters, stored after ``after_id``
    (all of them without it, or when it is unknown), newest first, at most a page: the
    rows a list shows without reloading when they are registered elsewhere (API, CLI)."""
    query = _filtered(_scoped(_rows_query(), principal), filters)
    if after_id:
        after = session.scalar(select(Registration.seq).where(Registration.id == after_id))
        if after is not None:
            query = query.where(Registration.seq > after)
    rows = session.execute(query.order_by(Registration.seq.desc()).limit(PAGE_SIZE)).all()
    return [_row_view(*row) for row in rows]


def statuses(session: Session, principal: Principal, ids: list[str]) -> dict[str, dict]:
    """Current status of the given registrations (those the principal may see)."""
    rows = session.execute(_scoped(_rows_query(), principal)
                           .where(Registration.id.in_(ids[:500]))).all()
    return {view["id"]: {key: view[key] for key in ("status", "batchId", "txHash",
                                                     "blockTime")}
            for view in (_row_view(*row) for row in rows)}


def visible_trials(session: Session, principal: Principal) -> list[Trial]:
    query = select(Trial).order_by(Trial.registry_id)
    if not sees_every_trial(principal):
        query = query.where(Trial.registry_id.in_(principal.trials))
    return list(session.exec(query))


# --- a trial -------------------------------------------------------------------------

def trial_dashboard(session: Session, trial: str) -> dict:
    """Counts by site, kind and status, and the batches holding the trial's registrations
    with their anchors, newest first."""
    rows = session.execute(
        select(Registration.site, Registration.kind, Batch.state, sa.func.count())
        .outerjoin(LeafSlot, LeafSlot.seq == Registration.seq)
        .outerjoin(Batch, Batch.id == LeafSlot.batch_id)
        .where(Registration.trial == trial)
        .group_by(Registration.site, Registration.kind, Batch.state)).all()
    by_site, by_kind, by_status = Counter(), Counter(), Counter()
    for site, kind, state, count in rows:
        by_site[site] += count
        by_kind[kind] += count
        by_status[registration_status(state)] += count
    batches = session.execute(
        select(Batch, sa.func.count(Registration.seq))
        .join(LeafSlot, LeafSlot.batch_id == Batch.id)
        .join(Registration, Registration.seq == LeafSlot.seq)
        .where(Registration.trial == trial)
        .group_by(Batch.id).order_by(Batch.id.desc()).limit(200)).all()
    anchors = {batch_id: _anchor_view(anchor) for batch_id, anchor in
               latest_anchors(session, {batch.id for batch, _ in batches}).items()}
    timeline = [{
        "id": batch.id, "state": batch.state, "sealedAt": batch.sealed_at,
        "leafCount": batch.leaf_count, "ofTrial": count, "root": bytes(batch.root).hex(),
        "anchor": anchors.get(batch.id),
    } for batch, count in batches]
    return {"bySite": dict(sorted(by_site.items())), "byKind": dict(sorted(by_kind.items())),
            "byStatus": dict(by_status), "total": sum(by_site.values()), "batches": timeline}


def _anchor_view(anchor: Anchor) -> dict:
    return {"state": anchor.state, "txHash": "0x" + anchor.tx_hash, "chainId": anchor.chain_id,
            "blockNumber": anchor.block_number, "blockTime": anchor.block_time,
            "explorer": explorer_url(anchor.chain_id, anchor.tx_hash)}


def _report_query():
    return (_rows_query().add_columns(User.email, User.role, SiteToken.prefix)
            .outerjoin(User, User.id == Registration.user_id)
            .outerjoin(SiteToken, SiteToken.id == Registration.token_id))


def report_rows(session: Session, trial: str) -> list[dict]:
    """Every registration of a trial for its audit report, oldest first, with who
    registered it: a user (web form) or a site token (API, CLI)."""
    return _report_rows(session, _report_query().where(Registration.trial == trial))


def visible_report_rows(session: Session, principal: Principal,
                        ids: list[str] | None = None) -> list[dict]:
    """:func:`report_rows` of what the principal may see (or of those of ``ids``)."""
    return [row for query in _visible(_report_query(), principal, ids)
            for row in _report_rows(session, query)]


def _visible(query, principal: Principal, ids: list[str] | None):
    """``query`` narrowed to the principal's scope, as one query or, for a list of ids,
    one per slice of ``ID_SLICE`` ids."""
    query = _scoped(query, principal)
    if ids is None:
        return [query]
    return [query.where(Registration.id.in_(ids[start:start + ID_SLICE]))
            for start in range(0, len(ids), ID_SLICE)]


def _report_rows(session: Session, query) -> list[dict]:
    rows = session.execute(query.order_by(Registration.seq)).all()
    result = []
    for *row, email, role, prefix in rows:
        view = _row_view(*row)
        if email:
            who = f"{email} ({role})"
        elif prefix:
            who = f"site token {prefix}… ({view['site']})"
        else:
            who = None
        result.append({**view, "registeredBy": who})
    return result


def _confirmed():
    return (select(Registration, LeafSlot).join(LeafSlot, LeafSlot.seq == Registration.seq)
            .join(Batch, Batch.id == LeafSlot.batch_id).where(Batch.state == BatchState.CONFIRMED))


def _receipts(session: Session, query, notary: dict) -> Iterator[tuple[str, dict]]:
    sealed = session.execute(query.order_by(Registration.seq)).all()
    for registration, receipt in receipts_of(session, [tuple(row) for row in sealed], notary):
        yield (receipt_filename(registration.trial, registration.dataset, registration.id), receipt)


# --- a batch -------------------------------------------------------------------------

def batch_detail(session: Session, batch_id: int, *, page: int = 1,
                 page_size: int = PAGE_SIZE) -> dict | None:
    """A batch for the admin: root, every anchor attempt (re-sent, replaced, dropped ones
    too, oldest first), and one page of its registrations in leaf order."""
    batch = session.get(Batch, batch_id)
    if batch is None:
        return None
    anchors = list(session.exec(select(Anchor)
                                .join(RollupBatch, RollupBatch.rollup_id == Anchor.rollup_id)
                                .where(RollupBatch.batch_id == batch_id).order_by(Anchor.id)))
    in_batch = LeafSlot.batch_id == batch_id
    count = session.scalar(select(sa.func.count()).select_from(LeafSlot).where(in_batch))
    rows = session.execute(
        select(Registration, LeafSlot.leaf_index).join(LeafSlot, LeafSlot.seq == Registration.seq)
        .where(in_batch).order_by(LeafSlot.leaf_index)
        .offset((max(page, 1) - 1) * page_size).limit(page_size)).all()
    return {"batch": batch, "root": bytes(batch.root).hex(), "anchors": anchors,
            "perAnchor": anchor_states(session, batch_id),
            "explorers": {anchor.id: explorer_url(anchor.chain_id, anchor.tx_hash)
                          for anchor in anchors},
            "registrations": [{**registration.record(), "leafIndex": leaf_index}
                              for registration, leaf_index in rows],
            "registrationCount": count}


def anchor_states(session: Session, batch_id: int) -> list[dict]:
    """Each anchor's roll-up holding this batch: its state, how many batches it holds, and
    the time its confirmed transaction or time-stamp proves."""
    rows = session.exec(
        select(RollupBatch.anchor, Rollup.id, Rollup.state, Rollup.leaf_count, Stamp.gen_time,
               Stamp.tsa)
        .join(Rollup, Rollup.id == RollupBatch.rollup_id)
        .outerjoin(Stamp, Stamp.rollup_id == Rollup.id)
        .where(RollupBatch.batch_id == batch_id).order_by(RollupBatch.anchor)).all()
    proven = dict(session.exec(select(Anchor.rollup_id, Anchor.block_time).where(
        Anchor.rollup_id.in_([row[1] for row in rows]),
        Anchor.state == AnchorState.CONFIRMED)).all())
    return [{"name": name, "state": state, "batches": count, "tsa": tsa,
             "provenTime": gen_time or proven.get(rollup_id)}
            for name, rollup_id, state, count, gen_time, tsa in rows]


def trial_receipts(session: Session, trial: str, notary: dict,
                   kinds: Collection[str] | None = None) -> Iterator[tuple[str, dict]]:
    """(download name, receipt) of every confirmed registration of a trial (of ``kinds``
    only, where given: a published timeline's)."""
    query = _confirmed().where(Registration.trial == trial)
    if kinds is not None:
        query = query.where(Registration.kind.in_(list(kinds)))
    return _receipts(session, query, notary)


def visible_receipts(session: Session, principal: Principal, notary: dict,
                     ids: list[str] | None = None) -> Iterator[tuple[str, dict]]:
    """(download name, receipt) of every confirmed registration the principal may see (a
    coordinator: of its sites), or of those of ``ids`` among them (one upload)."""
    for query in _visible(_confirmed(), principal, ids):
        yield from _receipts(session, query, notary)


# --- waiting for a receipt -----------------------------------------------------------

#: Seconds per block of the chains we anchor on (anvil as ``make run`` starts it).
BLOCK_SECONDS = {31337: 1, 11155111: 12, 560048: 12, 1: 12}
#: Blocks until "finalized" on a proof-of-stake chain: about two epochs of 32 slots.
FINALIZED_BLOCKS = 64


@dataclass(frozen=True)
class Wait:
    """What a registration waits for, as the pages tell it: the next seal, then the
    confirmations; and the chain's trouble, if any, since when."""

    next_seal_at: datetime
    expected_by: datetime
    confirmation_seconds: float
    chain_unreachable_since: datetime | None
    anchoring_held_since: datetime | None


def expected_wait(session: Session, *, seal_interval_seconds: float, confirmations: int | str,
                  chain_id: int, now: datetime | None = None) -> Wait:
    """When a registration made now should have its receipt. The scheduler seals on a
    fixed interval, so the next seal follows the last one by whole intervals (at most one
    interval away when nothing was sealed yet); then the anchor's block and its
    confirmations, at the chain's block time."""
    now = now or utcnow()
    interval = timedelta(seconds=seal_interval_seconds)
    last = session.scalar(select(sa.func.max(Batch.sealed_at)))
    next_seal = now + interval
    if last is not None:
        last_at = datetime.fromisoformat(last.replace("Z", "+00:00"))
        periods = max(1, -(-(now - last_at) // interval))
        next_seal = min(next_seal, last_at + periods * interval)
    blocks = FINALIZED_BLOCKS if confirmations == "finalized" else int(confirmations)
    confirming = (blocks + 1) * BLOCK_SECONDS.get(chain_id, 12)
    status = chain_status(session, best=True)  # one anchor that works issues the receipt
    return Wait(next_seal_at=next_seal,
                expected_by=next_seal + timedelta(seconds=confirming),
                confirmation_seconds=confirming,
                chain_unreachable_since=as_utc(status.since)
                if status and not status.reachable else None,
                anchoring_held_since=as_utc(status.since)
                if status and status.reachable and status.alert else None)


# --- what else the web's views read ------------------------------------------------------

def site_token(session: Session, token_id: int) -> SiteToken | None:
    return session.get(SiteToken, token_id)


def user_token(session: Session, token_id: int) -> UserToken | None:
    return session.get(UserToken, token_id)


def user(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def newest_anchor_sender(session: Session) -> str | None:
    """The account that sent the newest anchoring transaction, if any was sent."""
    return session.scalar(sa.select(Anchor.sender).order_by(Anchor.id.desc()).limit(1))


def database_answers(engine: sa.engine.Engine) -> bool:
    """Whether the database answers a trivial query now (readiness)."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        return False
    return True
