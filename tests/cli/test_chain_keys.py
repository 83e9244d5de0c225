"""``chain rotate-key`` and ``chain revoke-key``: the notary's anchoring key changes or leaks,
and every receipt it issued keeps the verdict it deserves with ``verify --notary``."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
from click.testing import CliRunner
from sqlmodel import Session, select

from tests.conftest import ANVIL_ACCOUNTS, insert_registrations
from tests.utils import RECEIPT_NOTARY
from trialnotary.cli import main
from trialnotary.notary import anchoring, identity, receipts
from trialnotary.notary.chain import ChainClient
from trialnotary.notary.models import Anchor, NotaryAddress, Registration
from trialnotary.people import audit

# Anvil's third development account: its key is published in anvil's own output (local
# chains only, never a secret).
NEW_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
OLD, NEW = ANVIL_ACCOUNTS[0], ANVIL_ACCOUNTS[2]


@pytest.fixture
def cli(settings_env):
    def invoke(*args):
        return CliRunner().invoke(main, list(args), env=settings_env, catch_exceptions=False)
    return invoke


def issued(engine) -> dict[str, dict]:
    """Every confirmed receipt, by registration id."""
    with Session(engine) as session:
        found = {row.id: receipts.receipt_for(session, row, RECEIPT_NOTARY)
                 for row in session.exec(select(Registration))}
    return {key: value for key, value in found.items() if value is not None}


def verified(cli, anvil, receipt: dict, notary) -> tuple[int, str]:
    """``verify --notary`` of one receipt: the exit code and the output."""
    path = notary.parent / f"{receipt['trialnotary']['record']['id']}.json"
    path.write_text(json.dumps(receipt))
    result = cli("verify", str(path), "--rpc", anvil.url, "--notary", str(notary))
    return result.exit_code, result.output


def saved_identity(engine, settings, tmp_path, name: str = "identity.json"):
    path = tmp_path / name
    path.write_text(identity.document_text(engine, settings))
    return path


def anchor_batch(cli, engine, count: int = 2) -> set[str]:
    insert_registrations(engine, count)
    result = cli("seal-now", "--wait")
    assert result.exit_code == 0, result.output
    return senders(engine)


def senders(engine) -> set[str]:
    with Session(engine) as session:
        return set(session.exec(select(Anchor.sender)))


def test_rotate_key_keeps_every_receipt_verifying_and_anchors_from_the_new_key(
        cli, settings, engine, anvil, tmp_path):
    assert anchor_batch(cli, engine) == {OLD}
    insert_registrations(engine, 2)
    assert cli("seal-now").exit_code == 0  # sent with the old key, not yet confirmed
    key_file = tmp_path / "new.key"
    key_file.write_text(NEW_KEY)
    result = cli("chain", "rotate-key", "--anchor", "local", "--key-file", str(key_file))
    assert result.exit_code == 0, result.output
    assert f"anchoring moves from {OLD} to {NEW}" in result.output

    chain = ChainClient(settings)
    for _ in range(30):  # the old key's anchor in flight still confirms
        anvil.mine(1)
        anchoring.chain_round(engine, chain)
        if len(issued(engine)) == 4:
            break
    assert len(issued(engine)) == 4
    assert senders(engine) == {OLD}
    assert anchor_batch(cli, engine) == {OLD, NEW}  # anchors after rotation: the new key
    assert f"account:      {NEW}" in cli("chain", "status").output

    with Session(engine) as session:
        rows = {row.address: row for row in session.exec(select(NotaryAddress))}
    assert rows[OLD].retired_at is not None and rows[OLD].until is not None
    assert rows[NEW].until is None and rows[NEW].valid_from >= rows[OLD].retired_at
    document = saved_identity(engine, settings, tmp_path)
    for receipt in issued(engine).values():
        code, output = verified(cli, anvil, receipt, document)
        assert code == 0, output
        assert "✓ notary" in output
    by_new = [r for r in issued(engine).values() if r["anchors"][0]["sender"] == NEW]
    assert len(by_new) == 2 and all(r["anchors"][0]["name"] == "local" for r in by_new)


def test_rotate_key_refuses_an_unknown_anchor_or_a_key_used_before(cli, tmp_path):
    used = tmp_path / "old.key"
    used.write_text("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
    result = cli("chain", "rotate-key", "--anchor", "sepolia", "--key-file", str(used))
    assert result.exit_code == 1 and "no anchor is named 'sepolia'" in result.output
    result = cli("chain", "rotate-key", "--anchor", "local", "--key-file", str(used))
    assert result.exit_code == 1 and "was already an anchoring address" in result.output
    garbage = tmp_path / "garbage.key"
    garbage.write_text("not a key")
    result = cli("chain", "rotate-key", "--anchor", "local", "--key-file", str(garbage))
    assert result.exit_code == 1 and "does not hold a private key" in result.output


def test_revoke_key_fails_receipts_anchored_from_the_time_given_and_no_earlier(
        cli, settings, engine, anvil, tmp_path):
    anchor_batch(cli, engine)
    before = issued(engine)
    time.sleep(2)  # the next anchor's block is later by whole seconds
    anchor_batch(cli, engine)
    after = {key: value for key, value in issued(engine).items() if key not in before}
    since = next(iter(after.values()))["anchors"][0]["blockTime"]
    assert since > next(iter(before.values()))["anchors"][0]["blockTime"]

    result = cli("chain", "revoke-key", OLD.lower(), "--since", since)
    assert result.exit_code == 0, result.output
    assert f"{OLD} is compromised from {since}" in result.output
    assert "anchoring stops until then" in result.output
    document = saved_identity(engine, settings, tmp_path)
    for receipt in before.values():
        code, output = verified(cli, anvil, receipt, document)
        assert code == 0, output
    for receipt in after.values():
        code, output = verified(cli, anvil, receipt, document)
        assert code == 1, output
        assert f"notary failed — {OLD} is compromised from {since}" in output
    insert_registrations(engine, 1)  # a revoked key anchors nothing more
    result = cli("seal-now")
    assert "is revoked" in result.output


def test_revoke_key_refuses_an_address_that_is_not_the_notarys(cli):
    result = cli("chain", "revoke-key", ANVIL_ACCOUNTS[1], "--since", "2026-01-01")
    assert result.exit_code == 1 and "not an anchoring address of this notary" in result.output
    result = cli("chain", "revoke-key", OLD, "--since", "last tuesday")
    assert result.exit_code == 1 and "is not a time" in result.output


def test_each_version_of_the_identity_is_an_audit_entry(cli, settings, engine, tmp_path):
    first = json.loads(identity.document_text(engine, settings, ChainClient(settings)))
    assert cli("chain", "revoke-key", OLD, "--since", "2030-01-01").exit_code == 0
    second = json.loads(identity.document_text(engine, settings))
    assert (first["version"], second["version"]) == (1, 2)
    assert second["anchors"][0]["addresses"][0]["compromisedFrom"] == "2030-01-01T00:00:00Z"
    with Session(engine) as session:
        entries = [e for e in audit.entries(session) if e["action"] == "notary.identity"]
    assert [e["new"]["version"] for e in entries] == [1, 2]
    served = identity.document_text(engine, settings).encode()
    assert entries[-1]["new"]["sha256"] == hashlib.sha256(served).hexdigest()


def test_a_configured_key_the_notary_never_used_is_a_rotation(settings_env, engine, tmp_path):
    def cli_with(key_file=None):
        env = {**settings_env, **({"TRIALNOTARY_ANCHOR_KEY_FILE": str(key_file)}
                                  if key_file else {})}
        return lambda *args: CliRunner().invoke(main, list(args), env=env,
                                                catch_exceptions=False)
    assert anchor_batch(cli_with(), engine) == {OLD}
    key_file = tmp_path / "new.key"
    key_file.write_text(NEW_KEY)
    assert anchor_batch(cli_with(key_file), engine) == {OLD, NEW}
    with Session(engine) as session:
        rows = {row.address: row for row in session.exec(select(NotaryAddress))}
    assert rows[OLD].until is not None and rows[NEW].until is None
    assert rows[NEW].key_file is None  # the configured key: no path kept
    insert_registrations(engine, 1)  # the old key configured again: it no longer anchors
    result = cli_with()("seal-now")
    assert f"TRIALNOTARY_ANCHOR_KEY_FILE holds the key of {OLD}" in result.output
