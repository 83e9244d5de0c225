"""Receipts of several anchors (docs/receipt.md, "Several anchors, roll-ups, time-stamps and
renewals"; docs/verification.md): real anchors on two anvil chains, a roll-up of batch roots,
a renewal of a retired chain's anchors, each anchor checked with its own steps, the nodes
routed by their chain id, and the verdict over them all."""

from __future__ import annotations

import base64
import copy
import json
import time

import pytest

from tests.conftest import Anvil, free_port
from tests.proof.anchored import (
    GOOD_NOTARY,
    NOTARY,
    anchor_of,
    evidence_of,
    identity_file,
    identity_of,
    make_batch,
    send,
    with_anchor,
    write,
)
from trialnotary.notary.merkle import build_levels, proof_from_levels
from trialnotary.proof.errors import ReceiptError
from trialnotary.proof.facts import (
    EXIT_FAILED,
    EXIT_NOT_PINNED,
    EXIT_PASS,
    EXIT_UNCHECKED,
    EXIT_UNUSABLE,
    chain_name,
)
from trialnotary.proof.tsa import load_certificates
from trialnotary.proof.verify import main, parse_receipt, verify_receipt
from trialnotary.proof.verify.anchors import evidence_digest

CHAIN_B = 4242
#: Chain B's blocks are this far ahead of the clock, so its anchors are the later ones.
AHEAD = 5000


@pytest.fixture(scope="module")
def chain_b():
    """A second chain, of another chain id, its blocks later than the session chain's."""
    node = Anvil(chain_id=CHAIN_B, block_time=None)
    node.rpc("evm_setNextBlockTimestamp", hex(int(time.time()) + AHEAD))
    node.mine(1)
    yield node
    node.stop()


@pytest.fixture
def retired():
    """A chain of chain B's id that a test stops: the retired one."""
    node = Anvil(chain_id=CHAIN_B, block_time=None)
    yield node
    if node.process.poll() is None:
        node.stop()


@pytest.fixture(scope="module")
def batch(anvil, tmp_path_factory):
    return make_batch(anvil, tmp_path_factory.mktemp("several"), count=3)


def eth_entry(node: Anvil, name: str, root: bytes, *, evidence: bool = False) -> dict:
    """An ETHData entry named ``name``: ``root`` anchored on ``node`` by the notary."""
    anchor = anchor_of(node, send(node, NOTARY, "0x" + root.hex()), NOTARY)
    node.mine(1)
    entry = {"type": "ETHData", "name": name, "chain": chain_name(node.chain_id),
             "chainId": node.chain_id, **with_anchor(anchor)}
    if evidence:
        entry["evidence"] = evidence_of(node, anchor)
    return entry


def receipt_of(batch, *entries: dict, index: int = 0) -> dict:
    """The batch's receipt ``index`` as version 2, with ``entries`` as its anchors."""
    receipt = copy.deepcopy(batch.receipts[index])
    receipt["trialnotary"]["receiptVersion"] = 2
    receipt["trialnotary"]["notary"] = GOOD_NOTARY
    receipt["anchors"] = [copy.deepcopy(entry) for entry in entries]
    return receipt


def roll_up(roots: list[bytes], index: int) -> dict:
    """The ``rollup`` of root ``index`` in a tree over ``roots``."""
    levels = build_levels(roots)
    return {"root": levels[-1].hex(), "proof": proof_from_levels(levels, index)}


def states(report) -> dict:
    return {result.name: result.state for result in report.anchors}


def failed_steps(report, name: str) -> list[str]:
    result = next(r for r in report.anchors if r.name == name)
    return [step.name for step in result.steps if step.ok is False]


def run_json(capsys, receipt, tmp_path, *rpc: str, **options) -> tuple[int, dict]:
    code = main(write(tmp_path, receipt), rpc_urls=list(rpc), as_json=True, **options)
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def two_chains(anvil, chain_b, batch):
    """The batch's root anchored on the session chain (``a``), then on chain B (``b``)."""
    return (eth_entry(anvil, "a", batch.root, evidence=True),
            eth_entry(chain_b, "b", batch.root))


