"""Retiring an anchor and renewing it (docs/receipt.md, "Renewal"; docs/cli.md, `anchor
retire`, `upgrade-receipts`): a notary anchoring on two real anvil chains (``a``: the session
chain, ``b``: a chain of its own id) retires ``b``; the renewal of ``b``'s transactions is
anchored on ``a``; ``b`` is then stopped for good, and every receipt still verifies through
the renewal with a node of ``a`` alone."""

from __future__ import annotations

import json
import re
import time
from datetime import date

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlmodel import Session, select

from tests.conftest import ANVIL_ACCOUNTS, Anvil, insert_registrations
from tests.utils import migrated_sqlite, serving
from trialnotary.cli import main
from trialnotary.config import ANVIL_DEV_KEY, load_settings
from trialnotary.db import make_engine
from trialnotary.notary import anchoring, operations, renewal
from trialnotary.notary.chain import anchor_gas
from trialnotary.notary.errors import RetireRefused
from trialnotary.notary.models import Anchor, Registration, Renewal, RenewalLeaf, Rollup
from trialnotary.notary.receipts import receipt_for
from trialnotary.proof.facts import EXIT_FAILED, EXIT_PASS
from trialnotary.proof.verify import verify_receipt

CHAIN_B = 4343
NOTARY = {"name": "trialnotary", "url": "http://127.0.0.1:5000"}


@pytest.fixture(scope="module")
def chain_b():
    node = Anvil(chain_id=CHAIN_B, block_time=None)
    yield node
    if node.process.poll() is None:
        node.stop()


def write_config(instance, anvil_url: str, b_url: str, key_file, chain_b: int,
                 retire_on: str | None) -> None:
    retire = f"retire_on = {retire_on}\n" if retire_on else ""
    instance.mkdir(mode=0o700, exist_ok=True)
    (instance / "config.toml").write_text(f"""
TRIALNOTARY_SEAL_INTERVAL_SECONDS = 3600

[[anchors]]
name = "a"
kind = "evm"
chain = "local"
rpc = ["{anvil_url}"]
confirmations = 1

[[anchors]]
name = "b"
kind = "evm"
chain = {chain_b}
rpc = ["{b_url}"]
key_file = "{key_file}"
confirmations = 1
{retire}""")


def notary_env(folder, anvil_url: str, b_url: str, chain_b: int = CHAIN_B,
               retire_on: str | None = None) -> dict:
    """A notary of two EVM anchors, ``a`` and ``b``, in ``folder``."""
    key_file = folder / "b.key"
    if not key_file.exists():
        key_file.write_text(ANVIL_DEV_KEY)
    instance = folder / "instance"
    write_config(instance, anvil_url, b_url, key_file, chain_b, retire_on)
    database = folder / "trialnotary.sqlite3"
    url = f"sqlite:///{database}" if database.exists() else migrated_sqlite(folder)
    return {"TRIALNOTARY_INSTANCE_PATH": str(instance), "TRIALNOTARY_DATABASE_URL": url}


def settle(engine, settings, names=("a", "b"), *, tries: int = 60) -> None:
    """Run every anchor's rounds until each roll-up of ``names`` is confirmed."""
    workers = anchoring.anchorers(settings)
    for _ in range(tries):
        anchoring.run_rounds(engine, workers, wait=5)
        with Session(engine) as session:
            open_ = session.scalar(select(sa.func.count()).select_from(Rollup).where(
                Rollup.anchor.in_(names), Rollup.state != "confirmed"))
        if not open_:
            return
        time.sleep(0.3)
    raise AssertionError("the anchors did not confirm")


def seal_and_settle(engine, settings, count: int) -> None:
    insert_registrations(engine, count)
    for worker in anchoring.anchorers(settings):
        worker.prepare(engine)
    operations.seal_everything(engine, settings.max_batch)
    settle(engine, settings)


def receipts(engine) -> list[dict]:
    with Session(engine) as session:
        return [found for registration in session.exec(select(Registration))
                if (found := receipt_for(session, registration, NOTARY)) is not None]


def cli(env: dict, *args: str):
    return CliRunner().invoke(main, list(args), env=env)


