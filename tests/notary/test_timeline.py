"""A trial's timeline from the database (``notary.timeline``): the proven time of a batch
is its earliest confirmed anchor over every anchor kind, as its receipts' verification
proves; unconfirmed anchors and batches prove nothing; the timeline kept per process is
rebuilt when a registration or a batch changes; the published timeline hides sites."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from tests.conftest import insert_registrations
from trialnotary import db
from trialnotary.notary import batches, publication
from trialnotary.notary import timeline as trial_timelines
from trialnotary.notary.models import Anchor, Batch, Registration, Rollup, RollupBatch, Stamp
from trialnotary.people import sites

TRIAL = "NCT01234567"


@pytest.fixture
def trial(engine):
    with db.write_session(engine) as session:
        sites.add_trial(session, TRIAL)
        sites.add_site(session, TRIAL, "SITE-01")
        session.commit()


def rollup(conn, batch_id: int, anchor: str, state: str = "confirmed") -> int:
    rollup_id = conn.execute(sa.insert(Rollup).values(
        anchor=anchor, root=b"\x01" * 32, leaf_count=1, created_at="2026-01-01T00:00:00.000Z",
        state=state)).inserted_primary_key[0]
    conn.execute(sa.insert(RollupBatch).values(anchor=anchor, batch_id=batch_id,
                                               rollup_id=rollup_id, leaf_index=0, proof="[]"))
    return rollup_id


def transaction(conn, rollup_id: int, block_time: str, state: str = "confirmed") -> None:
    conn.execute(sa.insert(Anchor).values(
        name="evm", rollup_id=rollup_id, chain_id=31337, sender="0x" + "11" * 20, nonce=0,
        tx_hash=os.urandom(32).hex(), raw=b"\x00", gas=1, max_fee_per_gas=1,
        max_priority_fee_per_gas=1, state=state, block_number=1, block_time=block_time))


def sealed(engine, count: int) -> list[int]:
    insert_registrations(engine, count)
    return [batch.id for batch in batches.seal_all(engine, count + 1)]


def test_a_batch_is_proven_by_its_earliest_confirmed_anchor_of_any_kind(engine, trial):
    (first,), (second,), (third,) = sealed(engine, 1), sealed(engine, 1), sealed(engine, 1)
    with engine.begin() as conn:
        transaction(conn, rollup(conn, first, "evm"), "2026-03-01T00:00:10Z")
        stamped = rollup(conn, first, "tsa")
        conn.execute(sa.insert(Stamp).values(name="tsa", rollup_id=stamped, token=b"t",
                                             gen_time="2026-03-01T00:00:05Z", tsa="a TSA"))
        transaction(conn, rollup(conn, second, "evm"), "2026-03-01T00:00:01Z", state="sent")
        transaction(conn, rollup(conn, second, "other"), "2026-03-01T00:00:20Z")
        transaction(conn, rollup(conn, third, "evm", state="sent"), "2026-03-01T00:00:02Z")
        conn.execute(sa.update(Batch).where(Batch.id.in_([first, second]))
                     .values(state="confirmed"))
        conn.execute(sa.update(Batch).where(Batch.id == third).values(state="sent"))
    with Session(engine) as session:
        assert trial_timelines.batch_proven_times(session, trial=TRIAL) == {
            first: "2026-03-01T00:00:05Z", second: "2026-03-01T00:00:20Z"}
        built = trial_timelines.build_timeline(session, TRIAL)
    assert [(entry.proven_time, entry.verified.state) for entry in built.timeline.entries] == [
        ("2026-03-01T00:00:05Z", "confirmed"), ("2026-03-01T00:00:20Z", "confirmed"),
        (None, "sent")]
    assert built.timeline.entries[-1].verified.why.startswith("not yet proven: its batch is "
                                                              "sent")
    assert built.ok is False


def test_the_kept_timeline_is_rebuilt_when_a_registration_or_a_batch_changes(engine, trial):
    insert_registrations(engine, 2)
    with Session(engine) as session:
        kept = trial_timelines.trial_timeline(session, TRIAL)
        assert trial_timelines.trial_timeline(session, TRIAL) is kept
    insert_registrations(engine, 1)
    with Session(engine) as session:
        grown = trial_timelines.trial_timeline(session, TRIAL)
    assert grown is not kept and len(grown.timeline.entries) == 3
    assert {entry.verified.state for entry in grown.timeline.entries} == {"pending"}
    batch_id = batches.seal_all(engine, 10)[0].id
    with Session(engine) as session:
        sealed_now = trial_timelines.trial_timeline(session, TRIAL)
    assert {entry.verified.state for entry in sealed_now.timeline.entries} == {"sealed"}
    with engine.begin() as conn:
        transaction(conn, rollup(conn, batch_id, "evm"), "2026-03-01T00:00:10Z")
        conn.execute(sa.update(Batch).where(Batch.id == batch_id).values(
            state="confirmed", anchors_version=Batch.anchors_version + 1))
    with Session(engine) as session:
        confirmed = trial_timelines.trial_timeline(session, TRIAL)
    assert {entry.proven_time for entry in confirmed.timeline.entries} == {
        "2026-03-01T00:00:10Z"}


def test_a_registration_committed_late_with_a_lower_seq_changes_the_fingerprint(engine,
                                                                                  trial):
    """PostgreSQL hands out ``seq`` before commit: one committed after a higher one leaves
    the newest ``seq`` as it was, not the count."""
    insert_registrations(engine, 3)
    with engine.begin() as conn:
        row = dict(conn.execute(sa.select(Registration.__table__).limit(1)).mappings().one())
    with Session(engine) as session:
        before = trial_timelines.fingerprint(session)
    with engine.begin() as conn:  # as if its seq had been taken before the others'
        conn.execute(sa.insert(Registration.__table__).values(
            {**row, "seq": 0, "id": str(uuid.uuid4())}))
    with Session(engine) as session:
        after = trial_timelines.fingerprint(session)
    assert after != before and after[1] == before[1]


def test_the_kept_timelines_are_bounded_by_their_entries_in_all(engine, trial):
    """The least recently used go first once the entries held pass the bound; the newest
    stays whatever its size."""
    kept = trial_timelines.Kept(max_entries=10)
    with Session(engine) as session:
        for name, size in (("a", 4), ("b", 4), ("c", 4)):
            kept.get(session, (name,), lambda name=name: name, lambda _, size=size: size)
        assert [key[-1] for key in kept.kept] == ["b", "c"] and kept.held == 8
        kept.get(session, ("b",), lambda: "rebuilt", len)  # kept: used, not rebuilt
        kept.get(session, ("big",), lambda: "big", lambda _: 50)
        assert [key[-1] for key in kept.kept] == ["big"] and kept.held == 50


def test_a_published_timeline_names_no_site_unless_chosen(engine, trial):
    insert_registrations(engine, 2, site="SITE-01")
    with db.write_session(engine) as session:
        sites.add_site(session, TRIAL, "SITE-02")
        session.commit()
    insert_registrations(engine, 1, site="SITE-02")
    batch_id = batches.seal_all(engine, 10)[0].id
    with engine.begin() as conn:
        transaction(conn, rollup(conn, batch_id, "evm"), "2026-03-01T00:00:10Z")
        conn.execute(sa.update(Batch).where(Batch.id == batch_id).values(state="confirmed"))
    with db.write_session(engine) as session:
        publication.publish(session, TRIAL, publication.Choice(("dataset",)), actor="test",
                            user_id=None)
        session.commit()
    with Session(engine) as session:
        hidden, choice = publication.public_timeline(session, TRIAL)
    assert choice == publication.Choice(("dataset",), False, False)
    assert [entry.field("site") for entry in hidden.timeline.entries] == [
        "site 1", "site 1", "site 2"]
    assert "SITE-0" not in str(hidden.to_json())
    with Session(engine) as session:  # kept while nothing changes, per choice
        assert publication.public_timeline(session, TRIAL)[0] is hidden
    with db.write_session(engine) as session:
        publication.publish(session, TRIAL, publication.Choice(("dataset",), True),
                            actor="test", user_id=None)
        session.commit()
    with Session(engine) as session:
        shown = publication.public_timeline(session, TRIAL)[0]
    assert shown is not hidden and "SITE-02" in str(shown.to_json())
    insert_registrations(engine, 1, site="SITE-02")
    with Session(engine) as session:
        assert publication.public_timeline(session, TRIAL)[0] is not shown
    with db.write_session(engine) as session:
        with pytest.raises(ValueError, match="at least one kind"):
            publication.publish(session, TRIAL, publication.Choice(("nothing",)),
                                actor="test", user_id=None)
        assert publication.unpublish(session, TRIAL, actor="test") is True
        session.commit()
    with Session(engine) as session:
        assert publication.public_timeline(session, TRIAL) is None


def test_two_first_publications_at_once_end_as_one_row_and_two_audited_changes(engine,
                                                                              trial):
    """On PostgreSQL both find no row; the second's insert waits for the first's, then meets
    it: it updates that row instead of failing (a 500 before). On SQLite the second waits
    for the write lock and finds the row."""
    first, second = publication.Choice(("dataset",)), publication.Choice(("dataset",), True)
    failed = []

    def racer():
        try:
            with db.write_session(engine) as session:
                publication.publish(session, TRIAL, second, actor="second", user_id=None)
                session.commit()
        except Exception as exc:  # noqa: BLE001 - the test reports it
            failed.append(exc)

    with db.write_session(engine) as session:
        publication.publish(session, TRIAL, first, actor="first", user_id=None)
        session.flush()
        thread = threading.Thread(target=racer)
        thread.start()
        if engine.dialect.name == "postgresql":
            _wait_for_a_lock_wait(engine)
        session.commit()
    thread.join(30)
    assert not thread.is_alive() and failed == []
    with Session(engine) as session:
        assert publication.choice_of(publication.find(session, TRIAL)) == second
        assert session.execute(sa.text("SELECT count(*) FROM publication")).scalar() == 1
        audited = session.execute(sa.text(
            "SELECT actor, old, new FROM audit_entry WHERE action = 'timeline.publish' "
            "ORDER BY seq")).all()
    assert [(actor, old and json.loads(old), json.loads(new)) for actor, old, new in audited] \
        == [("first", None, first.to_json()), ("second", first.to_json(), second.to_json())]


def _wait_for_a_lock_wait(engine) -> None:
    """Until another connection waits for a lock (the racer's insert, on the first's row).
    Each look is a transaction of its own: one keeps its first view of pg_stat_activity."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE "
                                    "wait_event_type = 'Lock' AND datname = "
                                    "current_database()")).scalar():
                return
        time.sleep(0.05)
    pytest.fail("the second publication never waited for the first's row")


