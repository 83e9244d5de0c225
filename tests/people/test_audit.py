"""The audit trail on SQLite and PostgreSQL: hash-chained entries of every change, refused
updates and deletes, tampering found by ``audit_check.verify_chain`` and ``trialnotary audit
verify``, the head sealed as the last leaf of each batch and anchored with it, and
corrections through the web form with their required reason."""

from __future__ import annotations

import hashlib
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlmodel import Session, select

import tests.conftest
from tests.conftest import free_port, insert_registrations
from tests.utils import (
    add_person,
    anchor_and_confirm,
    bearer,
    post_form,
    post_json,
    quick_password_hashing,
    scalar,
    signed_in,
)
from trialnotary.cli import main
from trialnotary.db import write_session
from trialnotary.notary import audit_check, batches, merkle
from trialnotary.notary.models import Batch, LeafSlot
from trialnotary.people import audit, sites
from trialnotary.proof.receipt import audit_head_leaf, record_leaf
from trialnotary.proof.verify import verify_receipt

TRIAL, SITE = "NCT01234567", "SITE-01"
ADMIN = "admin@example.org"
RFC3339_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")

# The engine on the database of ``app`` and ``client``: tests/conftest.py's, not the notary's
# that tests/people/conftest.py gives the other modules here.
engine = tests.conftest.engine


@pytest.fixture(autouse=True)
def quick_argon2():
    with quick_password_hashing():
        yield


def entries(engine) -> list[dict]:
    with Session(engine) as session:
        return audit.entries(session)


def check(engine) -> audit_check.ChainCheck:
    with Session(engine) as session:
        return audit_check.verify_chain(session)


def audit_verify(settings_env, *rpc: str):
    args = ["audit", "verify"] + [arg for url in rpc for arg in ("--rpc", url)]
    return CliRunner().invoke(main, args, env=settings_env)


def register(client, token: str, count: int = 1, *, trial=TRIAL, site=SITE, label="D"):
    items = [{"trial": trial, "site": site, "dataset": f"{label}{i}",
              "sha256": hashlib.sha256(f"{trial} {site} {label}{i}".encode()).hexdigest()}
             for i in range(count)]
    response = client.post("/api/v1/submissions/bulk", headers=bearer(token),
                           json={"submissions": items})
    assert response.status_code == 201, response.get_data(as_text=True)
    return [answer["record"] for answer in response.get_json()["submissions"]]


# --- the chain -----------------------------------------------------------------------

def test_each_entry_is_hashed_with_the_one_before(engine, site_token):
    with write_session(engine) as session:
        sites.add_trial(session, "NCT07654321", title="Second", actor="cli:someone")
        sites.revoke_token(session, 1, actor="cli:someone")
        session.commit()
    trail = entries(engine)
    assert [entry["seq"] for entry in trail] == list(range(1, len(trail) + 1))
    assert len(trail) >= 6
    previous = audit.GENESIS
    for entry in trail:
        stated = entry.pop("hash")
        assert entry["prev"] == previous
        assert audit.entry_hash(entry) == stated
        # Every field is covered: change any one and the hash changes.
        for name, other in [("actor", "someone else"), ("at", "2000-01-01T00:00:00.000Z"),
                            ("new", {"forged": True}), ("reason", "because"),
                            ("action", "trial.delete")]:
            assert audit.entry_hash({**entry, name: other}) != stated, name
        previous = stated
    assert trail[-1]["action"] == "token.revoke"
    assert trail[-1]["old"] == {"prefix": trail[-1]["new"]["prefix"], "revoked": False}
    assert check(engine).ok and check(engine).entries == len(trail)