@pytest.fixture(scope="module")
def notary(anvil, chain_b, tmp_path_factory):
    """Registrations anchored on both chains in two batches, receipts saved before the
    retirement, then ``anchor retire b`` and its renewal confirmed on ``a``."""
    folder = tmp_path_factory.mktemp("renewal")
    env = notary_env(folder, anvil.url, chain_b.url)
    settings = load_settings(env)
    engine = make_engine(settings.database_url)
    seal_and_settle(engine, settings, 3)
    seal_and_settle(engine, settings, 2)
    before = receipts(engine)
    retired = cli(env, "anchor", "retire", "b")
    settle(engine, settings, ("a",))
    yield {"env": env, "settings": settings, "engine": engine, "before": before,
           "retired": retired, "folder": folder}
    engine.dispose()


@pytest.fixture(scope="module")
def gone(notary, chain_b):
    """Chain ``b`` stopped for good; the receipts as the notary serves them now."""
    chain_b.stop()
    return receipts(notary["engine"])


def entry(receipt: dict, name: str) -> dict:
    return next(item for item in receipt["anchors"] if item["name"] == name)


def test_before_retirement_each_receipt_holds_both_anchors_and_no_renewal(notary):
    assert len(notary["before"]) >= 5
    for found in notary["before"]:
        assert [item["name"] for item in found["anchors"]] == ["a", "b"]
        assert all("renewal" not in item for item in found["anchors"])


def test_retire_builds_the_renewal_and_sends_it_on_the_remaining_chain(notary):
    result = notary["retired"]
    assert result.exit_code == 0, result.output
    assert "anchor b: retired at" in result.output
    assert "renewal 1: " in result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("  on a:")]
    assert line.startswith("  on a: transaction 0x") and line.endswith("(sent)")
    with Session(notary["engine"]) as session:
        [made] = session.exec(select(Renewal)).all()
        confirmed_b = session.exec(select(Anchor).where(Anchor.name == "b",
                                                        Anchor.state == "confirmed")).all()
        leaves = session.exec(select(RenewalLeaf).order_by(RenewalLeaf.leaf_index)).all()
        renewal_rollups = session.exec(select(Rollup).where(Rollup.leaf_count == 0)).all()
        renewal_anchors = session.exec(select(Anchor).where(
            Anchor.rollup_id.in_([r.id for r in renewal_rollups]))).all()
    assert made.anchor == "b" and made.leaf_count == len(confirmed_b) >= 2
    by_block = sorted(confirmed_b, key=lambda a: (a.block_number, a.nonce))
    assert [leaf.anchor_id for leaf in leaves] == [a.id for a in by_block]
    assert [(r.anchor, bytes(r.root)) for r in renewal_rollups] == [("a", bytes(made.root))]
    # one transaction on the remaining chain, at the intrinsic gas of a 32-byte root
    assert [(a.name, a.state, a.gas) for a in renewal_anchors] == [
        ("a", "confirmed", anchor_gas(bytes(made.root)))]


def test_every_receipt_verifies_through_the_renewal_with_a_node_of_a_alone(notary, gone,
                                                                          anvil, tmp_path):
    assert gone and all("renewal" in entry(found, "b") for found in gone)
    for index, found in enumerate(gone):
        path = tmp_path / f"{index}.receipt.json"
        path.write_text(json.dumps(found))
        result = CliRunner().invoke(main, ["verify", str(path), "--rpc", anvil.url,
                                           "--expect-sender", ANVIL_ACCOUNTS[0]])
        assert result.exit_code == EXIT_PASS, result.output
        assert "(chain retired); that evidence existed no later than" in result.output


def test_a_changed_renewal_path_fails_at_renewal(gone, anvil):
    changed = json.loads(json.dumps(gone[0]))
    proof = entry(changed, "b")["renewal"]["proof"]
    side = next(iter(proof[0]))
    proof[0] = {side: "00" * 32}
    report = verify_receipt(changed, rpc_urls=[anvil.url], expect_sender=ANVIL_ACCOUNTS[0])
    result = next(r for r in report.anchors if r.name == "b")
    assert [s.name for s in result.steps if s.ok is False] == ["renewal"]
    assert report.verdict.exit_code == EXIT_FAILED