def test_a_not_before_block_time_is_asked_once_and_never_again_of_a_silent_node(
        settings, settings_env, anvil):
    from trialnotary.config import load_settings
    from trialnotary.notary.chain import ChainClient
    from trialnotary.proof.timeline import Entry, Verified

    head = anvil.rpc("eth_getBlockByNumber", "latest", False)
    number = int(head["number"], 16)

    def entry(block_hash: str, chain_id: int = 31337) -> Entry:
        record = {"id": os.urandom(4).hex(), "notBefore": {
            "chainId": chain_id, "blockNumber": number, "blockHash": block_hash}}
        return Entry(Verified("r", record, None, "pending"))

    good, other, elsewhere = (entry(head["hash"]), entry("0x" + "ab" * 32),
                              entry(head["hash"], chain_id=1))
    found = trial_timelines.made_after(ChainClient(settings, timeout=2),
                                       [good, other, elsewhere])
    assert found[good.id] == {**good.field("notBefore"),
                              "blockTime": trial_timelines.block_time(
                                  int(head["timestamp"], 16))}
    assert found[other.id] == {**other.field("notBefore"), "blockTime": None}
    assert found[elsewhere.id]["blockTime"] is None
    assert trial_timelines.made_after(None, [good]) == {good.id: found[good.id]}  # kept

    silent = ChainClient(load_settings({**settings_env,
                                        "TRIALNOTARY_CHAIN_RPC_URL": "http://127.0.0.1:9"}),
                         timeout=0.5)
    asked = []
    raw_block = silent.raw_block
    silent.raw_block = lambda block: asked.append(block) or raw_block(block)
    unseen = [entry("0x" + f"{n:02x}" * 32) for n in range(3)]
    assert [value["blockTime"] for value in trial_timelines.made_after(
        silent, unseen).values()] == [None, None, None]
    assert asked == [number]



