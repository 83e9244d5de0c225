"""The anchor state machine against a real anvil and its fault methods: dropped and stuck
transactions, reorganisations before and after confirmation, a node back from older state,
a nonce taken by someone else, an empty account, fees over the cap, a dead node. After each,
the invariants of ``trialnotary check`` hold and every receipt verifies."""

from __future__ import annotations

import time

import pytest
from eth_account import Account
from sqlmodel import Session, select

from tests.conftest import ANVIL_ACCOUNTS, free_port, insert_registrations
from tests.utils import RECEIPT_NOTARY, batch_of
from trialnotary import db
from trialnotary.config import ANVIL_DEV_KEY, load_settings
from trialnotary.notary import anchoring, batches, consistency, receipts
from trialnotary.notary.chain import ChainClient, ChainUnreachable
from trialnotary.notary.models import Anchor, Batch, ChainStatus, Registration


@pytest.fixture
def notary(settings_env, node):
    """A chain client on the private node; ``notary(**env)`` makes one with other settings."""
    def make(**env) -> ChainClient:
        values = {**settings_env, "TRIALNOTARY_CHAIN_RPC_URL": node.url,
                  "TRIALNOTARY_RESEND_AFTER_SECONDS": "0",
                  "TRIALNOTARY_REPLACE_AFTER_SECONDS": "3600",
                  **{f"TRIALNOTARY_{k.upper()}": str(v) for k, v in env.items()}}
        return ChainClient(load_settings(values))
    return make


def anchors(engine) -> list[Anchor]:
    with Session(engine) as session:
        return list(session.exec(select(Anchor).order_by(Anchor.id)))


def batch_state(engine, batch_id: int) -> str:
    with Session(engine) as session:
        return session.get(Batch, batch_id).state


def settle(engine, chain, node, rounds: int = 10) -> None:
    """Mine and run rounds until nothing is left to confirm."""
    for _ in range(rounds):
        node.mine(1)
        anchoring.anchor_round(engine, chain)
        with Session(engine) as session:
            if not session.exec(select(Batch).where(Batch.state != "confirmed")).first():
                return
    raise AssertionError("batches left unconfirmed: " + repr(
        [(a.rollup_id, a.state) for a in anchors(engine)]))


def assert_consistent(engine, chain, *, foreign_transactions: int = 0) -> None:
    with Session(engine) as session:
        found = consistency.check(session, chain, settled=True, receipts=True)
    problems = [p for p in found.problems if not (
        foreign_transactions and p.startswith("the account has"))]
    assert problems == [], problems
    if foreign_transactions:
        assert found.counts["account_transactions"] == \
            found.counts["confirmed_anchors"] + foreign_transactions
    assert found.counts["receipts_verified"] == found.counts["registrations"]


def mined(chain, tx_hash: str, seconds: float = 10):
    """The inclusion of a transaction automine mines on send (its receipt can lag a busy
    node by a moment)."""
    deadline = time.monotonic() + seconds
    while (inclusion := chain.inclusion(tx_hash)) is None:
        assert time.monotonic() < deadline, f"0x{tx_hash} was never mined"
        time.sleep(0.05)
    return inclusion


def one_batch(engine, count: int = 3) -> Batch:
    insert_registrations(engine, count)
    [batch] = batches.seal_all(engine, 100)
    return batch


def test_a_dropped_anchor_is_sent_again_from_its_kept_bytes(engine, notary, node):
    chain = notary()
    node.rpc("evm_setAutomine", False)
    batch = one_batch(engine)
    [sent] = anchoring.anchor_sealed(engine, chain)
    node.rpc("anvil_dropTransaction", "0x" + sent.tx_hash)
    assert not chain.is_known(sent.tx_hash)
    done = anchoring.anchor_round(engine, chain)
    assert done.resent == [sent.tx_hash] and chain.is_known(sent.tx_hash)
    node.mine(2)
    assert anchoring.confirm_sent(engine, chain) == [batch.id]
    assert [a.state for a in anchors(engine)] == ["confirmed"]
    assert_consistent(engine, chain)


def test_a_stuck_anchor_is_replaced_with_higher_fees_and_only_one_survives(engine, notary,
                                                                        node):
    node.rpc("evm_setAutomine", False)
    batch = one_batch(engine)
    [stuck] = anchoring.anchor_sealed(engine, notary())
    impatient = notary(replace_after_seconds=0)
    done = anchoring.anchor_round(engine, impatient)
    [replacement] = done.replaced
    assert replacement.nonce == stuck.nonce and replacement.replaces_id == stuck.id
    assert int(replacement.max_fee_per_gas) >= int(stuck.max_fee_per_gas) * 1.1
    assert int(replacement.max_priority_fee_per_gas) >= \
        int(stuck.max_priority_fee_per_gas) * 1.1
    assert [a.tx_hash for a in done.sent] == [replacement.tx_hash]  # sent in the same round
    node.rpc("evm_setAutomine", True)
    settle(engine, notary(), node)
    states = {a.tx_hash: a.state for a in anchors(engine)}
    assert states == {stuck.tx_hash: "replaced", replacement.tx_hash: "confirmed"}
    assert notary().inclusion(stuck.tx_hash) is None  # only one transaction per batch
    assert batch_state(engine, batch.id) == "confirmed"
    assert_consistent(engine, notary())