def test_every_admin_change_is_recorded_with_who_what_when_and_the_values(client, engine):
    admin_id = add_person(engine, ADMIN, "admin")
    signed_in(client, ADMIN)
    actor = f"user:{admin_id} {ADMIN}"

    def change(path, form, action, **expect):
        before = len(entries(engine))
        response = post_form(client, path, form)
        assert response.status_code in (200, 302), response.get_data(as_text=True)[:300]
        new = entries(engine)[before:]
        assert [entry["action"] for entry in new] == (
            action if isinstance(action, list) else [action]), path
        for entry in new:
            assert entry["actor"] == actor
            assert RFC3339_MS.fullmatch(entry["at"])
            moment = datetime.strptime(entry["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
            assert abs(datetime.now(UTC) - moment) < timedelta(seconds=30)
        last = new[-1]
        for key, value in expect.items():
            assert last[key] == value, (path, key, last[key])
        return last

    change("/admin/trials", {"trial": "nct 0123 4567", "title": "A trial"}, "trial.create",
           entityId=TRIAL, old=None,
           new={"trial": TRIAL, "title": "A trial", "protocolId": False})
    change("/admin/sites", {"trial": TRIAL, "site": SITE, "name": "Lyon"},
           ["site.create", "site.enrol"], new={"site": SITE, "trial": TRIAL})
    change("/admin/users", {"email": "sponsor@example.org", "role": "sponsor", "name": "Sue"},
           "user.create", new={"email": "sponsor@example.org", "name": "Sue",
                               "role": "sponsor", "disabled": False})
    sponsor_id = scalar(engine, "SELECT id FROM app_user WHERE email = 'sponsor@example.org'")
    page = f"/admin/users/{sponsor_id}"
    change(page, {"action": "grant", "trial": TRIAL}, "user.grant",
           new={"email": "sponsor@example.org", "trial": TRIAL})
    change(page, {"action": "revoke-grant", "trial": TRIAL}, "user.revoke-grant",
           old={"email": "sponsor@example.org", "trial": TRIAL}, new=None)
    role = change(page, {"action": "role", "role": "coordinator"}, "user.update",
                  entityId=str(sponsor_id))
    assert (role["old"]["role"], role["new"]["role"]) == ("sponsor", "coordinator")
    disabled = change(page, {"action": "disable"}, "user.update")
    assert (disabled["old"]["disabled"], disabled["new"]["disabled"]) == (False, True)
    change(page, {"action": "reset-password"}, "user.password",
           new={"email": "sponsor@example.org", "temporary": True})
    change(page, {"action": "unlock"}, "login.unlock", entityId="sponsor@example.org")
    created = change("/tokens/site", {"site": SITE, "name": "export"}, "token.create",
                     entity="site_token")
    assert created["new"]["site"] == SITE and created["new"]["name"] == "export"
    change(f"/tokens/site/{created['entityId']}/revoke", {}, "token.revoke",
           entity="site_token", new={"prefix": created["new"]["prefix"], "revoked": True})
    mine = change("/tokens/user", {"name": "mine"}, "token.create", entity="user_token")
    change(f"/tokens/user/{mine['entityId']}/revoke", {}, "token.revoke", entity="user_token")
    # Nothing that changes nothing is written: a repeated revoke, a grant already held.
    before = len(entries(engine))
    post_form(client, f"/tokens/user/{mine['entityId']}/revoke")
    assert len(entries(engine)) == before

    assert check(engine).ok
    trail = client.get("/admin/audit?check=1")
    assert trail.status_code == 200
    text = trail.get_data(as_text=True)
    assert "intact" in text and "user.revoke-grant" in text and ADMIN in text
    exported = client.get("/admin/audit.json")
    assert exported.mimetype == "application/json"
    assert exported.get_json()["entries"] == entries(engine)
    csv = client.get("/admin/audit.csv")
    assert csv.mimetype == "text/csv"
    assert len(csv.get_data(as_text=True).strip().splitlines()) == len(entries(engine)) + 1


def test_the_database_refuses_to_change_or_delete_entries(engine, site_token):
    before = entries(engine)
    statements = ["UPDATE audit_entry SET actor = 'mallory' WHERE seq = 1",
                  "UPDATE audit_entry SET reason = 'x'",
                  "DELETE FROM audit_entry WHERE seq = 2", "DELETE FROM audit_entry"]
    if engine.dialect.name == "postgresql":
        statements.append("TRUNCATE audit_entry")
    for statement in statements:
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with engine.begin() as conn:
                conn.exec_driver_sql(statement)
    assert entries(engine) == before


# --- tampering -----------------------------------------------------------------------

def unguard(engine) -> None:
    """What someone with the database owner's rights can do."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER audit_entry_no_update")
            conn.exec_driver_sql("DROP TRIGGER audit_entry_no_delete")
        else:
            conn.exec_driver_sql("ALTER TABLE audit_entry DISABLE TRIGGER ALL")


def rewrite(engine, seq: int, *, actor: str, rehash: str) -> None:
    """Change entry ``seq``'s actor; recompute no hash, its own, or every hash after."""
    trail = entries(engine)
    previous = audit.GENESIS
    with engine.begin() as conn:
        for entry in trail:
            stated = entry.pop("hash")
            if entry["seq"] >= seq and (rehash == "all" or entry["seq"] == seq):
                entry["prev"] = previous if entry["seq"] > 1 else audit.GENESIS
                if entry["seq"] == seq:
                    entry["actor"] = actor
                new_hash = audit.entry_hash(entry) if rehash != "none" else stated
                conn.execute(sa.text("UPDATE audit_entry SET actor = :a, prev = :p, "
                                     "hash = :h WHERE seq = :s"),
                             {"a": entry["actor"], "p": entry["prev"], "h": new_hash,
                              "s": entry["seq"]})
                stated = new_hash
            previous = stated


@pytest.mark.parametrize("how, problem", [
    ("changed", "entry 2 was changed: its content no longer gives its hash"),
    ("changed and rehashed", "entry 3 does not link to the entry before it"),
    ("deleted", "entry 2 is missing (the next is 3)"),
])
def test_tampering_with_an_entry_is_found(engine, site_token, settings_env, how, problem):
    assert len(entries(engine)) >= 4
    assert audit_verify(settings_env).exit_code == 0
    unguard(engine)
    if how == "changed":
        rewrite(engine, 2, actor="mallory", rehash="none")
    elif how == "changed and rehashed":
        rewrite(engine, 2, actor="mallory", rehash="own")
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM audit_entry WHERE seq = 2")
    found = check(engine)
    assert not found.ok and problem in found.problems
    result = audit_verify(settings_env)
    assert result.exit_code == 1
    assert problem in result.output


def test_a_consistently_rewritten_trail_is_caught_by_the_sealed_head(app, client, engine,
                                                                      site_token, settings_env):
    register(client, site_token, 2)
    (batch,) = batches.seal_all(engine, 100)
    assert batch.audit_seq == len(entries(engine))
    unguard(engine)
    rewrite(engine, 2, actor="mallory", rehash="all")
    found = check(engine)
    assert found.problems == [
        f"batch {batch.id} sealed entry {batch.audit_seq} with hash {batch.audit_head[:12]}…, "
        "which the trail does not hold"]
    # Rewriting the batch's sealed head as well breaks its tree instead.
    new_head = entries(engine)[batch.audit_seq - 1]["hash"]
    with engine.begin() as conn:
        conn.execute(sa.update(Batch).where(Batch.id == batch.id).values(audit_head=new_head))
    assert check(engine).ok
    result = audit_verify(settings_env)
    assert result.exit_code == 1
    assert f"batch {batch.id}: its stored leaves no longer give its root" in result.output


# --- the head in every batch ---------------------------------------------------------

def test_a_sealed_batch_ends_with_the_audit_head_and_its_receipts_verify(
        app, client, engine, site_token, anvil, settings_env):
    records = register(client, site_token, 3)
    with Session(engine) as session:
        head = audit.head(session)
    (batch,) = batches.seal_all(engine, 100)
    assert (batch.audit_seq, batch.audit_head) == (head.seq, head.hash)
    assert batch.leaf_count == 4
    with Session(engine) as session:
        stored = session.get(Batch, batch.id)
        leaves = batches.batch_leaves(session, stored)
    assert leaves[:3] == [record_leaf(record) for record in records]
    assert leaves[3] == audit_head_leaf(head.seq, head.hash) == head.leaf()
    assert merkle.root_of(merkle.build_levels(leaves)) == batch.root

    # A change after sealing is the next batch's business.
    with write_session(engine) as session:
        sites.add_trial(session, "NCT07654321", actor="cli:someone")
        session.commit()
    anchor_and_confirm(app, anvil)
    for record in records:
        receipt = client.get(f"/api/v1/submissions/{record['id']}/receipt").get_json()
        assert receipt["trialnotary"]["batch"]["leafCount"] == 4
        result = verify_receipt(receipt, rpc_urls=[anvil.url])
        assert result.ok, [(s.name, s.detail) for s in result.steps]
        assert {s.name for s in result.steps if s.ok} >= {"leaf", "merkle-path", "anchor-tx",
                                                          "sender", "block", "confirmations"}
    with Session(engine) as session:
        head_receipt = audit_check.head_receipt(session, session.get(Batch, batch.id))
    assert head_receipt["targetHash"] == head.leaf().hex()
    assert verify_receipt(head_receipt, rpc_urls=[anvil.url]).ok

    # Newer: the trial added, and the notary identity's version its first anchor made.
    with engine.connect() as conn:
        newer = conn.execute(sa.text("SELECT action FROM audit_entry WHERE seq > :seq "
                                     "ORDER BY seq"), {"seq": head.seq}).scalars().all()
    assert sorted(newer) == ["notary.identity", "trial.create"]
    result = audit_verify(settings_env, anvil.url)
    assert result.exit_code == 0, result.output
    assert f"anchored up to entry {head.seq} in batch {batch.id}; 2 newer entries wait" \
        in result.output
    assert f"entry {head.seq} is anchored: transaction 0x" in result.output


def test_audit_verify_before_anything_is_anchored(engine, site_token, settings_env, anvil):
    result = audit_verify(settings_env, anvil.url)
    assert result.exit_code == 0
    assert "every hash and link holds" in result.output
    assert "no audit head is anchored yet" in result.output


def test_audit_verify_with_no_node_answering_says_nothing_was_checked(
        app, client, engine, site_token, anvil, settings_env):
    register(client, site_token, 1)
    anchor_and_confirm(app, anvil)
    result = audit_verify(settings_env, f"http://127.0.0.1:{free_port()}")
    assert result.exit_code == 1
    assert "on chain: Could not check the anchor: no node answered." in result.output


def test_an_anchored_head_rewritten_with_its_batch_is_caught_on_chain(
        app, client, engine, site_token, anvil, settings_env):
    register(client, site_token, 2)
    anchor_and_confirm(app, anvil)
    with Session(engine) as session:
        (batch,) = session.exec(select(Batch)).all()
    unguard(engine)
    rewrite(engine, 1, actor="mallory", rehash="all")
    new_head = entries(engine)[batch.audit_seq - 1]["hash"]
    with Session(engine) as session:
        leaves = batches.batch_leaves(session, session.get(Batch, batch.id))
    leaves[-1] = audit_head_leaf(batch.audit_seq, new_head)
    with engine.begin() as conn:
        conn.execute(sa.update(Batch).where(Batch.id == batch.id).values(
            audit_head=new_head, root=merkle.root_of(merkle.build_levels(leaves))))
    offline = audit_verify(settings_env)
    assert offline.exit_code == 0  # the database alone now agrees with itself...
    on_chain = audit_verify(settings_env, anvil.url)
    assert on_chain.exit_code == 1  # ...but not with the chain
    assert f"entry {batch.audit_seq} on chain:" in on_chain.output


def test_sealing_registrations_never_makes_a_batch_for_the_audit_head_alone(
        client, engine, site_token):
    """(The head alone is sealed only once its entries have waited: see
    tests/notary/test_audit_head.py.)"""
    assert scalar(engine, "SELECT count(*) FROM audit_entry") > 0
    assert batches.seal_all(engine, 100) == []
    assert scalar(engine, "SELECT count(*) FROM batch") == 0
    register(client, site_token, 1)
    assert len(batches.seal_all(engine, 100)) == 1
    with write_session(engine) as session:
        sites.add_trial(session, "NCT07654321", actor="cli:someone")
        session.commit()
    assert batches.seal_all(engine, 100) == []
    assert batches.seal_all(engine, 100, full_only=True) == []
    assert scalar(engine, "SELECT count(*) FROM batch") == 1


@pytest.mark.parametrize("max_batch, sizes", [
    (1, [1, 1, 1]),          # no room for the head: no audit leaf at all
    (2, [2, 2, 2]),          # one registration and the head each
    (3, [3, 2]),             # two and the head, then one and the head
    (100, [4]),
])
def test_the_head_fits_within_max_batch(engine, site_token, max_batch, sizes):
    insert_registrations(engine, 3)
    sealed = batches.seal_all(engine, max_batch)
    assert [batch.leaf_count for batch in sealed] == sizes
    for batch in sealed:
        assert (batch.audit_seq is None) == (max_batch == 1)
        with Session(engine) as session:
            count = session.scalar(select(sa.func.count()).select_from(LeafSlot)
                                   .where(LeafSlot.batch_id == batch.id))
        assert count == batch.leaf_count - (0 if max_batch == 1 else 1) >= 1
    assert scalar(engine, "SELECT count(*) FROM pending") == 0


# --- corrections ---------------------------------------------------------------------

@pytest.fixture
def coordinator(client, engine, site_token):
    """A coordinator of SITE-01 (signed in), a registration of SITE-01, one of SITE-02 in
    the same trial, and one of SITE-01 in another trial."""
    with write_session(engine) as session:
        sites.add_site(session, TRIAL, "SITE-02")
        sites.add_trial(session, "NCT07654321")
        sites.add_site(session, "NCT07654321", SITE)
        other_site = sites.create_token(session, "SITE-02")
        session.commit()
    user_id = add_person(engine, "coordinator@example.org", "coordinator", sites=[SITE])
    signed_in(client, "coordinator@example.org")
    api = client.application.test_client()
    return {
        "user_id": user_id,
        "mine": register(api, site_token, label="mine")[0],
        "other site": register(api, other_site, site="SITE-02", label="theirs")[0],
        "other trial": register(api, site_token, trial="NCT07654321", label="elsewhere")[0],
    }


def correction(target: dict, **changes) -> dict:
    return {"trial": target["trial"], "site": target["site"], "dataset": target["dataset"],
            "sha256": "cd" * 32, "filename": "fixed.csv", "supersedes": target["id"],
            **changes}


def row_of(engine, registration_id: str) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text("SELECT * FROM submission WHERE id = :i"),
                                 {"i": registration_id}).mappings().one())


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_a_correction_without_a_reason_is_refused(client, engine, coordinator, reason):
    body = {"submissions": [correction(coordinator["mine"])]}
    if reason is not None:
        body["reason"] = reason
    before = scalar(engine, "SELECT count(*) FROM submission"), len(entries(engine))
    response = post_json(client, "/register", body)
    assert response.status_code == 422, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == "validation_error" and error["field"] == "reason"
    assert (scalar(engine, "SELECT count(*) FROM submission"), len(entries(engine))) == before