class _Node:
    """A chain client of chain 31337 whose block N has the hash given and its time N
    seconds after the epoch, keeping what is asked."""

    def __init__(self, block_hash: str):
        self.settings, self.hash, self.asked = type("S", (), {"chain_id": 31337}), block_hash, []

    def raw_block(self, number: int) -> dict:
        self.asked.append(number)
        return {"hash": self.hash, "timestamp": hex(number)}

    block_if_any = raw_block


def test_an_export_asks_every_block_and_gives_the_verifiers_made_after():
    """``limit=None`` (the JSON export) asks every distinct block once; the verifier's
    ``madeAfter`` is the block when it is this chain's and no later than the proven time."""
    from trialnotary.proof.timeline import Entry, Verified

    block_hash = "0x" + os.urandom(32).hex()  # blocks no other test kept

    def entry(number: int, proven: str | None = "1970-01-01T00:16:50Z") -> Entry:
        record = {"id": os.urandom(4).hex(), "notBefore": {
            "chainId": 31337, "blockNumber": number, "blockHash": block_hash}}
        return Entry(Verified("r", record, proven, "confirmed" if proven else "pending"))

    entries = [entry(number) for number in range(1000, 1030)]  # 00:16:40 to 00:17:09
    node = _Node(block_hash)
    found = trial_timelines.made_after(node, [*entries, *entries], limit=None)
    assert node.asked == list(range(1000, 1030))
    bounded = _Node(block_hash)
    trial_timelines.made_after(bounded, [entry(n) for n in range(2000, 2030)], limit=20)
    assert len(bounded.asked) == 20

    early, late, unproven = entries[0], entries[-1], entry(1000, None)
    assert trial_timelines.interval_start(early, found[early.id]) == {
        **early.field("notBefore"), "blockTime": "1970-01-01T00:16:40Z"}
    assert trial_timelines.interval_start(late, found[late.id]) is None  # after its proof
    assert trial_timelines.interval_start(unproven, found[early.id]) is None
    assert trial_timelines.interval_start(early, None) is None
