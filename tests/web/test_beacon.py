"""The beacon (``GET /api/v1/beacon``) and records that name it as ``notBefore``
(docs/api.md, docs/receipt.md): on a real anvil, with the notary's own sealing and
anchoring."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest
import rfc8785
from sqlmodel import Session

from tests.conftest import Anvil
from tests.corpus import outcome_of
from tests.utils import anchor_and_confirm, bearer, engine_of, register_past_the_api, scalar
from tests.web.test_verifier_parity import FACTS, in_chromium, in_node
from tests.web.test_verifier_parity import tree_server as tree_server  # (a fixture)
from trialnotary.notary.consistency import integrity
from trialnotary.notary.errors import ChainUnreachable
from trialnotary.proof.receipt import RECORD_KEYS, block_time, record_leaf
from trialnotary.proof.verify import verify_receipt

SHA = "ab" * 32
ITEM = {"trial": "NCT01234567", "site": "SITE-01", "dataset": "ADSL", "sha256": SHA}


@pytest.fixture(scope="module")
def anvil():
    """An anvil that mines only when asked (and on each transaction): the verifiers compared
    below see the same head."""
    node = Anvil(block_time=None)
    yield node
    node.stop()


def _register(client, token, item) -> dict:
    answer = client.post("/api/v1/submissions", json=item, headers=bearer(token))
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["record"]


def _forged(app, token, item) -> dict:
    return register_past_the_api(engine_of(app), token, item)


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


def test_a_beacon_no_later_than_a_time_is_the_newest_block_before_it(chain, anvil):
    """What a sign-off names when the chain's clock runs ahead of the server's: the newest
    confirmed block whose time is no later than the signing time."""
    from datetime import UTC, datetime

    from trialnotary.notary.beacon import beacon
    from trialnotary.notary.errors import ChainError

    latest = int(anvil.rpc("eth_getBlockByNumber", "latest", False)["timestamp"], 16)
    anvil.rpc("evm_setNextBlockTimestamp", latest + 2)
    anvil.mine(1)
    marker = int(anvil.rpc("eth_blockNumber"), 16)
    anvil.rpc("evm_setNextBlockTimestamp", latest + 5)
    anvil.mine(3)
    newest = beacon(chain)
    assert newest["blockNumber"] > marker
    limit = datetime.fromtimestamp(latest + 4, UTC)
    found = beacon(chain, not_after=limit)
    block = anvil.rpc("eth_getBlockByNumber", hex(marker), False)
    assert found == {"chainId": 31337, "blockNumber": marker, "blockHash": block["hash"],
                     "blockTime": block_time(latest + 2)}
    assert beacon(chain, not_after=datetime.fromtimestamp(latest + 10_000, UTC)) == newest
    with pytest.raises(ChainError, match="later than this server's clock"):
        beacon(chain, not_after=datetime.fromtimestamp(0, UTC))


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
    assert report.to_json()["madeAfter"] == {**not_before, "blockTime": beacon["blockTime"]}
    with Session(engine_of(app)) as session:  # `trialnotary check` recomputes the same leaf
        held = integrity(session)
    assert held.changed == 0 and held.problems == []


def test_a_record_without_not_before_keeps_its_leaf(app, client, site_token, anvil):
    record = _register(client, site_token, ITEM)
    assert list(record) == list(RECORD_KEYS)
    leaf = scalar(engine_of(app), "SELECT leaf FROM submission WHERE id = :id", id=record["id"])
    assert bytes(leaf) == record_leaf(record)  # the ten keys of before, nothing more
    assert scalar(engine_of(app), "SELECT not_before FROM submission WHERE id = :id",
                  id=record["id"]) is None
    anchor_and_confirm(app, anvil)
    receipt = _receipt(client, record["id"])
    assert "notBefore" not in receipt["trialnotary"]["record"]
    report = verify_receipt(receipt, rpc_urls=[anvil.url])
    assert "not-before" not in [step.name for step in report.steps]
    assert "madeAfter" not in report.to_json()


def test_a_not_before_off_the_chain_fails(app, client, site_token, anvil):
    beacon = client.get("/api/v1/beacon").get_json()
    forged = {"chainId": 31337, "blockNumber": beacon["blockNumber"],
              "blockHash": "0x" + "00" * 32}
    refused = client.post("/api/v1/submissions", json={**ITEM, "notBefore": forged},
                          headers=bearer(site_token))
    assert refused.status_code == 422 and refused.get_json()["error"]["field"] == "notBefore"
    record = _forged(app, site_token, {**ITEM, "notBefore": forged})
    anchor_and_confirm(app, anvil)
    report = verify_receipt(_receipt(client, record["id"]), rpc_urls=[anvil.url])
    step = next(step for step in report.steps if step.name == "not-before")
    assert step.ok is False
    assert report.verdict.state == "failed"
    assert "names a block not on the chain" in step.detail


def test_a_not_before_is_not_taken_unchecked_when_the_node_is_silent(app, client, site_token,
                                                                      monkeypatch):
    """503 with ``Retry-After``, nothing stored: the block could not be checked."""
    beacon = client.get("/api/v1/beacon").get_json()
    not_before = {key: beacon[key] for key in ("chainId", "blockNumber", "blockHash")}
    chain = app.extensions["trialnotary"].chain

    def silent(number):
        raise ChainUnreachable("no node answers")

    monkeypatch.setattr(chain, "raw_block", silent)
    answer = client.post("/api/v1/submissions", json={**ITEM, "notBefore": not_before},
                         headers=bearer(site_token))
    assert answer.status_code == 503 and int(answer.headers["Retry-After"]) > 0
    assert answer.get_json()["error"] == {
        "code": "unavailable", "field": "notBefore", "message": answer.get_json()["error"][
            "message"]} and "does not answer" in answer.get_json()["error"]["message"]
    assert scalar(engine_of(app), "SELECT count(*) FROM submission") == 0


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
    beacon = client.get("/api/v1/beacon").get_json()
    not_before = {key: beacon[key] for key in ("chainId", "blockNumber", "blockHash")}
    answer = client.post("/api/v1/submissions/bulk", json={"submissions": [
        {**ITEM, "notBefore": not_before}, {**ITEM, "dataset": "ADAE"}]},
        headers=bearer(site_token))
    assert answer.status_code == 201
    first, second = (item["record"] for item in answer.get_json()["submissions"])
    assert first["notBefore"] == not_before and "notBefore" not in second
    shown = client.get(f"/api/v1/submissions/{first['id']}").get_json()["record"]
    assert shown == first


# --- the command, and the three verifiers on the notary's own receipts ------------------------

def test_the_beacon_command_prints_the_beacon_and_derives_a_seed(live_server):
    from click.testing import CliRunner

    from trialnotary.cli import main
    from trialnotary.cli.beacon import derive_seed

    printed = CliRunner().invoke(main, ["beacon", "--server", live_server])
    assert printed.exit_code == 0, printed.output
    beacon = json.loads(printed.output)
    assert set(beacon) == {"chainId", "blockNumber", "blockHash", "blockTime"}
    derived = CliRunner().invoke(main, ["beacon", "--server", live_server,
                                        "--derive", "randomisation NCT01234567"])
    answer = json.loads(derived.output)
    block = answer["notBefore"]
    assert answer["seed"] == hashlib.sha256(rfc8785.dumps(
        {"beacon": block, "label": "randomisation NCT01234567"})).hexdigest()
    assert answer["seed"] == derive_seed(answer["beacon"], "randomisation NCT01234567")
    assert answer["seed"] != derive_seed(answer["beacon"], "unblinding NCT01234567")


def test_the_beacon_command_without_a_server_fails_in_one_line():
    from click.testing import CliRunner

    from tests.conftest import free_port
    from trialnotary.cli import api, main

    api.ATTEMPTS, attempts = 1, api.ATTEMPTS
    try:
        result = CliRunner().invoke(main, ["beacon", "--server",
                                           f"http://127.0.0.1:{free_port()}"])
    finally:
        api.ATTEMPTS = attempts
    assert result.exit_code == 1
    assert result.output.startswith("error: cannot reach")


def test_the_cli_node_and_chromium_agree_on_not_before(app, client, site_token, anvil, page,
                                                       tree_server, tmp_path):
    """A record made after the beacon, and one naming a block not on the chain, registered,
    sealed and anchored by the notary: each verifier gives each the same answer, word for
    word; the first passes not-before, the second fails it."""
    beacon = client.get("/api/v1/beacon").get_json()
    named = {key: beacon[key] for key in ("chainId", "blockNumber", "blockHash")}
    off_chain = {**named, "blockHash": named["blockHash"][:-1]
                 + ("1" if named["blockHash"][-1] == "0" else "0")}
    made = [_register(client, site_token, {**ITEM, "dataset": "made-after", "notBefore": named}),
            _forged(app, site_token, {**ITEM, "dataset": "off-chain", "notBefore": off_chain})]
    anvil.mine(2)
    anchor_and_confirm(app, anvil)
    texts = {record["dataset"]: json.dumps(_receipt(client, record["id"]))
             for record in made}
    given = {"facts": FACTS, "rpcUrl": anvil.url,
             "entries": [{"name": name, "text": text, "options": {}}
                         for name, text in texts.items()]}
    cli = {}
    for name, text in texts.items():
        (tmp_path / f"{name}.json").write_text(text)
        ran = subprocess.run([sys.executable, "-m", "trialnotary.cli", "verify", "--json",
                              "--rpc", anvil.url, str(tmp_path / f"{name}.json")],
                             capture_output=True, text=True, timeout=60)
        cli[name] = outcome_of(json.loads(ran.stdout))
    assert in_node(given) == cli
    assert in_chromium(page, tree_server, given) == cli
    passed = [step for step in cli["made-after"]["steps"] if step[0] == "not-before"]
    assert passed == [["not-before", True,
                       f"made after block {beacon['blockNumber']} at {beacon['blockTime']}; "
                       f"existed no later than {cli['made-after']['provenTime']}", None]]
    assert cli["made-after"]["exitCode"] == 3
    assert cli["made-after"]["madeAfter"] == {**named, "blockTime": beacon["blockTime"]}
    assert cli["off-chain"]["madeAfter"] is None
    assert cli["off-chain"]["failedStep"] == "not-before"
    assert cli["off-chain"]["exitCode"] == 1


def test_the_verify_page_shows_not_before(app, client, site_token, anvil, page, live_server,
                                          tmp_path):
    from tests.web.test_verifier_page import shown_steps, verify

    data = tmp_path / "randomisation.csv"
    data.write_bytes(b"subject,arm\n1,A\n2,B\n")
    beacon = client.get("/api/v1/beacon").get_json()
    record = _register(client, site_token, {
        **ITEM, "kind": "randomisation-list", "sha256": hashlib.sha256(data.read_bytes())
        .hexdigest(), "notBefore": {key: beacon[key] for key in ("chainId", "blockNumber",
                                                                 "blockHash")}})
    anvil.mine(2)
    anchor_and_confirm(app, anvil)
    receipt = tmp_path / "randomisation.receipt.json"
    receipt.write_text(json.dumps(_receipt(client, record["id"])))
    page.goto(f"{live_server}/verify")
    page.wait_for_selector("#verify-form[data-ready]")
    assert verify(page, receipt, data, anvil.url) == "verified"
    assert shown_steps(page)["not-before"] is True
    assert f"made after block {beacon['blockNumber']} at {beacon['blockTime']}" in \
        page.inner_text('[data-step="not-before"]')