# --- two chains -------------------------------------------------------------------------

def test_two_chains_verify_and_the_earlier_anchor_gives_the_time(anvil, chain_b, batch,
                                                                 two_chains, tmp_path,
                                                                 capsys):
    a, b = two_chains
    receipt = receipt_of(batch, b, a)
    report = verify_receipt(receipt, rpc_urls=[chain_b.url, anvil.url],
                            file_path=batch.files[0], expect_sender=NOTARY)
    assert states(report) == {"a": "verified", "b": "verified"}, report.steps
    assert a["blockTime"] < b["blockTime"]
    assert report.proven_time == a["blockTime"] and report.proving_anchor.name == "a"
    assert report.verdict.exit_code == EXIT_PASS
    assert report.verdict.text.endswith(f"no later than {a['blockTime'][:10]} "
                                        f"{a['blockTime'][11:19]} UTC (anchor a).")
    code, answer = run_json(capsys, receipt, tmp_path, anvil.url, chain_b.url)
    assert code == EXIT_NOT_PINNED
    assert [(x["name"], x["type"], x["state"]) for x in answer["anchors"]] == \
        [("b", "ETHData", "verified"), ("a", "ETHData", "verified")]
    assert answer["provenTime"] == a["blockTime"] and answer["provenBy"] == "a"
    assert [s["name"] for s in answer["anchors"][1]["steps"]] == \
        ["chain", "anchor-tx", "sender", "block", "confirmations", "evidence"]
    assert {s["anchor"] for s in answer["steps"][3:]} == {"a", "b"}


def test_the_text_names_each_anchor_under_its_heading(anvil, chain_b, batch, two_chains,
                                                      tmp_path, capsys):
    a, b = two_chains
    main(write(tmp_path, receipt_of(batch, a, b)), rpc_urls=[anvil.url, chain_b.url])
    lines = capsys.readouterr().out.splitlines()
    heading = f"anchor b (ETHData, ethereumLocal chain {CHAIN_B}): verified — anchored on b"
    assert any(line.startswith(heading) for line in lines), lines
    assert any(line.startswith("anchor a (ETHData, ethereumLocal chain 31337): verified")
               for line in lines)
    assert any(line.startswith("  ✓ chain ") for line in lines)
    assert lines[-1].startswith(f"PASS  proven time {a['blockTime']}  anchor a: anchored on a")
    assert lines[-1].endswith("(origin not pinned)")


def test_a_chain_without_a_node_is_not_checked_and_the_other_verifies(anvil, retired, batch,
                                                                      two_chains):
    a, _ = two_chains
    b = eth_entry(retired, "b", batch.root)
    retired.stop()
    report = verify_receipt(receipt_of(batch, a, b), rpc_urls=[anvil.url, retired.url],
                            expect_sender=NOTARY)
    assert states(report) == {"a": "verified", "b": "unchecked"}
    assert report.verdict.exit_code == EXIT_PASS and report.proven_time == a["blockTime"]
    chain = report.anchors[1].steps[0]
    assert chain.ok is None
    assert chain.detail == f"no node given is on ethereumLocal (chain {CHAIN_B}) " \
                           "(1 did not answer)"
    assert any(not note.answered and note.url == retired.url for note in report.nodes)


def test_no_anchor_checked_is_exit_4(batch, two_chains):
    dead = f"http://127.0.0.1:{free_port()}"
    report = verify_receipt(receipt_of(batch, *two_chains), rpc_urls=[dead])
    assert states(report) == {"a": "unchecked", "b": "unchecked"}
    assert report.verdict.exit_code == EXIT_UNCHECKED and report.proven_time is None
    assert report.verdict.text.startswith("Could not check any anchor of the receipt: a (")


