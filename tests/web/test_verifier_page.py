"""The self-contained verifier page (docs/verification.md): one HTML file, offered on
/verify and put in every receipts zip, that verifies a file against a receipt opened from
disk, loading nothing and asking nothing but the chain node."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests
from sqlmodel import Session

from tests.utils import add_enrolled_site, anchor_and_confirm, serving, sqlite_app
from tests.web.test_accessibility import PHONE, axe_violations
from trialnotary.people import sites
from trialnotary.proof.facts import IDENTITY_PATH
from trialnotary.web.documents.bundle import PAGE_NAME, write_bundle
from trialnotary.web.documents.verifier_page import _embeddable

TRIAL, SITE = "NCT07654321", "SITE-09"
NOBODY = "0x00000000000000000000000000000000000000aa"


class Served:
    """A notary behind waitress with one confirmed registration: its file and receipt."""

    def __init__(self, url: str, file: Path, receipt: dict):
        self.url, self.file, self.receipt = url, file, receipt


@pytest.fixture(scope="module")
def served(anvil, tmp_path_factory):
    folder = tmp_path_factory.mktemp("notary")
    app = sqlite_app(folder, anvil.url, NOTARY_NAME="Page Test Notary")
    engine = app.extensions["trialnotary"].engine
    add_enrolled_site(engine, TRIAL, SITE, title="Page trial")
    with Session(engine) as session:
        token = sites.create_token(session, SITE)
        session.commit()
    data = folder / "adsl.xpt"
    data.write_bytes(b"a dataset of the self-contained page test\n" * 40)
    with serving(app) as base:
        answer = requests.post(f"{base}/api/v1/submissions", timeout=10,
                               headers={"Authorization": f"Bearer {token}"},
                               json={"trial": TRIAL, "site": SITE, "kind": "dataset",
                                     "dataset": "ADSL", "filename": data.name,
                                     "sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
                                     "sizeBytes": data.stat().st_size})
        assert answer.status_code == 201, answer.text
        anchor_and_confirm(app, anvil)
        receipt = requests.get(f"{base}/api/v1/submissions/{answer.json()['id']}/receipt",
                               timeout=10).json()
        yield Served(base, data, receipt)
    engine.dispose()


class Loads(HTMLParser):
    """Every attribute by which an HTML page would load something."""

    def __init__(self):
        super().__init__()
        self.found: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in {"src", "srcset", "data", "poster"} or (tag == "link" and name == "href"):
                self.found.append((tag, name, value))


def saved_page(served, folder: Path) -> tuple[Path, str]:
    answer = requests.get(f"{served.url}/verify/page", timeout=20)
    assert answer.status_code == 200
    assert answer.headers["Content-Disposition"] == f"attachment; filename={PAGE_NAME}"
    assert answer.headers["Content-Type"].startswith("text/html")
    path = folder / PAGE_NAME
    path.write_text(answer.text, encoding="utf-8")
    return path, answer.text


def test_the_page_holds_every_script_and_style_and_loads_nothing(served, tmp_path):
    _, html = saved_page(served, tmp_path)
    loads = Loads()
    loads.feed(html)
    assert loads.found == []
    assert "@import" not in html and "url(" not in re.sub(r"<script.*?</script>", "", html,
                                                           flags=re.S)
    identity = requests.get(served.url + IDENTITY_PATH, timeout=10).json()
    embedded = re.search(r'<script type="application/json" id="notary-identity">(.*?)</script>',
                         html, re.S).group(1)
    assert json.loads(embedded) == identity
    assert "Page Test Notary" in html
    assert re.search(r'<script type="module">.{10000,}</script>', html, re.S)  # the bundle


def test_a_closing_tag_in_an_embedded_script_cannot_end_it():
    assert _embeddable('x = "</script><b>"; y = "</STYLE>";') == \
        'x = "<\\/script><b>"; y = "<\\/STYLE>";'


def test_the_saved_page_verifies_from_disk_asking_only_the_node(served, page, anvil,
                                                               tmp_path):
    path, _ = saved_page(served, tmp_path)
    receipt = tmp_path / "adsl.receipt.json"
    receipt.write_text(json.dumps(served.receipt))
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto(path.as_uri())
    page.wait_for_selector("#verify-form[data-ready]")

    assert verify(page, receipt, served.file, anvil.url) == "verified"
    steps = shown_steps(page)
    assert steps["notary"] is True and all(ok is not False for ok in steps.values())
    assert "Pinned to this notary, “Page Test Notary”" in page.inner_text("#notary-status")
    other = tmp_path / "other.xpt"
    other.write_bytes(served.file.read_bytes() + b"!")
    assert verify(page, receipt, other, anvil.url) == "wrong-file"

    elsewhere = {url for url in asked
                 if not url.startswith(("file:", "blob:", "data:", anvil.url))}
    assert elsewhere == set()
    assert any(url.startswith(anvil.url) for url in asked)


def test_the_saved_page_pins_the_identity_it_holds(served, page, anvil, tmp_path):
    path, html = saved_page(served, tmp_path)
    sender = served.receipt["anchors"][0]["sender"]
    path.write_text(re.sub(sender, NOBODY, html, flags=re.IGNORECASE), encoding="utf-8")
    receipt = tmp_path / "adsl.receipt.json"
    receipt.write_text(json.dumps(served.receipt))
    page.goto(path.as_uri())
    page.wait_for_selector("#verify-form[data-ready]")
    assert verify(page, receipt, served.file, anvil.url) == "failed"
    assert shown_steps(page)["notary"] is False


@pytest.mark.parametrize("width", [1280, PHONE])
def test_axe_finds_nothing_on_the_saved_page_and_it_fits_a_phone(served, browser, anvil,
                                                                  tmp_path, width):
    path, _ = saved_page(served, tmp_path)
    receipt = tmp_path / "adsl.receipt.json"
    receipt.write_text(json.dumps(served.receipt))
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        page.goto(path.as_uri())
        page.wait_for_selector("#verify-form[data-ready]")
        verify(page, receipt, served.file, anvil.url)
        assert axe_violations(page) == []
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    finally:
        context.close()


def test_the_saved_page_shows_each_anchor_of_a_receipt_of_several(served, page, anvil,
                                                                  tmp_path):
    """Two anchors (one transaction under two names) and a time-stamp, which the browser
    does not check (docs/verification.md): each shown under its heading, with its steps."""
    path, _ = saved_page(served, tmp_path)
    several = json.loads(json.dumps(served.receipt))
    first = several["anchors"][0]
    several["anchors"] = [first, {**first, "name": "again"},
                          {"type": "RFC3161", "name": "tsa", "token": "MAA=",
                           "genTime": "2026-11-23T19:00:13Z"}]
    receipt = tmp_path / "several.receipt.json"
    receipt.write_text(json.dumps(several))
    page.goto(path.as_uri())
    page.wait_for_selector("#verify-form[data-ready]")
    assert verify(page, receipt, served.file, anvil.url) == "verified"
    anchors = page.eval_on_selector_all(
        "#anchors > li", "items => items.map(i => [i.dataset.anchor, i.dataset.state])")
    assert anchors == [[first["name"], "verified"], ["again", "verified"], ["tsa", "unchecked"]]
    tsa = page.inner_text('#anchors > li[data-anchor="tsa"]')
    assert "trialnotary verify --tsa-ca FILE" in tsa
    assert page.is_hidden('#steps > li[data-step="chain"]')
    assert f"(anchor {first['name']})" in page.inner_text("#verdict-text")
    assert axe_violations(page) == []


def test_without_a_receipt_the_page_says_it_has_no_server_to_ask(served, page, tmp_path):
    path, _ = saved_page(served, tmp_path)
    page.goto(path.as_uri())
    page.wait_for_selector("#verify-form[data-ready]")
    page.set_input_files("#file-input", str(served.file))
    page.click("#verify-button")
    page.wait_for_selector("#message:not(:empty)")
    page.wait_for_function("document.querySelector('#message').textContent.includes('server')")
    assert "no server to look the file up on" in page.inner_text("#message")


def test_every_receipts_zip_holds_the_page_and_a_how_to_naming_the_notary(served):
    notary = {"name": "Page Test Notary", "url": "https://notary.example.org"}
    out = io.BytesIO()
    write_bundle(out, trial=TRIAL, generated_at="2026-11-30T18:00:00Z",
                 receipts=[("adsl.receipt.json", served.receipt)], rows=[],
                 notary=notary, verifier_page="<!doctype html><title>page</title>")
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as bundle:
        assert bundle.read(PAGE_NAME) == b"<!doctype html><title>page</title>"
        how = bundle.read("HOW-TO-VERIFY.txt").decode()
    for expected in ("issued by Page Test Notary, https://notary.example.org",
                     f"https://notary.example.org{IDENTITY_PATH}",
                     "--notary https://notary.example.org", f"open {PAGE_NAME} from this zip",
                     f"--expect-sender {served.receipt['anchors'][0]['sender']}"):
        assert expected in how, expected


def verify(page, receipt: Path, file: Path, rpc: str) -> str:
    """Give the page the receipt, the file and the node; the verdict's state."""
    page.set_input_files("#receipt-input", str(receipt))
    page.wait_for_selector("#receipt-status:not(:empty)")
    page.set_input_files("#file-input", str(file))
    page.fill("#rpc-urls", rpc)
    page.eval_on_selector("#verdict", "v => v.removeAttribute('data-ok')")
    page.click("#verify-button")
    page.wait_for_selector("#verdict[data-ok]")
    return page.get_attribute("#verdict", "data-state")


def shown_steps(page) -> dict[str, bool | None]:
    rows = page.eval_on_selector_all(
        "[data-step]",
        "rows => rows.filter(r => !r.hidden).map(r => [r.dataset.step, r.dataset.ok])")
    return {name: {"true": True, "false": False}.get(ok) for name, ok in rows}
