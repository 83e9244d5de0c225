"""One timeline, two implementations (docs/verification.md, "Was it pre-specified?"): the
trial's receipts zip, as the notary serves it, given to ``trialnotary timeline --json``, to
the browser's timeline in Node (tests/web/timeline-runner.mjs) and to the self-contained
verifier page in Chromium: the same entries in the same order, the same proven times, the
same check answers and margins, the same words. The trial is registered batch by batch and
anchored on a real anvil; a zip the page cannot use is refused with a clear message."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.cli.test_timeline import KINDS as CLI_KINDS
from tests.cli.test_timeline import SUPERSEDES as CLI_SUPERSEDES
from tests.cli.test_timeline import TRIAL, Trial
from tests.utils import PASSWORD, add_person, migrated_sqlite, post_form, signed_in
from tests.web.test_accessibility import axe_violations
from tests.web.test_verifier_parity import FACTS
from trialnotary.notary import identity
from trialnotary.web.documents.bundle import PAGE_NAME

pytestmark = pytest.mark.usefixtures("quick_argon2")

RUNNER = Path(__file__).with_name("timeline-runner.mjs")
FACTS_DEFAULT_NODE = json.loads(FACTS)["defaultNodes"]["1"]
SITES = {"ADSL site 1": "SITE-01", "ADSL site 2": "SITE-02"}
KINDS = {**CLI_KINDS, "SAP v2": "sap", "ADSL site 1": "dataset", "ADSL site 2": "dataset"}
SUPERSEDES = {**CLI_SUPERSEDES, "SAP v2": "SAP"}
IN_ORDER = [["protocol", "randomisation list"], ["amendment 1", "SAP"], ["SAP v2"],
            ["ADSL site 1"], ["ADSL site 2"], ["lock"], ["unblinding"], ["results"]]
SAP_AFTER_THE_LOCK = [["protocol", "randomisation list"], ["ADSL site 1", "ADSL site 2"],
                      ["lock"], ["SAP"], ["unblinding"], ["results"]]


@pytest.fixture
def database_url(tmp_path):
    return migrated_sqlite(tmp_path)


class Bundle:
    """A trial registered batch by batch, its receipts zip as the sponsor downloads it, and
    the notary's identity (to pin the origin, as the page does)."""

    def __init__(self, folder: Path, zip_path: Path, identity_path: Path, rpc: str):
        self.folder, self.zip, self.identity, self.rpc = folder, zip_path, identity_path, rpc


@pytest.fixture
def bundle_of(client, site_token, engine, chain, anvil, settings, tmp_path):
    """``made(batches, after_the_beacon, signed)``: the names of ``after_the_beacon`` carry
    the beacon's block as their ``notBefore``; the sponsor signs those of ``signed`` (approved)
    once registered, each sign-off sealed with the next batch."""
    def made(batches, after_the_beacon=(), signed=()) -> Bundle:
        trial = Trial(client, site_token, engine, chain, anvil, tmp_path)
        trial.add_site("SITE-02")
        add_person(engine, "sponsor@example.org", "sponsor", trials=[TRIAL], name="Dr Sponsor")
        signed_in(client, "sponsor@example.org")
        beacon = client.get("/api/v1/beacon").get_json()
        not_before = {key: beacon[key] for key in ("chainId", "blockNumber", "blockHash")}
        for batch in batches:
            for name in batch:
                trial.register(name, KINDS[name], supersedes=SUPERSEDES.get(name),
                               site=SITES.get(name, "SITE-01"),
                               not_before=not_before if name in after_the_beacon else None)
                if name in signed:
                    answer = post_form(client, f"/r/{trial.ids[name]}/sign",
                                       {"meaning": "approved", "password": PASSWORD,
                                        "email": "sponsor@example.org"})
                    assert answer.status_code in (302, 303), answer.status_code
            trial.seal()
        zipped = client.get(f"/trials/{TRIAL}/receipts.zip")
        assert zipped.status_code == 200
        (tmp_path / "receipts.zip").write_bytes(zipped.data)
        (tmp_path / "identity.json").write_text(identity.document_text(engine, settings))
        return Bundle(tmp_path, tmp_path / "receipts.zip", tmp_path / "identity.json",
                      anvil.url)
    return made


