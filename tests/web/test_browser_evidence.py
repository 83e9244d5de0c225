"""The browser's evidence step (static/js/evm.js and evidence.js) against the Python one
(trialnotary/proof/evm, proof/verify/evidence.py): the same verdict and the same words on
every case, in Node (one process for all) and in Chromium (one page for all).

The cases (tests/web/evidence_cases.py) come from real anchors: the evidence vector
(docs/vectors/evidence-v1.json) and an anchor mined after 210 transactions of every kind in
one anvil block, at an index of 128 or more; each broken byte by byte, or forged into
evidence that holds together but says something else.
"""

from __future__ import annotations

import copy
import json
import mimetypes
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import Anvil
from tests.proof.anchored import make_batch
from tests.web.evidence_cases import broken_cases, evidence_of, forged_cases
from trialnotary.proof.errors import ReceiptError
from trialnotary.proof.verify import parse_receipt
from trialnotary.proof.verify.evidence import check_evidence, node_steps
from trialnotary.proof.verify.rpc import Node

ROOT = Path(__file__).parents[2]
HARNESS = ROOT / "tests/web/evidence_harness.mjs"
VECTOR = ROOT / "docs/vectors/evidence-v1.json"
ORIGIN = "http://evidence.test"
RUN_IN_NODE = f"""
import {{ answers }} from {json.dumps(HARNESS.as_uri())};
let input = "";
for await (const chunk of process.stdin) input += chunk;
process.stdout.write(JSON.stringify(answers(JSON.parse(input))));
"""


@dataclass
class Cases:
    """Every case by name (the receipt, and the node's block at its blockNumber), and what
    the Python verifier answers to each."""

    given: dict[str, dict]
    expected: dict[str, dict]


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> Cases:
    node = Anvil(block_time=None)  # mines only when a transaction arrives or when told
    try:
        crowded = make_batch(node, tmp_path_factory.mktemp("crowded"), count=2,
                             evidence=True, crowded=210).receipts[0]
        assert evidence_of(crowded)["transactionIndex"] >= 128
        vector = json.loads(VECTOR.read_text())["receipt"]
        receipts = {f"vector: {name}": receipt for name, receipt in broken_cases(vector).items()}
        receipts |= {f"crowded: {name}": receipt
                     for name, receipt in broken_cases(crowded).items()}
        receipts |= forged_cases(crowded)
        blocks = {number: node.rpc("eth_getBlockByNumber", hex(number), False)
                  for number in {r["anchors"][0]["blockNumber"] for r in receipts.values()}}
        with requests.Session() as session:
            chain = Node(node.url, session)
            expected = {name: python_answer(receipt, chain) for name, receipt in receipts.items()}
    finally:
        node.stop()
    given = {name: {"receipt": receipt, "block": blocks[receipt["anchors"][0]["blockNumber"]]}
             for name, receipt in receipts.items()}
    return Cases(given, expected)


def python_answer(receipt: dict, chain: Node) -> dict:
    """What the Python verifier says of the case, in the harness's form."""
    try:
        claims = parse_receipt(copy.deepcopy(receipt))
    except ReceiptError as exc:
        return {"refused": str(exc)}
    step, proven = check_evidence(claims)
    if proven is None:
        return {"ok": step.ok, "detail": step.detail}
    steps, seen = node_steps(chain, claims, 1, None, proven)
    by_name = {step.name: step for step in steps}
    return {"ok": step.ok, "detail": step.detail, "proves": facts(proven),
            "anchorTx": by_name["anchor-tx"].detail,
            "block": [by_name["block"].ok, by_name["block"].detail],
            "seen": seen.block_time}


def facts(proven) -> dict:
    def text(value):
        return None if value is None else str(value)

    def hex_of(raw):
        return None if raw is None else "0x" + raw.hex()

    header, tx = proven.header, proven.transaction
    return {
        "headerHash": hex_of(header.hash), "number": text(header.number),
        "timestamp": text(header.timestamp), "transactionsRoot": hex_of(header.transactions_root),
        "receiptsRoot": hex_of(header.receipts_root), "transactionIndex": text(proven.index),
        "transactionHash": hex_of(tx.hash), "type": text(tx.type), "chainId": text(tx.chain_id),
        "nonce": text(tx.nonce), "to": hex_of(tx.to), "value": text(tx.value),
        "data": hex_of(tx.data), "sender": hex_of(tx.sender),
        "status": text(proven.receipt.status),
    }