def test_a_correction_with_a_reason_is_audited_and_overwrites_nothing(app, client, engine,
                                                                      coordinator, anvil):
    mine = coordinator["mine"]
    anchor_and_confirm(app, anvil)
    receipt_before = client.get(f"/api/v1/submissions/{mine['id']}/receipt").get_json()
    row_before = row_of(engine, mine["id"])
    reason = "the export missed visit 3"
    response = post_json(client, "/register", {"submissions": [correction(mine)],
                                               "reason": reason})
    assert response.status_code == 201, response.get_data(as_text=True)
    (created,) = response.get_json()["submissions"]
    assert created["record"]["supersedes"] == mine["id"]
    assert row_of(engine, mine["id"]) == row_before
    assert client.get(f"/api/v1/submissions/{mine['id']}/receipt").get_json() == receipt_before
    stored = row_of(engine, created["id"])
    assert stored["reason"] == reason and stored["user_id"] == coordinator["user_id"]
    assert stored["token_id"] is None

    last = entries(engine)[-1]
    assert last["action"] == "submission.correct" and last["entityId"] == created["id"]
    assert last["reason"] == reason
    assert last["actor"] == f"user:{coordinator['user_id']} coordinator@example.org"
    assert last["new"]["supersedes"] == mine["id"] and last["new"]["sha256"] == "cd" * 32
    page = client.get(f"/r/{mine['id']}").get_data(as_text=True)
    assert "Corrected by" in page and reason in page and created["id"] in page
    assert check(engine).ok


