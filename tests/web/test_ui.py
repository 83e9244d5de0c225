"""The web experience end to end, in Debian's Chromium driven by Playwright, against a real
server, a real anvil and SQLite: a coordinator registers a folder and a large file hashed in
the browser, the batch is anchored, a reviewer verifies a receipt without an account, a
sponsor downloads the trial's bundle and audit report, an admin revokes a token.

Screenshots of each main page go to build/screenshots.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import zipfile

import pytest
import requests
from sqlmodel import Session, select

from tests.conftest import screenshot
from tests.utils import confirm_by_mining, serving, sign_in_page, sqlite_app
from trialnotary import db
from trialnotary.notary.models import Registration
from trialnotary.people import accounts, sites
from trialnotary.proof.verify import verify_receipt

TRIAL, SITE = "NCT01234567", "SITE-01"
PASSWORD = "a long demo password"
PEOPLE = {"admin": "admin@example.org", "sponsor": "sponsor@example.org",
          "coordinator": "coordinator@example.org"}
BIG_FILE_BYTES = 300 * 1000 * 1000


@pytest.fixture(scope="module")
def notary(tmp_path_factory, anvil):
    """One notary on SQLite and the test anvil, with a trial, a site and one person per
    role, served by a real WSGI server; yields (base URL, app)."""
    app = sqlite_app(tmp_path_factory.mktemp("ui"), anvil.url, CONFIRMATIONS="2")
    engine = app.extensions["trialnotary"].engine
    with db.write_session(engine) as session:
        sites.add_trial(session, TRIAL, title="Demo <b>trial</b>")
        sites.add_site(session, TRIAL, SITE, name="Site one")
        for role, email in PEOPLE.items():
            user, _ = accounts.create_user(session, email, role, password=PASSWORD)
            if role == "sponsor":
                accounts.grant(session, user, trial=TRIAL)
            elif role == "coordinator":
                accounts.grant(session, user, site=SITE)
        session.commit()
    with serving(app) as base:
        yield base, app
    engine.dispose()


def desk(browser):
    """A laptop-sized browser context in a time zone that is not UTC, downloads allowed."""
    return browser.new_context(accept_downloads=True, timezone_id="Europe/Berlin",
                               viewport={"width": 1280, "height": 900})


def sign_in(page, base: str, role: str) -> None:
    sign_in_page(page, base, PEOPLE[role], PASSWORD)
    assert page.locator(".who").inner_text().startswith(PEOPLE[role])


def anchor_everything(app, anvil) -> None:
    """What the scheduler does: seal, anchor, wait for two confirmations."""
    services = app.extensions["trialnotary"]
    confirm_by_mining(services.engine, services.chain, anvil,
                      max_batch=services.settings.max_batch, tries=10)


def write_big_file(path, size: int) -> str:
    """A file of ``size`` bytes (a repeated random block) and its SHA-256."""
    block = os.urandom(1 << 20)
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        left = size
        while left:
            chunk = block[:min(left, len(block))]
            out.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def test_a_trial_from_registration_to_review(browser, notary, anvil, tmp_path):
    base, app = notary
    folder = tmp_path / "visit-3"
    (folder / "labs").mkdir(parents=True)
    files = {"adsl.xpt": b"ADSL" * 1000, "adae.xpt": b"ADAE" * 999, "labs/lb.csv": b"a,b\n1,2\n"}
    for name, content in files.items():
        (folder / name).write_bytes(content)
    (folder / ".DS_Store").write_bytes(b"hidden, skipped")
    big = tmp_path / "imaging-export.bin"
    big_sha = write_big_file(big, BIG_FILE_BYTES)

    # --- a coordinator registers a folder and a large file, hashed in the browser ------
    coordinator = desk(browser)
    page = coordinator.new_page()
    page.set_default_timeout(60_000)
    sign_in(page, base, "coordinator")
    page.goto(f"{base}/register")
    screenshot(page, "register-empty")
    page.locator("#folder-input").set_input_files(str(folder))
    rows = page.locator("#file-list tbody tr")
    for row in range(3):
        page.locator(f"#file-list tbody tr:nth-child({row + 1}) td:nth-child(4)",
                     has_text="hashed").wait_for()
    assert rows.count() == 3  # the hidden file is skipped
    page.locator("#file-input").set_input_files(str(big))
    page.locator("#overall-text", has_text=" of ").wait_for()  # progress is shown
    assert page.locator("#hashing").is_visible()
    big_row = page.locator("#file-list tbody tr", has_text="imaging-export.bin")
    big_row.locator("td", has_text="hashed").wait_for(timeout=120_000)
    shown = {row.locator("td").nth(0).inner_text(): row.locator("td").nth(2).inner_text()
             for row in rows.all()}
    assert shown == {
        **{f"visit-3/{name}": hashlib.sha256(content).hexdigest()
           for name, content in files.items()},
        "imaging-export.bin": big_sha}
    screenshot(page, "register-hashed")
    page.get_by_role("button", name="Register").click()
    page.locator("#register-message", has_text="4 file(s) registered").wait_for()
    ids = [row.get_attribute("data-live-id") for row in rows.all()]
    assert all(ids) and len(set(ids)) == 4

    with Session(app.extensions["trialnotary"].engine) as session:
        stored = {s.filename: s for s in session.exec(select(Registration))}
    assert stored["labs/lb.csv"].dataset == "visit-3"  # the folder labels its files
    assert stored["imaging-export.bin"].size_bytes == BIG_FILE_BYTES
    assert {s.user_id for s in stored.values()} != {None}

    anchor_everything(app, anvil)
    page.locator("#file-list tbody .badge.s-confirmed").nth(3).wait_for()  # live, no reload

    page.goto(f"{base}/registrations")
    assert page.locator("table.registrations tbody tr").count() == 4
    screenshot(page, "my-registrations")
    adsl_id = next(i for i, r in zip(ids, shown, strict=True) if r.endswith("adsl.xpt"))
    page.goto(f"{base}/r/{adsl_id}")
    assert page.locator("time.t-proven").count() == 1
    assert "not proven" in page.locator("main").inner_text()
    screenshot(page, "registration")
    with page.expect_download() as download_info:
        page.locator("#download-receipt").click()
    download = download_info.value
    assert re.fullmatch(r"NCT01234567_visit-3_[0-9a-f-]{36}\.receipt\.json",
                        download.suggested_filename)
    receipt_path = tmp_path / download.suggested_filename
    download.save_as(receipt_path)
    receipt = json.loads(receipt_path.read_text())
    assert verify_receipt(receipt, file_path=folder / "adsl.xpt", rpc_urls=[anvil.url]).ok

    # The coordinator makes a site token for the command line (shown once).
    page.goto(f"{base}/tokens")
    page.get_by_label("Name").fill("lab robot")
    page.get_by_role("button", name="Create site token").click()
    token = page.locator("#new-token-value").inner_text().strip()
    assert token.startswith("tn_site_")
    page.reload()
    assert token not in page.content()
    screenshot(page, "tokens")
    coordinator.close()

    # --- an anonymous reviewer verifies the file against its receipt ------------------
    reviewer = desk(browser)
    page = reviewer.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{base}/verify")
    page.locator("#file-input").set_input_files(str(folder / "adsl.xpt"))
    page.locator("#receipt-input").set_input_files(str(receipt_path))
    page.locator("#verify-button").click()
    page.locator("#verdict[data-ok='true']").wait_for()
    assert {page.locator(f"[data-step='{name}']").get_attribute("data-ok")
            for name in ("file-hash", "leaf", "merkle-path", "chain", "anchor-tx", "sender",
                         "block", "confirmations")} == {"true"}
    screenshot(page, "verify-pass")
    changed = tmp_path / "adsl.xpt"
    changed.write_bytes(b"ADSL" * 999 + b"ADSM")
    page.goto(f"{base}/verify")
    page.locator("#file-input").set_input_files(str(changed))
    page.locator("#receipt-input").set_input_files(str(receipt_path))
    page.locator("#verify-button").click()
    page.locator("#verdict[data-ok='false']").wait_for()
    assert page.locator("[data-step='file-hash']").get_attribute("data-ok") == "false"
    assert page.locator("[data-step='merkle-path']").get_attribute("data-ok") == "true"
    screenshot(page, "verify-fail")
    reviewer.close()

    # --- the sponsor downloads the trial's bundle and its audit report ----------------
    sponsor = desk(browser)
    page = sponsor.new_page()
    sign_in(page, base, "sponsor")
    page.goto(f"{base}/trials/{TRIAL}")
    assert "<b>" not in page.locator("h1").inner_html()  # the title is escaped
    screenshot(page, "trial-dashboard")
    with page.expect_download() as download_info:
        page.locator("#bundle-link").click()
    bundle = zipfile.ZipFile(io.BytesIO(download_info.value.path().read_bytes()))
    names = bundle.namelist()
    assert {"index.csv", "HOW-TO-VERIFY.txt", "verify-receipts.html"} <= set(names)
    assert sum(name.startswith("receipts/") for name in names) == 4
    page.locator("#report-link").click()
    assert page.locator("main table tbody tr").count() == 4
    assert PEOPLE["coordinator"] in page.locator("main table").inner_text()
    screenshot(page, "audit-report")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="PDF").first.click()
    assert download_info.value.path().read_bytes().startswith(b"%PDF")
    sponsor.close()

    # --- the admin revokes the coordinator's token; the API refuses it ----------------
    api = f"{base}/api/v1/submissions"
    body = {"trial": TRIAL, "site": SITE, "dataset": "robot", "sha256": "ab" * 32}
    auth = {"Authorization": f"Bearer {token}"}
    assert requests.post(api, json=body, headers=auth, timeout=10).status_code == 201
    admin = desk(browser)
    page = admin.new_page()
    sign_in(page, base, "admin")
    page.goto(f"{base}/admin/")
    assert page.locator("#balance").inner_text().endswith("ETH")
    screenshot(page, "admin-overview")
    page.goto(f"{base}/admin/tokens")
    row = page.locator(f"tr[data-token-prefix='{token[:14]}']")
    row.locator("summary", has_text="Revoke").click()  # asks first: nothing happens yet
    assert page.locator(".flash").count() == 0 and "live" in row.inner_text()
    row.get_by_role("button", name=f"Yes, revoke {token[:14]}…").click()
    page.locator(".flash.success", has_text="revoked").wait_for()
    refused = requests.post(api, json=body, headers=auth, timeout=10)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    page.goto(f"{base}/admin/audit")
    page.locator("#check-trail").click()
    assert page.locator("#audit-check .badge.s-pass").count() == 1
    assert "token.revoke" in page.locator("main table").inner_text()
    screenshot(page, "admin-audit")
    admin.close()


def test_pages_work_on_a_tablet_and_by_keyboard(browser, notary):
    """A tablet-sized window, and signing in with the keyboard alone."""
    base, _ = notary
    context = browser.new_context(viewport={"width": 768, "height": 1024})
    page = context.new_page()
    page.goto(f"{base}/verify")
    page.keyboard.press("Tab")  # the skip link comes first
    assert page.evaluate("document.activeElement.className") == "skip"
    page.goto(f"{base}/login")
    # Chromium moves the focus to an autofocus field at its next rendering update, which may
    # come after the load event: typing before it would type into nothing.
    page.wait_for_function("document.activeElement && document.activeElement.id === 'email'")
    page.keyboard.type(PEOPLE["sponsor"])
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/trials/{TRIAL}")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 768, "the dashboard scrolls sideways on a tablet"
    screenshot(page, "tablet-trial-dashboard")
    context.close()
