"""The receipt corpus (tests/assets/corpus, built by tests/corpus.py) against the CLI: the
chain replays to the very hashes the receipts name, and ``trialnotary verify --json`` gives
each receipt its expected verdict. The browser's verifier gives the same:
tests/web/test_verifier_parity.py."""

from __future__ import annotations

from tests.corpus import (
    ASSETS,
    ENTRIES,
    chain_facts,
    cli_outcomes,
    expected,
    load_chain,
    load_verdicts,
)


def test_the_replayed_chain_has_the_stored_hashes(corpus_chain):
    """Anvil, its options and the script are fixed, so every hash is: a drift (another anvil
    version, a changed script) shows here; `python -m tests.corpus` writes the files anew."""
    _, anchors = corpus_chain
    assert chain_facts(anchors) == load_chain()


def test_every_receipt_has_one_verdict_line():
    files = {path.stem for path in ASSETS.glob("*.json")} - {"verdicts", "chain"}
    assert files == set(load_verdicts())
    assert set(ENTRIES) <= files


def test_the_cli_gives_every_receipt_its_verdict(corpus_chain):
    node, _ = corpus_chain
    outcomes = cli_outcomes(node.url)
    assert set(outcomes) == set(load_verdicts())
    wrong = {name: (expected(outcomes[name]), expected(verdict))
             for name, verdict in load_verdicts().items()
             if expected(outcomes[name]) != expected(verdict)}
    assert not wrong