def test_the_form_takes_an_item_s_own_reason_before_the_common_one(client, engine,
                                                                    coordinator):
    mine = coordinator["mine"]
    another = post_json(client, "/register", {"submissions": [{
        "trial": mine["trial"], "site": mine["site"], "dataset": "another", "sha256": "ab" * 32,
    }]}).get_json()["submissions"][0]["record"]  # one correction supersedes one registration
    response = post_json(client, "/register", {
        "submissions": [correction(mine, reason="its own"),
                        correction(another, sha256="ef" * 32)],
        "reason": "the common one"})
    assert response.status_code == 201, response.get_data(as_text=True)
    own, common = response.get_json()["submissions"]
    assert row_of(engine, own["id"])["reason"] == "its own"
    assert row_of(engine, common["id"])["reason"] == "the common one"
    assert "reason" not in own["record"] and "reason" not in common["record"]


@pytest.mark.parametrize("target, changes, status, field", [
    ("other site", {"site": SITE}, 422, "submissions[0].supersedes"),
    ("other site", {}, 403, "submissions[0].site"),
    ("other trial", {"trial": TRIAL}, 422, "submissions[0].supersedes"),
    ("mine", {"supersedes": "3f1c2a9e-5b7d-4c1e-9a2b-6d8e0f1a2b3c"}, 422,
     "submissions[0].supersedes"),
    ("mine", {"reason_too_long": True}, 422, "reason"),
])
def test_a_correction_must_name_a_registration_of_the_same_trial_and_own_sites(
        client, engine, coordinator, target, changes, status, field):
    changes = dict(changes)  # the parameters are shared by both databases' runs
    reason = "x" * 1001 if changes.pop("reason_too_long", False) else "a reason"
    before = scalar(engine, "SELECT count(*) FROM submission"), len(entries(engine))
    response = post_json(client, "/register", {
        "submissions": [correction(coordinator[target], **changes)], "reason": reason})
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["error"]["field"] == field
    assert (scalar(engine, "SELECT count(*) FROM submission"), len(entries(engine))) == before


