"""Several anchors end to end (docs/configuration.md, "Anchors"; docs/receipt.md, "Several
anchors"): a notary configured with ``[[anchors]]`` on two real anvil chains and a real
time-stamp authority (``openssl ts -reply``) seals, anchors and time-stamps each batch on
its own; receipts carry every anchor and verify with the stand-alone CLI; a roll-up covers
several batches in one transaction; a stopped chain delays nothing else."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from sqlmodel import Session, select

from tests.conftest import ANVIL_ACCOUNTS, Anvil, insert_registrations
from trialnotary import db
from trialnotary.config import ANVIL_DEV_KEY, load_settings
from trialnotary.notary import anchoring, batches, identity, receipts
from trialnotary.notary.chain import anchor_gas
from trialnotary.notary.models import Registration
from trialnotary.proof.facts import EXIT_PASS
from trialnotary.proof.verify import main as verify_main
from trialnotary.web.app import create_app

CHAIN_B = 31338
ROUNDS_SECONDS = 40


@pytest.fixture
def chain_b():
    """A second chain, of another chain id, mining a block a second."""
    node = Anvil(chain_id=CHAIN_B)
    yield node
    if node.process.poll() is None:
        node.stop()


def configure(instance: Path, anvil: Anvil, chain_b: Anvil, tsa, *,
              b_every: str = "batch") -> None:
    """An instance with three anchors: the local chain, chain B and the TSA."""
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)
    key_file = instance / "chain-b.key"
    key_file.write_text(ANVIL_DEV_KEY)  # anvil's public development key: test chains only
    key_file.chmod(0o600)
    (instance / "config.toml").write_text(f"""
[[anchors]]
name = "alpha"
kind = "evm"
chain = "local"
rpc = ["{anvil.url}"]

[[anchors]]
name = "beta"
kind = "evm"
chain = {CHAIN_B}
rpc = ["{chain_b.url}"]
key_file = "{key_file}"
confirmations = 1
every = "{b_every}"

[[anchors]]
name = "tsa"
kind = "rfc3161"
url = "{tsa.url}"
ca_file = "{tsa.ca_file}"
""")


@pytest.fixture
def notary(tmp_path, database_url, anvil, chain_b, tsa):
    """Settings and engine of such a notary; ``notary(b_every=…)`` configures chain B's
    period."""
    made = []

    def make(**options):
        instance = tmp_path / "instance"
        configure(instance, anvil, chain_b, tsa, **options)
        settings = load_settings({"TRIALNOTARY_INSTANCE_PATH": str(instance),
                                  "TRIALNOTARY_DATABASE_URL": database_url})
        engine = db.make_engine(database_url)
        made.append(engine)
        return settings, engine

    yield make
    for engine in made:
        engine.dispose()


def receipts_of(engine, settings, records: list[dict]) -> list[dict]:
    notary = identity.notary_of(settings, "http://127.0.0.1")
    found = []
    with Session(engine) as session:
        for record in records:
            registration = session.exec(select(Registration)
                                        .where(Registration.id == record["id"])).one()
            found.append(receipts.receipt_for(session, registration, notary))
    return found


def anchor_until(engine, workers, done, seconds: float = ROUNDS_SECONDS):
    """Run every anchor's rounds until ``done()`` holds; what it last returned."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        anchoring.run_rounds(engine, workers)
        if result := done():
            return result
        time.sleep(0.5)
    raise AssertionError(f"not done after {seconds} s")


def names(receipt: dict | None) -> list[str]:
    return [] if receipt is None else [entry["name"] for entry in receipt["anchors"]]


def when_anchored(engine, settings, records: list[dict], wanted):
    """A check for ``anchor_until``: the receipts, once ``wanted(names)`` holds for each."""
    def done():
        found = receipts_of(engine, settings, records)
        return found if all(wanted(names(receipt)) for receipt in found) else None
    return done


def verify_files(tmp_path: Path, engine, settings, receipts_: list[dict], rpc: list[str],
                 tsa, capsys) -> tuple[int, str]:
    """``trialnotary verify`` over the saved receipts, pinned with the notary's identity
    and the TSA's CA."""
    identity_path = tmp_path / "identity.json"
    identity_path.write_text(identity.document_text(engine, settings))
    paths = []
    for index, receipt in enumerate(receipts_):
        path = tmp_path / f"r{index}.receipt.json"
        path.write_text(json.dumps(receipt))
        paths.append(path)
    capsys.readouterr()
    code = verify_main(paths, rpc_urls=rpc, notary=str(identity_path),
                       tsa_ca=[tsa.ca_file])
    return code, capsys.readouterr().out


