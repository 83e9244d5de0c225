"""One verifier contract, two implementations: on every receipt of the corpus
(tests/assets/corpus, tests/corpus.py) the browser's verifier, run in Node and in Chromium,
answers what ``trialnotary verify --json`` answers: the same verdict state, exit code, failed
step and refusal, in the same words, step by step.

One Node process and one browser page each verify the whole corpus (tests/web/
corpus-runner.mjs, the same code in both).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.corpus import (
    BROWSER,
    browser_options,
    cli_outcomes,
    entries,
    expected,
    load_verdicts,
)
from tests.utils import serving_http
from trialnotary.proof.facts import FACTS_FILE

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


def test_node_gives_the_clis_verdicts(corpus_chain, cli):
    node_bin = shutil.which("node")
    assert node_bin, "node (>= 20) is needed to run the browser's verifier outside a browser"
    node, _ = corpus_chain
    ran = subprocess.run([node_bin, "--disable-warning=MODULE_TYPELESS_PACKAGE_JSON",
                          str(NODE_SCRIPT)], input=json.dumps(corpus_input(node.url)),
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert_same(json.loads(ran.stdout), cli)


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
    page.goto(f"{tree_server}/corpus.html")
    outcomes = page.evaluate("""async ([entries, rpcUrl]) => {
      const rv = await import("/trialnotary/web/static/js/receipt-verify.js");
      const { verifyCorpus } = await import("/tests/web/corpus-runner.mjs");
      return verifyCorpus(rv, entries, rpcUrl);
    }""", [corpus_input(node.url)["entries"], node.url])
    assert_same(outcomes, cli)