@pytest.mark.parametrize("bulk", [False, True], ids=["single", "bulk"])
def test_an_api_correction_keeps_its_reason_out_of_the_record(client, engine, site_token,
                                                              coordinator, bulk):
    mine = coordinator["mine"]
    reason = "visit 3 recoded after deviation DV-12"
    fix = correction(mine, reason=reason)
    api = client.application.test_client()
    if bulk:
        plain = {**correction(mine), "supersedes": None, "sha256": "ef" * 32}
        response = api.post("/api/v1/submissions/bulk", headers=bearer(site_token),
                            json={"submissions": [fix, plain]})
        created, other = response.get_json()["submissions"]
        assert row_of(engine, other["id"])["reason"] is None
    else:
        response = api.post("/api/v1/submissions", headers=bearer(site_token), json=fix)
        created = response.get_json()
    assert response.status_code == 201, response.get_data(as_text=True)
    record = created["record"]
    assert "reason" not in record and record["supersedes"] == mine["id"]
    stored = row_of(engine, created["id"])
    assert stored["reason"] == reason and bytes(stored["leaf"]) == record_leaf(record)
    last = [e for e in entries(engine) if e["action"] == "submission.correct"][-1]
    assert last["entityId"] == created["id"] and last["reason"] == reason
    assert check(engine).ok


