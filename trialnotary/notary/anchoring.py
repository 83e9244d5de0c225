"""Anchoring: from a sealed batch to a confirmed transaction, whatever the chain does.

A round runs in one process at a time (``db.chain_lock``) and works only from what the
database and the chain say now, so any process can take over after any crash:

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
4. **sign** each sealed batch without a live anchor, its bytes committed before sending;
5. **send** signed anchors from their kept bytes.

A batch's live anchors share one nonce, so at most one transaction per batch survives.
Steps 1–3 are ``following``'s, 4 and 5 ``sending``'s; this module runs the round, and the
jobs that run rounds.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from trialnotary.db import as_utc, chain_lock, utcnow, write_session
from trialnotary.notary import identity
from trialnotary.notary.batches import pending_count, seal_all, seal_audit_head
from trialnotary.notary.chain import ChainClient
from trialnotary.notary.errors import ChainError, ChainUnreachable, FeeAboveCap
from trialnotary.notary.following import (
    backfill_evidence,
    follow,
    mend_gaps,
    recheck_confirmed,
)
from trialnotary.notary.models import Anchor, Batch, ChainStatus
from trialnotary.notary.sending import broadcast, sign_new

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
        with chain_lock(engine) as held:
            if held:
                chain.ensure_chain()
                identity.prepare_signer(engine, chain)
                done = Round()
                mend_gaps(engine, chain, done)
                recheck_confirmed(engine, chain, done)
                follow(engine, chain, done)
                backfill_evidence(engine, chain, done)
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

def record_status(engine: Engine, *, reachable: bool, alert: str | None) -> None:
    """Note what the chain looks like: on every change, else at most every 30 s."""
    with write_session(engine) as session:
        row = session.get(ChainStatus, 1)
        now = utcnow()
        if row is None:
            session.add(ChainStatus(id=1, reachable=reachable, since=now, checked_at=now,
                                    alert=alert))
        elif row.reachable != reachable or row.alert != alert:
            row.reachable, row.alert, row.since, row.checked_at = reachable, alert, now, now
            session.add(row)
        elif now - as_utc(row.checked_at) >= STATUS_EVERY:
            row.checked_at = now
            session.add(row)
        else:
            return
        session.commit()


def chain_status(session: Session) -> ChainStatus | None:
    return session.get(ChainStatus, 1)


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
    try:
        done = anchor_round(engine, chain, wait=wait)
    except ChainError as exc:
        delay = backoff.failed()
        record_status(engine, reachable=not isinstance(exc, ChainUnreachable),
                      alert=str(exc)[:500])
        level = logging.WARNING if isinstance(exc, (ChainUnreachable, FeeAboveCap)) \
            else logging.ERROR
        log.log(level, "anchoring postponed %.0f s: %s", delay, exc)
        return None
    backoff.succeeded()
    if done is not None:
        record_status(engine, reachable=True, alert=None)
    return done


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


def run_seal_job(engine: Engine, chain: ChainClient, max_batch: int,
                 backoff: Backoff | None = None, *, audit_wait: float | None = None
                 ) -> TickResult:
    """The seal interval's job: seal what is pending (or, with ``audit_wait``, the audit
    head alone once its entries have waited that long), then a chain round."""
    identity.seed_if_new(engine, chain)
    sealed = seal_all(engine, max_batch) or _waiting_head(engine, audit_wait)
    return TickResult(sealed, chain_round(engine, chain, backoff))


def run_tick(engine: Engine, chain: ChainClient, max_batch: int,
             backoff: Backoff | None = None, *, audit_wait: float | None = None
             ) -> TickResult:
    """The once-a-second job: seal early when a full batch waits, or (with ``audit_wait``)
    the audit head alone as soon as its entries have waited that long; then a chain round."""
    identity.seed_if_new(engine, chain)
    with Session(engine) as session:
        full = pending_count(session) >= max_batch
    sealed = seal_all(engine, max_batch, full_only=True) if full else \
        _waiting_head(engine, audit_wait)
    return TickResult(sealed, chain_round(engine, chain, backoff))


def _waiting_head(engine: Engine, audit_wait: float | None) -> list[Batch]:
    if audit_wait is None:
        return []
    batch = seal_audit_head(engine, audit_wait)
    return [] if batch is None else [batch]

