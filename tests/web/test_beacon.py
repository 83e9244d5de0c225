"""The beacon (``GET /api/v1/beacon``) and records that name it as ``notBefore``
(docs/api.md, docs/receipt.md): on a real anvil, with the notary's own sealing and
anchoring."""

from __future__ import annotations

import pytest

from tests.utils import anchor_and_confirm, bearer, engine_of, scalar
from trialnotary.proof.receipt import block_time, record_leaf
from trialnotary.proof.verify import verify_receipt

SHA = "ab" * 32
ITEM = {"trial": "NCT01234567", "site": "SITE-01", "dataset": "ADSL", "sha256": SHA}


def _register(client, token, item) -> dict:
    answer = client.post("/api/v1/submissions", json=item, headers=bearer(token))
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["record"]


def _receipt(client, registration_id: str) -> dict:
    answer = client.get(f"/api/v1/submissions/{registration_id}/receipt")
    assert answer.status_code == 200
    return answer.get_json()


def test_the_beacon_is_the_newest_confirmed_block(app, client, anvil):
    """With N confirmations, the head's N−1th ancestor (anvil mines a block a second, so the
    head is read before and after)."""
    need = app.extensions["trialnotary"].settings.confirmations
    anvil.mine(5)
    before = int(anvil.rpc("eth_blockNumber"), 16)
    beacon = client.get("/api/v1/beacon")
    after = int(anvil.rpc("eth_blockNumber"), 16)
    assert beacon.status_code == 200
    found = beacon.get_json()
    assert before - need + 1 <= found["blockNumber"] <= after - need + 1
    block = anvil.rpc("eth_getBlockByNumber", hex(found["blockNumber"]), False)
    assert found == {"chainId": 31337, "blockNumber": found["blockNumber"],
                     "blockHash": block["hash"],
                     "blockTime": block_time(int(block["timestamp"], 16))}
    assert beacon.headers["Cache-Control"] == "no-store"


def test_the_beacon_with_n_confirmations_is_that_far_behind_the_head(settings_env, anvil):
    from trialnotary.config import load_settings
    from trialnotary.notary.beacon import beacon
    from trialnotary.notary.chain import ChainClient

    anvil.mine(5)
    chain = ChainClient(load_settings({**settings_env, "TRIALNOTARY_CONFIRMATIONS": "3"}))
    assert chain.settings.confirmations == 3
    before = int(anvil.rpc("eth_blockNumber"), 16)
    number = beacon(chain)["blockNumber"]
    assert before - 2 <= number <= int(anvil.rpc("eth_blockNumber"), 16) - 2


def test_without_a_node_the_beacon_is_503(settings_env):
    from tests.conftest import free_port
    from trialnotary.config import load_settings
    from trialnotary.web.app import create_app

    app = create_app(load_settings({**settings_env, "TRIALNOTARY_CHAIN_RPC_URL":
                                    f"http://127.0.0.1:{free_port()}"}), {"TESTING": True})
    answer = app.test_client().get("/api/v1/beacon")
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "unavailable"
    engine_of(app).dispose()


def test_a_record_made_after_the_beacon_verifies_not_before(app, client, site_token, anvil):
    beacon = client.get("/api/v1/beacon").get_json()
    not_before = {key: beacon[key] for key in ("chainId", "blockNumber", "blockHash")}
    record = _register(client, site_token, {**ITEM, "notBefore": not_before})
    assert list(record)[-1] == "notBefore" and record["notBefore"] == not_before
    anvil.mine(2)
    anchor_and_confirm(app, anvil)
    receipt = _receipt(client, record["id"])
    assert receipt["trialnotary"]["record"]["notBefore"] == not_before
    assert receipt["targetHash"] == record_leaf(receipt["trialnotary"]["record"]).hex()
    report = verify_receipt(receipt, rpc_urls=[anvil.url])
    steps = {step.name: step for step in report.steps}
    assert steps["not-before"].ok is True, steps["not-before"].detail
    assert f"made after block {beacon['blockNumber']} at {beacon['blockTime']}" \
        in steps["not-before"].detail
    assert report.steps[-1].name == "not-before"


def test_a_record_without_not_before_keeps_its_leaf(app, client, site_token, anvil):
    record = _register(client, site_token, ITEM)
    assert "notBefore" not in record
    leaf = scalar(engine_of(app), "SELECT leaf FROM submission WHERE id = :id", id=record["id"])
    assert bytes(leaf) == record_leaf(record)  # the ten keys of before, nothing more
    assert scalar(engine_of(app), "SELECT not_before FROM submission WHERE id = :id",
                  id=record["id"]) is None
    anchor_and_confirm(app, anvil)
    receipt = _receipt(client, record["id"])
    assert "notBefore" not in receipt["trialnotary"]["record"]
    report = verify_receipt(receipt, rpc_urls=[anvil.url])
    assert "not-before" not in [step.name for step in report.steps]


def test_a_not_before_off_the_chain_fails(app, client, site_token, anvil):
    beacon = client.get("/api/v1/beacon").get_json()
    forged = {"chainId": 31337, "blockNumber": beacon["blockNumber"],
              "blockHash": "0x" + "00" * 32}
    record = _register(client, site_token, {**ITEM, "notBefore": forged})
    anchor_and_confirm(app, anvil)
    report = verify_receipt(_receipt(client, record["id"]), rpc_urls=[anvil.url])
    step = next(step for step in report.steps if step.name == "not-before")
    assert step.ok is False
    assert report.verdict.state == "failed"
    assert "names a block not on the chain" in step.detail


@pytest.mark.parametrize(("not_before", "field"), [
    (None, "notBefore"),
    ({"chainId": 0, "blockNumber": 1, "blockHash": "0x" + "aa" * 32}, "notBefore.chainId"),
    ({"chainId": True, "blockNumber": 1, "blockHash": "0x" + "aa" * 32}, "notBefore.chainId"),
    ({"chainId": 1, "blockNumber": -1, "blockHash": "0x" + "aa" * 32}, "notBefore.blockNumber"),
    ({"chainId": 1, "blockNumber": 1.0, "blockHash": "0x" + "aa" * 32}, "notBefore.blockNumber"),
    ({"chainId": 1, "blockNumber": 1, "blockHash": "0x" + "AA" * 32}, "notBefore.blockHash"),
    ({"chainId": 1, "blockNumber": 1, "blockHash": "aa" * 32}, "notBefore.blockHash"),
    ({"chainId": 1, "blockNumber": 1}, "notBefore.blockHash"),
    ({"chainId": 1, "blockNumber": 1, "blockHash": "0x" + "aa" * 32, "x": 1}, "notBefore.x"),
])
def test_a_not_before_is_validated_strictly(client, site_token, not_before, field):
    answer = client.post("/api/v1/submissions/bulk",
                         json={"submissions": [{**ITEM, "notBefore": not_before}]},
                         headers=bearer(site_token))
    assert answer.status_code == 422
    assert answer.get_json()["error"]["field"] == f"submissions[0].{field}"


def test_bulk_registration_stores_not_before(app, client, site_token):
    not_before = {"chainId": 1, "blockNumber": 7, "blockHash": "0x" + "cd" * 32}
    answer = client.post("/api/v1/submissions/bulk", json={"submissions": [
        {**ITEM, "notBefore": not_before}, {**ITEM, "dataset": "ADAE"}]},
        headers=bearer(site_token))
    assert answer.status_code == 201
    first, second = (item["record"] for item in answer.get_json()["submissions"])
    assert first["notBefore"] == not_before and "notBefore" not in second
    shown = client.get(f"/api/v1/submissions/{first['id']}").get_json()["record"]
    assert shown == first
