"""The notary's identity at ``/.well-known/trialnotary.json``: its shape, readable from any
origin and as a download, each version an audit entry; and version 2 receipts naming the
notary (docs/receipt.md, "The notary's identity")."""

from __future__ import annotations

import hashlib

import pytest
from sqlmodel import Session

from tests.conftest import ANVIL_ACCOUNTS, insert_registrations
from tests.utils import anchor_and_confirm, new_app
from trialnotary.people import audit
from trialnotary.proof.facts import IDENTITY_PATH
from trialnotary.proof.verify import parse_identity

NAME = "Example Trials Notary"


@pytest.fixture
def named_app(settings_env):
    env = {**settings_env, "TRIALNOTARY_NOTARY_NAME": NAME,
           "TRIALNOTARY_PUBLIC_URL": "https://notary.example.org/"}
    app = new_app(env)
    yield app
    app.extensions["trialnotary"].engine.dispose()


def identity_entries(app) -> list[dict]:
    with Session(app.extensions["trialnotary"].engine) as session:
        return [entry for entry in audit.entries(session) if entry["action"] == "notary.identity"]


def test_the_identity_names_the_notary_and_its_anchoring_address(named_app):
    answer = named_app.test_client().get(IDENTITY_PATH)
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    document = answer.get_json()
    assert document["name"] == NAME and document["url"] == "https://notary.example.org"
    assert document["version"] == 1 and document["updatedAt"].endswith("Z")
    [anchor] = document["anchors"]
    assert {key: anchor[key] for key in ("name", "kind", "chainId", "retireOn")} == \
        {"name": "local", "kind": "evm", "chainId": 31337, "retireOn": None}
    [address] = anchor["addresses"]
    assert address["address"] == ANVIL_ACCOUNTS[0]
    assert address["until"] is None and address["compromisedFrom"] is None
    assert address["from"].endswith("Z") and len(address["from"]) == 20  # whole seconds
    assert parse_identity(answer.data).anchors[0].addresses[0].address == ANVIL_ACCOUNTS[0]


def test_each_version_is_one_audit_entry_holding_its_sha256(named_app):
    client = named_app.test_client()
    first = client.get(IDENTITY_PATH).data
    assert client.get(IDENTITY_PATH).data == first  # unchanged: the same version
    [entry] = identity_entries(named_app)
    assert entry["new"] == {"version": 1, "sha256": hashlib.sha256(first).hexdigest()}
    assert entry["entity"] == "notary_identity" and entry["actor"] == "trialnotary"


def test_a_new_name_is_a_new_version(named_app, settings_env):
    named_app.test_client().get(IDENTITY_PATH)
    renamed = new_app({**settings_env, "TRIALNOTARY_NOTARY_NAME": "Renamed Notary"})
    try:
        document = renamed.test_client().get(IDENTITY_PATH).get_json()
    finally:
        renamed.extensions["trialnotary"].engine.dispose()
    assert document["name"] == "Renamed Notary" and document["version"] == 2
    assert document["url"] == "https://notary.example.org"  # the URL it was published at
    assert [e["new"]["version"] for e in identity_entries(named_app)] == [1, 2]


def test_the_identity_downloads_as_a_file(named_app):
    answer = named_app.test_client().get(IDENTITY_PATH + "?download=1")
    assert answer.headers["Content-Disposition"] == \
        "attachment; filename=trialnotary-identity.json"
    assert answer.get_json()["name"] == NAME


def test_without_a_public_url_the_identity_has_the_served_host(client):
    document = client.get(IDENTITY_PATH, base_url="http://127.0.0.1:5000").get_json()
    assert document["url"] == "http://127.0.0.1:5000" and document["name"] == "trialnotary"


def test_the_verify_page_links_the_identity_for_download(client):
    page = client.get("/verify").get_data(as_text=True)
    assert f'href="{IDENTITY_PATH}?download=1"' in page


def test_receipts_are_version_2_and_name_the_notary_and_the_anchor(named_app, anvil):
    [record] = insert_registrations(named_app.extensions["trialnotary"].engine, 1)
    anchor_and_confirm(named_app, anvil)
    receipt = named_app.test_client().get(
        f"/api/v1/submissions/{record['id']}/receipt").get_json()
    assert receipt["trialnotary"]["receiptVersion"] == 2
    assert receipt["trialnotary"]["notary"] == {"name": NAME,
                                                "url": "https://notary.example.org"}
    assert receipt["anchors"][0]["name"] == "local"
    assert list(receipt["anchors"][0])[:2] == ["type", "name"]
