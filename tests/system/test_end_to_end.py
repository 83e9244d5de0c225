"""Register → seal → anchor → receipt → independent verify, over real HTTP, a real node and
real databases: 200 registrations, one batch, exactly one transaction; the receipt verifies
from its chain evidence through a node that serves block headers and nothing else."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import ANVIL_ACCOUNTS
from tests.rpc_filter import HEADER_ONLY, RpcFilter
from trialnotary.notary import anchoring
from trialnotary.proof.verify import verify_receipt

BIN = Path(sys.executable).parent


def registration(i: int) -> dict:
    content = f"dataset {i}\n".encode()
    return {"trial": "NCT01234567", "site": "SITE-01", "kind": "dataset",
            "dataset": f"LB part {i}", "sha256": hashlib.sha256(content).hexdigest(),
            "sizeBytes": len(content), "filename": f"lb/{i}.xpt"}


@pytest.mark.slow
def test_200_registrations_one_batch_one_transaction_every_receipt_verifies(
        live_server, site_token, engine, chain, anvil, tmp_path):
    api = live_server + "/api/v1"
    auth = {"Authorization": f"Bearer {site_token}"}
    ids = []
    for i in range(50):
        answer = requests.post(f"{api}/submissions", json=registration(i), headers=auth, timeout=10)
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    bulk = requests.post(f"{api}/submissions/bulk", headers=auth, timeout=30,
                         json={"submissions": [registration(i) for i in range(50, 200)]})
    assert bulk.status_code == 201, bulk.text
    ids += [s["id"] for s in bulk.json()["submissions"]]
    assert len(set(ids)) == 200

    waiting = requests.get(f"{api}/submissions/{ids[0]}/receipt", timeout=10)
    assert waiting.status_code == 202 and int(waiting.headers["Retry-After"]) > 0

    nonce_before = chain.pending_nonce()
    job = anchoring.run_seal_job(engine, chain, max_batch=100_000)
    # One batch: the 200 registrations, then the audit trail's head as its last leaf.
    assert [b.leaf_count for b in job.sealed] == [201] and len(job.sent) == 1
    assert job.sealed[0].audit_seq is not None
    assert requests.get(f"{api}/submissions/{ids[7]}", timeout=10).json()["status"] == "sent"
    for _ in range(10):
        anvil.mine(1)
        if anchoring.run_tick(engine, chain, max_batch=100_000).confirmed:
            break
    assert chain.pending_nonce() == nonce_before + 1  # exactly one anchor transaction

    status = requests.get(f"{api}/submissions/{ids[7]}", timeout=10).json()
    assert status["status"] == "confirmed"
    assert status["anchor"]["txHash"] == job.sent[0].tx_hash
    receipts = []
    for index, registration_id in enumerate(ids):
        answer = requests.get(f"{api}/submissions/{registration_id}/receipt", timeout=10)
        assert answer.status_code == 200
        receipt = answer.json()
        assert receipt["trialnotary"]["batch"]["leafIndex"] == index
        assert receipt["anchors"][0]["sourceId"] == job.sent[0].tx_hash
        receipts.append((answer.headers["Content-Disposition"], receipt))
    assert 'filename=NCT01234567_LB_part_0_' in receipts[0][0]

    for _, receipt in receipts:
        report = verify_receipt(receipt, rpc_urls=[anvil.url], confirmations=2,
                                expect_sender=ANVIL_ACCOUNTS[0])
        assert report.ok, [(s.name, s.detail) for s in report.steps if not s.ok]

    data_file = tmp_path / "3.xpt"
    data_file.write_bytes(b"dataset 3\n")
    receipt_file = tmp_path / "r.receipt.json"
    receipt_file.write_text(json.dumps(receipts[3][1]))
    headers_only = RpcFilter(anvil.url)
    try:
        verified = subprocess.run(
            [BIN / "trialnotary", "verify", str(receipt_file), "--file", str(data_file),
             "--rpc", headers_only.url, "--notary", live_server, "--json"],
            capture_output=True, text=True, timeout=30)
    finally:
        headers_only.close()
    assert verified.returncode == 0, verified.stdout + verified.stderr
    steps = {s["name"]: s["ok"] for s in json.loads(verified.stdout)["steps"]}
    assert steps == dict.fromkeys(["file-hash", "leaf", "merkle-path", "chain", "anchor-tx",
                                   "sender", "block", "confirmations", "notary", "evidence"],
                                  True)
    assert set(headers_only.asked) <= HEADER_ONLY and headers_only.refused == []

    data_file.write_bytes(b"dataset 3!")
    changed = subprocess.run(
        [BIN / "trialnotary", "verify", str(receipt_file), "--file", str(data_file),
         "--rpc", anvil.url, "--notary", live_server, "--json"], capture_output=True,
        text=True, timeout=30)
    assert changed.returncode == 1
    failed = [s["name"] for s in json.loads(changed.stdout)["steps"] if s["ok"] is False]
    assert failed == ["file-hash"]