def test_a_replacement_over_the_cap_waits_with_an_alert_and_loses_nothing(engine, notary,
                                                                       node):
    node.rpc("evm_setAutomine", False)
    one_batch(engine)
    [stuck] = anchoring.anchor_sealed(engine, notary())
    capped = notary(replace_after_seconds=0,
                    max_fee_gwei=int(stuck.max_fee_per_gas) * 1.05 / 1e9)
    assert anchoring.chain_round(engine, capped) is None
    with Session(engine) as session:
        status = anchoring.chain_status(session)
        assert status.reachable and "TRIALNOTARY_MAX_FEE_GWEI" in status.alert
    assert [a.state for a in anchors(engine)] == ["sent"]
    node.rpc("evm_setAutomine", True)
    settle(engine, notary(), node)  # the original is mined after all
    assert_consistent(engine, notary())
    anchoring.chain_round(engine, notary())
    with Session(engine) as session:
        assert anchoring.chain_status(session).alert is None


def test_a_reorg_before_confirmation_sends_the_anchor_again(engine, notary, node):
    chain = notary(confirmations=3)
    batch = one_batch(engine)
    [sent] = anchoring.anchor_sealed(engine, chain)  # mined at once (automine)
    first_block = mined(chain, sent.tx_hash).block_hash
    node.rpc("anvil_reorg", 2, [])  # anvil drops the reorganised transactions
    assert chain.inclusion(sent.tx_hash) is None and not chain.is_known(sent.tx_hash)
    done = anchoring.anchor_round(engine, chain)
    assert done.resent == [sent.tx_hash]
    settle(engine, chain, node)
    [confirmed] = anchors(engine)
    assert confirmed.tx_hash == sent.tx_hash and confirmed.block_hash != first_block
    assert batch_state(engine, batch.id) == "confirmed"
    assert_consistent(engine, chain)


def test_a_reorg_after_confirmation_withdraws_the_receipt_until_mined_again(engine, notary,
                                                                         node):
    chain = notary(confirmations=2)
    batch = one_batch(engine)
    anchoring.anchor_sealed(engine, chain)
    settle(engine, chain, node)
    [before] = anchors(engine)
    node.rpc("anvil_reorg", 3, [])
    done = anchoring.anchor_round(engine, chain)
    assert done.reverted == [batch.id]
    assert batch_state(engine, batch.id) == "sent"
    with Session(engine) as session:
        assert all(receipts.receipt_for(session, s, RECEIPT_NOTARY) is None
                   for s in session.exec(select(Registration)))
    settle(engine, chain, node)
    [after] = anchors(engine)
    assert after.tx_hash == before.tx_hash and after.block_hash != before.block_hash
    assert_consistent(engine, chain)  # receipts now name the canonical block


def test_a_reorg_that_mines_the_replaced_anchor_instead_still_anchors_once(engine, notary,
                                                                         node):
    """The replacement was confirmed; the fork that wins mined the original instead. The
    original is then the batch's anchor: never a second transaction for the batch."""
    chain = notary(confirmations=1)
    node.rpc("evm_setAutomine", False)
    batch = one_batch(engine)
    [original] = anchoring.anchor_sealed(engine, chain)
    [replacement] = anchoring.anchor_round(engine, notary(confirmations=1,
                                                          replace_after_seconds=0)).replaced
    node.mine(1)
    assert anchoring.anchor_round(engine, chain).confirmed == [batch.id]
    node.rpc("anvil_reorg", 1, [["0x" + bytes(original.raw).hex(), 0]])
    assert chain.inclusion(original.tx_hash) and not chain.inclusion(replacement.tx_hash)
    for _ in range(3):
        done = anchoring.anchor_round(engine, chain)
        assert done.dropped == [] and done.signed == []
        node.mine(1)
    states = {a.tx_hash: a.state for a in anchors(engine)}
    assert states == {original.tx_hash: "confirmed", replacement.tx_hash: "replaced"}
    assert chain.mined_nonce() == 1  # one transaction for one batch
    assert_consistent(engine, chain)


