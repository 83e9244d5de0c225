"""The OpenAPI document against the server: schemathesis generates requests from it (valid
and invalid ones) and checks every answer: never a 5xx, and the status code, content type,
headers and body are the ones the document declares. On SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlmodel import Session

from tests.utils import module_database
from trialnotary.config import load_settings
from trialnotary.notary import anchoring, batches
from trialnotary.people import sites
from trialnotary.web import openapi
from trialnotary.web.app import create_app

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 120


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request, tmp_path_factory):
    """A migrated database for the whole module (the conftest's is one per test)."""
    with module_database(request, tmp_path_factory) as url:
        yield url


@pytest.fixture(scope="module")
def seeded(database, tmp_path_factory, anvil):
    """An app with trial NCT01234567, site SITE-01 and its token, and one registration in
    each state: pending, sealed, and confirmed (on the test anvil)."""
    tmp = tmp_path_factory.mktemp("instance")
    url = database
    app = create_app(load_settings({
        "TRIALNOTARY_INSTANCE_PATH": str(tmp / "instance"), "TRIALNOTARY_DATABASE_URL": url,
        "TRIALNOTARY_CHAIN": "local", "TRIALNOTARY_CHAIN_RPC_URL": anvil.url,
        "TRIALNOTARY_SEAL_INTERVAL_SECONDS": "3600", "TRIALNOTARY_CONFIRMATIONS": "1",
        # Hundreds of anonymous look-ups from one address: their limit has its own test.
        "TRIALNOTARY_LOOKUP_RATE_LIMIT": "100000 per minute",
    }), {"TESTING": True})
    services = app.extensions["trialnotary"]
    with Session(services.engine) as session:
        sites.add_trial(session, "NCT01234567")
        sites.add_site(session, "NCT01234567", "SITE-01")
        token = sites.create_token(session, "SITE-01")
        session.commit()
    client = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}

    def register(dataset: str) -> str:
        answer = client.post("/api/v1/submissions", headers=auth, json={
            "trial": "NCT01234567", "site": "SITE-01", "dataset": dataset, "sha256": "ab" * 32})
        assert answer.status_code == 201
        return answer.get_json()["id"]

    confirmed = register("confirmed")
    batches.seal_all(services.engine, 100)
    anchoring.anchor_sealed(services.engine, services.chain)
    anvil.mine(2)
    assert anchoring.confirm_sent(services.engine, services.chain)
    sealed = register("sealed")
    batches.seal_all(services.engine, 100)
    pending = register("pending")
    yield {"app": app, "token": token, "ids": {"confirmed": confirmed, "sealed": sealed,
                                              "pending": pending}}
    services.engine.dispose()


@pytest.fixture(scope="module")
def api_schema(seeded):
    """The document as the server serves it, calling that server."""
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", seeded["app"])


# Built from the same data the server serves (test_api checks they are equal): the lazy
# ``schemathesis.pytest.from_fixture`` loader does not work with pytest 9 yet.
schema = schemathesis.openapi.from_dict(openapi.document())


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_generated_requests(case, seeded):
    case.call_and_validate(app=seeded["app"], checks=CHECKS,
                           headers={"Authorization": f"Bearer {seeded['token']}"})


@pytest.mark.parametrize("state, status", [("pending", 202), ("sealed", 202),
                                           ("confirmed", 200)])
def test_seeded_states_match_the_document(api_schema, seeded, state, status):
    """Generated ids are never known ones: check each state's answers explicitly."""
    registration_id = seeded["ids"][state]
    for path in ("/submissions/{id}", "/submissions/{id}/receipt"):
        case = api_schema[path]["GET"].Case(path_parameters={"id": registration_id})
        response = case.call_and_validate(checks=CHECKS)
        assert response.status_code == (status if path.endswith("receipt") else 200)
    listing = api_schema["/submissions"]["GET"].Case(query={"sha256": "AB" * 32})
    assert len(listing.call_and_validate(checks=CHECKS).json()["submissions"]) == 3
    for batch_id in (1, 2):
        case = api_schema["/batches/{id}"]["GET"].Case(path_parameters={"id": batch_id})
        assert case.call_and_validate(checks=CHECKS).status_code == 200


def test_errors_match_the_document(api_schema, seeded):
    """Answers the generator rarely reaches: 401, 403, 413, 400, replays and mismatches."""
    post = api_schema["/submissions"]["POST"]
    body = {"trial": "NCT01234567", "site": "SITE-01", "dataset": "D", "sha256": "cd" * 32}
    auth = {"Authorization": f"Bearer {seeded['token']}"}
    # A key of our own: the generated requests above share this module's token.
    key = {"Idempotency-Key": f"errors-{uuid.uuid4()}"}
    cases = [
        (post.Case(body=body), {}, 401),
        (post.Case(body={**body, "site": "SITE-02"}), auth, 403),
        (post.Case(body=body, media_type="application/json"),
         {**auth, **key}, 201),
        (post.Case(body=body), {**auth, **key}, 201),
        (post.Case(body={**body, "dataset": "E"}), {**auth, **key}, 422),
    ]
    for case, headers, status in cases:
        assert case.call_and_validate(headers=headers, checks=CHECKS).status_code == status
    client = seeded["app"].test_client()
    too_big = client.post("/api/v1/submissions", headers=auth, content_type="application/json",
                          data=b" " * (16 * 1024 * 1024 + 1))
    not_json = client.post("/api/v1/submissions", headers=auth, data="{",
                           content_type="application/json")
    for response, status in [(too_big, 413), (not_json, 400)]:
        assert response.status_code == status
        post.validate_response(response)
