"""The scheduler: one seal job on the seal interval, one tick every second.

Started by ``serve`` (in the background) or ``worker`` (in the foreground), never by
``create_app``. Both jobs run the same code as ``seal-now`` under the same database lock.
"""

from __future__ import annotations

import fcntl
import logging
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlmodel import Session

from trialnotary.config import ConfigError, Settings, private_opener
from trialnotary.db import WriterBusy, engine_for
from trialnotary.notary import anchoring, registrations, renewal, rollups
from trialnotary.notary.errors import SchedulerAlreadyRunning

log = logging.getLogger(__name__)
TICK_SECONDS = 1.0


def _claim_sqlite(database_url: str):
    """SQLite has no locks that span processes the way PostgreSQL's do, so only one
    scheduler may run per database file; a second one is refused."""
    path = Path(sa.engine.make_url(database_url).database or "")
    lock_file = open(path.with_name(path.name + ".scheduler.lock"), "w",  # noqa: SIM115
                     opener=private_opener)
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock_file.close()
        raise SchedulerAlreadyRunning(
            f"a scheduler already runs on {path}; SQLite allows one (serve or worker). "
            "Use `serve --no-scheduler`, or PostgreSQL for several workers.") from None
    return lock_file


def require_none_running(database_url: str) -> None:
    """Raise :class:`SchedulerAlreadyRunning` now if another process runs a scheduler on
    this SQLite database, before anything that would start one is begun."""
    url = sa.engine.make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    if Path(url.database).parent.is_dir():
        _claim_sqlite(database_url).close()


def _guarded(job, name: str):
    def run():
        try:
            job()
        except WriterBusy as exc:
            log.warning("%s job skipped: %s; it runs again at its next time", name, exc)
        except Exception:
            log.exception("%s job failed; it runs again at its next time", name)
    return run


def purge_idempotency_keys(engine) -> int:
    with Session(engine) as session:
        purged = registrations.purge_expired_keys(session)
        session.commit()
    return purged


def start(settings: Settings, *, background: bool):
    """Build and start the scheduler. In the foreground this blocks until interrupted."""
    workers = anchoring.anchorers(settings)
    anchoring.probe_authorities(workers)
    engine = engine_for(settings)
    dropped = rollups.dropped_at_work(engine, settings.anchors)
    if dropped:
        engine.dispose()
        raise ConfigError(f"the anchor(s) {', '.join(dropped)} still have batches on their way "
                          "but are no longer configured: put their [[anchors]] table back, "
                          "or run `trialnotary anchor retire NAME` before removing it")
    claim = _claim_sqlite(settings.database_url) if engine.dialect.name == "sqlite" else None
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    kind = BackgroundScheduler if background else BlockingScheduler
    scheduler = kind(timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1})
    # Audit entries wait at most one seal interval for a batch (of the head alone if no
    # registration comes): the tick seals it as soon as they have waited that long.
    interval = settings.seal_interval_seconds
    scheduler.add_job(
        _guarded(lambda: anchoring.run_seal_job(engine, workers, settings.max_batch,
                                                audit_wait=interval, anchor=False), "seal"),
        "interval", seconds=interval, id="seal")
    scheduler.add_job(
        _guarded(lambda: anchoring.run_tick(engine, workers, settings.max_batch,
                                            audit_wait=interval, anchor=False), "tick"),
        "interval", seconds=TICK_SECONDS, id="tick", next_run_time=datetime.now(UTC))
    # Each anchor in a job of its own (its own thread, lock and backoff): a dead node or an
    # empty account on one never delays the others.
    for worker in workers:
        scheduler.add_job(_guarded(lambda worker=worker: worker.run(engine),
                                   f"anchor {worker.name}"),
                          "interval", seconds=TICK_SECONDS, id=f"anchor-{worker.name}",
                          next_run_time=datetime.now(UTC))
    scheduler.add_job(_guarded(lambda: renewal.retire_due(engine, settings), "retire"),
                      "interval", minutes=10, id="retire-due",
                      next_run_time=datetime.now(UTC))
    scheduler.add_job(_guarded(lambda: purge_idempotency_keys(engine), "purge"),
                      "interval", hours=1, id="purge-idempotency-keys")
    if claim is not None:
        scheduler.add_listener(lambda _event: claim.close(), EVENT_SCHEDULER_SHUTDOWN)
    log.info("scheduler: seal every %ss, confirmations checked every %ss",
             settings.seal_interval_seconds, TICK_SECONDS)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    return scheduler