def run_in_node(given: list[dict]) -> list[dict]:
    """The harness's answers, from one Node process."""
    done = subprocess.run(["node", "--no-warnings", "--input-type=module", "-e", RUN_IN_NODE],
                          input=json.dumps(given), text=True, capture_output=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def compare(cases: Cases, found: list[dict]) -> None:
    differences = [(name, cases.expected[name], answer)
                   for name, answer in zip(cases.given, found, strict=True)
                   if answer != cases.expected[name]]
    assert not differences, json.dumps(differences[:5], indent=1)


def test_the_cases_reach_every_outcome(cases):
    """The cases are worth comparing: genuine ones pass, the others fail with many different
    reasons, and some evidence is not of a usable shape."""
    expected = cases.expected
    assert len(expected) > 250
    passed = [name for name, answer in expected.items() if answer.get("ok") is True]
    assert {"vector: genuine", "crowded: genuine", "forged: genuine legacy (EIP-155)",
            "forged proof: a branch (fine)"} <= set(passed)
    reasons = {answer["detail"].split(":")[0] for answer in expected.values()
               if answer.get("ok") is False}
    assert len(reasons) > 40, reasons
    assert "past the year 9999" in expected["crowded: header field 11 prefix"]["detail"]
    assert sum("refused" in answer for answer in expected.values()) >= 2 * 14


def test_node_gives_pythons_answer_on_every_case(cases):
    compare(cases, run_in_node(list(cases.given.values())))


def test_the_vector_proves_its_facts_in_node():
    vector = json.loads(VECTOR.read_text())
    [answer] = run_in_node([{"receipt": vector["receipt"], "block": None}])
    assert answer["ok"] is True, answer
    assert answer["proves"] == {key: value if isinstance(value, str) else str(value)
                                for key, value in vector["proves"].items()}
    assert answer["block"] == [False, "the node has no block 1"]


def serve_repository(route) -> None:
    """The page's origin serves the work tree's files (the harness, the modules, vendor/)."""
    path = route.request.url.removeprefix(ORIGIN).split("?")[0].lstrip("/")
    if not path:
        route.fulfill(body="<!doctype html><title>evidence</title>", content_type="text/html")
        return
    file = ROOT / path
    if not file.is_file():
        route.fulfill(status=404, body="not found")
        return
    kind = "text/javascript" if file.suffix in (".js", ".mjs") else \
        mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    route.fulfill(body=file.read_bytes(), content_type=kind)


def test_chromium_gives_pythons_answer_on_every_case(page, cases):
    page.route(f"{ORIGIN}/**", serve_repository)
    page.goto(f"{ORIGIN}/")
    found = page.evaluate("""async (cases) => {
      const harness = await import("/tests/web/evidence_harness.mjs");
      return harness.answers(cases);
    }""", list(cases.given.values()))
    compare(cases, found)


@pytest.mark.parametrize("timestamp", [-1, 253402300800, 2**63])
def test_a_block_time_a_receipt_cannot_write_reads_as_in_python(timestamp):
    """evidence.js blockTime, which both browser verifiers use, refuses like receipt.block_time."""
    from trialnotary.proof.receipt import block_time

    module = (ROOT / "trialnotary/web/static/js/evidence.js").as_uri()
    script = (f"import {{ blockTime }} from {json.dumps(module)};\n"
              f"try {{ blockTime({timestamp}n); }}\n"
              "catch (e) { console.log(`${e.name}: ${e.message}`); }")
    done = subprocess.run(["node", "--no-warnings", "--input-type=module", "-e", script],
                          capture_output=True, text=True, timeout=60, check=True)
    with pytest.raises(ValueError) as raised:
        block_time(timestamp)
    assert done.stdout.strip() == f"ValueError: {raised.value}"
