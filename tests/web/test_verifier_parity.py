"""One verifier contract, two implementations: on every receipt of the corpus
(tests/assets/corpus, tests/corpus.py) the browser's verifier, run in Node and in Chromium,
answers what ``trialnotary verify --json`` answers: the same verdict state, exit code, failed
step and refusal, in the same words, step by step.

One Node process and one browser page each verify the whole corpus (tests/web/
corpus-runner.mjs, the same code in both). Receipts with an RFC 3161 time-stamp, made here
with a real TSA, differ as documented: the browser does not check the token.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.corpus import (
    BATCH,
    BROWSER,
    browser_options,
    cli_outcomes,
    entries,
    expected,
    load_verdicts,
    outcome_of,
)
from tests.utils import serving_http
from trialnotary.proof.facts import FACTS_FILE
from trialnotary.proof.tsa import NO_AUTHORITY, check_token, load_certificates

NODE_SCRIPT = Path(__file__).with_name("verify-corpus.mjs")
FACTS = (ROOT / "trialnotary" / "proof" / FACTS_FILE).read_text(encoding="utf-8")
SERVED = ("/trialnotary/web/static/", "/tests/web/")
PAGE = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>corpus</title>
<script type="application/json" id="proof-facts">{FACTS}</script></head>
<body></body></html>"""
TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".html": "text/html"}


def corpus_input(rpc_url: str) -> dict:
    return {"facts": FACTS, "rpcUrl": rpc_url,
            "entries": [{"name": e["name"], "text": e["text"],
                         "options": browser_options(e["options"])} for e in entries(BROWSER)]}


@pytest.fixture(scope="module")
def cli(corpus_chain):
    node, _ = corpus_chain
    return cli_outcomes(node.url)


def assert_same(outcomes: dict, cli: dict) -> None:
    """Every entry: the CLI's outcome, word for word, and its expected verdict."""
    names = {entry["name"] for entry in entries(BROWSER)}
    assert set(outcomes) == names
    differ = {name: (outcomes[name], cli[name]) for name in names if outcomes[name] != cli[name]}
    assert not differ
    verdicts = load_verdicts()
    assert {name: expected(o) for name, o in outcomes.items()} == \
        {name: expected(verdicts[name]) for name in names}


def in_node(given: dict) -> dict:
    """The browser's verifier in Node over ``given`` (corpus_input's form): the outcomes."""
    node_bin = shutil.which("node")
    assert node_bin, "node (>= 20) is needed to run the browser's verifier outside a browser"
    ran = subprocess.run([node_bin, "--disable-warning=MODULE_TYPELESS_PACKAGE_JSON",
                          str(NODE_SCRIPT)], input=json.dumps(given),
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout)


def in_chromium(page, base: str, given: dict) -> dict:
    """The same, in a Chromium page served from ``base``."""
    page.goto(f"{base}/corpus.html")
    return page.evaluate("""async ([entries, rpcUrl]) => {
      const rv = await import("/trialnotary/web/static/js/receipt-verify.js");
      const { verifyCorpus } = await import("/tests/web/corpus-runner.mjs");
      return verifyCorpus(rv, entries, rpcUrl);
    }""", [given["entries"], given["rpcUrl"]])


def test_node_gives_the_clis_verdicts(corpus_chain, cli):
    node, _ = corpus_chain
    assert_same(in_node(corpus_input(node.url)), cli)


def test_one_anchor_cache_over_the_whole_corpus_changes_no_verdict(corpus_chain, cli):
    """As the timeline verifies a zip (static/js/timeline.js): each anchor, routing and
    notBefore block checked once for every receipt that shares it, the same answers."""
    node, _ = corpus_chain
    assert_same(in_node({**corpus_input(node.url), "shared": True}), cli)


