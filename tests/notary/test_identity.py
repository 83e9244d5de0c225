"""The notary's address history: seeded from the anchors a notary sent before it had one,
``from`` never after an address's first anchor's block time (docs/receipt.md, "The notary's
identity")."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlmodel import Session, select

from tests.conftest import ANVIL_ACCOUNTS, insert_registrations
from tests.utils import confirm_by_mining
from trialnotary.config import load_settings
from trialnotary.notary import identity
from trialnotary.notary.chain import ChainClient
from trialnotary.notary.models import Anchor, NotaryAddress

# Anvil's third development account (a published key, local chains only).
OTHER_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"


def addresses(engine) -> dict[str, NotaryAddress]:
    with Session(engine) as session:
        return {row.address: row for row in session.exec(select(NotaryAddress))}


def test_a_notary_that_anchored_before_it_had_an_identity_lists_every_key(
        settings_env, engine, chain, anvil, tmp_path):
    insert_registrations(engine, 2)
    confirm_by_mining(engine, chain, anvil, max_batch=100, tries=20)
    with engine.begin() as conn:  # as a database from before the identity existed
        conn.execute(sa.delete(NotaryAddress.__table__))
        conn.execute(sa.text("DELETE FROM notary_identity"))
    with Session(engine) as session:
        first_block, last_block = session.execute(
            select(sa.func.min(Anchor.block_time), sa.func.max(Anchor.block_time))).one()
    key_file = tmp_path / "other.key"
    key_file.write_text(OTHER_KEY)
    other = ChainClient(load_settings({**settings_env,
                                       "TRIALNOTARY_ANCHOR_KEY_FILE": str(key_file)}))
    identity.prepare_signer(engine, other)
    rows = addresses(engine)
    old, new = rows[ANVIL_ACCOUNTS[0]], rows[ANVIL_ACCOUNTS[2]]
    assert old.valid_from <= first_block and old.retired_at == last_block
    assert new.retired_at is None and other.address == ANVIL_ACCOUNTS[2]
    identity.after_round(engine, other.settings, [])
    assert addresses(engine)[ANVIL_ACCOUNTS[0]].until == last_block  # nothing in flight


def test_from_is_lowered_to_the_first_anchors_block_time(settings, engine, chain, anvil):
    identity.seed_if_new(engine, chain)
    with engine.begin() as conn:  # a clock ahead of the chain's
        conn.execute(sa.update(NotaryAddress.__table__).values(valid_from="2099-01-01T00:00:00Z"))
    insert_registrations(engine, 1)
    confirm_by_mining(engine, chain, anvil, max_batch=100, tries=20)
    with Session(engine) as session:
        block_time = session.scalar(select(Anchor.block_time))
    assert addresses(engine)[ANVIL_ACCOUNTS[0]].valid_from == block_time
    document = json.loads(identity.document_text(engine, settings))
    assert document["anchors"][0]["addresses"][0]["from"] == block_time