def test_each_batch_is_anchored_on_both_chains_and_time_stamped(notary, anvil, chain_b, tsa,
                                                                tmp_path, capsys):
    settings, engine = notary()
    assert [spec.name for spec in settings.anchors] == ["alpha", "beta", "tsa"]
    workers = anchoring.anchorers(settings)
    records = insert_registrations(engine, 3)
    [batch] = batches.seal_all(engine, 100)
    found = anchor_until(engine, workers, when_anchored(
        engine, settings, records, lambda got: got == ["alpha", "beta", "tsa"]))
    first = found[0]
    alpha, beta, stamp = first["anchors"]
    assert alpha["chainId"] == 31337 and beta["chainId"] == CHAIN_B
    assert stamp["type"] == "RFC3161" and stamp["token"] and stamp["genTime"].endswith("Z")
    assert "rollup" not in beta and alpha["evidence"] and beta["evidence"]
    code, out = verify_files(tmp_path, engine, settings, found, [anvil.url, chain_b.url],
                             tsa, capsys)
    assert code == EXIT_PASS, out
    assert out.count("anchor tsa") >= 3 and "anchor beta" in out
    app = create_app(settings, {"TESTING": True})
    page = app.test_client().get(f"/r/{records[0]['id']}").get_data(as_text=True)
    shown = re.findall(r'<li data-anchor="([a-z]+)">\s*[a-z]+: confirmed', page)
    assert shown == ["alpha", "beta", "tsa"]
    app.extensions["trialnotary"].engine.dispose()


def test_a_roll_up_covers_the_batches_of_its_period_in_one_transaction(
        notary, anvil, chain_b, tsa, tmp_path, capsys):
    settings, engine = notary(b_every="3s")
    workers = anchoring.anchorers(settings)
    sent_before = chain_b.rpc("eth_getTransactionCount", ANVIL_ACCOUNTS[0], "latest")
    records = []
    for _ in range(3):
        records += insert_registrations(engine, 2)
        batches.seal_all(engine, 100)
        anchoring.run_rounds(engine, workers)
    found = anchor_until(engine, workers, when_anchored(
        engine, settings, records, lambda got: "beta" in got))
    rolled = [next(e for e in r["anchors"] if e["name"] == "beta") for r in found]
    assert len({e["sourceId"] for e in rolled}) == 1  # one transaction for the three batches
    assert {e["rollup"]["root"] for e in rolled} == {rolled[0]["rollup"]["root"]}
    assert len({r["merkleRoot"] for r in found}) == 3
    sent_after = chain_b.rpc("eth_getTransactionCount", ANVIL_ACCOUNTS[0], "latest")
    assert int(sent_after, 16) - int(sent_before, 16) == 1
    gas = chain_b.rpc("eth_getTransactionReceipt", "0x" + rolled[0]["sourceId"])["gasUsed"]
    assert int(gas, 16) == anchor_gas(bytes.fromhex(rolled[0]["rollup"]["root"]))
    code, out = verify_files(tmp_path, engine, settings, found, [anvil.url, chain_b.url],
                             tsa, capsys)
    assert code == EXIT_PASS, out


def test_a_stopped_chain_delays_nothing_else(notary, anvil, chain_b, tsa, tmp_path, capsys):
    settings, engine = notary()
    workers = anchoring.anchorers(settings)
    chain_b.stop()
    records = insert_registrations(engine, 2)
    batches.seal_all(engine, 100)
    started = time.monotonic()
    found = anchor_until(engine, workers, when_anchored(
        engine, settings, records, lambda got: got == ["alpha", "tsa"]), seconds=20)
    assert time.monotonic() - started < 15
    with Session(engine) as session:
        beta = anchoring.chain_status(session, "beta")
        assert beta is not None and not beta.reachable and "no chain node" in beta.alert
        assert anchoring.chain_status(session, "alpha").reachable
    code, out = verify_files(tmp_path, engine, settings, found, [anvil.url], tsa, capsys)
    assert code == EXIT_PASS, out


