"""The verifier's checks over data they are given: a chain as plain answers, no node; the
facts every verifier reads; one error hierarchy."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest

from trialnotary.notary.merkle import build_levels, proof_from_levels
from trialnotary.proof import errors, facts
from trialnotary.proof.receipt import build_receipt, record_leaf
from trialnotary.proof.verify import checks
from trialnotary.proof.verify.claims import parse_receipt

SENDER = "0x70997970C51812dc3A010C7d01b2E5Fa1a6F2b8B"
TX = "ab" * 32
BLOCK_HASH = "0x" + "cd" * 32
RECORD = {"id": "3f1c2a9e-5b7d-4c1e-9a2b-6d8e0f1a2b3c", "trial": "NCT01234567",
          "site": "SITE-01", "kind": "dataset", "dataset": "ADSL", "sha256": "ef" * 32,
          "sizeBytes": 12, "filename": "adsl.xpt", "supersedes": None,
          "submittedAt": "2026-11-23T18:59:01.123Z"}


class Answers:
    """A chain as one node would show it, from plain data."""

    def __init__(self, root: bytes, *, chain_id: int = 11155111, head: int = 130):
        self.chain = chain_id
        self.top = head
        self.tx = {"from": SENDER, "to": SENDER, "value": "0x0", "blockNumber": hex(123),
                   "input": "0x" + root.hex()}
        self.blocks = {123: {"hash": BLOCK_HASH, "timestamp": hex(1795460412), "number": "0x7b"}}

    def chain_id(self) -> int:
        return self.chain

    def head(self) -> int:
        return self.top

    def transaction(self, tx_hash: str) -> dict | None:
        return self.tx if tx_hash == TX else None

    def tx_receipt(self, tx_hash: str) -> dict | None:
        return {"status": "0x1"} if tx_hash == TX else None

    def block(self, number: int | str) -> dict | None:
        return self.blocks.get(number)


def claims_of_a_receipt():
    leaves = [record_leaf(RECORD), record_leaf({**RECORD, "dataset": "ADAE"})]
    levels = build_levels(leaves)
    receipt = build_receipt(
        record=RECORD, leaf=leaves[0], root=levels[-1], proof=proof_from_levels(levels, 0),
        anchor={"tx_hash": TX, "chain_id": 11155111, "sender": SENDER, "block_number": 123,
                "block_hash": BLOCK_HASH, "block_time": "2026-11-23T19:00:12Z"},
        batch={"id": 1, "leaf_index": 0, "leaf_count": 2,
               "sealed_at": "2026-11-23T19:00:00.000Z"})
    return parse_receipt(receipt)


def test_every_chain_step_passes_over_given_answers():
    claims = claims_of_a_receipt()
    steps, seen = checks.node_steps(Answers(claims.root), claims, 2, SENDER)
    assert [(step.name, step.ok) for step in steps] == [(name, True)
                                                        for name in facts.CHAIN_STEPS]
    assert seen.block_time == "2026-11-23T19:00:12Z" and seen.sender == SENDER


def test_an_anchor_sent_elsewhere_or_with_value_fails_anchor_tx():
    claims = claims_of_a_receipt()
    answers = Answers(claims.root)
    answers.tx.update(to="0x" + "11" * 20, value="0x2a")
    steps, _ = checks.node_steps(answers, claims, 1, None)
    assert [step.name for step in steps if step.ok is False] == ["anchor-tx"]
    assert steps[1].detail.endswith(f": it is sent to 0x{'11' * 20}, not to its sender; "
                                    "it carries 42 wei, not 0")


def test_a_node_on_another_chain_skips_the_rest():
    claims = claims_of_a_receipt()
    steps, seen = checks.node_steps(Answers(claims.root, chain_id=1), claims, 1, None)
    assert [step.ok for step in steps] == [False] + [None] * (len(facts.CHAIN_STEPS) - 1)
    assert seen == checks.Seen()


def test_too_few_confirmations_fail_only_confirmations():
    claims = claims_of_a_receipt()
    steps, _ = checks.node_steps(Answers(claims.root, head=123), claims, 2, None)
    assert [step.name for step in steps if not step.ok] == ["confirmations"]


def test_the_offline_checks_over_a_given_digest():
    claims = claims_of_a_receipt()
    good = checks.FileDigest("adsl.xpt", RECORD["sha256"], RECORD["sizeBytes"])
    assert checks.check_file(claims, good)[0].ok
    assert checks.check_file(claims, checks.FileDigest("x", "00" * 32, 12))[1] is True
    assert checks.check_leaf(claims).ok and checks.check_merkle_path(claims).ok


def test_the_facts_agree_with_themselves():
    assert facts.STEPS == (facts.OFFLINE_STEPS + facts.CHAIN_STEPS + facts.ORIGIN_STEPS
                           + facts.OPTIONAL_STEPS + facts.ANCHOR_STEPS + facts.RECORD_STEPS)
    assert all(facts.CHAIN_IDS_BY_NAME[name] == chain_id
               for chain_id, name in facts.CHAIN_NAMES.items())
    assert sorted(facts.EXIT_ORDER) == list(range(5))
    assert facts.chain_label(11155111) == "ethereumSepolia (chain 11155111)"
    assert facts.chain_label(31337) == "ethereumLocal (chain 31337)"
    assert facts.document()["recordKeys"] == list(facts.RECORD_KEYS) == list(RECORD)


def test_the_browser_verifier_states_no_fact_of_its_own():
    """Step names, chain names and nodes come from facts.json, embedded by verify.html (the
    steps named like a receipt's fields, ``chain`` or ``sender``, are not looked for)."""
    script = (Path(facts.__file__).parents[1] / "web/static/js/receipt-verify.js").read_text()
    steps = [name for name in facts.STEPS if "-" in name]
    for fact in (*steps, *facts.CHAIN_IDS_BY_NAME, *facts.DEFAULT_RPC_URLS.values(),
                 facts.LOCAL_CHAIN_NAME, "submittedAt"):
        assert not re.search(rf"""["']{re.escape(str(fact))}["']""", script), fact
    assert json.loads(json.dumps(facts.document())) == facts.document()


@pytest.mark.parametrize("name", [name for name, value in inspect.getmembers(errors)
                                  if inspect.isclass(value) and issubclass(value, Exception)])
def test_every_proof_error_is_a_proof_error(name):
    assert issubclass(getattr(errors, name), errors.ProofError)
