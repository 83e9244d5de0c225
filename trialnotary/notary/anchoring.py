"""Anchoring: from sealed batches to confirmed anchors, whatever each chain does.

Each configured anchor runs on its own (``anchorers``): an EVM chain's rounds here, an RFC
3161 authority's in ``stamping``. Each first rolls the batches up into what it attests
(``rollups``: a batch alone, or the batches of a period).

An EVM round runs in one process at a time per anchor (``db.chain_lock``) and works only
from what the database and the chain say now, so any process can take over after any crash:

1. **mend gaps**: when the node's account nonce is below what we recorded as mined (a
   node restarted from older state), every anchor it lost is sent again, in nonce order;
2. **recheck**: confirmed anchors not yet final are checked again; one whose block left
   the canonical chain (a reorg) puts its batch back to ``sent`` and is sent again, so a
   receipt never shows a block that is not canonical;
3. **follow** each batch's live anchors: mined and confirmed → confirmed (the others of
   that nonce are ``replaced``); mined but reverted → ``failed``, signed again; unknown to
   the node → sent again from the kept bytes; pending too long → replaced by a transaction
   with the same nonce and higher fees (within the cap); nonce taken by a transaction not
   ours → ``dropped``, signed again with a new nonce;
4. **sign** each sealed roll-up without a live anchor, its bytes committed before sending;
5. **send** signed anchors from their kept bytes.

A roll-up's live anchors share one nonce, so at most one transaction per roll-up survives.
Steps 1–3 are ``following``'s, 4 and 5 ``sending``'s; this module runs the round, and the
jobs that run rounds.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from trialnotary.anchor_config import EVM, AnchorSpec
from trialnotary.config import Settings
from trialnotary.db import as_utc, chain_lock, utcnow, write_session
from trialnotary.notary import identity
from trialnotary.notary.batches import pending_count, seal_all, seal_audit_head
from trialnotary.notary.chain import ChainClient
from trialnotary.notary.errors import (
    ChainError,
    ChainUnreachable,
    FeeAboveCap,
    NotaryError,
)
from trialnotary.notary.following import (
    backfill_evidence,
    follow,
    mend_gaps,
    recheck_confirmed,
)
from trialnotary.notary.models import Anchor, Batch, ChainStatus
from trialnotary.notary.renewal import is_retired
from trialnotary.notary.rollups import register_anchors, roll_up
from trialnotary.notary.sending import broadcast, sign_new
from trialnotary.notary.stamping import stamp_round, tsa_client

log = logging.getLogger(__name__)
STATUS_EVERY = timedelta(seconds=30)


@dataclass
class Round:
    """What one round did."""

    signed: list[Anchor] = field(default_factory=list)
    sent: list[Anchor] = field(default_factory=list)
    confirmed: list[int] = field(default_factory=list)
    replaced: list[Anchor] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)
    reverted: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    evidenced: list[int] = field(default_factory=list)  # batches given their evidence late


# --- one round -----------------------------------------------------------------------

def anchor_round(engine: Engine, chain: ChainClient, *, wait: float = 0) -> Round | None:
    """One round of the state machine, or ``None`` when another process holds the chain
    lock (for up to ``wait`` seconds). Raises ``ChainError`` when the chain cannot be used;
    whatever was done before stays done."""
    deadline = time.monotonic() + wait
    while True:
        with chain_lock(engine, chain.lock_name) as held:
            if held and is_retired(engine, chain.name):
                return Round()
            if held:
                chain.ensure_chain()
                identity.prepare_signer(engine, chain)
                done = Round()
                mend_gaps(engine, chain, done)
                recheck_confirmed(engine, chain, done)
                follow(engine, chain, done)
                backfill_evidence(engine, chain, done)
                register_anchors(engine, chain.settings.anchors)
                roll_up(engine, chain.spec)
                done.signed = sign_new(engine, chain)
                done.sent = broadcast(engine, chain)
                identity.after_round(engine, chain.settings, done.confirmed)
                return done
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.2)


def anchor_sealed(engine: Engine, chain: ChainClient) -> list[Anchor]:
    """Sign and send anchors for every sealed batch now (``seal-now``, tests)."""
    done = anchor_round(engine, chain, wait=30)
    return [] if done is None else done.sent


def confirm_sent(engine: Engine, chain: ChainClient) -> list[int]:
    """Follow the sent anchors once; the ids of the batches confirmed now."""
    done = anchor_round(engine, chain, wait=30)
    return [] if done is None else done.confirmed


# --- status, backoff and the jobs ----------------------------------------------------

def record_status(engine: Engine, name: str, *, reachable: bool, alert: str | None) -> None:
    """Note what anchor ``name``'s chain (or authority) looks like: on every change, else at
    most every 30 s."""
    with write_session(engine) as session:
        row = _status_row(session, name)
        now = utcnow()
        if row is None:
            session.add(ChainStatus(anchor=name, reachable=reachable, since=now,
                                    checked_at=now, alert=alert))
        elif row.reachable != reachable or row.alert != alert:
            row.reachable, row.alert, row.since, row.checked_at = reachable, alert, now, now
            session.add(row)
        elif now - as_utc(row.checked_at) >= STATUS_EVERY:
            row.checked_at = now
            session.add(row)
        else:
            return
        session.commit()


def _status_row(session: Session, name: str) -> ChainStatus | None:
    return session.exec(select(ChainStatus).where(ChainStatus.anchor == name)).first()


def chain_status(session: Session, name: str | None = None, *, among=None,
                 best: bool = False) -> ChainStatus | None:
    """Anchor ``name``'s status. Without a name, over the anchors at work (not retired;
    ``among``: only those names, the configured ones): the worst (an alert first, then an
    unreachable one), so that one anchor's trouble is never hidden from an admin; or, with
    ``best``, the best, since one anchor that works is enough for a receipt."""
    if name is not None:
        return _status_row(session, name)
    query = select(ChainStatus).where(ChainStatus.retired_at.is_(None)).order_by(ChainStatus.id)
    if among is not None:
        query = query.where(ChainStatus.anchor.in_(list(among)))
    rows = list(session.exec(query))
    trouble = lambda row: (row.alert is None, row.reachable)  # noqa: E731
    return (max if best else min)(rows, key=trouble, default=None)


def anchor_statuses(session: Session) -> dict[str, ChainStatus]:
    return {row.anchor: row for row in session.exec(select(ChainStatus))}


class Backoff:
    """Waits between chain attempts after failures: 1, 2, 4 … up to 60 s."""

    def __init__(self, ceiling: float = 60.0):
        self.ceiling, self.failures, self.next_at = ceiling, 0, 0.0

    def due(self) -> bool:
        return time.monotonic() >= self.next_at

    def failed(self) -> float:
        self.failures += 1
        delay = min(self.ceiling, 2.0 ** (self.failures - 1))
        self.next_at = time.monotonic() + delay
        return delay

    def succeeded(self) -> None:
        self.failures, self.next_at = 0, 0.0


def chain_round(engine: Engine, chain: ChainClient, backoff: Backoff | None = None,
                *, wait: float = 0) -> Round | None:
    """A round that never raises: failures are noted as the chain's status (the alert an
    admin sees) and delay the next attempt."""
    backoff = backoff or Backoff()
    if not backoff.due():
        return None
    register_anchors(engine, chain.settings.anchors)
    try:
        done = anchor_round(engine, chain, wait=wait)
    except ChainError as exc:
        delay = backoff.failed()
        record_status(engine, chain.name, reachable=not isinstance(exc, ChainUnreachable),
                      alert=str(exc)[:500])
        level = logging.WARNING if isinstance(exc, (ChainUnreachable, FeeAboveCap)) \
            else logging.ERROR
        log.log(level, "anchoring postponed %.0f s: %s", delay, exc)
        return None
    backoff.succeeded()
    if done is not None:
        record_status(engine, chain.name, reachable=True, alert=None)
    return done


class EvmAnchorer:
    """An EVM anchor's rounds, with their own backoff."""

    def __init__(self, chain: ChainClient, backoff: Backoff | None = None):
        self.chain, self.name, self.backoff = chain, chain.name, backoff or Backoff()

    def prepare(self, engine: Engine) -> None:
        identity.seed_if_new(engine, self.chain)

    def run(self, engine: Engine, *, wait: float = 0) -> Round | None:
        if is_retired(engine, self.name):
            return None
        return chain_round(engine, self.chain, self.backoff, wait=wait)


