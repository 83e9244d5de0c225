"""The registration domain on real databases: storing, checks, idempotency, look-ups."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlmodel import Session

from tests.proof.vectors import load_vectors
from tests.utils import RECEIPT_NOTARY
from trialnotary import db
from trialnotary.db import utcnow
from trialnotary.notary import batches, registrations
from trialnotary.notary.models import IdempotencyKey, Pending, Registration
from trialnotary.notary.registrations import lookups
from trialnotary.people import sites
from trialnotary.proof.receipt import record_leaf
from trialnotary.validation import (
    KINDS,
    MAX_SIZE_BYTES,
    ValidationError,
    validate_registration,
    validate_text,
)

SHA = "ab" * 32


def item(**change) -> dict:
    return validate_registration({"trial": "NCT01234567", "site": "SITE-01", "dataset": "ADSL",
                                "sha256": SHA, **change})


def count(engine, table=Registration) -> int:
    with Session(engine) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(table))


@pytest.fixture
def identity(engine, site_token):
    with Session(engine) as session:
        identity = sites.authenticate(session, site_token)
        session.commit()
    return identity


# --- the leaf ------------------------------------------------------------------------

def test_fast_leaf_matches_the_shared_vectors():
    vectors = load_vectors()["records"]
    assert vectors
    for vector in vectors:
        assert registrations.leaf_of(vector["record"]).hex() == vector["leaf"]


def _valid_text(max_chars: int, required: bool):
    def ok(value):
        try:
            validate_text(value, "x", max_chars, required=required)
            return True
        except ValidationError:
            return False
    return st.text(max_size=max_chars).filter(ok)


records = st.fixed_dictionaries({
    "id": st.uuids(version=4).map(str),
    "trial": st.sampled_from(["NCT01234567", "CTRI/2020/01/123456", "2022-500014-26-00"]),
    "site": st.from_regex(r"\A[A-Za-z0-9._-]{1,64}\Z"),
    "kind": st.sampled_from(KINDS),
    "dataset": _valid_text(200, required=True),
    "sha256": st.binary(min_size=32, max_size=32).map(bytes.hex),
    "sizeBytes": st.none() | st.integers(0, MAX_SIZE_BYTES),
    "filename": st.none() | _valid_text(255, required=False),
    "supersedes": st.none() | st.uuids(version=4).map(str),
    "submittedAt": st.just("2026-11-23T18:59:01.123Z"),
})


@hypothesis_settings(max_examples=300, deadline=None)
@given(records)
def test_fast_leaf_equals_rfc8785_for_every_valid_record(record):
    assert registrations.leaf_of(record) == record_leaf(record)


def test_fast_leaf_on_awkward_text():
    for text in ['"quoted" \\ back/slash', "\u2028\u2029", "😀\U0010fffd", "é\u0301", "\ufeff"]:
        record = {"id": "3f1c2a9e-5b7d-4c1e-9a2b-6d8e0f1a2b3c", "trial": "NCT01234567",
                  "site": "S", "kind": "other", "dataset": text, "sha256": SHA,
                  "sizeBytes": MAX_SIZE_BYTES, "filename": text, "supersedes": None,
                  "submittedAt": "2026-11-23T18:59:01.123Z"}
        assert registrations.leaf_of(record) == record_leaf(record)


# --- registering ---------------------------------------------------------------------

def test_register_stores_records_with_their_leaves(engine, identity):
    with db.write_session(engine) as session:
        records = registrations.register(session, identity, [item(), item(dataset="ADAE")],
                                         bulk=True)
        session.commit()
    assert [r["dataset"] for r in records] == ["ADSL", "ADAE"]
    with Session(engine) as session:
        stored = session.exec(sa.select(Registration).order_by(Registration.seq)).scalars().all()
        queued = set(session.scalars(sa.select(Pending.seq)))
    assert [s.record() for s in stored] == records
    assert all(bytes(s.leaf) == record_leaf(s.record()) for s in stored)
    assert all(s.token_id == identity.token_id for s in stored)
    assert queued == {s.seq for s in stored}  # every registration waits in the queue


def test_records_carry_server_fields():
    record, = registrations.new_records([item()])
    assert list(record) == ["id", "trial", "site", "kind", "dataset", "sha256", "sizeBytes",
                            "filename", "supersedes", "submittedAt"]
    assert record["id"] == record["id"].lower() and record["id"][14] == "4"
    assert record["submittedAt"].endswith("Z") and len(record["submittedAt"]) == 24


def _check(engine, identity, items, bulk=True):
    with db.write_session(engine) as session:
        registrations.check_items(session, identity, items, bulk=bulk)


def test_another_sites_items_are_forbidden(engine, identity):
    with pytest.raises(registrations.Forbidden) as refused:
        _check(engine, identity, [item(), item(site="SITE-02")])
    assert refused.value.field == "submissions[1].site"


def test_unknown_trial_and_missing_enrolment(engine, identity):
    with pytest.raises(ValidationError) as refused:
        _check(engine, identity, [item(trial="NCT99999999")], bulk=False)
    assert refused.value.field == "trial"
    with Session(engine) as session:
        sites.add_trial(session, "NCT07654321")
        session.commit()
    with pytest.raises(ValidationError) as refused:
        _check(engine, identity, [item(), item(), item(trial="NCT07654321")])
    assert refused.value.field == "submissions[2].site"


def test_supersedes_must_name_a_registration_of_the_same_trial(engine, identity):
    with Session(engine) as session:
        sites.add_trial(session, "NCT07654321")
        sites.add_site(session, "NCT07654321", "SITE-01")
        session.commit()
    with db.write_session(engine) as session:
        first, other = registrations.register(
            session, identity, [item(), item(trial="NCT07654321")], bulk=True)
        session.commit()
    _check(engine, identity, [item(supersedes=first["id"])])
    with pytest.raises(ValidationError) as refused:
        _check(engine, identity, [item(supersedes=first["id"]), item(supersedes=other["id"])])
    assert refused.value.field == "submissions[1].supersedes"
    with pytest.raises(ValidationError):
        _check(engine, identity, [item(supersedes="3f1c2a9e-5b7d-4c1e-9a2b-6d8e0f1a2b3c")])


# --- one correction per registration -------------------------------------------------

def _register(engine, identity, items) -> list[dict]:
    with db.write_session(engine) as session:
        records = registrations.register(session, identity, items, bulk=True)
        session.commit()
    return records


def test_a_registration_is_superseded_at_most_once(engine, identity):
    first, = _register(engine, identity, [item()])
    fix, = _register(engine, identity, [item(dataset="ADSL v2", supersedes=first["id"])])
    with pytest.raises(ValidationError) as refused:
        _check(engine, identity, [item(dataset="ADSL v3", supersedes=first["id"])], bulk=False)
    assert refused.value.field == "supersedes"
    assert f"already superseded by {fix['id']}" in refused.value.message
    assert f"correct {fix['id']}" in refused.value.message
    with pytest.raises(ValidationError) as refused:
        _check(engine, identity, [item(), item(supersedes=first["id"])])
    assert refused.value.field == "submissions[1].supersedes"
    _check(engine, identity, [item(supersedes=fix["id"])])  # the correction can be corrected


def test_two_items_of_one_request_cannot_correct_the_same_registration(engine, identity):
    first, other = _register(engine, identity, [item(), item(dataset="ADAE")])
    _check(engine, identity, [item(supersedes=first["id"]), item(supersedes=other["id"])])
    with pytest.raises(ValidationError) as refused:
        _check(engine, identity, [item(supersedes=first["id"]), item(),
                                  item(supersedes=first["id"])])
    assert refused.value.field == "submissions[2].supersedes"
    assert "submissions[0].supersedes" in refused.value.message
    assert count(engine) == 2


def test_the_database_refuses_a_second_correction(engine, identity):
    """The unique index holds even for a writer that skips the checks."""
    first, = _register(engine, identity, [item()])
    _register(engine, identity, [item(supersedes=first["id"])])
    with pytest.raises(sa.exc.IntegrityError), db.write_session(engine) as session:
        registrations.store(session, identity, registrations.new_records(
            [item(supersedes=first["id"])]), [None])
        session.commit()
    assert count(engine) == 2


def test_a_correction_committed_meanwhile_makes_the_other_a_validation_error(engine, identity):
    """Two people correct the same registration at once. The second's check ran before the
    first committed (PostgreSQL), so the unique index refuses its insert: it gets the 422
    that names the first correction, never an IntegrityError (a 500)."""
    first, = _register(engine, identity, [item()])
    user = registrations.UserRegistrant(1, "c@example.org", frozenset({"SITE-01"}))
    outcome = []

    def second():
        try:
            registrations.register_as_user(engine, user, {
                "reason": "mine", "submissions": [{"trial": "NCT01234567", "site": "SITE-01",
                                                   "dataset": "B", "sha256": SHA,
                                                   "supersedes": first["id"]}]})
            outcome.append("stored")
        except ValidationError as exc:
            outcome.append(exc)

    with db.write_session(engine) as session:
        fix, = registrations.register(session, identity, [item(supersedes=first["id"])],
                                      bulk=True)
        racer = threading.Thread(target=second)
        racer.start()
        time.sleep(0.5)
        session.commit()
    racer.join(30)
    refused, = outcome
    assert isinstance(refused, ValidationError), refused
    assert refused.field == "submissions[0].supersedes" and fix["id"] in refused.message
    assert count(engine) == 2


def test_lookups_say_what_superseded_a_registration(engine, identity):
    first, other = _register(engine, identity, [item(), item(dataset="ADAE")])
    fix, = _register(engine, identity, [item(dataset="fix", supersedes=first["id"])])
    with Session(engine) as session:
        assert registrations.status_of(session, first["id"])["supersededBy"] == fix["id"]
        assert registrations.status_of(session, fix["id"])["supersededBy"] is None
        assert {v["id"]: v["supersededBy"] for v in registrations.find_by_sha256(
            session, SHA)} == {first["id"]: fix["id"], other["id"]: None, fix["id"]: None}


def test_hashes_already_registered_in_a_persons_trials(engine, identity):
    with Session(engine) as session:
        sites.add_trial(session, "NCT07654321")
        sites.add_site(session, "NCT07654321", "SITE-01")
        session.commit()
    first, = _register(engine, identity, [item(filename="adsl.xpt")])
    _register(engine, identity, [item(trial="NCT07654321", dataset="elsewhere")])
    other = "cd" * 32
    with Session(engine) as session:
        found = registrations.registered_in_trials(session, [SHA, other], ["NCT01234567"])
        assert found == {SHA: [{"id": first["id"], "trial": "NCT01234567", "site": "SITE-01",
                                "dataset": "ADSL", "filename": "adsl.xpt",
                                "submittedAt": first["submittedAt"]}]}
        both = registrations.registered_in_trials(session, [SHA], ["NCT01234567",
                                                                   "NCT07654321"])
        assert [k["trial"] for k in both[SHA]] == ["NCT01234567", "NCT07654321"]
        assert registrations.registered_in_trials(session, [SHA], []) == {}


def test_bulk_envelope():
    for payload, field in [([], None), ({}, "submissions"), ({"submissions": []}, "submissions"),
                           ({"submissions": {}}, "submissions"),
                           ({"submissions": [item()], "x": 1}, "x")]:
        with pytest.raises(ValidationError) as refused:
            registrations.validated_items(payload, bulk=True)
        assert refused.value.field == field
    with pytest.raises(ValidationError) as refused:
        registrations.validated_items({"submissions": [{}] * (registrations.MAX_BULK + 1)},
                                      bulk=True)
    assert refused.value.field == "submissions"


def test_no_body_is_read_without_a_live_token(engine, site_token):
    def read_payload():
        raise AssertionError("read without a token")

    for token in ("tn_site_nope", ""):
        with pytest.raises(registrations.Unauthorized):
            registrations.submit(engine, token=token, read_payload=read_payload, bulk=False,
                                 path="/api/v1/submissions",
                                 render=lambda records: registrations.Answer(201, str(records)))
    assert count(engine) == 0


# --- idempotency ---------------------------------------------------------------------

def _submit(engine, token, payload, key="k-1", bulk=False):
    return registrations.submit(engine, token=token, read_payload=lambda: payload, bulk=bulk,
                                path="/api/v1/submissions", idempotency_key=key,
                                render=lambda records: registrations.Answer(
                                    201, json.dumps([r["id"] for r in records])))


PAYLOAD = {"trial": "NCT01234567", "site": "SITE-01", "dataset": "ADSL", "sha256": SHA}


def test_a_retry_gets_the_first_answer(engine, site_token):
    first = _submit(engine, site_token, PAYLOAD)
    again = _submit(engine, site_token, dict(reversed(PAYLOAD.items())))
    assert (again.status, again.body, again.replayed) == (first.status, first.body, True)
    assert count(engine) == 1 and count(engine, IdempotencyKey) == 1
    with pytest.raises(registrations.IdempotencyMismatch):
        _submit(engine, site_token, {**PAYLOAD, "dataset": "ADAE"})
    assert count(engine) == 1


def test_keys_are_scoped_to_the_token(engine, site_token):
    with Session(engine) as session:
        other = sites.create_token(session, "SITE-01")
        session.commit()
    first = _submit(engine, site_token, PAYLOAD)
    second = _submit(engine, other, PAYLOAD)
    assert not second.replayed and second.body != first.body
    assert count(engine) == 2


def test_expired_keys_are_ignored_and_replaced(engine, site_token):
    first = _submit(engine, site_token, PAYLOAD)
    with Session(engine) as session:
        session.execute(sa.update(IdempotencyKey).values(
            created_at=utcnow() - registrations.IDEMPOTENCY_TTL - timedelta(minutes=1)))
        session.commit()
    again = _submit(engine, site_token, {**PAYLOAD, "dataset": "ADAE"})
    assert not again.replayed and again.body != first.body
    assert count(engine) == 2 and count(engine, IdempotencyKey) == 1


def test_purge_expired_keys(engine, site_token):
    _submit(engine, site_token, PAYLOAD, key="a")
    _submit(engine, site_token, PAYLOAD, key="b")
    with Session(engine) as session:
        session.execute(sa.update(IdempotencyKey).where(IdempotencyKey.key == "a").values(
            created_at=utcnow() - timedelta(days=2)))
        assert registrations.purge_expired_keys(session) == 1
        session.commit()
    assert count(engine, IdempotencyKey) == 1


@pytest.mark.parametrize("key", ["", " lead", "trail ", "x" * 256, "tab\there", "é"])
def test_bad_idempotency_keys(engine, site_token, key):
    with pytest.raises(ValidationError) as refused:
        _submit(engine, site_token, PAYLOAD, key=key)
    assert refused.value.field == "Idempotency-Key"
    assert count(engine) == 0


def test_a_concurrent_duplicate_gets_the_stored_answer(engine, site_token, identity):
    """Another request with the same key commits while this one runs: this one stores
    nothing and answers as the other did (PostgreSQL: the unique key; SQLite: the lock)."""
    request = registrations.IdempotentRequest(
        identity.token_id, "race", registrations.request_digest("/api/v1/submissions", PAYLOAD))
    answers = []
    with db.write_session(engine) as session:
        registrations.remember(session, request, registrations.Answer(201, '"first"'))
        session.flush()
        racer = threading.Thread(
            target=lambda: answers.append(_submit(engine, site_token, PAYLOAD, key="race")))
        racer.start()
        time.sleep(0.5)
        session.commit()
    racer.join(30)
    assert answers == [registrations.Answer(201, '"first"', replayed=True)]
    assert count(engine) == 0


# --- look-ups ------------------------------------------------------------------------

def test_status_and_sha256_lookups(engine, site_token, monkeypatch):
    first = _submit(engine, site_token, PAYLOAD, key=None)
    (registration_id,) = json.loads(first.body)
    with Session(engine) as session:
        view = registrations.status_of(session, registration_id.upper())
        assert view["id"] == registration_id and view["status"] == "pending"
        assert view["batch"] is None and view["anchor"] is None
        assert registrations.status_of(session, "nope") is None
        assert registrations.status_of(session, "3f1c2a9e-5b7d-4c1e-9a2b-6d8e0f1a2b3c") is None
    for _ in range(3):
        _submit(engine, site_token, PAYLOAD, key=None)
    monkeypatch.setattr(lookups, "MAX_LOOKUP", 2)
    with Session(engine) as session:
        found = registrations.find_by_sha256(session, SHA.upper())
        assert [v["id"] for v in found][:1] == [registration_id] and len(found) == 2
        with pytest.raises(ValidationError):
            registrations.find_by_sha256(session, "abc")


def test_sealed_registrations_show_their_batch(engine, site_token):
    _submit(engine, site_token, PAYLOAD, key=None)
    batch, = batches.seal_all(engine, 100)
    with Session(engine) as session:
        view, = registrations.find_by_sha256(session, SHA)
        assert view["status"] == "sealed"
        # The registration and the audit trail's head.
        assert view["batch"] == {"id": batch.id, "leafIndex": 0, "leafCount": 2,
                                 "sealedAt": batch.sealed_at, "root": batch.root.hex()}
        assert view["anchor"] is None
        lookup = registrations.receipt_of(session, view["id"], RECEIPT_NOTARY)
        assert lookup.receipt is None and lookup.status == view
        assert registrations.batch_of(session, batch.id)["state"] == "sealed"
        assert registrations.batch_of(session, batch.id + 1) is None
        assert registrations.batch_of(session, 2**63) is None


def test_retry_after():
    assert registrations.retry_after("pending", 3600) == registrations.RETRY_AFTER_PENDING_MAX
    assert registrations.retry_after("pending", 7) == 7
    assert registrations.retry_after("pending", 0.2) == 1
    assert registrations.retry_after("sent", 3600) == registrations.RETRY_AFTER_SEALED