def test_check_looks_at_every_chain(notary, anvil, chain_b, tsa):
    """``trialnotary check`` follows each EVM anchor's transactions on its own chain."""
    from trialnotary.notary import consistency
    from trialnotary.notary.chain import ChainClient

    settings, engine = notary()
    workers = anchoring.anchorers(settings)
    records = insert_registrations(engine, 2)
    batches.seal_all(engine, 100)
    anchor_until(engine, workers, when_anchored(
        engine, settings, records, lambda got: got == ["alpha", "beta", "tsa"]))
    chains = [ChainClient(settings, anchor=spec) for spec in settings.anchors[:2]]
    with Session(engine) as session:
        found = consistency.check(session, chains)
    assert found.ok, found.problems
    assert found.counts["confirmed_anchors"] >= 1 and found.counts["confirmed_anchors (beta)"] >= 1
    chain_b.stop()
    with Session(engine) as session:
        found = consistency.check(session, chains)
    assert any(problem.startswith("the chain of beta could not be checked")
               for problem in found.problems)


def test_a_downloaded_receipt_grows_as_the_other_anchors_confirm(notary, anvil, chain_b, tsa):
    """The API's download (which keeps each batch's anchors between downloads) answers the
    fullest receipt: first the anchors of each batch, then the roll-up's too."""
    from trialnotary.notary.registrations import download

    settings, engine = notary(b_every="4s")
    workers = anchoring.anchorers(settings)
    records = insert_registrations(engine, 1)
    batches.seal_all(engine, 100)
    notary_of = identity.notary_of(settings, "http://127.0.0.1")

    def downloaded():
        found = download(engine, records[0]["id"], notary_of).receipt
        return None if found is None else names(found)

    first = anchor_until(engine, workers, lambda: downloaded() == ["alpha", "tsa"] or None)
    assert first
    assert anchor_until(engine, workers, lambda: downloaded() == ["alpha", "beta", "tsa"]
                        or None)


def test_chain_status_shows_each_anchor(notary, anvil, chain_b, tsa, monkeypatch):
    from click.testing import CliRunner

    from trialnotary.cli import main

    settings, _ = notary()
    monkeypatch.setenv("TRIALNOTARY_INSTANCE_PATH", str(settings.instance_path))
    monkeypatch.setenv("TRIALNOTARY_DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(main, ["chain", "status"])
    assert result.exit_code == 0, result.output
    headings = [line for line in result.output.splitlines() if line.startswith("anchor:")]
    assert headings == ["anchor:       alpha (evm, every batch)",
                        "anchor:       beta (evm, every batch)",
                        "anchor:       tsa (rfc3161, every batch)"]
    assert f"expected chain id {CHAIN_B}" in result.output and tsa.url in result.output
    assert result.output.count("balance:") == 2


def test_rotate_key_moves_one_anchor_and_leaves_the_others(notary, anvil, chain_b, tsa,
                                                           tmp_path, monkeypatch):
    """``chain rotate-key --anchor beta`` moves beta's anchoring to the new key; alpha keeps
    its key, and the identity lists both of beta's addresses on chain B."""
    from click.testing import CliRunner

    from tests.cli.test_chain_keys import NEW, NEW_KEY, OLD
    from trialnotary.cli import main

    settings, engine = notary()
    workers = anchoring.anchorers(settings)
    insert_registrations(engine, 1)
    batches.seal_all(engine, 100)
    anchoring.run_rounds(engine, workers)  # both chains' histories seeded, first anchors sent
    key_file = tmp_path / "new.key"
    key_file.write_text(NEW_KEY)
    monkeypatch.setenv("TRIALNOTARY_INSTANCE_PATH", str(settings.instance_path))
    monkeypatch.setenv("TRIALNOTARY_DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(main, ["chain", "rotate-key", "--anchor", "beta",
                                       "--key-file", str(key_file)])
    assert result.exit_code == 0, result.output
    chain_b.rpc("anvil_setBalance", NEW, hex(10**18))
    records = insert_registrations(engine, 1)
    batches.seal_all(engine, 100)
    found = anchor_until(engine, anchoring.anchorers(settings), when_anchored(
        engine, settings, records, lambda got: got == ["alpha", "beta", "tsa"]))
    alpha, beta, _ = found[0]["anchors"]
    assert (alpha["sender"], beta["sender"]) == (OLD, NEW)
    document = json.loads(identity.document_text(engine, settings))
    by_name = {entry["name"]: entry for entry in document["anchors"]}
    assert [a["address"] for a in by_name["beta"]["addresses"]] == [OLD, NEW]
    assert [a["address"] for a in by_name["alpha"]["addresses"]] == [OLD]
