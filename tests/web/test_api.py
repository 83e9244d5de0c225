"""The JSON API over HTTP (Flask's test client) on SQLite and PostgreSQL: what it answers,
and that a refused request stores nothing."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from trialnotary.config import load_settings
from trialnotary.db import utcnow
from trialnotary.filenames import receipt_filename
from trialnotary.notary import anchoring, batches, registrations
from trialnotary.notary.models import IdempotencyKey, Registration
from trialnotary.people import access, sites
from trialnotary.people.access import requires
from trialnotary.people.models import SiteToken
from trialnotary.proof.receipt import fold_proof, record_leaf
from trialnotary.web import openapi
from trialnotary.web.app import MAX_BODY_BYTES, create_app

SHA = "ab" * 32
GOOD = {"trial": "NCT01234567", "site": "SITE-01", "kind": "dataset", "dataset": "ADSL",
        "sha256": SHA, "sizeBytes": 1234, "filename": "adsl.xpt"}
UNKNOWN_ID = "3f1c2a9e-5b7d-4c1e-9a2b-6d8e0f1a2b3c"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def stored(engine) -> tuple[int, int]:
    """Registrations and idempotency records: a refused request changes neither."""
    with Session(engine) as session:
        return tuple(session.scalar(sa.select(sa.func.count()).select_from(table))
                     for table in (Registration, IdempotencyKey))


def assert_error(response, status: int, code: str, field=None):
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["code"] == code and error["field"] == field, error
    assert error["message"]
    return error


@pytest.fixture
def other_token(engine, site_token):
    """A token of SITE-02, enrolled in NCT01234567 too, and a trial SITE-01 is not in."""
    with Session(engine) as session:
        sites.add_site(session, "NCT01234567", "SITE-02")
        sites.add_trial(session, "NCT07654321")
        token = sites.create_token(session, "SITE-02")
        session.commit()
    return token


# --- registering ---------------------------------------------------------------------

def test_register_one(client, engine, site_token):
    response = client.post("/api/v1/submissions", headers=bearer(site_token),
                           json={**GOOD, "trial": "nct 0123 4567", "sha256": SHA.upper()})
    assert response.status_code == 201
    body = response.get_json()
    record = body["record"]
    assert body["id"] == record["id"] and body["status"] == "pending"
    assert {k: record[k] for k in GOOD} == GOOD
    assert record["supersedes"] is None and record["submittedAt"].endswith("Z")
    with Session(engine) as session:
        row = session.exec(sa.select(Registration)).scalar_one()
    assert row.record() == record
    assert bytes(row.leaf) == record_leaf(record)

    assert body["links"]["self"] == f"/api/v1/submissions/{body['id']}"
    looked_up = client.get(body["links"]["self"])
    assert looked_up.status_code == 200
    assert looked_up.get_json() == {"id": body["id"], "status": "pending", "record": record,
                                    "supersededBy": None, "batch": None, "anchor": None}
    receipt = client.get(body["links"]["receipt"])
    assert receipt.status_code == 202
    assert receipt.get_json() == looked_up.get_json()
    assert int(receipt.headers["Retry-After"]) == registrations.RETRY_AFTER_PENDING_MAX


def test_register_in_bulk_keeps_the_order(client, engine, site_token):
    items = [{**GOOD, "dataset": f"D{i}", "sha256": f"{i:064x}"} for i in range(30)]
    items[3] = {k: v for k, v in items[3].items() if k not in ("kind", "sizeBytes", "filename")}
    response = client.post("/api/v1/submissions/bulk", headers=bearer(site_token),
                           json={"submissions": items})
    assert response.status_code == 201
    answers = response.get_json()["submissions"]
    assert [a["record"]["dataset"] for a in answers] == [f"D{i}" for i in range(30)]
    assert answers[3]["record"]["kind"] == "dataset" and answers[3]["record"]["filename"] is None
    assert len({a["id"] for a in answers}) == 30
    with Session(engine) as session:
        rows = session.exec(sa.select(Registration).order_by(Registration.seq)).scalars().all()
    assert [r.record() for r in rows] == [a["record"] for a in answers]
    assert all(bytes(r.leaf) == record_leaf(r.record()) for r in rows)


def test_supersedes_an_earlier_registration(client, site_token):
    first = client.post("/api/v1/submissions", headers=bearer(site_token), json=GOOD).get_json()
    second = client.post("/api/v1/submissions", headers=bearer(site_token),
                         json={**GOOD, "supersedes": first["id"].upper()})
    assert second.status_code == 201
    assert second.get_json()["record"]["supersedes"] == first["id"]


def test_a_registration_is_corrected_once_and_says_by_what(client, engine, site_token):
    first = client.post("/api/v1/submissions", headers=bearer(site_token), json=GOOD).get_json()
    fix = client.post("/api/v1/submissions", headers=bearer(site_token),
                      json={**GOOD, "supersedes": first["id"], "reason": "typo"}).get_json()
    before = stored(engine)
    error = assert_error(client.post("/api/v1/submissions", headers=bearer(site_token),
                                     json={**GOOD, "supersedes": first["id"]}),
                         422, "validation_error", "supersedes")
    assert f"already superseded by {fix['id']}" in error["message"]
    error = assert_error(client.post("/api/v1/submissions/bulk", headers=bearer(site_token),
                                     json={"submissions": [GOOD, {**GOOD, "supersedes":
                                                                  first["id"]}]}),
                         422, "validation_error", "submissions[1].supersedes")
    assert fix["id"] in error["message"]
    other = client.post("/api/v1/submissions", headers=bearer(site_token), json=GOOD).get_json()
    error = assert_error(client.post("/api/v1/submissions/bulk", headers=bearer(site_token),
                                     json={"submissions": [{**GOOD, "supersedes": other["id"]},
                                                           {**GOOD, "supersedes": other["id"]}]}),
                         422, "validation_error", "submissions[1].supersedes")
    assert "submissions[0].supersedes" in error["message"]
    assert stored(engine) == (before[0] + 1, before[1])  # only `other`

    view = client.get(f"/api/v1/submissions/{first['id']}").get_json()
    assert view["supersededBy"] == fix["id"]
    assert client.get(f"/api/v1/submissions/{fix['id']}").get_json()["supersededBy"] is None
    pending = client.get(f"/api/v1/submissions/{first['id']}/receipt")
    assert pending.status_code == 202 and pending.get_json()["supersededBy"] == fix["id"]
    found = client.get(f"/api/v1/submissions?sha256={SHA}").get_json()["submissions"]
    assert {v["id"]: v["supersededBy"] for v in found} == {
        first["id"]: fix["id"], fix["id"]: None, other["id"]: None}


BAD_ITEMS = {
    "short hash": ({"sha256": "a" * 63}, "sha256"),
    "long hash": ({"sha256": "a" * 65}, "sha256"),
    "non-hex hash": ({"sha256": "g" * 64}, "sha256"),
    "hash not a string": ({"sha256": 12}, "sha256"),
    "unknown trial": ({"trial": "NCT99999999"}, "trial"),
    "malformed trial": ({"trial": "-NCT"}, "trial"),
    "not enrolled": ({"trial": "NCT07654321"}, "site"),
    "malformed site": ({"site": "SITE 01"}, "site"),
    "control character": ({"dataset": "AD\x00SL"}, "dataset"),
    "newline in filename": ({"filename": "a\nb.xpt"}, "filename"),
    "blank dataset": ({"dataset": "  "}, "dataset"),
    "dataset too long": ({"dataset": "x" * 201}, "dataset"),
    "filename too long": ({"filename": "x" * 256}, "filename"),
    "negative size": ({"sizeBytes": -1}, "sizeBytes"),
    "size 2^53": ({"sizeBytes": 2**53}, "sizeBytes"),
    "size true": ({"sizeBytes": True}, "sizeBytes"),
    "size 1.5": ({"sizeBytes": 1.5}, "sizeBytes"),
    "size string": ({"sizeBytes": "12"}, "sizeBytes"),
    "unknown kind": ({"kind": "xpt"}, "kind"),
    "unknown field": ({"sha265": SHA}, "sha265"),
    "unknown supersedes": ({"supersedes": UNKNOWN_ID}, "supersedes"),
    "malformed supersedes": ({"supersedes": "x"}, "supersedes"),
}


@pytest.mark.parametrize("change, field", BAD_ITEMS.values(), ids=BAD_ITEMS.keys())
def test_bad_registrations_are_refused(client, engine, site_token, other_token, change, field):
    before = stored(engine)
    response = client.post("/api/v1/submissions", headers=bearer(site_token),
                           json={**GOOD, **change})
    assert_error(response, 422, "validation_error", field)
    bulk = client.post("/api/v1/submissions/bulk", headers=bearer(site_token),
                       json={"submissions": [GOOD] * 25 + [{**GOOD, **change}] + [GOOD]})
    assert_error(bulk, 422, "validation_error", f"submissions[25].{field}")
    assert stored(engine) == before


def test_missing_fields_and_wrong_shapes(client, engine, site_token):
    for body, field in [({k: v for k, v in GOOD.items() if k != "dataset"}, "dataset"),
                        ([GOOD], None), ("NCT01234567", None), (None, None)]:
        response = client.post("/api/v1/submissions", headers=bearer(site_token),
                               data=json.dumps(body), content_type="application/json")
        assert_error(response, 422, "validation_error", field)
    for body, field in [({"submissions": []}, "submissions"), ({}, "submissions"),
                        ({"submissions": GOOD}, "submissions"), ([GOOD], None),
                        ({"submissions": [GOOD], "trial": "x"}, "trial"),
                        ({"submissions": [GOOD, 7]}, "submissions[1]")]:
        assert_error(client.post("/api/v1/submissions/bulk", headers=bearer(site_token),
                                 json=body), 422, "validation_error", field)
    assert stored(engine) == (0, 0)


@pytest.mark.parametrize("raw, field", [
    (b'"dataset": "lone \\ud800 surrogate"', "dataset"),
    (b'"dataset": "ADSL", "filename": "\\udfff.xpt"', "filename"),
    (b'"dataset": "tab\\there"', "dataset"),
    (b'"dataset": "\xed\xa0\x80 raw surrogate"', "dataset"),
])
def test_text_that_could_not_be_sealed_is_refused(client, engine, site_token, raw, field):
    body = (b'{"trial": "NCT01234567", "site": "SITE-01", "sha256": "' + SHA.encode() +
            b'", ' + raw + b"}")
    response = client.post("/api/v1/submissions", headers=bearer(site_token), data=body,
                           content_type="application/json")
    assert_error(response, 422, "validation_error", field)
    assert stored(engine) == (0, 0)


def test_another_sites_token_is_forbidden(client, engine, site_token, other_token):
    response = client.post("/api/v1/submissions", headers=bearer(other_token), json=GOOD)
    assert_error(response, 403, "forbidden", "site")
    bulk = client.post("/api/v1/submissions/bulk", headers=bearer(site_token),
                       json={"submissions": [GOOD] * 7 + [{**GOOD, "site": "SITE-02"}]})
    assert_error(bulk, 403, "forbidden", "submissions[7].site")
    unknown = client.post("/api/v1/submissions", headers=bearer(site_token),
                          json={**GOOD, "site": "SITE-99"})
    assert_error(unknown, 403, "forbidden", "site")
    assert stored(engine) == (0, 0)


def _token_row(engine, token: str, **values) -> None:
    with Session(engine) as session:
        session.execute(sa.update(SiteToken).where(
            SiteToken.digest == sites.token_digest(token)).values(**values))
        session.commit()


@pytest.mark.parametrize("case", ["missing", "garbage", "basic", "empty", "expired", "revoked"])
def test_tokens_that_do_not_authenticate(client, engine, site_token, case):
    headers = {"missing": {}, "garbage": bearer("tn_site_nope"),
               "basic": {"Authorization": f"Basic {site_token}"},
               "empty": {"Authorization": "Bearer "}}.get(case, bearer(site_token))
    if case == "expired":
        _token_row(engine, site_token, expires_at=utcnow() - timedelta(seconds=1))
    if case == "revoked":
        _token_row(engine, site_token, revoked_at=utcnow())
    for path, body in [("/api/v1/submissions", GOOD),
                       ("/api/v1/submissions/bulk", {"submissions": [GOOD]})]:
        response = client.post(path, headers=headers, json=body)
        assert_error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert stored(engine) == (0, 0)


def test_an_oversized_body_is_refused(client, engine, site_token):
    body = b'{"submissions": [' + b" " * MAX_BODY_BYTES + b"]}"
    response = client.post("/api/v1/submissions/bulk", headers=bearer(site_token), data=body,
                           content_type="application/json")
    assert_error(response, 413, "payload_too_large")
    assert stored(engine) == (0, 0)


@pytest.mark.parametrize("body, content_type", [
    (json.dumps(GOOD), "text/plain"),
    (json.dumps(GOOD), None),
    ("trial=NCT01234567", "application/x-www-form-urlencoded"),
    ('{"trial": "NCT01234567",', "application/json"),
    ("", "application/json"),
    ('{"sizeBytes": NaN}', "application/json"),
    ('{"sizeBytes": Infinity}', "application/json"),
    (b'{"dataset": "\xff\xfe\xfd"}', "application/json"),
    ("[" * 100_000 + "]" * 100_000, "application/json"),
    ('{"sizeBytes": 1' + "0" * 5000 + "}", "application/json"),
])
def test_bodies_that_are_not_json(client, engine, site_token, body, content_type):
    for path in ("/api/v1/submissions", "/api/v1/submissions/bulk"):
        response = client.post(path, headers=bearer(site_token), data=body,
                               content_type=content_type)
        assert_error(response, 400, "invalid_json")
    assert stored(engine) == (0, 0)


def test_bulk_limits(client, engine, site_token):
    item = {"trial": "NCT01234567", "site": "SITE-01", "dataset": "D", "sha256": SHA}
    over = client.post("/api/v1/submissions/bulk", headers=bearer(site_token),
                       json={"submissions": [item] * 10_001})
    assert_error(over, 422, "validation_error", "submissions")
    assert stored(engine) == (0, 0)
    full = client.post("/api/v1/submissions/bulk", headers=bearer(site_token),
                       json={"submissions": [item] * 10_000})
    assert full.status_code == 201 and len(full.get_json()["submissions"]) == 10_000
    assert stored(engine) == (10_000, 0)


# --- idempotency ---------------------------------------------------------------------

@pytest.mark.parametrize("path, body", [
    ("/api/v1/submissions", GOOD), ("/api/v1/submissions/bulk", {"submissions": [GOOD] * 3}),
])
def test_idempotent_retries(client, engine, site_token, other_token, path, body):
    headers = {**bearer(site_token), "Idempotency-Key": "retry-7"}
    first = client.post(path, headers=headers, json=body)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    count = stored(engine)
    # The same request re-serialised (other key order, spacing) is the same request.
    again = client.post(path, headers=headers, content_type="application/json",
                        data=json.dumps(dict(reversed(body.items())), indent=2))
    assert again.status_code == first.status_code
    assert again.get_data() == first.get_data()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert stored(engine) == count

    other = {**body, "submissions": [GOOD]} if "submissions" in body else {**GOOD, "dataset": "X"}
    mismatch = client.post(path, headers=headers, json=other)
    assert_error(mismatch, 422, "idempotency_mismatch", "Idempotency-Key")
    # Scoped to the token: another token's key of the same name is another key.
    mine = client.post(path, headers={**bearer(site_token), "Idempotency-Key": "other"},
                       json=body)
    assert mine.status_code == 201 and mine.get_data() != first.get_data()
    assert stored(engine) == (count[0] * 2, count[1] + 1)


def test_idempotency_key_limits(client, engine, site_token):
    for key in ["x" * 256, " padded "]:
        response = client.post("/api/v1/submissions", json=GOOD,
                               headers={**bearer(site_token), "Idempotency-Key": key})
        assert_error(response, 422, "validation_error", "Idempotency-Key")
    ok = client.post("/api/v1/submissions", json=GOOD,
                     headers={**bearer(site_token), "Idempotency-Key": "x" * 255})
    assert ok.status_code == 201
    assert stored(engine) == (1, 1)


def test_a_refused_request_keeps_no_key(client, engine, site_token):
    headers = {**bearer(site_token), "Idempotency-Key": "k"}
    bad = client.post("/api/v1/submissions", headers=headers, json={**GOOD, "sha256": "x"})
    assert_error(bad, 422, "validation_error", "sha256")
    good = client.post("/api/v1/submissions", headers=headers, json=GOOD)
    assert good.status_code == 201


# --- looking up ----------------------------------------------------------------------

def test_lookup_by_sha256(client, site_token):
    ids = [client.post("/api/v1/submissions", headers=bearer(site_token), json=GOOD)
           .get_json()["id"] for _ in range(3)]
    client.post("/api/v1/submissions", headers=bearer(site_token),
                json={**GOOD, "sha256": "cd" * 32})
    found = client.get(f"/api/v1/submissions?sha256={SHA.upper()}")
    assert found.status_code == 200
    assert [s["id"] for s in found.get_json()["submissions"]] == ids
    assert client.get(f"/api/v1/submissions?sha256={'ef' * 32}").get_json() == {"submissions": []}
    for query in ["", "?sha256=", "?sha256=abc", f"?sha256={'g' * 64}", f"?hash={SHA}"]:
        assert_error(client.get(f"/api/v1/submissions{query}"), 422, "validation_error",
                     "sha256")


def test_unknown_things_are_404(client, site_token):
    created = client.post("/api/v1/submissions", headers=bearer(site_token), json=GOOD)
    registration_id = created.get_json()["id"]
    assert client.get(f"/api/v1/submissions/{registration_id.upper()}").status_code == 200
    for path in [f"/api/v1/submissions/{UNKNOWN_ID}", "/api/v1/submissions/nope",
                 f"/api/v1/submissions/{UNKNOWN_ID}/receipt", "/api/v1/submissions/x/receipt",
                 "/api/v1/batches/1", "/api/v1/batches/0", "/api/v1/batches/-1",
                 "/api/v1/batches/abc", "/api/v1/batches/99999999999999999999999",
                 "/api/v1/batches/9223372036854775808", "/api/v1/nothing", "/api/v1",
                 "/api/v1/submissions/"]:
        assert_error(client.get(path), 404, "not_found")


def test_method_not_allowed_is_json(client):
    response = client.delete("/api/v1/submissions")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"] and "GET" in response.headers["Allow"]
    assert_error(client.put(f"/api/v1/submissions/{UNKNOWN_ID}"), 405, "method_not_allowed")


def test_errors_outside_the_api_stay_html(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404 and response.mimetype == "text/html"


def test_receipt_follows_the_batch(app, client, engine, site_token, anvil):
    items = [{**GOOD, "dataset": f"D/{i}", "sha256": f"{i:064x}"} for i in range(5)]
    answers = client.post("/api/v1/submissions/bulk", headers=bearer(site_token),
                          json={"submissions": items}).get_json()["submissions"]
    target = answers[3]
    batch, = batches.seal_all(engine, 100)

    sealed = client.get(f"/api/v1/submissions/{target['id']}/receipt")
    assert sealed.status_code == 202 and sealed.headers["Retry-After"] == "5"
    view = sealed.get_json()
    assert view["status"] == "sealed" and view["anchor"] is None
    # Five registrations and the audit trail's head (the trial and site were recorded).
    assert batch.audit_seq is not None
    assert view["batch"] == {"id": batch.id, "leafIndex": 3, "leafCount": 6,
                             "sealedAt": batch.sealed_at, "root": batch.root.hex()}
    assert client.get(f"/api/v1/batches/{batch.id}").get_json() == {
        "id": batch.id, "root": batch.root.hex(), "leafCount": 6, "sealedAt": batch.sealed_at,
        "state": "sealed", "anchor": None}

    chain = app.extensions["trialnotary"].chain
    anchor, = anchoring.anchor_sealed(engine, chain)
    sent = client.get(f"/api/v1/submissions/{target['id']}").get_json()
    assert sent["status"] == "sent" and sent["anchor"]["txHash"] == anchor.tx_hash
    anvil.mine(3)
    assert anchoring.confirm_sent(engine, chain) == [batch.id]

    with QueryCounter(engine) as queries:
        response = client.get(f"/api/v1/submissions/{target['id']}/receipt")
    assert response.status_code == 200
    assert queries.count <= 4, queries.statements
    assert response.headers["Content-Disposition"] == (
        "attachment; filename=" + receipt_filename("NCT01234567", "D/3", target["id"]))
    assert response.headers["Content-Disposition"].endswith("NCT01234567_D_3_"
                                                            f"{target['id']}.receipt.json")
    receipt = response.get_json()
    assert receipt["trialnotary"]["record"] == target["record"]
    assert receipt["targetHash"] == record_leaf(target["record"]).hex()
    leaf = bytes.fromhex(receipt["targetHash"])
    assert fold_proof(leaf, receipt["proof"]).hex() == receipt["merkleRoot"] == batch.root.hex()
    assert receipt["anchors"][0]["sourceId"] == anchor.tx_hash

    confirmed = client.get(f"/api/v1/submissions/{target['id']}").get_json()
    assert confirmed["status"] == "confirmed"
    assert confirmed["anchor"]["state"] == "confirmed"
    assert confirmed["anchor"]["blockNumber"] == receipt["anchors"][0]["blockNumber"]
    assert client.get(f"/api/v1/batches/{batch.id}").get_json()["state"] == "confirmed"
    listed = client.get(f"/api/v1/submissions?sha256={'0' * 63}3").get_json()["submissions"]
    assert listed == [confirmed]


class QueryCounter:
    """Counts the SQL statements an engine runs inside a ``with`` block."""

    def __init__(self, engine):
        self.engine, self.statements = engine, []

    def _count(self, conn, cursor, statement, *args):
        self.statements.append(statement)

    @property
    def count(self) -> int:
        return len(self.statements)

    def __enter__(self):
        sa.event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc):
        sa.event.remove(self.engine, "before_cursor_execute", self._count)


# --- the service ---------------------------------------------------------------------

def test_health_and_readiness(client):
    assert client.get("/api/v1/healthz").get_json() == {"status": "ok"}
    ready = client.get("/api/v1/readyz")
    assert ready.status_code == 200
    body = ready.get_json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["chain"]["reachable"] is True


def test_readiness_without_chain_or_database(settings_env, tmp_path):
    no_chain = {**settings_env, "TRIALNOTARY_CHAIN_RPC_URL": "http://127.0.0.1:9"}
    app = create_app(load_settings(no_chain), {"TESTING": True})
    ready = app.test_client().get("/api/v1/readyz")
    assert ready.status_code == 200 and ready.get_json()["chain"]["reachable"] is False
    app.extensions["trialnotary"].engine.dispose()

    no_database = {**no_chain, "TRIALNOTARY_DATABASE_URL":
                   "postgresql://postgres@127.0.0.1:9/nothing"}
    app = create_app(load_settings(no_database), {"TESTING": True})
    down = app.test_client().get("/api/v1/readyz")
    assert down.status_code == 503
    assert down.get_json()["status"] == "unavailable"
    assert down.get_json()["database"] == "unavailable"
    app.extensions["trialnotary"].engine.dispose()


def test_openapi_lists_exactly_the_routes(app, client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert document == json.loads(json.dumps(openapi.document()))
    assert document["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, ops in document["paths"].items()
                  for method in ops}
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = rule.rule.removeprefix("/api/v1")
            path = path.replace("<registration_id>", "{id}").replace("<int:batch_id>", "{id}")
            path = path.replace("<path:trial>", "{trial}")
            served |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == served
    assert app.url_map.bind("").build("api.openapi") == "/api/v1/openapi.json"
    assert app.url_map.bind("").build("api.healthz") == "/api/v1/healthz"
    assert app.url_map.bind("").build("api.readyz") == "/api/v1/readyz"


def test_json_depth():
    from trialnotary.web.responses import MAX_JSON_DEPTH, json_depth

    assert json_depth(b'{"a": [1, 2]}') == 0  # few brackets: not even counted
    deep = b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)
    assert json_depth(deep) == MAX_JSON_DEPTH + 1
    quoted = b'{"a": "' + b"[" * 500 + b'\\"[[", "b": [' + b"{}," * 100 + b"{}]}"
    assert json_depth(quoted) == 3
    comb = b"".join(b"[[]," for _ in range(200)) + b"0" + b"]" * 200
    assert json_depth(comb) == 201  # the innermost [] of the last [[] is one deeper


def test_brackets_inside_strings_are_not_nesting(client, engine, site_token):
    body = {**GOOD, "dataset": "[" * 150 + "{" * 50}
    response = client.post("/api/v1/submissions", headers=bearer(site_token), json=body)
    assert response.status_code == 201
    assert response.get_json()["record"]["dataset"] == body["dataset"]


def test_an_unexpected_error_is_json_500(settings):
    """A bug still answers in the API's error shape (a 5xx is always a bug)."""
    app = create_app(settings, {"TESTING": False, "PROPAGATE_EXCEPTIONS": False})

    @requires(access.PUBLIC)
    def boom():
        raise RuntimeError("bug")

    app.add_url_rule("/api/v1/boom", view_func=boom)
    assert_error(app.test_client().get("/api/v1/boom"), 500, "internal_error")
    app.extensions["trialnotary"].engine.dispose()
