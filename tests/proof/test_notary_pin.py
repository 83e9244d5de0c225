"""Pinning the origin with the notary's identity: the ``notary`` step's rule over an
identity document, the forms ``--notary`` takes, and documents that cannot be used (exit 2).
The rule is docs/verification.md (the ``notary`` step)."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.proof.anchored import (
    NOTARY,
    OTHER,
    identity_document,
    identity_file,
    identity_of,
    make_batch,
    pinned_identity,
    verify,
    write,
)
from tests.proof.vectors import load_pin_vectors
from tests.utils import serving_http
from trialnotary.cli import main as cli
from trialnotary.proof.facts import EXIT_FAILED, EXIT_PASS, EXIT_UNUSABLE, IDENTITY_PATH
from trialnotary.proof.verify import IdentityError, main, parse_identity
from trialnotary.proof.verify.notary import identity_url, pin

BLOCK = "2026-11-23T19:00:12Z"


# --- the rule --------------------------------------------------------------------------

def verdict(block_time: str = BLOCK, chain_id: int = 31337, sender: str = NOTARY, **entry):
    return pin(pinned_identity(identity_of(**entry)), chain_id, sender, block_time)


def test_the_address_in_use_at_the_block_time_passes():
    found = verdict()
    assert found.ok, found.detail
    assert found.detail == (f'sent by {NOTARY}, the address of the notary "Test notary" (local) '
                            f"at the block's time {BLOCK}")


@pytest.mark.parametrize(("entry", "ok"), [
    ({"from": BLOCK}, True),                        # from ≤ blockTime, at whole seconds
    ({"from": "2026-11-23T19:00:12.999Z"}, True),   # a fraction is cut off
    ({"from": "2026-11-23T19:00:13Z"}, False),      # in use only after the block
    ({"until": BLOCK}, True),                       # until ≥ blockTime
    ({"until": "2026-11-23T19:00:11Z"}, False),     # retired before the block
    ({"compromisedFrom": BLOCK}, False),            # compromised at the block's time
    ({"compromisedFrom": "2026-11-23T19:00:11Z"}, False),
    ({"compromisedFrom": "2026-11-23T19:00:13Z"}, True),  # compromised only later
])
def test_the_window_compares_whole_seconds(entry, ok):
    assert verdict(**entry).ok is ok, verdict(**entry).detail


@pytest.mark.parametrize("case", load_pin_vectors()["cases"], ids=lambda case: case["what"])
def test_the_pin_vectors(case):
    identity = parse_identity(load_pin_vectors()["identity"])
    found = pin(identity, case["chainId"], case["sender"], case["blockTime"])
    assert (found.ok, found.detail) == (case["ok"], case["detail"])


def test_a_compromise_is_named():
    found = verdict(compromisedFrom="2026-11-01T00:00:00Z")
    assert found.detail == (f"{NOTARY} is compromised from 2026-11-01T00:00:00Z, at or before "
                            f"the block's time {BLOCK}")


def test_another_sender_or_chain_fails():
    other = verdict(sender=OTHER)
    assert not other.ok and "which is not an address of the notary" in other.detail
    assert NOTARY in other.detail
    elsewhere = verdict(chain_id=11155111)
    assert not elsewhere.ok
    assert "publishes no anchoring address on ethereumSepolia (chain 11155111)" in \
        elsewhere.detail


def test_addresses_compare_without_case_and_any_listing_in_use_passes():
    document = identity_document({"address": NOTARY.lower(), "until": "2001-01-01T00:00:00Z"},
                                 {"address": NOTARY.upper().replace("0X", "0x")})
    assert pin(parse_identity(document), 31337, NOTARY, BLOCK).ok


@pytest.mark.parametrize(("document", "message"), [
    ("[]", "an identity document is a JSON object"),
    ('{"name": "x", "anchors": [], "name": "y"}', "not JSON: duplicate keys"),
    ('{"anchors": []}', "name must be a non-empty string"),
    ('{"name": "x"}', "anchors must be a list"),
    ('{"name": "x", "anchors": [{"kind": "evm", "chainId": "1", "addresses": []}]}',
     "anchors[0].chainId must be a positive integer"),
    ('{"name": "x", "anchors": [{"kind": "evm", "chainId": 1, "addresses": [{"address": "0x1",'
     ' "from": "2026-01-01T00:00:00Z"}]}]}', "addresses[0].address must be 0x and 40 hex"),
    ('{"name": "x", "anchors": [{"kind": "evm", "chainId": 1, "addresses": [{"address": "0x'
     + "1" * 40 + '", "from": "yesterday"}]}]}', "addresses[0].from must be an RFC 3339"),
])
def test_a_document_of_the_wrong_shape_is_refused(document, message):
    with pytest.raises(IdentityError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_identity(document.encode())


def test_other_kinds_of_anchor_are_left_to_their_own_steps():
    document = identity_of()
    document["anchors"].append({"name": "tsa", "kind": "rfc3161", "url": "https://tsa.example",
                                "certificates": []})
    assert len(parse_identity(document).anchors) == 1


# --- what --notary may name ------------------------------------------------------------

@pytest.mark.parametrize(("given", "url"), [
    ("https://notary.example.org", "https://notary.example.org" + IDENTITY_PATH),
    ("https://notary.example.org/", "https://notary.example.org" + IDENTITY_PATH),
    ("https://example.org/notary", "https://example.org/notary" + IDENTITY_PATH),
    ("https://notary.example.org" + IDENTITY_PATH, "https://notary.example.org" + IDENTITY_PATH),
    ("https://example.org/saved.json", "https://example.org/saved.json"),
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000" + IDENTITY_PATH),
    ("http://localhost:5000", "http://localhost:5000" + IDENTITY_PATH),
    ("http://[::1]:5000", "http://[::1]:5000" + IDENTITY_PATH),
    ("identity.json", None),
    ("./saved/trialnotary.json", None),
])
def test_notary_is_a_base_url_a_document_url_or_a_file(given, url):
    assert identity_url(given) == url


@pytest.mark.parametrize("given", ["http://notary.example.org", "http://10.0.0.5:5000",
                                   "http://notary.example.org" + IDENTITY_PATH])
def test_plain_http_is_refused_except_to_this_machine(given):
    with pytest.raises(IdentityError, match="must come over https"):
        identity_url(given)


def serving(folder: Path):
    """``folder`` over plain HTTP on 127.0.0.1 (a loopback host: http is allowed)."""
    return serving_http(functools.partial(http.server.SimpleHTTPRequestHandler,
                                          directory=str(folder)))


def test_every_form_of_notary_pins_a_good_receipt_and_refuses_a_forged_one(batch, anvil,
                                                                         tmp_path, capsys):
    """A record anchored by another account, the receipt's sender set to that account: every
    other step passes, and ``notary`` fails, whichever form names the identity."""
    site = tmp_path / "site"
    (site / ".well-known").mkdir(parents=True)
    (site / ".well-known" / "trialnotary.json").write_text(json.dumps(identity_of()))
    forged = make_batch(anvil, tmp_path / "forged", count=2, sender=OTHER)
    good, bad = write(tmp_path, batch.receipts[0]), write(tmp_path, forged.receipts[0], "f.json")
    with serving(site) as base:
        for form in (base, base + IDENTITY_PATH, str(identity_file(tmp_path))):
            assert main(good, rpc_urls=[batch.node.url], notary=form) == EXIT_PASS, form
            assert main(bad, rpc_urls=[anvil.url], notary=form) == EXIT_FAILED, form
            first = capsys.readouterr().out.splitlines()[-3:]
            assert any(line.startswith("✗ notary") and OTHER in line for line in first), first
    report = verify(anvil, forged.receipts[0], notary=pinned_identity())
    assert {step.name for step in report.steps if step.ok is False} == {"notary"}


def test_a_receipts_own_notary_url_never_pins(batch, tmp_path):
    """A version 2 receipt names its notary, but only --notary and --expect-sender pin."""
    receipt = dict(batch.receipts[0])
    receipt["trialnotary"] = {**receipt["trialnotary"], "receiptVersion": 2,
                              "notary": {"name": "Test notary", "url": "https://x.example"}}
    receipt["anchors"] = [{**receipt["anchors"][0], "name": "local"}]
    report = verify(batch.node, receipt)
    assert report.ok and not report.origin_pinned
    assert report.verdict.exit_code == 3


@pytest.mark.parametrize(("form", "message"), [
    ("http://notary.example.org", "must come over https"),
    ("missing.json", "not an http(s) URL, and the file cannot be read"),
    ("garbage.json", "not an identity document (not JSON"),
    ("URL", "answered HTTP 404"),
    ("DEAD", "cannot fetch"),
])
def test_a_notary_identity_that_cannot_be_read_exits_2(batch, tmp_path, form, message):
    (tmp_path / "garbage.json").write_text("{not json")
    empty = tmp_path / "empty"
    empty.mkdir()
    receipt = str(write(tmp_path, batch.receipts[0]))
    with serving(empty) as base:
        named = {"URL": base, "DEAD": "http://127.0.0.1:9"}.get(form, form)
        with contextlib.chdir(tmp_path):
            result = CliRunner().invoke(cli, ["verify", receipt, "--rpc", batch.node.url,
                                              "--notary", named])
    assert result.exit_code == EXIT_UNUSABLE, result.output
    assert message in result.stderr
    assert result.stdout == ""  # nothing was verified
