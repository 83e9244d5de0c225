"""The notary takes each anchor's chain evidence when it confirms it, from that block,
keeps it once per anchor, and puts it in every receipt of the batch (docs/receipt.md);
after a reorg it takes it again from the anchor's new block; a node that cannot give it
does not hold receipts back. Real anvil nodes, both databases."""

from __future__ import annotations

import copy
import json
import logging

import pytest
from sqlmodel import Session, select

from tests.conftest import insert_registrations
from tests.notary.test_anchoring import anchors, assert_consistent, settle
from tests.rpc_filter import RpcFilter
from tests.utils import RECEIPT_NOTARY, batch_of
from trialnotary.config import load_settings
from trialnotary.notary import anchoring, batches, receipts
from trialnotary.notary.chain import ChainClient
from trialnotary.notary.models import Registration
from trialnotary.notary.registrations import receipt_of
from trialnotary.proof.evm import decode_header, decode_transaction, prove
from trialnotary.proof.verify import verify_receipt
from trialnotary.proof.verify.claims import parse_receipt


@pytest.fixture
def notary(settings_env, node):
    """``notary(url=…, **env)``: a chain client on the node (or on ``url`` before it)."""
    def make(url: str | None = None, **env) -> ChainClient:
        return ChainClient(load_settings({**settings_env,
                                          "TRIALNOTARY_CHAIN_RPC_URL": url or node.url,
                                          **{f"TRIALNOTARY_{k.upper()}": str(v)
                                             for k, v in env.items()}}))
    return make


def confirmed_batch(engine, chain, node, count: int = 3) -> list[dict]:
    insert_registrations(engine, count)
    batches.seal_all(engine, 100)
    anchoring.anchor_sealed(engine, chain)
    settle(engine, chain, node)
    return receipts_of_all(engine)


def receipts_of_all(engine) -> list[dict]:
    """Every registration's receipt, as the API's download gives it."""
    with Session(engine) as session:
        ids = [r.id for r in session.exec(select(Registration))]
        return [receipt_of(session, registration_id, RECEIPT_NOTARY).receipt
                for registration_id in ids]


def test_every_receipt_of_a_batch_carries_the_anchors_evidence(engine, notary, node):
    chain = notary()
    found = confirmed_batch(engine, chain, node)
    [anchor] = anchors(engine)
    kept = json.loads(anchor.evidence)
    assert all(receipt["anchors"][0]["evidence"] == kept for receipt in found)
    proven = prove(parse_receipt(found[0]).anchor.evidence)
    assert "0x" + proven.header.hash.hex() == anchor.block_hash
    assert proven.transaction.hash.hex() == anchor.tx_hash
    assert decode_transaction(bytes(anchor.raw)) == proven.transaction  # the bytes we signed
    with Session(engine) as session:  # the bundle's path builds the same receipts
        registrations = session.exec(select(Registration)).all()
        assert [receipts.receipt_for(session, r, RECEIPT_NOTARY)
                for r in registrations] == found
    headers_only = RpcFilter(node.url)
    try:
        for receipt in found:
            report = verify_receipt(copy.deepcopy(receipt), rpc_urls=[headers_only.url],
                                    expect_sender=chain.address)
            assert report.ok and report.step("evidence").ok, report.steps
    finally:
        headers_only.close()
    assert_consistent(engine, chain)


def test_a_reorg_after_confirmation_takes_the_evidence_again(engine, notary, node):
    chain = notary(confirmations=2)
    confirmed_batch(engine, chain, node)
    [before] = anchors(engine)
    node.rpc("anvil_reorg", 3, [])
    assert anchoring.anchor_round(engine, chain).reverted == [batch_of(engine, before)]
    [withdrawn] = anchors(engine)
    assert withdrawn.evidence is None
    settle(engine, chain, node)
    [after] = anchors(engine)
    assert after.block_hash != before.block_hash and after.evidence != before.evidence
    header = decode_header(bytes.fromhex(json.loads(after.evidence)["header"][2:]))
    assert "0x" + header.hash.hex() == after.block_hash
    for receipt in receipts_of_all(engine):
        assert receipt["anchors"][0]["blockHash"] == after.block_hash
        report = verify_receipt(receipt, rpc_urls=[node.url])
        assert report.ok and report.step("evidence").ok, report.steps
    assert_consistent(engine, chain)


#: What a node lacks: the filter in front of it, and what the logged error names.
WITHOUT = {"eth_getBlockReceipts": ({"refuse": frozenset({"eth_getBlockReceipts"})},
                                    "no eth_getBlockReceipts"),
           "batch requests": ({"batches": False}, "(a batch of 1)")}


@pytest.mark.parametrize("lacking", WITHOUT)
def test_a_node_that_cannot_give_evidence_confirms_without_it(engine, notary, node, caplog,
                                                              lacking):
    """The receipts then verify as version 1 ones do, by the transaction's hash."""
    refusing, named = WITHOUT[lacking]
    proxy = RpcFilter(node.url, allowed=None, **refusing)
    try:
        chain = notary(url=proxy.url)
        with caplog.at_level(logging.ERROR, logger="trialnotary.notary.following"):
            found = confirmed_batch(engine, chain, node)
    finally:
        proxy.close()
    assert "confirmed without chain evidence" in caplog.text and named in caplog.text
    [anchor] = anchors(engine)
    assert anchor.state == "confirmed" and anchor.evidence is None
    assert all("evidence" not in receipt["anchors"][0] for receipt in found)
    report = verify_receipt(found[0], rpc_urls=[node.url])
    assert report.ok and "evidence" not in [step.name for step in report.steps]



def test_confirmed_anchors_without_evidence_are_given_it_in_a_later_round(engine, notary, node):
    """As after an upgrade from a notary that took no evidence: receipts issued from then
    on carry it."""
    chain = notary()
    confirmed_batch(engine, chain, node)
    [anchor] = anchors(engine)
    with engine.begin() as conn:  # and a new process: receipts built afresh
        conn.exec_driver_sql("UPDATE anchor SET evidence = NULL")
        conn.exec_driver_sql("UPDATE batch SET anchors_version = anchors_version + 1")
    assert all("evidence" not in r["anchors"][0] for r in receipts_of_all(engine))
    assert anchoring.anchor_round(engine, chain).evidenced == []  # it looks once per start
    upgraded = notary()  # the notary started again, on the new version
    assert anchoring.anchor_round(engine, upgraded).evidenced == [batch_of(engine, anchor)]
    assert anchors(engine)[0].evidence == anchor.evidence
    assert all(r["anchors"][0]["evidence"] == json.loads(anchor.evidence)
               for r in receipts_of_all(engine))
    assert anchoring.anchor_round(engine, upgraded).evidenced == []


def test_evidence_a_node_cannot_give_is_asked_for_once_more_then_not_again(
        engine, notary, node, caplog):
    proxy = RpcFilter(node.url, allowed=None, refuse=frozenset({"eth_getBlockReceipts"}))
    try:
        chain = notary(url=proxy.url)
        with caplog.at_level(logging.ERROR, logger="trialnotary.notary.following"):
            confirmed_batch(engine, chain, node)
            rounds = [anchoring.anchor_round(engine, chain) for _ in range(3)]
    finally:
        proxy.close()
    assert [done.evidenced for done in rounds] == [[], [], []]
    # Once when the anchor was confirmed, once more by the first round after: then no more.
    assert caplog.text.count("without chain evidence") == 2
    [anchor] = anchors(engine)
    assert anchor.evidence is None
    assert anchoring.anchor_round(engine, notary()).evidenced == [batch_of(engine, anchor)]
