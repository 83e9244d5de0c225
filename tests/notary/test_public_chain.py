"""The Sepolia path is the local path with another chain id, URL, key file and finality.

Public testnets are out of reach here, so a real anvil started with Sepolia's chain id
stands in for the RPC URL; everything else is the code that runs against Sepolia.
"""

import secrets

import pytest
from eth_account import Account
from sqlmodel import Session, select

from tests.conftest import Anvil, insert_registrations
from tests.utils import RECEIPT_NOTARY, batch_of
from trialnotary.config import load_settings
from trialnotary.notary import anchoring, batches, receipts
from trialnotary.notary.chain import ChainClient, ChainError
from trialnotary.notary.models import Batch, Registration
from trialnotary.proof.verify import verify_receipt

SEPOLIA = 11155111


@pytest.fixture
def sepolia_node():
    node = Anvil(chain_id=SEPOLIA, block_time=None)
    yield node
    node.stop()


@pytest.fixture
def funded_key_file(tmp_path, sepolia_node):
    key = "0x" + secrets.token_hex(32)
    sepolia_node.rpc("anvil_setBalance", Account.from_key(key).address, hex(10**18))
    path = tmp_path / "sepolia.key"
    path.write_text(key + "\n")
    path.chmod(0o600)
    return path, Account.from_key(key).address


def test_sepolia_settings_anchor_and_issue_receipts_after_finality(
        settings_env, sepolia_node, funded_key_file, engine):
    key_file, address = funded_key_file
    settings = load_settings({**settings_env, "TRIALNOTARY_CHAIN": "sepolia",
                              "TRIALNOTARY_CHAIN_RPC_URL": sepolia_node.url,
                              "TRIALNOTARY_ANCHOR_KEY_FILE": str(key_file)})
    assert settings.confirmations == "finalized"
    chain = ChainClient(settings)
    assert chain.address == address

    insert_registrations(engine, 3)
    batches.seal_all(engine, settings.max_batch)
    [anchor] = anchoring.anchor_sealed(engine, chain)
    sepolia_node.mine(2)
    assert anchoring.confirm_sent(engine, chain) == []  # mined, but not finalized yet
    sepolia_node.mine(64)  # anvil finalizes at head − 64
    assert anchoring.confirm_sent(engine, chain) == [batch_of(engine, anchor)]

    with Session(engine) as session:
        row = session.exec(select(Registration)).first()
        receipt = receipts.receipt_for(session, row, RECEIPT_NOTARY)
    assert receipt["anchors"][0]["chain"] == "ethereumSepolia"
    assert receipt["anchors"][0]["chainId"] == SEPOLIA
    assert receipt["anchors"][0]["sender"] == address
    report = verify_receipt(receipt, rpc_urls=[sepolia_node.url], confirmations="finalized",
                            expect_sender=address)
    assert report.ok, [(s.name, s.detail) for s in report.steps]


def test_a_node_of_another_chain_stops_anchoring_with_a_clear_error(
        settings_env, anvil, funded_key_file, engine):
    key_file, _ = funded_key_file
    settings = load_settings({**settings_env, "TRIALNOTARY_CHAIN": "sepolia",
                              "TRIALNOTARY_CHAIN_RPC_URL": anvil.url,  # chain 31337
                              "TRIALNOTARY_ANCHOR_KEY_FILE": str(key_file)})
    chain = ChainClient(settings)
    insert_registrations(engine, 1)
    batches.seal_all(engine, settings.max_batch)
    with pytest.raises(ChainError, match="on chain 31337.*11155111"):
        anchoring.anchor_sealed(engine, chain)
    assert anchoring.run_tick(engine, chain, settings.max_batch).sent == []
    with Session(engine) as session:
        assert session.exec(select(Batch)).one().state == "sealed"


def test_the_anchorer_fails_over_to_the_next_rpc_url(settings_env, anvil, engine):
    settings = load_settings({**settings_env,
                              "TRIALNOTARY_CHAIN_RPC_URL": f"http://127.0.0.1:9,{anvil.url}"})
    chain = ChainClient(settings)
    insert_registrations(engine, 1)
    batches.seal_all(engine, settings.max_batch)
    [anchor] = anchoring.anchor_sealed(engine, chain)
    assert chain.is_known(anchor.tx_hash)