class StampAnchorer:
    """An RFC 3161 anchor's rounds (``stamping``), with their own backoff."""

    def __init__(self, spec: AnchorSpec, client, backoff: Backoff | None = None):
        self.spec, self.client, self.name = spec, client, spec.name
        self.backoff = backoff or Backoff()

    def prepare(self, engine: Engine) -> None:
        pass

    def run(self, engine: Engine, *, wait: float = 0) -> Round | None:
        if not self.backoff.due() or is_retired(engine, self.name):
            return None
        try:
            done = stamp_round(engine, self.spec, self.client, Round(), wait=wait)
        except NotaryError as exc:
            delay = self.backoff.failed()
            record_status(engine, self.name, reachable=not isinstance(exc, ChainUnreachable),
                          alert=str(exc)[:500])
            log.warning("%s: time-stamping postponed %.0f s: %s", self.name, delay, exc)
            return None
        self.backoff.succeeded()
        if done is not None:
            record_status(engine, self.name, reachable=True, alert=None)
        return done


def anchorers(settings: Settings, chain: ChainClient | None = None,
              timeout: float = 10.0) -> list:
    """One anchorer per configured anchor, in order (``chain``: a client to use for its
    anchor instead of a new one)."""
    found = []
    for spec in settings.anchors:
        if spec.kind == EVM:
            client = chain if chain is not None and chain.name == spec.name \
                else ChainClient(settings, timeout, anchor=spec)
            found.append(EvmAnchorer(client))
        else:
            found.append(StampAnchorer(spec, tsa_client(spec, timeout)))
    return found