class _TreeFiles(SimpleHTTPRequestHandler):
    """The page, and the project's static files and the runner, as a server serves them."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **TYPES}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(ROOT), **kwargs)

    def do_GET(self):
        if self.path.split("?")[0] == "/corpus.html":
            body = PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path.startswith(SERVED):
            super().do_GET()
        else:
            self.send_error(404)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def tree_server():
    """A loopback server (Chromium lets a loopback page, and only one, ask a loopback node)."""
    with serving_http(_TreeFiles) as base:
        yield base


def test_chromium_gives_the_clis_verdicts(page, tree_server, corpus_chain, cli):
    node, _ = corpus_chain
    assert_same(in_chromium(page, tree_server, corpus_input(node.url)), cli)


# --- RFC 3161 time-stamps: the one allowed difference -----------------------------------------
# A token cannot be made twice alike (its time, nonce and signature change), so these receipts
# are made here, with a real TSA (tests/tsa.py), not stored in the corpus. The browser does not
# check a token (docs/verification.md, "The self-contained verifier page"): its tsa step is not
# checked, in the words of facts.json's tsaInBrowser, and never passes nor fails.

TSA_IN_BROWSER = json.loads(FACTS)["sentences"]["tsaInBrowser"]


def time_stamped(tsa, corpus_chain) -> dict[str, str]:
    """Receipts with an RFC3161 entry over the corpus batch's root (or a roll-up's root)."""
    from tests.corpus import ROLLED_INDEX, ROLLUP, entry_of, receipt_of, text, with_evidence

    node, anchors = corpus_chain
    proven = with_evidence(node, anchors)

    def stamp(root: bytes, **extra) -> dict:
        token = tsa.token(root)
        gen_time = check_token(token, root, load_certificates(tsa.ca_pem)).gen_time
        return {"type": "RFC3161", "name": "tsa", "token": base64.b64encode(token).decode(),
                "genTime": gen_time, **extra}

    def receipt(*entries: dict) -> str:
        built = receipt_of(proven, version=2)
        built["anchors"] = list(entries)
        return text(built)

    rollup = {"root": ROLLUP.root.hex(), "proof": ROLLUP.proof(ROLLED_INDEX)}
    changed = {**rollup, "proof": [{"left": "00" * 32}, *rollup["proof"][1:]]}
    return {
        "chain-and-time-stamp": receipt(entry_of(proven, "batch", "local"), stamp(BATCH.root)),
        "time-stamp-alone": receipt(stamp(BATCH.root)),
        "rolled-up-time-stamp": receipt(stamp(ROLLUP.root, rollup=rollup)),
        "rolled-up-time-stamp-path-changed": receipt(stamp(ROLLUP.root, rollup=changed)),
    }


def as_the_browser_tells_it(outcome: dict) -> dict:
    """The CLI's outcome (no --tsa-ca given) with the documented difference made: each tsa
    step's detail is tsaInBrowser, and so is the reason an unchecked verdict gives for it."""
    told = json.loads(json.dumps(outcome).replace(
        json.dumps(NO_AUTHORITY)[1:-1], json.dumps(TSA_IN_BROWSER)[1:-1]))
    told["text"] = told["text"].replace(f"tsa ({TSA_IN_BROWSER})",
                                        f"tsa ({TSA_IN_BROWSER.removeprefix('not checked: ')})")
    return told


def cli_outcome(path: Path, rpc_url: str, *flags: str) -> dict:
    ran = subprocess.run([sys.executable, "-m", "trialnotary.cli", "verify", "--json",
                          "--rpc", rpc_url, *flags, str(path)],
                         capture_output=True, text=True, timeout=60, env=os.environ)
    return outcome_of(json.loads(ran.stdout))


@pytest.fixture(scope="module")
def stamped(tsa, corpus_chain, tmp_path_factory) -> dict:
    """Each receipt's path and text, and the CLI's outcome without and with --tsa-ca."""
    node, _ = corpus_chain
    folder = tmp_path_factory.mktemp("stamped")
    found = {}
    for name, receipt_text in time_stamped(tsa, corpus_chain).items():
        path = folder / f"{name}.json"
        path.write_text(receipt_text)
        found[name] = {"text": receipt_text,
                       "cli": cli_outcome(path, node.url),
                       "trusted": cli_outcome(path, node.url, "--tsa-ca", str(tsa.ca_file))}
    return found


def stamped_input(stamped: dict, rpc_url: str) -> dict:
    return {"facts": FACTS, "rpcUrl": rpc_url,
            "entries": [{"name": name, "text": found["text"], "options": {}}
                        for name, found in stamped.items()]}


def assert_the_documented_difference(outcomes: dict, stamped: dict) -> None:
    assert set(outcomes) == set(stamped)
    for name, found in stamped.items():
        assert outcomes[name] == as_the_browser_tells_it(found["cli"]), name
    tsa_steps = [step for outcome in outcomes.values() for step in outcome["steps"]
                 if step[0] == "tsa"]
    assert tsa_steps and all(step[1:3] == [None, TSA_IN_BROWSER] for step in tsa_steps)
    # what the CLI checks with the authority given, the browser leaves not checked; a
    # time-stamp proves the time, never the origin: alone, the CLI says so (exit 3)
    assert stamped["time-stamp-alone"]["trusted"]["exitCode"] == 3
    assert "a time-stamp proves when, not who" in stamped["time-stamp-alone"]["trusted"]["text"]
    assert outcomes["time-stamp-alone"]["state"] == "unchecked"
    assert outcomes["time-stamp-alone"]["exitCode"] == 4
    assert [a["state"] for a in stamped["chain-and-time-stamp"]["trusted"]["anchors"]] == \
        ["verified", "verified"]
    assert [a["state"] for a in outcomes["chain-and-time-stamp"]["anchors"]] == \
        ["verified", "unchecked"]
    # a roll-up's path is checked by both, whatever the token
    assert outcomes["rolled-up-time-stamp-path-changed"]["failedStep"] == "rollup"


def test_node_tells_time_stamps_as_documented(corpus_chain, stamped):
    node, _ = corpus_chain
    assert_the_documented_difference(in_node(stamped_input(stamped, node.url)), stamped)


def test_chromium_tells_time_stamps_as_documented(page, tree_server, corpus_chain, stamped):
    node, _ = corpus_chain
    outcomes = in_chromium(page, tree_server, stamped_input(stamped, node.url))
    assert_the_documented_difference(outcomes, stamped)
