"""``trialnotary verify``: its output, the verdict in words, unusable receipts and options,
and the exit codes."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import free_port
from tests.proof.anchored import MALFORMED, NOTARY, OTHER, identity_file, write
from tests.rpc_filter import RpcFilter
from trialnotary.cli import main as cli
from trialnotary.proof.facts import (
    CHAIN_STEPS,
    EXIT_FAILED,
    EXIT_NOT_PINNED,
    EXIT_PASS,
    EXIT_UNCHECKED,
    EXIT_UNUSABLE,
    OFFLINE_STEPS,
    ORIGIN_STEPS,
)
from trialnotary.proof.verify import exit_code_of, main

STEPS = OFFLINE_STEPS + CHAIN_STEPS  # a receipt without evidence (evidence: test_evidence.py)
PINNED = STEPS + ORIGIN_STEPS  # with --notary

# --- output ---------------------------------------------------------------------------

def test_the_command_passes_a_good_receipt(batch, tmp_path):
    """The real process, once: exit 0, the verdict in words, then one ✓ line per step."""
    receipt = write(tmp_path, batch.receipts[2])
    command = Path(sys.executable).with_name("trialnotary")
    done = subprocess.run([command, "verify", str(receipt), "--file", str(batch.files[2]),
                           "--rpc", batch.node.url, "--notary", str(identity_file(tmp_path))],
                          capture_output=True, text=True, check=False, timeout=60,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    block_time = batch.receipts[2]["anchors"][0]["blockTime"]
    assert lines[0] == ('This file is the one registered as "DS2" (ds2.xpt) in trial '
                        'NCT01234567, site SITE-01, and it existed no later than '
                        f'{block_time.replace("T", " ").removesuffix("Z")} UTC.')
    for name in PINNED:
        assert any(line.startswith(f"✓ {name} ") for line in lines), (name, done.stdout)
    assert lines[-1].startswith("PASS")
    assert batch.receipts[2]["anchors"][0]["sourceId"] in lines[-1]
    assert batch.receipts[2]["anchors"][0]["blockTime"] in lines[-1]


def test_json_output(batch, tmp_path):
    receipt = batch.receipts[1]
    result = CliRunner().invoke(cli, ["verify", str(write(tmp_path, receipt)), "--file",
                                      str(batch.files[1]), "--rpc", batch.node.url, "--json",
                                      "--notary", str(identity_file(tmp_path))])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    anchor = receipt["anchors"][0]
    assert answer["ok"] is True and answer["exitCode"] == 0 and answer["pinned"] is True
    assert answer["verdict"]["state"] == "verified" and answer["verdict"]["note"] is None
    assert answer["verdict"]["text"].startswith('This file is the one registered as "DS1"')
    assert [s["name"] for s in answer["steps"]] == list(PINNED)
    assert all(s["ok"] is True and s["detail"] for s in answer["steps"])
    assert answer["transaction"] == "0x" + anchor["sourceId"]
    assert answer["provenTime"] == anchor["blockTime"]
    assert answer["chainId"] == 31337 and answer["blockNumber"] == anchor["blockNumber"]
    assert answer["notary"]["name"] == "Test notary"
    required, actual = answer["confirmations"]["required"], answer["confirmations"]["actual"]
    assert required == 1 and actual >= 3  # the local chain's default; make_batch mined 2
    assert answer["nodes"] == [{"url": batch.node.url, "answered": True,
                                "detail": answer["nodes"][0]["detail"], "chainId": 31337,
                                "head": answer["nodes"][0]["head"]}]


def test_json_output_of_a_failure(batch, tmp_path):
    receipt = copy.deepcopy(batch.receipts[0])
    receipt["trialnotary"]["record"]["site"] = "SITE-02"
    result = CliRunner().invoke(cli, ["verify", str(write(tmp_path, receipt)),
                                      "--rpc", batch.node.url, "--json"])
    assert result.exit_code == 1
    answer = json.loads(result.output)
    assert answer["ok"] is False and answer["provenTime"] is None
    assert [s["name"] for s in answer["steps"] if s["ok"] is False] == ["leaf"]
    assert answer["verdict"]["state"] == "failed" and answer["exitCode"] == 1


def test_text_output_names_the_failing_step(batch, tmp_path):
    receipt = copy.deepcopy(batch.receipts[0])
    receipt["merkleRoot"] = "00" * 32
    result = CliRunner().invoke(cli, ["verify", str(write(tmp_path, receipt)),
                                      "--rpc", batch.node.url])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("This receipt does NOT verify: merkle-path failed — folding")
    line = next(x for x in lines if x[2:].startswith("merkle-path "))
    assert line.startswith("✗") and "not the merkleRoot 00000000" in line
    assert lines[-1].startswith("FAIL")


# --- unusable receipts and options ---------------------------------------------------

@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_receipts_exit_2_with_a_clear_message(batch, tmp_path, capsys, name):
    change, message = MALFORMED[name]
    receipt = copy.deepcopy(batch.receipts[0])
    change(receipt)
    code = main(write(tmp_path, receipt), rpc_urls=[batch.node.url])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "a receipt is a JSON object"),
    ('{"targetHash": NaN}', "NaN is not valid JSON"),
    ('{"type": "a", "type": "b"}', "duplicate key 'type'"),
])
def test_unreadable_receipt_files_exit_2(tmp_path, capsys, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    assert main(path, rpc_urls=[]) == 2
    assert message in capsys.readouterr().err


def test_json_mode_reports_an_unusable_receipt_as_json(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_bytes(b"\xff\xfe")
    assert main(path, rpc_urls=[], as_json=True) == 2
    answer = json.loads(capsys.readouterr().out)
    assert answer["ok"] is False and "not UTF-8" in answer["error"]


@pytest.mark.parametrize("options, message", [
    ({"confirmations": "0"}, "confirmations must be a positive number"),
    ({"confirmations": "soon"}, "confirmations must be a positive number"),
    ({"expect_sender": "notary"}, "an address is 0x and 40 hex digits"),
])
def test_bad_options_exit_2(batch, tmp_path, capsys, options, message):
    assert main(write(tmp_path, batch.receipts[0]), rpc_urls=[batch.node.url], **options) == 2
    assert message in capsys.readouterr().err


def test_the_verifier_imports_nothing_of_the_server():
    """It must start fast and stand alone: no web3, Flask, database or configuration."""
    probe = ("import sys, trialnotary.proof.verify; print(' '.join(sorted(m for m in sys.modules "
             "if m.split('.')[0] in {'web3', 'eth_account', 'flask', 'sqlalchemy', 'sqlmodel', "
             "'click'} or m.startswith('trialnotary.') and m.split('.')[1] != 'proof')))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.strip() == ""


# --- the verdict in words and the exit codes -----------------------------------------

def first_lines(capsys, count: int = 1) -> list[str]:
    return capsys.readouterr().out.splitlines()[:count]


def test_the_first_line_answers_the_reviewers_question(batch, tmp_path, capsys):
    receipt = write(tmp_path, batch.receipts[0])
    when = batch.receipts[0]["anchors"][0]["blockTime"].replace("T", " ")[:-1] + " UTC"
    pinned = {"rpc_urls": [batch.node.url], "expect_sender": NOTARY}

    assert main(receipt, file_path=batch.files[0], **pinned) == EXIT_PASS
    assert first_lines(capsys) == [f'This file is the one registered as "DS0" (ds0.xpt) in '
                                   f'trial NCT01234567, site SITE-01, and it existed no later '
                                   f'than {when}.']

    assert main(receipt, **pinned) == EXIT_PASS
    assert first_lines(capsys) == [f'The receipt is genuine, but no file was checked: the '
                                   f'file registered as "DS0" (ds0.xpt) in trial NCT01234567, '
                                   f'site SITE-01 existed no later than {when}.']

    assert main(receipt, file_path=batch.files[1], **pinned) == EXIT_FAILED
    assert first_lines(capsys) == ["This is NOT the file this receipt was issued for: its "
                                   "SHA-256 is not the one in the receipt."]

    edited = copy.deepcopy(batch.receipts[0])
    edited["trialnotary"]["record"]["site"] = "SITE-02"
    assert main(write(tmp_path, edited, "edited.json"), **pinned) == EXIT_FAILED
    [line] = first_lines(capsys)
    assert line.startswith("This receipt does NOT verify: leaf failed — the canonical record "
                           "hashes to ")


def test_an_unpinned_sender_passes_with_exit_3_and_says_so(batch, tmp_path, capsys):
    receipt = write(tmp_path, batch.receipts[0])
    assert main(receipt, file_path=batch.files[0], rpc_urls=[batch.node.url]) == \
        EXIT_NOT_PINNED
    verdict, note = first_lines(capsys, 2)
    assert verdict == (f"The anchor is genuine, but its origin is not pinned: it was sent by "
                       f"{NOTARY}, and nothing checked that this address is the notary's.")
    assert note.startswith("This file is the one registered as")
    assert note.endswith("Pin the notary's identity (--notary URL or file) or its address "
                         "(--expect-sender) to check that the notary sent the anchor.")
    assert main(receipt, rpc_urls=[batch.node.url], expect_sender=OTHER) == EXIT_FAILED
    assert first_lines(capsys)[0].startswith("This receipt does NOT verify: sender failed")


def test_with_no_node_to_ask_nothing_is_checked_on_chain(batch, tmp_path, capsys):
    receipt = copy.deepcopy(batch.receipts[0])
    receipt["anchors"][0]["chainId"] = 424242  # no default node for this chain
    assert main(write(tmp_path, receipt), rpc_urls=[]) == EXIT_UNCHECKED
    assert first_lines(capsys) == ["Could not check the anchor: no chain node was given and "
                                   "there is no default node for chain 424242."]


def test_a_failure_that_needs_no_node_wins_over_no_node_answering(batch, tmp_path, capsys):
    dead = f"http://127.0.0.1:{free_port()}"
    assert main(write(tmp_path, batch.receipts[0]), file_path=batch.files[1],
                rpc_urls=[dead]) == EXIT_FAILED
    assert first_lines(capsys)[0].startswith("This is NOT the file")


def test_the_worst_code_wins_in_the_contracts_order():
    order = [EXIT_UNUSABLE, EXIT_FAILED, EXIT_UNCHECKED, EXIT_NOT_PINNED, EXIT_PASS]
    assert order == [2, 1, 4, 3, 0]
    for i, worse in enumerate(order):
        for better in order[i:]:
            assert exit_code_of([better, worse]) == worse
            assert exit_code_of([worse, better, EXIT_PASS]) == worse
    assert exit_code_of([]) == EXIT_PASS


def test_several_receipts_each_get_their_verdict_and_the_worst_code(batch, tmp_path, capsys):
    good = [write(tmp_path, receipt, f"good{i}.json") for i, receipt in
            enumerate(batch.receipts[:3])]
    edited = copy.deepcopy(batch.receipts[3])
    edited["trialnotary"]["record"]["kind"] = "protocol"
    bad = write(tmp_path, edited, "bad.json")
    unusable = tmp_path / "unusable.json"
    unusable.write_text("{")
    node = {"rpc_urls": [batch.node.url]}

    assert main(good, **node, expect_sender=NOTARY) == EXIT_PASS
    out = capsys.readouterr().out
    assert out.count("The receipt is genuine, but no file was checked") == 3
    assert out.splitlines()[-1] == "3 receipts: 3 passed"
    assert main(good, **node) == EXIT_NOT_PINNED
    capsys.readouterr()
    assert main([*good, bad], **node, expect_sender=NOTARY) == EXIT_FAILED
    out = capsys.readouterr().out
    assert f"== {bad}\nThis receipt does NOT verify: leaf failed" in out
    assert out.splitlines()[-1] == "4 receipts: 3 passed, 1 failed"
    assert main([unusable, *good, bad], **node) == EXIT_UNUSABLE
    captured = capsys.readouterr()
    assert f"== {unusable}\nNot a usable receipt: not valid JSON" in captured.out
    assert f"error: {unusable}: not a usable receipt" in captured.err
    assert captured.out.splitlines()[-1] == \
        "5 receipts: 3 passed but not pinned, 1 failed, 1 unusable"
    dead = f"http://127.0.0.1:{free_port()}"
    assert main(good, rpc_urls=[dead], expect_sender=NOTARY) == EXIT_UNCHECKED
    assert main([*good, bad], rpc_urls=[dead]) == EXIT_FAILED


def test_receipts_of_one_batch_have_their_anchor_checked_once(batch, tmp_path, capsys):
    """Each node answer is asked for once in a run, however many receipts share the anchor
    (receipts with evidence: test_evidence.py)."""
    counting = RpcFilter(batch.node.url, allowed=None)
    paths = [write(tmp_path, receipt, f"r{i}.json")
             for i, receipt in enumerate(batch.receipts * 3)]
    try:
        assert main(paths, rpc_urls=[counting.url], expect_sender=NOTARY) == EXIT_PASS
    finally:
        counting.close()
    assert capsys.readouterr().out.splitlines()[-1] == f"{len(paths)} receipts: " \
                                                       f"{len(paths)} passed"
    assert counting.asked and max(counting.asked.values()) == 1, counting.asked


def test_several_receipts_in_json_give_a_list(batch, tmp_path):
    paths = [str(write(tmp_path, receipt, f"r{i}.json"))
             for i, receipt in enumerate(batch.receipts[:2])]
    unusable = tmp_path / "unusable.json"
    unusable.write_text("[]")
    result = CliRunner().invoke(cli, ["verify", *paths, str(unusable), "--rpc",
                                      batch.node.url, "--json"])
    assert result.exit_code == EXIT_UNUSABLE
    answers = json.loads(result.stdout)
    assert [answer["receipt"] for answer in answers] == [*paths, str(unusable)]
    assert [answer["exitCode"] for answer in answers] == [3, 3, 2]
    assert [s["name"] for s in answers[0]["steps"]] == list(STEPS)
    assert answers[1]["targetHash"] == batch.receipts[1]["targetHash"]
    assert answers[2] == {"receipt": str(unusable), "ok": False, "exitCode": 2,
                          "error": "a receipt is a JSON object"}


def test_file_goes_with_one_receipt_only(batch, tmp_path):
    paths = [str(write(tmp_path, receipt, f"r{i}.json"))
             for i, receipt in enumerate(batch.receipts[:2])]
    result = CliRunner().invoke(cli, ["verify", *paths, "--file", str(batch.files[0]),
                                      "--rpc", batch.node.url])
    assert result.exit_code == EXIT_UNUSABLE
    assert "--file goes with one receipt, not 2" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("url", ["not-a-url", "ftp://127.0.0.1:8545", "http://", "127.0.0.1:8545",
                                 "http://exa mple.org"])
def test_a_bad_rpc_url_is_a_usage_error_naming_the_option(batch, tmp_path, url):
    result = CliRunner().invoke(cli, ["verify", str(write(tmp_path, batch.receipts[0])),
                                      "--rpc", batch.node.url, "--rpc", url])
    assert result.exit_code == EXIT_UNUSABLE
    assert result.stderr == f"error: --rpc: {url!r} is not an http(s) URL\n"
    assert result.stdout == ""  # nothing was verified
