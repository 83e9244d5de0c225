"""Audit entries never wait more than a seal interval to be anchored: with nothing pending,
a batch holding only the audit head is sealed and anchored, and every part of the notary
takes a batch without registrations. On SQLite and PostgreSQL, against the test anvil."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlmodel import Session, select

from tests.conftest import insert_registrations
from tests.people.test_audit import rewrite, unguard
from tests.utils import (
    add_person,
    bearer,
    quick_password_hashing,
    scalar,
    signed_in,
)
from trialnotary.cli import main
from trialnotary.config import load_settings
from trialnotary.db import write_session
from trialnotary.notary import anchoring, batches, merkle, scheduler
from trialnotary.notary.models import Batch
from trialnotary.people import accounts, audit, sites, user_tokens
from trialnotary.proof.receipt import audit_head_leaf

WAIT = 1.5  # the seal interval of these tests, in seconds
TRIAL = "NCT01234567"


@pytest.fixture(autouse=True)
def quick_argon2():
    with quick_password_hashing():
        yield


def head_of(engine) -> audit.Head:
    with Session(engine) as session:
        return audit.head(session)


def all_batches(engine) -> list[Batch]:
    with Session(engine) as session:
        return list(session.exec(select(Batch).order_by(Batch.id)))


def tick(engine, chain, audit_wait: float = WAIT):
    return anchoring.run_tick(engine, chain, 100, audit_wait=audit_wait)


def waited(engine) -> None:
    """Sleep until the oldest unsealed audit entry has waited ``WAIT`` seconds."""
    with Session(engine) as session:
        since = batches.unsealed_since(session)
    assert since is not None
    time.sleep(max(0.0, WAIT - (time.time() - since.timestamp())) + 0.05)


def confirm(engine, chain, anvil) -> None:
    anchoring.anchor_sealed(engine, chain)
    anvil.mine(3)
    anchoring.confirm_sent(engine, chain)
    assert {batch.state for batch in all_batches(engine)} == {"confirmed"}


def run(settings_env, *args):
    return CliRunner().invoke(main, list(args), env=settings_env, catch_exceptions=False)


def test_admin_changes_alone_are_anchored_after_one_seal_interval(
        app, client, engine, chain, anvil, site_token, settings_env):
    # Entries younger than the interval wait (an hour here, so a loaded machine cannot
    # make them old enough between the fixtures and this tick).
    assert tick(engine, chain, audit_wait=3600).sealed == []
    waited(engine)
    head = head_of(engine)
    (batch,) = tick(engine, chain).sealed
    assert (batch.leaf_count, batch.audit_seq, batch.audit_head) == (1, head.seq, head.hash)
    assert batch.root == audit_head_leaf(head.seq, head.hash)
    assert scalar(engine, "SELECT count(*) FROM leaf_slot") == 0
    confirm(engine, chain, anvil)
    assert tick(engine, chain).sealed == []  # one batch per head

    verified = run(settings_env, "audit", "verify", "--rpc", anvil.url)
    assert verified.exit_code == 0, verified.output
    assert f"anchored up to entry {head.seq} in batch {batch.id}; 0 newer entries wait" \
        in verified.output
    assert f"entry {head.seq} is anchored: transaction 0x" in verified.output
    checked = run(settings_env, "check", "--receipts")
    assert checked.exit_code == 0, checked.output
    assert "roots recomputed: 1" in checked.output

    # A batch without registrations, everywhere batches are shown.
    answer = client.get(f"/api/v1/batches/{batch.id}").get_json()
    assert (answer["leafCount"], answer["state"], answer["root"]) == (1, "confirmed",
                                                                     batch.root.hex())
    add_person(engine, "admin@example.org", "admin")
    signed_in(client, "admin@example.org")
    listed = client.get("/admin/batches")
    assert listed.status_code == 200
    assert f"entry {head.seq}" in listed.get_data(as_text=True)
    for path in ("/admin/", "/admin/audit", f"/trials/{TRIAL}", "/registrations"):
        assert client.get(path).status_code == 200, path
    with Session(engine) as session:
        token = user_tokens.create_user_token(session, accounts.find_user(
            session, "admin@example.org"), actor="test")
        session.commit()
    bundle = app.test_client().get(f"/api/v1/trials/{TRIAL}/receipts.zip",
                                   headers=bearer(token))
    assert bundle.status_code == 200

    # Then a later change: it waits one interval in its turn, and is anchored alone.
    with write_session(engine) as session:
        sites.add_trial(session, "NCT07654321", actor="cli:someone")
        session.commit()
    newest = head_of(engine)
    waited(engine)
    (second,) = tick(engine, chain).sealed
    assert (second.audit_seq, second.leaf_count) == (newest.seq, 1) and newest.seq > head.seq


def test_a_trail_rewritten_after_its_head_was_anchored_alone_is_caught_on_chain(
        engine, chain, anvil, site_token, settings_env):
    waited(engine)
    (batch,) = tick(engine, chain).sealed
    confirm(engine, chain, anvil)
    unguard(engine)
    rewrite(engine, 1, actor="mallory", rehash="all")
    with Session(engine) as session:
        forged = audit.head(session)
    assert forged.seq == batch.audit_seq and forged.hash != batch.audit_head
    with engine.begin() as conn:
        conn.execute(sa.update(Batch).where(Batch.id == batch.id).values(
            audit_head=forged.hash, root=forged.leaf()))
        conn.execute(sa.text("DELETE FROM tree_page WHERE batch_id = :b"), {"b": batch.id})
    assert run(settings_env, "audit", "verify").exit_code == 0  # the database agrees...
    on_chain = run(settings_env, "audit", "verify", "--rpc", anvil.url)
    assert on_chain.exit_code == 1  # ...the chain does not
    assert f"entry {batch.audit_seq} on chain:" in on_chain.output
    checked = run(settings_env, "check")
    assert checked.exit_code == 1
    assert f"batch {batch.id}: anchor 0x" in checked.output
    assert "not the batch's root" in checked.output


def test_no_head_alone_while_registrations_are_pending(engine, chain, site_token):
    insert_registrations(engine, 2)
    waited(engine)
    assert tick(engine, chain).sealed == []  # the seal interval takes both together
    (batch,) = anchoring.run_seal_job(engine, chain, 100, audit_wait=WAIT).sealed
    assert batch.leaf_count == 3 and batch.audit_seq == head_of(engine).seq
    waited_long = anchoring.run_seal_job(engine, chain, 100, audit_wait=0)
    assert waited_long.sealed == []  # the head is sealed already


def test_seal_now_seals_waiting_audit_entries_at_once(engine, site_token, settings_env,
                                                      anvil):
    before = head_of(engine)
    first = run(settings_env, "seal-now", "--wait")
    assert first.exit_code == 0, first.output
    head = head_of(engine)  # the notary's identity, published first, is sealed with the rest
    assert head.seq == before.seq + 1
    assert f"sealed batch 1: the audit head alone (entry {head.seq}), root " \
           f"{head.leaf().hex()}" in first.output
    assert "batch 1: transaction 0x" in first.output and "batch 1: confirmed" in first.output
    again = run(settings_env, "seal-now")
    assert again.exit_code == 0 and "nothing pending" in again.output
    assert len(all_batches(engine)) == 1


def test_an_empty_trail_seals_nothing(engine, chain):
    with Session(engine) as session:
        assert batches.unsealed_since(session) is None
    assert batches.seal_audit_head(engine, 0) is None
    (first,) = anchoring.run_seal_job(engine, chain, 100, audit_wait=0).sealed
    assert (first.audit_seq, first.leaf_count) == (1, 1)  # the identity's first version
    assert anchoring.run_seal_job(engine, chain, 100, audit_wait=0).sealed == []


def test_the_scheduler_anchors_the_audit_head_alone(settings_env, engine, site_token):
    settings = load_settings({**settings_env, "TRIALNOTARY_SEAL_INTERVAL_SECONDS": "1"})
    jobs = scheduler.start(settings, background=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and [b.state for b in all_batches(engine)] != [
                "confirmed"]:
            time.sleep(0.2)
        (batch,) = all_batches(engine)
        assert batch.state == "confirmed" and batch.leaf_count == 1
        time.sleep(1.5)
        assert len(all_batches(engine)) == 1  # nothing new: no second batch
    finally:
        jobs.shutdown(wait=True)
    with Session(engine) as session:
        assert batches.root_matches(session, session.get(Batch, batch.id))
        assert merkle.root_of(merkle.build_levels(batches.batch_leaves(
            session, session.get(Batch, batch.id)))) == batch.root