def test_a_receipt_without_a_renewal_stays_byte_identical(notary, gone):
    """The entries of the remaining chain are as before: only ``b``'s gained a renewal."""
    for old, new in zip(notary["before"], gone, strict=True):
        assert entry(old, "a") == entry(new, "a")
        assert {k: v for k, v in entry(new, "b").items() if k != "renewal"} == entry(old, "b")


def test_the_retired_anchor_anchors_nothing_new(notary, gone):
    engine, settings = notary["engine"], notary["settings"]
    seal_and_settle(engine, settings, 1)
    with Session(engine) as session:
        newest = session.scalar(select(sa.func.max(Rollup.id)).where(Rollup.anchor == "b"))
        newest_batch = session.scalar(sa.text("SELECT max(id) FROM batch"))
        covered_by_b = session.scalar(sa.text(
            "SELECT count(*) FROM rollup_batch WHERE anchor = 'b' AND batch_id = :b"),
            {"b": newest_batch})
    assert newest is not None and covered_by_b == 0
    [latest] = [r for r in receipts(engine)
                if r["trialnotary"]["batch"]["id"] == newest_batch][:1]
    assert [item["name"] for item in latest["anchors"]] == ["a"]


def test_retiring_again_builds_nothing_new(notary, gone):
    result = cli(notary["env"], "anchor", "retire", "b")
    assert result.exit_code == 0, result.output
    assert "retired before" in result.output
    with Session(notary["engine"]) as session:
        assert session.scalar(select(sa.func.count()).select_from(Renewal)) == 1


def test_the_last_anchor_and_an_unknown_one_cannot_be_retired(notary, gone):
    with pytest.raises(RetireRefused, match="the last one in use"):
        renewal.retire(notary["engine"], notary["settings"], "a")
    result = cli(notary["env"], "anchor", "retire", "nope")
    assert result.exit_code == 1 and "no anchor is named 'nope'" in result.output


def test_retire_dates_give_the_days_left(notary, gone):
    with Session(notary["engine"]) as session:
        dates = renewal.retire_dates(session, notary["settings"], today=date(2030, 1, 1))
    assert [(d.name, d.retire_on, d.days_left, d.retired_at is not None) for d in dates] == [
        ("a", None, None, False), ("b", None, None, True)]


# --- upgrade-receipts -------------------------------------------------------------------

def test_upgrade_receipts_brings_the_renewal_and_keeps_the_old_file(notary, gone, tmp_path):
    from trialnotary.web.app import create_app

    old = notary["before"][0]
    path = tmp_path / "saved.receipt.json"
    path.write_text(json.dumps(old, indent=2))
    original = path.read_bytes()
    with serving(create_app(notary["settings"])) as base:
        first = cli({}, "upgrade-receipts", str(path), "--server", base)
        again = cli({}, "upgrade-receipts", str(path), "--server", base)
        other = json.loads(original)
        other["merkleRoot"] = "00" * 32
        forged = tmp_path / "forged.receipt.json"
        forged.write_text(json.dumps(other))
        refused = cli({}, "upgrade-receipts", str(forged), "--server", base)
    assert first.exit_code == 0, first.output
    assert "upgraded: + renewal of b (0x" in first.output and "through a (0x" in first.output
    assert (tmp_path / "saved.receipt.json.bak").read_bytes() == original
    assert "renewal" in entry(json.loads(path.read_bytes()), "b")
    assert again.exit_code == 0 and "up to date" in again.output
    assert refused.exit_code == 1 and "another merkleRoot: refused" in refused.output
    assert json.loads(forged.read_bytes()) == other


def test_the_backup_never_overwrites_an_older_one(tmp_path):
    from trialnotary.cli.upgrade import backup_path

    path = tmp_path / "r.json"
    path.write_text("{}")
    assert backup_path(path).name == "r.json.bak"
    (tmp_path / "r.json.bak").write_text("{}")
    assert backup_path(path).name == "r.json.1.bak"


# --- evidence that cannot be had ------------------------------------------------------