@pytest.mark.parametrize("change", [
    {"reason": "x" * 1001}, {"reason": "   "}, {"reason": "line\nbreak"}, {"reason": 7},
    {"reason": "why", "supersedes": None},
], ids=["too long", "blank", "control character", "not a string", "no supersedes"])
def test_an_api_reason_is_checked_and_nothing_stored(client, engine, site_token, coordinator,
                                                     change):
    before = scalar(engine, "SELECT count(*) FROM submission"), len(entries(engine))
    api = client.application.test_client()
    single = api.post("/api/v1/submissions", headers=bearer(site_token),
                      json=correction(coordinator["mine"], **change))
    bulk = api.post("/api/v1/submissions/bulk", headers=bearer(site_token),
                    json={"submissions": [correction(coordinator["mine"], **change)]})
    assert single.status_code == bulk.status_code == 422
    assert single.get_json()["error"]["field"] == "reason"
    assert bulk.get_json()["error"]["field"] == "submissions[0].reason"
    assert (scalar(engine, "SELECT count(*) FROM submission"), len(entries(engine))) == before


def test_no_route_edits_or_deletes_anything(app):
    """Nothing is overwritten or deleted: the app takes no PUT, PATCH or DELETE at all."""
    methods = {method for rule in app.url_map.iter_rules() for method in rule.methods}
    assert methods <= {"GET", "HEAD", "OPTIONS", "POST"}


def test_changes_made_at_once_keep_the_chain_whole(engine):
    """Four writers appending together: the audit lock (advisory on PostgreSQL, the write
    lock on SQLite) leaves no gap, fork or duplicate in the chain."""
    failures = []

    def writer(n: int) -> None:
        try:
            for i in range(8):
                with write_session(engine) as session:
                    sites.add_trial(session, f"PROTO-{n}-{i}", protocol_id=True,
                                    actor=f"writer {n}")
                    session.commit()
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(repr(exc))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with Session(engine) as session:
        checked = audit_check.verify_chain(session)
        assert checked.ok, checked.problems
        assert checked.entries == 32
        assert [e["seq"] for e in audit.entries(session)] == list(range(1, 33))
