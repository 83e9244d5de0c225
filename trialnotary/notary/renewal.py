"""Retiring an anchor and renewing what it attested (``trialnotary anchor retire NAME``;
docs/receipt.md, "Renewal").

Retiring stops the anchor (``chain_status.retired_at``: its rounds do nothing from then on).
For an EVM anchor it then makes sure each of its confirmed transactions holds its chain
evidence (taken from the chain where missing), builds a tree over their evidence digests
(``proof.receipt.evidence_digest``) in the order they were confirmed, and gives each
remaining anchor a roll-up of no batch whose root is the tree's: their own rounds sign,
send, stamp and confirm it like any other. Every receipt of the retired chain then carries
a ``renewal`` (``receipts``) once one of those is confirmed, and keeps verifying after the
chain is gone.

A retirement is taken up again where it stopped: run again, it finds the anchor retired
and its renewal built, and only sends what is not sent yet.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from trialnotary.anchor_config import EVM, AnchorSpec
from trialnotary.config import Settings
from trialnotary.db import chain_lock, utcnow, write_session
from trialnotary.notary import merkle
from trialnotary.notary.errors import ChainError, RetireRefused
from trialnotary.notary.models import (
    Anchor,
    ChainStatus,
    Renewal,
    RenewalLeaf,
    RenewalRollup,
    Rollup,
    Stamp,
)
from trialnotary.notary.states import LIVE_ANCHOR_STATES, AnchorState, BatchState
from trialnotary.proof.receipt import evidence_digest, rfc3339_ms

log = logging.getLogger(__name__)
#: How long ``retire`` waits for the retired anchor's round in progress to end.
LOCK_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class Unevidenced:
    """A confirmed transaction of the retired anchor whose chain evidence could not be had."""

    tx_hash: str
    block_number: int | None


@dataclass
class Retirement:
    """What ``retire`` did: when the anchor was retired (``already``: by an earlier run),
    how many evidences it took from the chain, the transactions left out for lack of one
    (``--force``), the anchors still in flight that will never be followed, and the
    renewal (``None`` for an RFC 3161 anchor, or an EVM one that never confirmed anything).
    """

    name: str
    retired_at: datetime
    already: bool = False
    backfilled: int = 0
    left_out: list[Unevidenced] = field(default_factory=list)
    in_flight: int = 0
    renewal: Renewal | None = None


@dataclass(frozen=True)
class RetireDate:
    """An anchor's planned retirement, for the admin overview: its ``retire_on`` and the
    days left until it (negative once past), and when it was retired, if it was."""

    name: str
    retire_on: date | None
    days_left: int | None
    retired_at: datetime | None


@dataclass(frozen=True)
class RenewalAnchor:
    """A remaining anchor's attestation of a renewal root: its roll-up's state and what
    carries it (a transaction hash, or a time-stamp's time)."""

    name: str
    state: str
    tx_hash: str | None = None
    gen_time: str | None = None


# --- retired or not ------------------------------------------------------------------

def is_retired(engine: Engine, name: str) -> bool:
    with Session(engine) as session:
        return session.scalar(select(ChainStatus.retired_at)
                              .where(ChainStatus.anchor == name)) is not None


def retired_names(session: Session) -> set[str]:
    return set(session.exec(select(ChainStatus.anchor)
                            .where(ChainStatus.retired_at.is_not(None))))


def retire_dates(session: Session, settings: Settings,
                 today: date | None = None) -> list[RetireDate]:
    """Each configured anchor's ``retire_on`` and days left, in the configured order."""
    today = today or utcnow().date()
    retired = dict(session.execute(select(ChainStatus.anchor, ChainStatus.retired_at)).all())
    return [RetireDate(spec.name, spec.retire_on,
                       None if spec.retire_on is None else (spec.retire_on - today).days,
                       retired.get(spec.name))
            for spec in settings.anchors]


# --- retire --------------------------------------------------------------------------

def retire(engine: Engine, settings: Settings, name: str, *, force: bool = False,
           chain=None) -> Retirement:
    """Stop anchor ``name`` and build its renewal (not sent: ``send_renewal``). Raises
    ``RetireRefused`` for an unknown anchor, when no other anchor would remain, or (unless
    ``force``) when a confirmed transaction's evidence cannot be had: the anchor then stays
    retired, and a later run goes on from there. ``chain``: a client of its chain to use."""
    spec = next((spec for spec in settings.anchors if spec.name == name), None)
    with Session(engine) as session:
        known = session.scalar(select(ChainStatus.id).where(ChainStatus.anchor == name))
        retired = retired_names(session)
    if spec is None and known is None:
        raise RetireRefused(f"no anchor is named {name!r} (configured: "
                            f"{', '.join(s.name for s in settings.anchors)})")
    remaining = remaining_anchors(settings, retired | {name})
    if not remaining:
        raise RetireRefused(f"anchor {name!r} is the last one in use: configure another "
                            f"anchor ([[anchors]] in config.toml) to renew it first")
    with _anchor_lock(engine, name):
        retired_at, already = _mark_retired(engine, name)
        done = Retirement(name, retired_at, already)
        done.renewal = _renewal_of(engine, name)
        if done.renewal is not None or (spec is not None and spec.kind != EVM):
            return done
        done.in_flight = _in_flight(engine, name)
        done.backfilled, missing = _backfill(engine, settings, spec, name, chain)
        if missing and not force:
            raise RetireRefused(_missing_message(name, missing))
        done.left_out = missing
        done.renewal = _build(engine, name, remaining)
    return done


def remaining_anchors(settings: Settings, retired: set[str]) -> list[AnchorSpec]:
    return [spec for spec in settings.anchors if spec.name not in retired]


@contextmanager
def _anchor_lock(engine: Engine, name: str) -> Iterator[None]:
    """The anchor's own lock, so that no round of it runs while it is retired."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        with chain_lock(engine, name) as held:
            if held:
                yield
                return
        if time.monotonic() >= deadline:
            raise RetireRefused(f"anchor {name!r} is busy (a round of it has run for over "
                                f"{LOCK_WAIT_SECONDS:.0f} s); try again")
        time.sleep(0.2)


def _mark_retired(engine: Engine, name: str) -> tuple[datetime, bool]:
    with write_session(engine) as session:
        row = session.exec(select(ChainStatus).where(ChainStatus.anchor == name)).first()
        if row is None:
            row = ChainStatus(anchor=name)
        if row.retired_at is not None:
            return row.retired_at, True
        row.retired_at = utcnow()
        session.add(row)
        session.commit()
        session.refresh(row)
        log.warning("anchor %s retired: it anchors nothing new from now on", name)
        return row.retired_at, False


def _renewal_of(engine: Engine, name: str) -> Renewal | None:
    with Session(engine) as session:
        renewal = session.exec(select(Renewal).where(Renewal.anchor == name)).first()
        if renewal is not None:
            session.expunge(renewal)
        return renewal


def _confirmed(name: str):
    return Anchor.name == name, Anchor.state == AnchorState.CONFIRMED


def _in_flight(engine: Engine, name: str) -> int:
    with Session(engine) as session:
        return session.scalar(select(sa.func.count()).select_from(Anchor).where(
            Anchor.name == name, Anchor.state.in_(LIVE_ANCHOR_STATES)))


def _backfill(engine: Engine, settings: Settings, spec: AnchorSpec | None, name: str,
              chain) -> tuple[int, list[Unevidenced]]:
    """Give each confirmed transaction of ``name`` that lacks it its chain evidence, from
    its chain; how many were given, and those that could not be."""
    with Session(engine) as session:
        lacking = list(session.exec(select(Anchor).where(*_confirmed(name),
                                                         Anchor.evidence.is_(None))
                                    .order_by(Anchor.id)))
    if not lacking:
        return 0, []
    given, missing = 0, []
    if spec is not None:
        from trialnotary.notary.chain import ChainClient
        from trialnotary.notary.following import give_evidence

        chain = chain if chain is not None and chain.name == name \
            else ChainClient(settings, anchor=spec)
        for anchor in lacking:
            try:
                ok = give_evidence(engine, chain, anchor)
            except ChainError as exc:
                log.error("anchor %s: no evidence for 0x%s: %s", name, anchor.tx_hash, exc)
                ok = False
            if ok:
                given += 1
            else:
                missing.append(Unevidenced(anchor.tx_hash, anchor.block_number))
    else:
        missing = [Unevidenced(anchor.tx_hash, anchor.block_number) for anchor in lacking]
    return given, missing


def _missing_message(name: str, missing: list[Unevidenced]) -> str:
    shown = ", ".join(f"0x{item.tx_hash} (block {item.block_number})" for item in missing[:5])
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    return (f"anchor {name!r} is retired, but {len(missing)} of its confirmed transaction(s) "
            f"have no chain evidence and its node cannot give it: {shown}{more}. Their "
            f"receipts could not be renewed. Run `trialnotary anchor retire {name}` again "
            f"once a node of the chain can give it, or with --force to renew the others "
            f"without them.")


# --- the renewal tree ----------------------------------------------------------------

#: What a retired transaction's leaf is made of, in the order the renewal takes them: the
#: order the chain confirmed them (block, then nonce).
_LEAVES = (select(Anchor.id, Anchor.chain_id, Anchor.block_number, Anchor.block_hash,
                  Anchor.tx_hash, Rollup.root)
           .join(Rollup, Rollup.id == Anchor.rollup_id)
           .where(Anchor.name == sa.bindparam("name"),
                  Anchor.state == AnchorState.CONFIRMED.value, Anchor.evidence.is_not(None))
           .order_by(Anchor.block_number, Anchor.nonce, Anchor.id))


def leaf_digest(row) -> bytes:
    """The evidence digest of a retired transaction (a row of ``_LEAVES``)."""
    return evidence_digest(chain_id=row.chain_id, block_number=row.block_number,
                           block_hash=row.block_hash, source_id=row.tx_hash,
                           root=bytes(row.root))


def _build(engine: Engine, name: str, remaining: list[AnchorSpec]) -> Renewal | None:
    """The renewal tree over ``name``'s evidenced transactions, and a roll-up of its root
    for each remaining anchor; ``None`` when it confirmed nothing."""
    with Session(engine) as session:
        rows = session.execute(_LEAVES, {"name": name}).all()
    if not rows:
        return None
    levels = merkle.build_levels([leaf_digest(row) for row in rows])
    root, now = merkle.root_of(levels), rfc3339_ms(utcnow())
    with write_session(engine) as session:
        renewal = Renewal(anchor=name, root=root, leaf_count=len(rows), created_at=now)
        session.add(renewal)
        session.flush()
        session.execute(sa.insert(RenewalLeaf), [
            {"anchor_id": row.id, "renewal_id": renewal.id, "leaf_index": index,
             "proof": json.dumps(merkle.proof_from_levels(levels, index))}
            for index, row in enumerate(rows)])
        for spec in remaining:
            rollup = Rollup(anchor=spec.name, root=root, leaf_count=0, created_at=now)
            session.add(rollup)
            session.flush()
            session.add(RenewalRollup(rollup_id=rollup.id, renewal_id=renewal.id))
        session.commit()
        session.refresh(renewal)
        session.expunge(renewal)
    log.warning("anchor %s: renewal %s over %s transaction(s), root %s, to be anchored on %s",
                name, renewal.id, len(rows), root.hex(), ", ".join(s.name for s in remaining))
    return renewal


# --- sending and following -----------------------------------------------------------

def renewal_anchors(engine: Engine, renewal_id: int) -> list[RenewalAnchor]:
    """Each remaining anchor's attestation of the renewal: its roll-up's state, and its
    newest transaction or its time-stamp."""
    found = []
    with Session(engine) as session:
        rollups = session.exec(select(Rollup).join(RenewalRollup,
                                                   RenewalRollup.rollup_id == Rollup.id)
                               .where(RenewalRollup.renewal_id == renewal_id)
                               .order_by(Rollup.id)).all()
        for rollup in rollups:
            stamp = session.exec(select(Stamp).where(Stamp.rollup_id == rollup.id)).first()
            tx = session.exec(select(Anchor).where(Anchor.rollup_id == rollup.id)
                              .order_by(Anchor.id.desc())).first()
            found.append(RenewalAnchor(rollup.anchor, rollup.state,
                                       tx.tx_hash if tx is not None else None,
                                       stamp.gen_time if stamp is not None else None))
    return found


def send_renewal(engine: Engine, settings: Settings, renewal_id: int,
                 workers: list | None = None) -> list[RenewalAnchor]:
    """Run a round of each remaining anchor whose roll-up of the renewal is not sent yet:
    signed and broadcast on an EVM chain, stamped at a time-stamp authority. Raises the
    anchor's ``ChainError`` (or the authority's ``NotaryError``) when it cannot be sent."""
    from trialnotary.notary import anchoring

    waiting = {item.name for item in renewal_anchors(engine, renewal_id)
               if item.state == BatchState.SEALED}
    for worker in workers if workers is not None else anchoring.anchorers(settings):
        if worker.name not in waiting:
            continue
        if isinstance(worker, anchoring.EvmAnchorer):
            anchoring.anchor_round(engine, worker.chain, wait=LOCK_WAIT_SECONDS)
        else:
            from trialnotary.notary.stamping import stamp_round

            stamp_round(engine, worker.spec, worker.client, anchoring.Round(),
                        wait=LOCK_WAIT_SECONDS)
    return renewal_anchors(engine, renewal_id)


def retire_due(engine: Engine, settings: Settings, today: date | None = None) -> list[str]:
    """The scheduler's job: retire each anchor whose ``retire_on`` has come, and build its
    renewal (sent by the remaining anchors' own rounds); a renewal that could not be built
    is tried again at the next run. The names whose retirement is done now."""
    today = today or utcnow().date()
    with Session(engine) as session:
        settled = set(session.exec(select(Renewal.anchor))) | {
            name for name in retired_names(session)
            if next((s.kind for s in settings.anchors if s.name == name), EVM) != EVM}
    done = []
    for spec in settings.anchors:
        if spec.retire_on is None or spec.retire_on > today or spec.name in settled:
            continue
        try:
            retire(engine, settings, spec.name)
        except RetireRefused as exc:
            log.error("anchor %s: its retire_on %s has come, but: %s", spec.name,
                      spec.retire_on, exc)
            continue
        done.append(spec.name)
    return done


# --- for receipts and checks ---------------------------------------------------------

def renewal_roots(session: Session) -> tuple[dict[int, bytes], list[str]]:
    """Each renewal roll-up's expected root (its renewal's tree, rebuilt from the retired
    transactions' evidence digests), and what does not hold: a tree that no longer gives
    its root, a leaf whose stored path does not fold to it (``trialnotary check``)."""
    from trialnotary.proof.receipt import fold_proof

    expected, problems = {}, []
    for renewal in session.exec(select(Renewal).order_by(Renewal.id)):
        rows = session.execute(
            select(RenewalLeaf.proof, Anchor.chain_id, Anchor.block_number, Anchor.block_hash,
                   Anchor.tx_hash, Rollup.root)
            .join(Anchor, Anchor.id == RenewalLeaf.anchor_id)
            .join(Rollup, Rollup.id == Anchor.rollup_id)
            .where(RenewalLeaf.renewal_id == renewal.id)
            .order_by(RenewalLeaf.leaf_index)).all()
        digests = [leaf_digest(row) for row in rows]
        root = bytes(renewal.root)
        if not digests or merkle.root_of(merkle.build_levels(digests)) != root:
            problems.append(f"the renewal of {renewal.anchor}: its transactions' evidence "
                            "digests no longer give its root")
        for row, digest in zip(rows, digests, strict=True):
            if fold_proof(digest, json.loads(row.proof)) != root:
                problems.append(f"the renewal of {renewal.anchor}: the path of 0x{row.tx_hash}"
                                " does not fold to its root")
        for rollup_id in session.exec(select(RenewalRollup.rollup_id)
                                      .where(RenewalRollup.renewal_id == renewal.id)):
            expected[rollup_id] = root
    return expected, problems