def test_a_node_back_from_older_state_gets_every_lost_anchor_again(engine, notary, node):
    chain = notary()
    snapshot = node.rpc("evm_snapshot")
    for _ in range(2):
        one_batch(engine)
        anchoring.anchor_sealed(engine, chain)
    settle(engine, chain, node)
    assert chain.mined_nonce() == 2
    node.rpc("evm_revert", snapshot)  # the node forgets both anchors
    assert chain.mined_nonce() == 0
    done = anchoring.anchor_round(engine, chain)
    assert sorted(done.reverted) == [1, 2]
    settle(engine, chain, node)
    assert chain.mined_nonce() == 2
    assert_consistent(engine, chain)


def test_a_nonce_taken_by_another_transaction_gets_the_batch_signed_again(engine, notary,
                                                                       node):
    chain = notary()
    node.rpc("evm_setAutomine", False)
    batch = one_batch(engine)
    [lost] = anchoring.anchor_sealed(engine, chain)
    node.rpc("anvil_dropTransaction", "0x" + lost.tx_hash)
    other = Account.from_key(ANVIL_DEV_KEY).sign_transaction({  # same account, same nonce
        "type": 2, "chainId": 31337, "nonce": lost.nonce, "to": ANVIL_ACCOUNTS[1],
        "value": 1, "gas": 21_000, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9})
    node.rpc("eth_sendRawTransaction", "0x" + bytes(other.raw_transaction).hex())
    node.mine(1)
    done = anchoring.anchor_round(engine, chain)
    assert done.dropped == [batch.id]
    [again] = done.signed
    assert again.nonce == lost.nonce + 1
    node.rpc("evm_setAutomine", True)
    settle(engine, chain, node)
    assert [a.state for a in anchors(engine)] == ["dropped", "confirmed"]
    assert_consistent(engine, chain, foreign_transactions=1)


def test_an_empty_account_alerts_and_resumes_once_funded(engine, notary, node):
    chain = notary()
    balance = node.rpc("eth_getBalance", chain.address, "latest")
    node.rpc("anvil_setBalance", chain.address, "0x0")
    batch = one_batch(engine)
    assert anchoring.chain_round(engine, chain) is None
    with Session(engine) as session:
        status = anchoring.chain_status(session)
        assert status.reachable and "cannot pay" in status.alert
    assert [a.state for a in anchors(engine)] == ["signed"]  # kept, to be sent later
    insert_registrations(engine, 2)  # registrations and sealing go on meanwhile
    assert len(batches.seal_all(engine, 100)) == 1
    node.rpc("anvil_setBalance", chain.address, balance)
    done = anchoring.chain_round(engine, chain)
    assert {batch_of(engine, a) for a in done.sent} == {batch.id, batch.id + 1}
    settle(engine, chain, node)
    assert_consistent(engine, chain)


def test_a_dead_node_is_noted_since_when_and_retried_with_backoff(engine, notary, node):
    dead = notary(chain_rpc_url=f"http://127.0.0.1:{free_port()}")
    one_batch(engine)
    backoff = anchoring.Backoff()
    assert anchoring.chain_round(engine, dead, backoff) is None
    with Session(engine) as session:
        status = session.get(ChainStatus, 1)
        assert not status.reachable and "no chain node answers" in status.alert
        since = status.since
    assert not backoff.due()  # the next attempt waits
    assert anchoring.chain_round(engine, dead, backoff) is None
    backoff.next_at = 0  # time passes
    with pytest.raises(ChainUnreachable):
        anchoring.anchor_round(engine, dead)
    chain = notary()
    settle(engine, chain, node)
    anchoring.chain_round(engine, chain)
    with Session(engine) as session:
        status = session.get(ChainStatus, 1)
        assert status.reachable and status.alert is None and status.since > since
    assert_consistent(engine, chain)


def test_one_process_at_a_time_talks_to_the_chain(engine, notary):
    one_batch(engine)
    with db.chain_lock(engine) as held:  # the lock a notary of one chain always took
        assert held
        assert anchoring.anchor_round(engine, notary()) is None  # another holds it
        with db.chain_lock(engine) as again:
            assert not again
    assert anchoring.anchor_round(engine, notary()) is not None


def test_node_urls_are_never_shown_with_their_keys(engine, notary):
    """Provider URLs often carry an API key in their path or query: status, alerts and
    logs name the node by scheme and host only."""
    secret = "k3y-" + "x" * 20
    dead = notary(chain_rpc_url=f"http://user:{secret}@127.0.0.1:{free_port()}/v3/{secret}"
                                f"?apikey={secret}")
    one_batch(engine)
    assert anchoring.chain_round(engine, dead) is None
    with Session(engine) as session:
        alert = session.get(ChainStatus, 1).alert
    assert "127.0.0.1" in alert and secret not in alert
    assert secret not in str(dead.health())