def probe_authorities(workers: list) -> None:
    """Ask each time-stamp authority for a time-stamp before the first round: one whose
    replies cannot be read, or do not verify against its configured CA, is a configuration
    error now (``TsaMisconfigured``), not a round failing again and again. One that does not
    answer yet is only warned about: its rounds wait for it."""
    for worker in workers:
        if not isinstance(worker, StampAnchorer):
            continue
        try:
            worker.client.probe()
        except ChainError as exc:
            log.warning("%s: the time-stamp authority cannot be used yet: %s", worker.name, exc)


def _as_anchorers(chain, backoff: Backoff | None) -> list:
    """``chain``: one chain's client (its anchor alone), or the anchorers to run."""
    return [EvmAnchorer(chain, backoff)] if isinstance(chain, ChainClient) else list(chain)


def run_rounds(engine: Engine, workers: list, *, wait: float = 0) -> Round | None:
    """A round of each anchor, one after the other (``seal-now``, the tests); the scheduler
    runs each anchor in a job of its own instead. ``None`` when none ran."""
    rounds = [done for worker in workers
              if (done := worker.run(engine, wait=wait)) is not None]
    if not rounds:
        return None
    merged = Round()
    for done in rounds:
        for name in merged.__dataclass_fields__:
            getattr(merged, name).extend(getattr(done, name))
    return merged


@dataclass
class TickResult:
    sealed: list[Batch]
    round: Round | None

    @property
    def sent(self) -> list[Anchor]:
        return [] if self.round is None else self.round.sent

    @property
    def confirmed(self) -> list[int]:
        return [] if self.round is None else self.round.confirmed


def run_seal_job(engine: Engine, chain, max_batch: int,
                 backoff: Backoff | None = None, *, audit_wait: float | None = None,
                 anchor: bool = True) -> TickResult:
    """The seal interval's job: seal what is pending (or, with ``audit_wait``, the audit
    head alone once its entries have waited that long), then (with ``anchor``) a round of
    each anchor. ``chain``: one chain's client, or the anchorers (``anchorers``)."""
    workers = _as_anchorers(chain, backoff)
    for worker in workers:
        worker.prepare(engine)
    sealed = seal_all(engine, max_batch) or _waiting_head(engine, audit_wait)
    return TickResult(sealed, run_rounds(engine, workers) if anchor else None)


def run_tick(engine: Engine, chain, max_batch: int,
             backoff: Backoff | None = None, *, audit_wait: float | None = None,
             anchor: bool = True) -> TickResult:
    """The once-a-second job: seal early when a full batch waits, or (with ``audit_wait``)
    the audit head alone as soon as its entries have waited that long; then (with
    ``anchor``) a round of each anchor."""
    workers = _as_anchorers(chain, backoff)
    for worker in workers:
        worker.prepare(engine)
    with Session(engine) as session:
        full = pending_count(session) >= max_batch
    sealed = seal_all(engine, max_batch, full_only=True) if full else \
        _waiting_head(engine, audit_wait)
    return TickResult(sealed, run_rounds(engine, workers) if anchor else None)


def _waiting_head(engine: Engine, audit_wait: float | None) -> list[Batch]:
    if audit_wait is None:
        return []
    batch = seal_audit_head(engine, audit_wait)
    return [] if batch is None else [batch]