def test_an_anchor_without_evidence_fails_retire_unless_forced(anvil, tmp_path, caplog):
    """``b``'s node is gone and one of its transactions never got its evidence: on its
    ``retire_on`` date the scheduler's job retires it but cannot renew it (logged), nor can
    the command, which names it and keeps ``b`` retired; ``--force`` renews the others."""
    chain = Anvil(chain_id=CHAIN_B + 1, block_time=None)
    try:
        env = notary_env(tmp_path, anvil.url, chain.url, CHAIN_B + 1, retire_on="2030-01-01")
        env_settings = load_settings(env)
        engine = make_engine(env_settings.database_url)
        seal_and_settle(engine, env_settings, 1)
        seal_and_settle(engine, env_settings, 1)
    finally:
        chain.stop()
    with Session(engine) as session:
        lacking = session.exec(select(Anchor).where(Anchor.name == "b")
                               .order_by(Anchor.id)).first()
    with engine.begin() as conn:
        conn.execute(sa.update(Anchor).where(Anchor.id == lacking.id).values(evidence=None))
    with Session(engine) as session:
        [_, b] = renewal.retire_dates(session, env_settings, today=date(2029, 12, 1))
    assert (b.retire_on, b.days_left, b.retired_at) == (date(2030, 1, 1), 31, None)
    assert renewal.retire_due(engine, env_settings, today=date(2029, 12, 31)) == []
    assert not renewal.is_retired(engine, "b")
    assert renewal.retire_due(engine, env_settings, today=date(2030, 1, 1)) == []
    assert renewal.is_retired(engine, "b")
    assert "its retire_on 2030-01-01 has come, but" in caplog.text
    caplog.clear()
    assert renewal.retire_due(engine, env_settings, today=date(2030, 1, 2)) == []
    assert "its retire_on 2030-01-01 has come, but" in caplog.text  # tried again
    refused = cli(env, "anchor", "retire", "b")
    assert refused.exit_code == 1
    assert f"0x{lacking.tx_hash} (block {lacking.block_number})" in refused.output
    assert "--force" in refused.output
    assert renewal.is_retired(engine, "b")
    forced = cli(env, "anchor", "retire", "b", "--force")
    assert forced.exit_code == 0, forced.output
    assert f"left out (no chain evidence): 0x{lacking.tx_hash}" in forced.output
    with Session(engine) as session:
        [made] = session.exec(select(Renewal)).all()
        assert lacking.id not in set(session.exec(select(RenewalLeaf.anchor_id)))
    assert made.leaf_count >= 1
    engine.dispose()


def test_the_browsers_verifier_gives_the_clis_answer_through_the_renewal(gone, anvil, tmp_path,
                                                                        page):
    """With chain b gone, the browser's verifier (in Node and in Chromium) verifies every
    receipt through its renewal, word for word as the CLI does."""
    from tests.corpus import outcome_of
    from tests.utils import serving_http
    from tests.web.test_verifier_parity import FACTS, _TreeFiles, in_chromium, in_node

    options = {"expectSender": ANVIL_ACCOUNTS[0]}
    entries = [{"name": f"r{i}", "text": json.dumps(found), "options": options}
               for i, found in enumerate(gone)]
    cli_answers = {}
    for item in entries:
        path = tmp_path / f"{item['name']}.receipt.json"
        path.write_text(item["text"])
        ran = CliRunner().invoke(main, ["verify", "--json", str(path), "--rpc", anvil.url,
                                        "--expect-sender", ANVIL_ACCOUNTS[0]])
        cli_answers[item["name"]] = outcome_of(json.loads(ran.output))
    assert {o["exitCode"] for o in cli_answers.values()} == {EXIT_PASS}
    given = {"facts": FACTS, "rpcUrl": anvil.url, "entries": entries}
    assert settled(in_node(given)) == settled(cli_answers)
    with serving_http(_TreeFiles) as base:
        assert settled(in_chromium(page, base, given)) == settled(cli_answers)


def settled(outcomes: dict) -> dict:
    """Outcomes without what the node's growing chain changes between two runs (its head,
    and so the confirmations counted)."""
    text = re.sub(r"head \d+", "head N", json.dumps(outcomes, sort_keys=True))
    return json.loads(re.sub(r"\d+ confirmations", "N confirmations", text))