def test_a_node_of_an_unrelated_chain_is_reported_not_failed(anvil, chain_b, batch,
                                                             two_chains):
    unrelated = Anvil(chain_id=999, block_time=None)
    try:
        report = verify_receipt(receipt_of(batch, *two_chains),
                                rpc_urls=[anvil.url, chain_b.url, unrelated.url],
                                expect_sender=NOTARY)
    finally:
        unrelated.stop()
    assert report.verdict.exit_code == EXIT_PASS, report.verdict
    (note,) = [note for note in report.nodes if note.url == unrelated.url]
    assert note.answered and note.chain_id == 999
    assert note.detail.endswith("no anchor of this receipt is on chain 999")


def test_a_wrong_anchor_fails_the_receipt_whatever_the_others_say(anvil, chain_b, batch,
                                                                  two_chains):
    a, b = two_chains
    wrong = {**b, "blockHash": "0x" + "ab" * 32}
    report = verify_receipt(receipt_of(batch, a, wrong), rpc_urls=[anvil.url, chain_b.url])
    assert states(report) == {"a": "verified", "b": "failed"}
    assert failed_steps(report, "b") == ["block"]
    assert report.verdict.exit_code == EXIT_FAILED
    assert report.verdict.text.startswith("This receipt does NOT verify: anchor b: block "
                                          "failed — ")


# --- --require ------------------------------------------------------------------------

def test_requiring_an_anchor_the_receipt_lacks_fails(anvil, chain_b, batch, two_chains,
                                                     tmp_path, capsys):
    code, answer = run_json(capsys, receipt_of(batch, *two_chains), tmp_path, anvil.url,
                            chain_b.url, require=["a", "hoodi"])
    assert code == EXIT_FAILED
    assert answer["verdict"]["text"] == ("This receipt does NOT verify: it holds no anchor "
                                         "named 'hoodi', which --require asks for.")


def test_requiring_all_with_one_not_checked_is_exit_4(anvil, batch, two_chains, tmp_path,
                                                      capsys):
    receipt = receipt_of(batch, *two_chains)
    assert main(write(tmp_path, receipt), rpc_urls=[anvil.url], expect_sender=NOTARY) \
        == EXIT_PASS
    capsys.readouterr()
    code, answer = run_json(capsys, receipt, tmp_path, anvil.url, require=["all"],
                            expect_sender=NOTARY)
    assert code == EXIT_UNCHECKED
    assert answer["verdict"]["state"] == "unchecked"
    assert answer["verdict"]["text"].startswith("Could not check the required anchor(s) b (")
    assert answer["verdict"]["note"].endswith("(anchor a).")
    assert main(write(tmp_path, receipt), rpc_urls=[anvil.url], require=["a"],
                expect_sender=NOTARY) == EXIT_PASS


def test_require_on_a_receipt_of_one_anchor(anvil, batch, tmp_path, capsys):
    receipt = receipt_of(batch, eth_entry(anvil, "local", batch.root))
    path = write(tmp_path, receipt)
    assert main(path, rpc_urls=[anvil.url], require=["local"], expect_sender=NOTARY) == 0
    assert main(path, rpc_urls=[anvil.url], require=["sepolia"]) == EXIT_FAILED
    assert "FAIL  failed: missing anchor sepolia" in capsys.readouterr().out


# --- roll-ups -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rolled(anvil, batch):
    """The batch's root rolled up with two others, the roll-up's root anchored on the
    session chain (with evidence); the ``rollup`` of the batch's root in it."""
    rollup = roll_up([b"\x01" * 32, batch.root, b"\x02" * 32], 1)
    return eth_entry(anvil, "daily", bytes.fromhex(rollup["root"]), evidence=True), rollup


def test_a_roll_up_anchor_verifies_through_its_path(anvil, batch, rolled):
    entry, rollup = rolled
    receipt = receipt_of(batch, {**entry, "rollup": rollup})
    report = verify_receipt(receipt, rpc_urls=[anvil.url], expect_sender=NOTARY)
    assert report.verdict.exit_code == EXIT_PASS, report.verdict
    steps = report.anchors[0].steps
    assert [step.name for step in steps][-2:] == ["evidence", "rollup"]
    assert "gives rollup.root" in steps[-1].detail
    assert "0x + rollup.root" in report.step("anchor-tx").detail