def in_cli(bundle: Bundle, *flags: str, check_exit: int) -> str:
    """The CLI run where the zip is, so that it names its receipts as the page does."""
    ran = subprocess.run([sys.executable, "-m", "trialnotary.cli", "timeline", "receipts.zip",
                          "--rpc", bundle.rpc, "--notary", str(bundle.identity), *flags],
                         capture_output=True, text=True, timeout=120, cwd=bundle.folder,
                         env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert ran.returncode == check_exit, ran.stderr
    return ran.stdout


def in_node(zip_path: Path, rpc: str, identity_path: Path | None = None,
            facts: str = FACTS) -> dict:
    node_bin = shutil.which("node")
    assert node_bin, "node (>= 20) runs the browser's timeline outside a browser"
    given = {"facts": facts, "zipPath": str(zip_path), "label": zip_path.name, "rpcUrl": rpc,
             "identity": identity_path.read_text() if identity_path else None,
             "identityPath": str(identity_path)}
    ran = subprocess.run([node_bin, "--disable-warning=MODULE_TYPELESS_PACKAGE_JSON",
                          str(RUNNER)], input=json.dumps(given), capture_output=True,
                         text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout)


def saved_page(client, folder: Path) -> Path:
    answer = client.get("/verify/page")
    assert answer.status_code == 200
    path = folder / PAGE_NAME
    path.write_bytes(answer.data)
    return path


def in_chromium(page, url: str, zip_path: Path, rpc: str) -> dict:
    """The page at ``url`` given the zip: its downloadable JSON, and what it shows."""
    page.goto(url)
    page.wait_for_selector("#verify-form[data-ready]")
    page.set_input_files("#receipt-input", str(zip_path))
    page.wait_for_selector("#receipt-status:not(:empty)")
    page.fill("#rpc-urls", rpc)
    page.click("#verify-button")
    page.wait_for_selector("#timeline-summary", timeout=60_000)
    with page.expect_download() as downloading:
        page.click("#timeline-json")
    answer = json.loads(Path(downloading.value.path()).read_text(encoding="utf-8"))
    assert downloading.value.suggested_filename == "timeline.json"
    shown = {
        "entries": page.eval_on_selector_all(
            "#timeline-entries tbody tr", "rows => rows.map(r => [r.dataset.id, "
            "r.dataset.provenTime || null])"),
        "checks": page.eval_on_selector_all(
            "#timeline-checks > li", "items => items.map(i => [i.dataset.rule, i.dataset.ok, "
            "i.dataset.marginSeconds ?? null, i.textContent])"),
        "summary": page.inner_text("#timeline-summary"),
        "intervals": page.eval_on_selector_all(
            "#timeline-entries tbody tr", "rows => rows.map(r => r.querySelector('.interval')"
            "?.textContent ?? null)"),
    }
    return {"json": answer, "shown": shown}


def decisions(answer: dict) -> list[tuple]:
    return [(check["rule"], check.get("site"), check["ok"], check["marginSeconds"])
            for check in answer["checks"]]


def assert_the_page_shows(chromium: dict, cli: dict, cli_text: str) -> None:
    assert chromium["json"] == cli
    shown = chromium["shown"]
    assert shown["entries"] == [[entry["id"], entry["provenTime"]] for entry in cli["entries"]]
    assert [check[:3] for check in shown["checks"]] == [
        [check["rule"], json.dumps(check["ok"]),
         None if check["marginSeconds"] is None else str(check["marginSeconds"])]
        for check in cli["checks"]]
    for check, line in zip(shown["checks"], [line for line in cli_text.splitlines()
                                             if line[:2] in ("✓ ", "✗ ", "– ")], strict=True):
        assert check[3].startswith(line)
    assert shown["summary"] == " ".join(cli_text.splitlines()[-1].split())  # as HTML shows it
    intervals = [line.strip() for line in cli_text.splitlines()
                 if line.startswith("    made after block ")]
    assert [interval for interval in shown["intervals"] if interval] == intervals


def test_the_cli_node_and_the_page_give_one_timeline(bundle_of, client, page, tmp_path):
    bundle = bundle_of(IN_ORDER, after_the_beacon=("randomisation list",), signed=("SAP v2",))
    cli = json.loads(in_cli(bundle, "--json", check_exit=0))
    cli_text = in_cli(bundle, check_exit=0)
    assert cli["ok"] is True and [check["ok"] for check in cli["checks"]] == [True] * 6
    [sign_off] = [entry for entry in cli["entries"] if entry["kind"] == "sign-off"]
    [sap_v2] = [entry for entry in cli["entries"] if entry["dataset"] == "SAP v2"]
    assert sap_v2["signOffs"] == [sign_off["id"]] and sign_off["signs"] == sap_v2["id"]
    [listing] = [entry for entry in cli["entries"] if entry.get("madeAfter") is not None
                 and entry["kind"] != "sign-off"]  # a sign-off is made after the beacon too
    assert listing["dataset"] == "randomisation list" and "made after block" in cli_text
    assert [check.get("site") for check in cli["checks"]][-3:-1] == ["SITE-01", "SITE-02"]
    sap = [entry for entry in cli["entries"] if entry["kind"] == "sap"]
    assert [entry["versionChain"]["version"] for entry in sap] == [1, 2]

    node = in_node(bundle.zip, bundle.rpc, bundle.identity)
    assert node["json"] == cli
    assert node["text"] == cli_text.rstrip("\n")

    assert_the_page_shows(in_chromium(page, saved_page(client, tmp_path).as_uri(), bundle.zip,
                                      bundle.rpc), cli, cli_text)
    assert axe_violations(page) == []


def test_a_sap_proven_after_the_lock_fails_in_both(bundle_of, client, page, tmp_path):
    bundle = bundle_of(SAP_AFTER_THE_LOCK)
    cli = json.loads(in_cli(bundle, "--json", check_exit=1))
    cli_text = in_cli(bundle, check_exit=1)
    lock = next(check for check in cli["checks"] if check["rule"] == "sap-before-database-lock")
    assert lock["ok"] is False and lock["marginSeconds"] < 0
    assert cli["exitCode"] == 1

    node = in_node(bundle.zip, bundle.rpc, bundle.identity)
    assert node["json"] == cli and decisions(node["json"]) == decisions(cli)
    assert node["text"] == cli_text.rstrip("\n")
    chromium = in_chromium(page, saved_page(client, tmp_path).as_uri(), bundle.zip, bundle.rpc)
    assert_the_page_shows(chromium, cli, cli_text)
    assert chromium["shown"]["summary"].startswith("FAIL")


def test_the_servers_verify_page_takes_the_zip_too(bundle_of, live_server, page):
    """/verify (the page's modules served, the notary's identity fetched to pin)."""
    bundle = bundle_of([["protocol", "SAP"], ["lock"], ["results"]])
    cli = json.loads(in_cli(bundle, "--json", check_exit=0))
    cli_text = in_cli(bundle, check_exit=0)
    assert_the_page_shows(in_chromium(page, f"{live_server}/verify", bundle.zip, bundle.rpc),
                          cli, cli_text)
    assert "Pinned to this notary" in page.inner_text("#notary-status")


# --- zips the page refuses, or whose entries it cannot use ------------------------------------

def zipped(entries: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_a_zip_over_the_limits_is_refused_and_a_huge_entry_is_not_read(tmp_path):
    """The entry limit lowered to 3 in the facts the Node run reads (a zip of 200,001 entries
    is refused the same way); an entry past a receipt's byte limit is unusable, as in the
    CLI, and read no further than that limit."""
    four = tmp_path / "four.zip"
    four.write_bytes(zipped({f"r{n}.receipt.json": b"{}" for n in range(4)}))
    facts = json.loads(FACTS)
    facts["limits"]["bundleEntries"] = 3
    assert in_node(four, "http://127.0.0.1:9", facts=json.dumps(facts)) == {
        "error": "four.zip: more than 3 entries"}

    limit = facts["limits"]["receiptBytes"]
    huge = tmp_path / "huge.zip"
    huge.write_bytes(zipped({"huge.receipt.json": b" " * (limit + 10), "x.txt": b"not read"}))
    answer = in_node(huge, "http://127.0.0.1:9")["json"]
    [entry] = answer["entries"]
    assert entry["state"] == "unusable" and answer["exitCode"] == 2
    assert entry["why"] == "not a usable receipt: larger than 16 MiB: not a receipt"
    ran = subprocess.run([sys.executable, "-m", "trialnotary.cli", "timeline", "huge.zip",
                          "--rpc", "http://127.0.0.1:9", "--json"], capture_output=True,
                         text=True, timeout=60, cwd=tmp_path)
    assert json.loads(ran.stdout)["entries"] == answer["entries"]


@pytest.mark.parametrize(("name", "data", "message"), [
    ("receipts.zip", b"this is not a zip",
     "Not a usable receipts zip: receipts.zip: not a readable zip (File is not a zip file)"),
    ("cut.zip", None, "Not a usable receipts zip: cut.zip: not a readable zip"),
    ("empty.zip", zipped({"readme.txt": b"no receipt"}),
     "Not a usable receipts zip: empty.zip: holds no .receipt.json entry"),
])
def test_a_zip_the_page_cannot_use_gets_a_clear_message(client, page, tmp_path, name, data,
                                                        message):
    if data is None:  # the central directory cut short
        whole = zipped({f"r{n}.receipt.json": b"{}" for n in range(3)})
        data = whole[:-40] + whole[-22:]
    bad = tmp_path / name
    bad.write_bytes(data)
    page.goto(saved_page(client, tmp_path).as_uri())
    page.wait_for_selector("#verify-form[data-ready]")
    page.set_input_files("#receipt-input", str(bad))
    page.wait_for_selector("#receipt-status:not(:empty)")
    page.click("#verify-button")
    page.wait_for_selector("#message.error")
    assert page.inner_text("#message").startswith(message)
    assert page.is_hidden("#timeline")


def in_both(zip_path: Path, rpc: str) -> tuple[dict, dict]:
    """``trialnotary timeline --json`` on the zip (run where it is) and the browser's in Node."""
    ran = subprocess.run([sys.executable, "-m", "trialnotary.cli", "timeline", zip_path.name,
                          "--rpc", rpc, "--json"], capture_output=True, text=True, timeout=120,
                         cwd=zip_path.parent, env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    cli = json.loads(ran.stdout) if ran.stdout else {"error": ran.stderr}
    return cli, in_node(zip_path, rpc)


def test_a_plain_copy_of_an_anchor_does_not_let_a_record_pass(anvil, tmp_path):
    """A record's anchor sent to another address fails (docs/receipt.md); a plain
    Chainpoint copy of that anchor, checked first in the same zip, passes and must not
    answer for it (each anchor is checked once per run)."""
    from tests.proof.anchored import OTHER, make_batch

    record = make_batch(anvil, tmp_path / "batch", count=1, tx={"to": OTHER}).receipts[0]
    plain = {key: value for key, value in record.items() if key != "trialnotary"}
    both = tmp_path / "both.zip"
    both.write_bytes(zipped({"a.receipt.json": json.dumps(plain).encode(),
                             "b.receipt.json": json.dumps(record).encode()}))
    cli, node = in_both(both, anvil.url)
    assert node["json"] == cli
    states = {entry["receipt"]: entry["state"] for entry in cli["entries"]}
    assert states == {"both.zip:a.receipt.json": "verified-no-file",
                      "both.zip:b.receipt.json": "failed"}
    assert cli["exitCode"] == 1


def unanchored(**fields) -> dict:
    """A well-formed receipt of one record (``fields`` changed) whose anchor no node given
    knows: both verifiers read it, neither proves it."""
    from trialnotary.proof.receipt import build_receipt, record_leaf

    record = {"id": "r1", "trial": "T", "site": "S", "kind": "sap", "dataset": "d",
              "sha256": "00" * 32, "sizeBytes": 1, "filename": "f", "supersedes": None,
              "submittedAt": "2026-01-01T00:00:00.000Z", **fields}
    try:
        leaf = record_leaf(record)
    except (TypeError, ValueError):
        leaf = b"\x01" * 32
    return build_receipt(
        record=record, leaf=leaf, root=leaf, proof=[],
        batch={"id": "b", "leaf_index": 0, "leaf_count": 1, "sealed_at": "2026-01-01T00:00:00Z"},
        anchor={"tx_hash": "11" * 32, "chain_id": 31337, "sender": "0x" + "22" * 20,
                "block_number": 1, "block_hash": "0x" + "33" * 32,
                "block_time": "2026-01-01T00:00:00Z"})


def receipts_zip(path: Path, receipts: dict[str, dict]) -> Path:
    path.write_bytes(zipped({name: json.dumps(receipt, ensure_ascii=False).encode()
                             for name, receipt in receipts.items()}))
    return path


@pytest.mark.parametrize(("fields", "message"), [
    ({"id": ["x"]}, "trialnotary.record.id must be a string"),
    ({"kind": "dataset", "site": 1}, "trialnotary.record.site must be a string"),
    ({"submittedAt": 5}, "trialnotary.record.submittedAt must be a string"),
    ({"sizeBytes": "1"}, "trialnotary.record.sizeBytes must be a non-negative integer or null"),
])
def test_a_record_field_of_the_wrong_type_is_unusable_in_both(tmp_path, fields, message):
    """Not a traceback from the timeline's sorting: the receipt is not usable, in the same
    words, and the others are still judged."""
    bundle = receipts_zip(tmp_path / "types.zip", {
        "a.receipt.json": unanchored(**fields),
        "b.receipt.json": unanchored(id="b", kind="dataset", site="S1"),
        "c.receipt.json": unanchored(id="c", kind="randomisation-list")})
    cli, node = in_both(bundle, "http://127.0.0.1:9")
    assert node["json"] == cli
    [bad] = [entry for entry in cli["entries"] if entry["receipt"].endswith(":a.receipt.json")]
    assert bad["state"] == "unusable" and bad["why"] == f"not a usable receipt: {message}"
    assert cli["exitCode"] == 2


def test_receipts_sharing_an_id_are_flagged_alike(tmp_path):
    """Two receipts of one id (names and ids ordered by code point, not UTF-16 unit): no
    version chain is guessed from their order, the rules over their kind fail naming both,
    in the same words."""
    shared = "\U0001F600"
    bundle = receipts_zip(tmp_path / "shared.zip", {
        "\uff5e.receipt.json": unanchored(id=shared),
        "\U0001F600.receipt.json": unanchored(id=shared, dataset="copy"),
        "v2.receipt.json": unanchored(id="\uff5e", supersedes=shared),
        "lock.receipt.json": unanchored(id="lock", kind="database-lock")})
    cli, node = in_both(bundle, "http://127.0.0.1:9")
    assert node["json"] == cli
    check = next(check for check in cli["checks"] if check["rule"] == "sap-before-database-lock")
    assert check["ok"] is False and check["detail"] == (
        f"cannot be judged: the receipts shared.zip:\uff5e.receipt.json, "
        f"shared.zip:\U0001F600.receipt.json share the id {shared}")
    [v2] = [entry for entry in cli["entries"] if entry["id"] == "\uff5e"]
    assert v2["versionChain"]["predecessorMissing"] is False


def test_a_zipped_dataset_dropped_is_the_data_file_and_a_bundle_says_it_is_not_used(
        client, page, tmp_path):
    """A dropped zip is a receipts zip only when it holds receipts; a zipped dataset is the
    data file. Verifying a receipts zip with a data file says the file is not used."""
    dataset = zipped({"adsl.csv": b"USUBJID,AGE\n1,40\n"})
    bundle = zipped({"lock.receipt.json": json.dumps(unanchored(kind="database-lock")).encode()})
    page.goto(saved_page(client, tmp_path).as_uri())
    page.wait_for_selector("#verify-form[data-ready]")
    transfer = page.evaluate_handle("""([dataset, bundle]) => {
      const transfer = new DataTransfer();
      transfer.items.add(new File([new Uint8Array(dataset)], "adsl.zip"));
      transfer.items.add(new File([new Uint8Array(bundle)], "receipts.zip"));
      return transfer;
    }""", [list(dataset), list(bundle)])
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})
    page.wait_for_selector("#receipt-status:not(:empty)")
    assert page.eval_on_selector("#file-input", "i => i.files[0].name") == "adsl.zip"
    assert page.eval_on_selector("#receipt-input", "i => i.files[0].name") == "receipts.zip"
    assert "a receipts zip" in page.inner_text("#receipt-status")
    page.fill("#rpc-urls", "http://127.0.0.1:9")
    page.click("#verify-button")
    page.wait_for_selector("#timeline-summary", timeout=60_000)
    assert page.inner_text("#message").startswith(
        "adsl.zip is not used: a receipts zip is verified whole")
    assert page.get_attribute("#message", "class") == "flash warning"


def unanchored_on(chain_id: int, **fields) -> dict:
    receipt = unanchored(**fields)
    names = {chain: name for name, chain in json.loads(FACTS)["chains"].items()}
    receipt["anchors"][0].update(chainId=chain_id, chain=names.get(chain_id, "ethereumLocal"))
    return receipt


def test_each_receipt_of_a_zip_is_checked_on_its_own_chain_and_shown_text_is_spelled_out(
        live_server, page, tmp_path, anvil):
    """/verify with its node field as the page filled it (this server's anvil, chain 31337):
    a receipt on chain 1 is checked on chain 1's default node (here refused: this test asks
    no public node), not on the first receipt's. An invisible character in an id or a
    dataset is spelled out wherever the timeline shows it, as elsewhere on the pages."""
    bundle = receipts_zip(tmp_path / "chains.zip", {
        "a.receipt.json": unanchored_on(31337, id="a\u202eb", dataset="d\u202ex"),
        "b.receipt.json": unanchored_on(1, id="on-mainnet", kind="database-lock")})
    asked = []
    page.route(lambda url: not url.startswith("http://127.0.0.1"),
               lambda route: (asked.append(route.request.url), route.abort()))
    page.goto(f"{live_server}/verify")
    page.wait_for_selector("#verify-form[data-ready]")
    assert page.input_value("#rpc-urls") == anvil.url
    page.set_input_files("#receipt-input", str(bundle))
    page.wait_for_selector("#receipt-status:not(:empty)")
    page.click("#verify-button")
    page.wait_for_selector("#timeline-summary", timeout=60_000)
    with page.expect_download() as downloading:
        page.click("#timeline-json")
    answer = json.loads(Path(downloading.value.path()).read_text(encoding="utf-8"))
    states = {entry["id"]: (entry["state"], entry["why"]) for entry in answer["entries"]}
    state, why = states["on-mainnet"]
    assert state != "failed" and "31337" not in why, why
    assert any(FACTS_DEFAULT_NODE in url for url in asked)
    ids = page.eval_on_selector_all("#timeline-entries tbody tr td:last-child code",
                                    "cells => cells.map(c => c.textContent)")
    assert "a<U+202E>b" in ids
    check = page.inner_text("#timeline-checks > li[data-rule='sap-before-database-lock']")
    assert "d<U+202E>x" in check and "\u202e" not in check
