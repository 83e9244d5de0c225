"""Milestone kinds (docs/receipt.md, "Records and leaves"): a database lock, an unblinding,
a randomisation list, analysis results and a clinical study report are registered like
files, sealed and anchored, and their receipts verify; the register form offers them apart."""

from __future__ import annotations

import hashlib

import pytest

from tests.utils import add_person, signed_in
from trialnotary.notary import anchoring
from trialnotary.proof.facts import KINDS, MILESTONE_KINDS
from trialnotary.proof.verify import verify_receipt

pytestmark = pytest.mark.usefixtures("quick_argon2")


def test_the_milestone_kinds_are_kinds_and_the_old_ones_stay():
    assert set(MILESTONE_KINDS) == {"database-lock", "unblinding", "randomisation-list",
                                    "analysis-results", "csr"}
    assert KINDS[:6] == ("dataset", "protocol", "sap", "consent-form", "report", "other")
    assert set(MILESTONE_KINDS) <= set(KINDS)


def test_each_milestone_is_registered_anchored_and_its_receipt_verifies(
        client, site_token, engine, chain, anvil):
    auth = {"Authorization": f"Bearer {site_token}"}
    ids = {}
    for kind in MILESTONE_KINDS:
        content = f"{kind} export".encode()
        answer = client.post("/api/v1/submissions", headers=auth, json={
            "trial": "NCT01234567", "site": "SITE-01", "kind": kind, "dataset": f"the {kind}",
            "sha256": hashlib.sha256(content).hexdigest(), "sizeBytes": len(content)})
        assert answer.status_code == 201, answer.get_data(as_text=True)
        ids[kind] = answer.get_json()["id"]
    anchoring.run_seal_job(engine, chain, max_batch=100)
    for _ in range(20):
        anvil.mine(1)
        if anchoring.run_tick(engine, chain, max_batch=100).confirmed:
            break
    for kind, registration_id in ids.items():
        receipt = client.get(f"/api/v1/submissions/{registration_id}/receipt").get_json()
        assert receipt["trialnotary"]["record"]["kind"] == kind
        report = verify_receipt(receipt, rpc_urls=[anvil.url], confirmations=1)
        assert [s.name for s in report.steps if s.ok is False] == []


def test_the_register_form_offers_milestones_apart(client, engine, site_token):
    add_person(engine, "coordinator@example.org", "coordinator", sites=["SITE-01"])
    signed_in(client, "coordinator@example.org")
    html = client.get("/register").get_data(as_text=True)
    documents, milestones = html.split('<optgroup label="Milestones">')
    assert '<optgroup label="Documents and data">' in documents
    assert 'value="consent-form"' in documents and 'value="database-lock"' not in documents
    assert all(f'value="{kind}"' in milestones for kind in MILESTONE_KINDS)
    assert "Clinical study report" in milestones