def test_a_changed_roll_up_path_fails_rollup(anvil, batch, rolled):
    entry, rollup = rolled
    changed = copy.deepcopy(rollup)
    side = next(iter(changed["proof"][0]))
    changed["proof"][0][side] = "00" * 32
    report = verify_receipt(receipt_of(batch, {**entry, "rollup": changed}),
                            rpc_urls=[anvil.url])
    assert failed_steps(report, "daily") == ["rollup"]
    assert report.verdict.exit_code == EXIT_FAILED


def test_a_roll_up_anchor_carrying_the_batch_root_fails(anvil, batch, rolled):
    _, rollup = rolled
    entry = eth_entry(anvil, "daily", batch.root, evidence=True)
    receipt = receipt_of(batch, {**entry, "rollup": rollup})
    report = verify_receipt(receipt, rpc_urls=[anvil.url])
    assert failed_steps(report, "daily") == ["evidence"]
    assert "not exactly rollup.root" in report.step("evidence").detail
    del receipt["anchors"][0]["evidence"]
    report = verify_receipt(receipt, rpc_urls=[anvil.url])
    assert failed_steps(report, "daily") == ["anchor-tx"]
    assert "not 0x + rollup.root" in report.step("anchor-tx").detail


# --- renewals ---------------------------------------------------------------------------

def renewed(anvil, retired, batch) -> tuple[dict, dict]:
    """Two anchors on the retired chain (the batch's root, and another), a renewal tree over
    their evidence digests anchored on the session chain; the batch's entry renewed, and
    the renewal's anchor."""
    mine = eth_entry(retired, "old", batch.root, evidence=True)
    other = eth_entry(retired, "old", b"\x07" * 32, evidence=True)
    digests = [evidence_digest(parse_receipt(receipt_of(batch, entry)).anchor, root)
               for entry, root in ((mine, batch.root), (other, b"\x07" * 32))]
    levels = build_levels(digests)
    renewal_anchor = eth_entry(anvil, "a", levels[-1], evidence=True)
    mine["renewal"] = {"evidenceDigest": digests[0].hex(),
                       "proof": proof_from_levels(levels, 0), "root": levels[-1].hex(),
                       "anchors": [renewal_anchor]}
    return mine, renewal_anchor


def test_a_retired_chain_verifies_through_its_renewal(anvil, retired, batch, tmp_path,
                                                      capsys):
    entry, renewal_anchor = renewed(anvil, retired, batch)
    retired.stop()
    receipt = receipt_of(batch, entry)
    report = verify_receipt(receipt, rpc_urls=[anvil.url, retired.url], expect_sender=NOTARY,
                            file_path=batch.files[0])
    assert states(report) == {"old": "verified"}, [(s.name, s.ok, s.detail)
                                                    for s in report.steps]
    result = report.anchors[0]
    assert [(s.name, s.ok) for s in result.steps] == [
        ("chain", None), ("anchor-tx", None), ("sender", None), ("block", None),
        ("confirmations", None), ("evidence", True), ("renewal", True)]
    assert result.summary == (
        f"anchored on old block {entry['blockNumber']} at {entry['blockTime']} (chain "
        f"retired); that evidence existed no later than {renewal_anchor['blockTime']} "
        f"(a block {renewal_anchor['blockNumber']})")
    assert report.proven_time == renewal_anchor["blockTime"]
    assert report.verdict.exit_code == EXIT_PASS
    assert [r.state for r in result.renewal] == ["verified"]
    document = identity_of()
    document["anchors"].append({**document["anchors"][0], "name": "old", "chainId": CHAIN_B})
    path = write(tmp_path, receipt)
    assert main(path, rpc_urls=[anvil.url],
                notary=str(identity_file(tmp_path, document))) == EXIT_PASS
    out = capsys.readouterr().out
    assert "(chain retired); that evidence existed no later than" in out
    assert "    anchor a (ETHData, ethereumLocal chain 31337): verified" in out


