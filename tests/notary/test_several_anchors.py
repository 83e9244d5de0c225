"""Each anchor on its own (trialnotary/notary/rollups.py, anchoring.py, stamping.py): an
anchor added later starts from the batches sealed after it, a time-stamp authority whose
replies cannot be used is a configuration error at start, a silent one only waits."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from tests.conftest import insert_registrations
from tests.tsa import answering_with
from tests.utils import serving_http
from trialnotary import db
from trialnotary.anchor_config import AnchorSpec
from trialnotary.notary import anchoring, batches, rollups, scheduler
from trialnotary.notary.errors import TsaMisconfigured
from trialnotary.notary.models import ChainStatus, RollupBatch
from trialnotary.notary.stamping import tsa_client
from trialnotary.notary.states import BatchState


def tsa_spec(tsa, url: str | None = None) -> AnchorSpec:
    return AnchorSpec(name="tsa", kind="rfc3161", url=url or tsa.url, ca_file=tsa.ca_file)


def covered(engine, name: str) -> list[int]:
    with Session(engine) as session:
        return sorted(session.exec(select(RollupBatch.batch_id)
                                   .where(RollupBatch.anchor == name)))


def test_an_anchor_added_later_starts_with_the_batches_sealed_after_it(engine, settings):
    first = settings.anchors[0]
    insert_registrations(engine, 2)
    old = batches.seal_all(engine, 100)
    rollups.register_anchors(engine, settings.anchors)
    [rollup] = rollups.roll_up(engine, first)
    with db.write_session(engine) as session:  # the first anchor confirmed it
        rollups.set_rollup_state(session, rollup.id, BatchState.CONFIRMED)
        session.commit()
    late = AnchorSpec(name="late", kind="evm", chain_id=5)
    rollups.register_anchors(engine, (late,))
    assert rollups.roll_up(engine, late) == []
    insert_registrations(engine, 1)
    new = batches.seal_all(engine, 100)
    rollups.roll_up(engine, first)
    rollups.roll_up(engine, late)
    assert covered(engine, first.name) == [b.id for b in old + new]
    assert covered(engine, "late") == [b.id for b in new]
    with Session(engine) as session:
        assert session.exec(select(ChainStatus.first_batch_id)
                            .where(ChainStatus.anchor == "late")).one() == new[0].id


def test_a_batch_no_anchor_has_confirmed_is_taken_by_the_others(engine, settings):
    """Sealed before an anchor was added, and never confirmed by the one that took it (its
    chain died, it was retired): the anchors at work take it, so it still gets a receipt."""
    first = settings.anchors[0]
    insert_registrations(engine, 1)
    [stuck] = batches.seal_all(engine, 100)
    rollups.register_anchors(engine, settings.anchors)
    rollups.roll_up(engine, first)
    late = AnchorSpec(name="late", kind="evm", chain_id=5)
    rollups.register_anchors(engine, (late,))
    [rollup] = rollups.roll_up(engine, late)
    assert covered(engine, "late") == [stuck.id] and rollup.leaf_count == 1
    assert rollups.roll_up(engine, late) == []  # taken once


def test_each_batch_of_a_period_waits_for_the_roll_up(engine):
    spec = AnchorSpec(name="daily", kind="evm", chain_id=1, every_seconds=3600, every="1h")
    rollups.register_anchors(engine, (spec,))
    insert_registrations(engine, 1)
    [one] = batches.seal_all(engine, 100)
    insert_registrations(engine, 1)
    [two] = batches.seal_all(engine, 100)
    assert rollups.roll_up(engine, spec) == []  # not a period yet
    from datetime import timedelta

    from trialnotary.db import utcnow

    [rollup] = rollups.roll_up(engine, spec, now=utcnow() + timedelta(hours=1, seconds=1))
    assert rollup.leaf_count == 2 and covered(engine, "daily") == [one.id, two.id]


def test_an_authority_whose_replies_cannot_be_read_stops_the_start(settings, tsa):
    def garbage(_body, _type):
        return 200, "application/timestamp-reply", b"\x30\x03\x02\x01\x00 not a reply"

    with serving_http(answering_with(garbage)) as url:
        spec = tsa_spec(tsa, url + "/tsr")
        workers = [anchoring.StampAnchorer(spec, tsa_client(spec))]
        with pytest.raises(TsaMisconfigured, match="cannot be used"):
            anchoring.probe_authorities(workers)


def test_a_silent_authority_is_waited_for_and_the_round_says_so(engine, settings, tsa, caplog):
    spec = tsa_spec(tsa)
    worker = anchoring.StampAnchorer(spec, tsa_client(spec, timeout=2))
    rollups.register_anchors(engine, (spec,))
    insert_registrations(engine, 1)
    batches.seal_all(engine, 100)
    tsa.stop()
    try:
        anchoring.probe_authorities([worker])  # warns, does not stop the start
        assert worker.run(engine) is None
        with Session(engine) as session:
            status = anchoring.chain_status(session, "tsa")
            assert not status.reachable and status.alert
    finally:
        tsa.start()
    worker.backoff.succeeded()
    done = worker.run(engine)
    assert done is not None and len(done.confirmed) == 1
    with Session(engine) as session:
        assert anchoring.chain_status(session, "tsa").reachable


def test_the_scheduler_refuses_to_start_with_an_unusable_authority(settings, tsa, tmp_path):
    import dataclasses

    def garbage(_body, _type):
        return 200, "text/html", b"<html>login</html>"

    with serving_http(answering_with(garbage)) as url:
        broken = dataclasses.replace(settings, anchors=(*settings.anchors,
                                                        tsa_spec(tsa, url + "/tsr")))
        with pytest.raises(TsaMisconfigured):
            scheduler.start(broken, background=True)


def test_the_start_refuses_to_drop_an_anchor_with_batches_on_their_way(engine, settings):
    """Renamed or removed from the configuration while its roll-ups are unconfirmed, an
    anchor's transactions would never be followed again: the scheduler refuses to start."""
    import dataclasses

    from trialnotary.config import ConfigError

    insert_registrations(engine, 1)
    batches.seal_all(engine, 100)
    rollups.register_anchors(engine, settings.anchors)
    rollups.roll_up(engine, settings.anchors[0])
    renamed = dataclasses.replace(settings.anchors[0], name="renamed")
    moved = dataclasses.replace(settings, anchors=(renamed,))
    assert rollups.dropped_at_work(engine, moved.anchors) == ["local"]
    with pytest.raises(ConfigError, match="local still have batches on their way"):
        scheduler.start(moved, background=True)
    assert rollups.dropped_at_work(engine, settings.anchors) == []
