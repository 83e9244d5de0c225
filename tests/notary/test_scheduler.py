"""The scheduler seals on its interval, early on a full batch, never on an empty one."""

import time
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from tests.conftest import insert_registrations
from trialnotary.config import load_settings
from trialnotary.db import utcnow
from trialnotary.notary import identity, scheduler
from trialnotary.notary.chain import ChainClient
from trialnotary.notary.models import Batch, IdempotencyKey
from trialnotary.people.models import SiteToken


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def batch_states(engine):
    with Session(engine) as session:
        return [b.state for b in session.exec(select(Batch).order_by(Batch.id))]


def test_the_seal_interval_seals_anchors_and_confirms(settings_env, engine):
    settings = load_settings({**settings_env, "TRIALNOTARY_SEAL_INTERVAL_SECONDS": "1"})
    jobs = scheduler.start(settings, background=True)
    try:  # first the notary's identity, published at start: its audit entry alone
        assert wait_for(lambda: batch_states(engine) == ["confirmed"])
        time.sleep(2.5)
        assert batch_states(engine) == ["confirmed"]  # empty intervals seal nothing
        insert_registrations(engine, 3)
        assert wait_for(lambda: batch_states(engine) == ["confirmed"] * 2)
    finally:
        jobs.shutdown(wait=True)


def test_a_full_batch_is_sealed_before_the_interval(settings_env, engine):
    settings = load_settings({**settings_env, "TRIALNOTARY_MAX_BATCH": "4"})
    assert settings.seal_interval_seconds == 3600
    identity.seed_if_new(engine, ChainClient(settings))  # an audit entry: every batch holds
    jobs = scheduler.start(settings, background=True)  # the trail's head as its last leaf
    try:
        insert_registrations(engine, 7)
        assert wait_for(lambda: len(batch_states(engine)) == 2, timeout=10)  # 3 + the head
        time.sleep(1.5)
        assert len(batch_states(engine)) == 2  # the seventh waits for the interval
    finally:
        jobs.shutdown(wait=True)


def test_expired_idempotency_keys_are_purged(engine, site_token):
    with Session(engine) as session:
        token_id = session.exec(select(SiteToken.id)).one()
        for key, age in (("old", timedelta(hours=25)), ("new", timedelta(hours=1))):
            session.add(IdempotencyKey(token_id=token_id, key=key, request_digest="0" * 64,
                                       status_code=201, response_body="{}",
                                       created_at=utcnow() - age))
        session.commit()
    assert scheduler.purge_idempotency_keys(engine) == 1
    with Session(engine) as session:
        assert session.exec(select(IdempotencyKey.key)).all() == ["new"]
        assert session.scalar(select(sa.func.count()).select_from(IdempotencyKey)) == 1