def test_a_changed_renewal_path_fails_renewal(anvil, retired, batch):
    entry, _ = renewed(anvil, retired, batch)
    retired.stop()
    entry["renewal"]["proof"][0] = {"right": "00" * 32}
    report = verify_receipt(receipt_of(batch, entry), rpc_urls=[anvil.url])
    assert failed_steps(report, "old") == ["renewal"]
    assert "renewal.proof gives" in report.step("renewal").detail
    assert report.verdict.exit_code == EXIT_FAILED


def test_a_renewal_of_another_anchor_fails_renewal(anvil, retired, batch):
    entry, _ = renewed(anvil, retired, batch)
    entry["renewal"]["evidenceDigest"] = "11" * 32
    report = verify_receipt(receipt_of(batch, entry), rpc_urls=[anvil.url])
    assert failed_steps(report, "old") == ["renewal"]
    assert "is not the digest of the anchor's chainId" in report.step("renewal").detail


# --- malformed -----------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r["anchors"][1].update(rollup={"root": "AB" * 32, "proof": []}),
     "anchors[1].rollup.root must be 64 lowercase hex"),
    (lambda r: r["anchors"][1].update(rollup={"root": "ab" * 32, "proof": [{"up": "ab"}]}),
     "anchors[1].rollup.proof[0] must have exactly one of 'left' or 'right'"),
    (lambda r: r["anchors"][1].update(rollup={"root": "ab" * 32}),
     "anchors[1].rollup must have exactly the keys root, proof; missing: proof"),
    (lambda r: r["anchors"][1].update(name="a"), "anchors[1].name 'a' is not unique"),
    (lambda r: r["anchors"][1].pop("name"), "anchors[1].name is missing"),
    (lambda r: r["anchors"].append({"type": "BTCOpReturn", "name": "btc"}),
     "anchors[2].type must be 'ETHData' or 'RFC3161', not 'BTCOpReturn'"),
    (lambda r: r["anchors"].append({"type": "RFC3161", "name": "tsa", "token": "not base64!",
                                    "genTime": "2026-11-23T19:00:13Z"}),
     "anchors[2].token must be a time-stamp token in base64"),
    (lambda r: r["anchors"].append({"type": "RFC3161", "name": "tsa", "token": "MAA=",
                                    "genTime": "2026-11-23T19:00:13.5Z"}),
     "anchors[2].genTime must be an RFC 3339 UTC time"),
    (lambda r: r["anchors"][0].update(renewal={"evidenceDigest": "ab" * 32, "proof": [],
                                               "root": "ab" * 32, "anchors": []}),
     "anchors[0].renewal.anchors must hold at least one anchor"),
    (lambda r: r.update(anchors=[]), "anchors must hold at least one anchor"),
])
def test_a_malformed_entry_makes_the_receipt_unusable(batch, two_chains, tmp_path, capsys,
                                                      change, message):
    receipt = receipt_of(batch, *two_chains)
    change(receipt)
    with pytest.raises(ReceiptError, match=message.replace("[", r"\[").replace("]", r"\]")
                       .replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        parse_receipt(receipt)
    assert main(write(tmp_path, receipt), rpc_urls=[]) == EXIT_UNUSABLE
    assert message in capsys.readouterr().err


def test_a_version_1_receipt_keeps_its_one_anchor_rules(batch):
    receipt = copy.deepcopy(batch.receipts[0])
    receipt["anchors"].append({"type": "RFC3161", "name": "tsa"})
    receipt["anchors"][0]["rollup"] = "ignored: not a version 1 field"
    claims = parse_receipt(receipt)
    assert not claims.several and claims.anchors == (claims.anchor,)


def test_a_receipt_of_one_anchor_lists_it_in_json(anvil, batch, tmp_path, capsys):
    code, answer = run_json(capsys, batch.receipts[1], tmp_path, anvil.url)
    assert code == EXIT_NOT_PINNED
    (anchor,) = answer["anchors"]
    assert anchor["state"] == "verified" and anchor["provenTime"] == answer["provenTime"]
    assert [s["name"] for s in anchor["steps"]] == [s["name"] for s in answer["steps"][3:]]
    assert "provenBy" not in answer and "anchor" not in answer["steps"][0]


# --- RFC 3161 time-stamps ---------------------------------------------------------------

def tsa_entry(authority, root: bytes, name: str = "tsa", **extra) -> dict:
    """An RFC3161 entry: a real token over ``root`` from ``authority`` (tests/tsa.py)."""
    from trialnotary.proof.tsa import check_token

    token = authority.token(root)
    gen_time = check_token(token, root, load_certificates(authority.ca_pem)).gen_time
    return {"type": "RFC3161", "name": name, "token": base64.b64encode(token).decode(),
            "genTime": gen_time, **extra}


def test_a_time_stamp_and_a_chain_verify_the_time_stamp_first(chain_b, batch, two_chains,
                                                              tsa, tmp_path, capsys):
    _, b = two_chains
    stamp = tsa_entry(tsa, batch.root)
    receipt = receipt_of(batch, b, stamp)
    report = verify_receipt(receipt, rpc_urls=[chain_b.url], expect_sender=NOTARY,
                            tsa_ca=tuple(load_certificates(tsa.ca_pem)))
    assert states(report) == {"b": "verified", "tsa": "verified"}, report.steps
    assert report.proving_anchor.name == "tsa" and report.proven_time == stamp["genTime"]
    assert report.verdict.exit_code == EXIT_PASS
    tsa_step = report.anchors[1].steps[0]
    assert (tsa_step.name, tsa_step.ok) == ("tsa", True) and "Test TSA" in tsa_step.detail
    code, answer = run_json(capsys, receipt, tmp_path, chain_b.url, expect_sender=NOTARY,
                            tsa_ca=[tsa.ca_file])
    assert code == EXIT_PASS and answer["provenBy"] == "tsa"
    assert answer["anchors"][1]["summary"] == f"time-stamped by Test TSA at {stamp['genTime']}"


def test_without_an_authority_the_time_stamp_is_not_checked(chain_b, batch, two_chains, tsa):
    _, b = two_chains
    report = verify_receipt(receipt_of(batch, b, tsa_entry(tsa, batch.root)),
                            rpc_urls=[chain_b.url], expect_sender=NOTARY)
    assert states(report) == {"b": "verified", "tsa": "unchecked"}
    assert report.verdict.exit_code == EXIT_PASS and report.proving_anchor.name == "b"
    report = verify_receipt(receipt_of(batch, b, tsa_entry(tsa, batch.root)),
                            rpc_urls=[chain_b.url], expect_sender=NOTARY, require=("tsa",))
    assert report.verdict.exit_code == EXIT_UNCHECKED
    assert "tsa (no TSA certificate authority was given" in report.verdict.text


def test_a_time_stamp_of_an_untrusted_authority_fails(batch, tsa, other_tsa):
    receipt = receipt_of(batch, tsa_entry(other_tsa, batch.root))
    report = verify_receipt(receipt, rpc_urls=[],
                            tsa_ca=tuple(load_certificates(tsa.ca_pem)))
    assert failed_steps(report, "tsa") == ["tsa"]
    assert "does not chain to a trusted authority" in report.step("tsa").detail
    assert report.verdict.exit_code == EXIT_FAILED


def test_a_time_stamp_whose_gen_time_is_not_the_tokens_fails(batch, tsa):
    stamp = tsa_entry(tsa, batch.root)
    stamp["genTime"] = "2020-01-01T00:00:00Z"
    report = verify_receipt(receipt_of(batch, stamp), rpc_urls=[],
                            tsa_ca=tuple(load_certificates(tsa.ca_pem)))
    assert failed_steps(report, "tsa") == ["tsa"]
    assert "not the receipt's genTime 2020-01-01T00:00:00Z" in report.step("tsa").detail


def test_a_rolled_up_time_stamp_verifies_and_a_wrong_path_fails(batch, tsa):
    rollup = roll_up([batch.root, b"\x03" * 32, b"\x04" * 32], 0)
    stamp = tsa_entry(tsa, bytes.fromhex(rollup["root"]), rollup=rollup)
    trusted = tuple(load_certificates(tsa.ca_pem))
    report = verify_receipt(receipt_of(batch, stamp), rpc_urls=[], tsa_ca=trusted)
    assert [(s.name, s.ok) for s in report.anchors[0].steps] == [("rollup", True),
                                                                 ("tsa", True)]
    assert report.verdict.exit_code == EXIT_NOT_PINNED  # a time, not an origin
    stamp["rollup"] = {**rollup, "proof": roll_up([batch.root, b"\x03" * 32, b"\x05" * 32],
                                                  0)["proof"]}
    report = verify_receipt(receipt_of(batch, stamp), rpc_urls=[], tsa_ca=trusted)
    assert failed_steps(report, "tsa") == ["rollup"]  # the token is still over rollup.root
    stamp["rollup"] = roll_up([batch.root, b"\x03" * 32, b"\x05" * 32], 0)
    report = verify_receipt(receipt_of(batch, stamp), rpc_urls=[], tsa_ca=trusted)
    assert failed_steps(report, "tsa") == ["tsa"]  # a path to another root, not stamped


def test_the_notarys_identity_lists_its_authority_whose_tokens_never_pin_alone(
        batch, tsa, tmp_path, capsys):
    """Anyone may ask the notary's authority to time-stamp a tree of their own and write it
    into a receipt naming the notary's trial: its token verifies (the time is proven), but
    the origin is not pinned (exit 3), whatever the identity lists."""
    document = identity_of()
    document["anchors"].append({"name": "tsa", "kind": "rfc3161", "url": tsa.url,
                                "certificates": [tsa.ca_pem.decode()]})
    path = write(tmp_path, receipt_of(batch, tsa_entry(tsa, batch.root)))
    capsys.readouterr()
    assert main(path, rpc_urls=[], notary=str(identity_file(tmp_path, document)),
                require=["all"]) == EXIT_NOT_PINNED
    assert "a time-stamp proves when, not who" in capsys.readouterr().out
    assert main(path, rpc_urls=[], notary=str(identity_file(tmp_path))) == EXIT_UNCHECKED


def test_a_renewal_may_be_a_time_stamp(anvil, retired, batch, tsa):
    entry = eth_entry(retired, "old", batch.root, evidence=True)
    digest = evidence_digest(parse_receipt(receipt_of(batch, entry)).anchor, batch.root)
    levels = build_levels([digest, b"\x09" * 32])
    stamp = tsa_entry(tsa, levels[-1])
    entry["renewal"] = {"evidenceDigest": digest.hex(), "proof": proof_from_levels(levels, 0),
                        "root": levels[-1].hex(), "anchors": [stamp]}
    retired.stop()
    report = verify_receipt(receipt_of(batch, entry), rpc_urls=[anvil.url],
                            expect_sender=NOTARY, tsa_ca=tuple(load_certificates(tsa.ca_pem)))
    assert states(report) == {"old": "verified"}, report.steps
    assert report.proven_time == stamp["genTime"]
    assert report.anchors[0].summary.endswith(f"no later than {stamp['genTime']} "
                                              "(tsa time-stamp)")
    # The signature its evidence proves pins it, not the renewal: another sender expected,
    # the anchor still proves its time, but not the origin.
    other = verify_receipt(receipt_of(batch, entry), rpc_urls=[anvil.url],
                           expect_sender="0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
                           tsa_ca=tuple(load_certificates(tsa.ca_pem)))
    assert states(other) == {"old": "verified"}
    assert other.verdict.exit_code == EXIT_NOT_PINNED


def test_a_tsa_ca_file_without_certificates_is_unusable(batch, tmp_path, capsys):
    bad = tmp_path / "ca.pem"
    bad.write_text("no certificate here")
    assert main(write(tmp_path, batch.receipts[0]), rpc_urls=[], tsa_ca=[bad]) \
        == EXIT_UNUSABLE
    assert "--tsa-ca" in capsys.readouterr().err
