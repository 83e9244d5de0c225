"""What a coordinator meets on the register page and in "My registrations", in Debian's
Chromium against a real server on SQLite and the test anvil: each file registered once
per press, flags before registering, removing a file, the warning before leaving, field
errors named and marked, the wait and the chain's outage, one upload's receipts, and rows
registered elsewhere appearing live. Also the verify page's notice of a correction."""

from __future__ import annotations

import hashlib
import io
import json
import re
import uuid
import zipfile

import pytest
import requests
from sqlmodel import Session, select

from tests.utils import (
    PASSWORD,
    add_person,
    anchor_and_confirm,
    quick_password_hashing,
    serving,
    sign_in_page,
    sqlite_app,
)
from trialnotary import db
from trialnotary.notary import anchoring
from trialnotary.notary.models import Registration
from trialnotary.people import sites

TRIAL, SITE = "NCT01234567", "SITE-01"
EMAIL = "coordinator@example.org"


@pytest.fixture(scope="module")
def notary(tmp_path_factory, anvil):
    """A notary on SQLite with a trial, a site, its token and a coordinator, served by
    waitress; yields (base URL, app, site token)."""
    app = sqlite_app(tmp_path_factory.mktemp("register-ui"), anvil.url, CONFIRMATIONS="2",
                     LOGIN_RATE_LIMIT="1000 per minute")
    engine = app.extensions["trialnotary"].engine
    with db.write_session(engine) as session:
        sites.add_trial(session, TRIAL, title="Trial")
        sites.add_site(session, TRIAL, SITE)
        token = sites.create_token(session, SITE)
        session.commit()
    with quick_password_hashing():
        add_person(engine, EMAIL, "coordinator", sites=[SITE], password=PASSWORD)
        with serving(app) as base:
            yield base, app, token
    engine.dispose()


@pytest.fixture
def coordinator(browser, notary):
    """A signed-in coordinator's page; JavaScript errors fail the test."""
    base = notary[0]
    context = browser.new_context(viewport={"width": 1280, "height": 900},
                                  accept_downloads=True, timezone_id="Europe/Berlin")
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    sign_in_page(page, base, EMAIL, PASSWORD)
    yield page
    context.close()
    assert errors == []


def engine_of(notary):
    return notary[1].extensions["trialnotary"].engine


def stored(notary, sha256: str | None = None) -> list[Registration]:
    with Session(engine_of(notary)) as session:
        query = select(Registration).order_by(Registration.seq)
        if sha256:
            query = query.where(Registration.sha256 == sha256)
        return list(session.exec(query))


def files(tmp_path, **contents: bytes) -> dict:
    """Files named after the keywords (``a_csv`` → ``a.csv``), with their contents."""
    made = {}
    for key, content in contents.items():
        path = tmp_path / key.replace("_", ".")
        path.write_bytes(content)
        made[key] = path
    return made


def unique(tag: str) -> bytes:
    """Content no other test registers."""
    return f"{tag} {uuid.uuid4()}".encode()


def open_register(page, base: str) -> None:
    page.goto(f"{base}/register")
    page.locator("#register-form[data-ready='true']").wait_for()


def add_files(page, *paths) -> None:
    page.locator("#file-input").set_input_files([str(p) for p in paths])
    for path in paths:
        row = page.locator("#file-list tbody tr", has=page.locator(f"td:text-is('{path.name}')"))
        row.locator("td").nth(2).filter(has_text=re.compile("[0-9a-f]{64}")).wait_for()
    page.locator("#hashing").wait_for(state="hidden")
    page.locator("#register-button:enabled").wait_for()


def press_register(page) -> None:
    page.locator("#register-button").click()
    page.locator("#register-message.flash").wait_for()


def row_of(page, name: str):
    return page.locator("#file-list tbody tr", has_text=name)


# --- item 11: once per press, flags ------------------------------------------------------

def test_each_file_is_registered_once_per_press(coordinator, notary, tmp_path):
    base = notary[0]
    made = files(tmp_path, first_csv=unique("first"), second_csv=unique("second"))
    open_register(coordinator, base)
    add_files(coordinator, made["first_csv"])
    press_register(coordinator)
    assert "1 file(s) registered" in coordinator.locator("#register-message").inner_text()
    row_of(coordinator, "first.csv").locator(".badge.s-pending").wait_for()
    assert row_of(coordinator, "first.csv").locator("button.remove").count() == 0  # done
    add_files(coordinator, made["second_csv"])
    press_register(coordinator)
    assert "1 file(s) registered" in coordinator.locator("#register-message").inner_text()
    for name in ("first_csv", "second_csv"):
        sha = hashlib.sha256(made[name].read_bytes()).hexdigest()
        assert len(stored(notary, sha)) == 1, f"{name} registered {len(stored(notary, sha))}x"
    assert coordinator.locator("#register-button").is_disabled()  # nothing new to register
    assert coordinator.locator("#upload-list li").count() == 2


def test_files_the_notary_holds_and_empty_files_are_flagged(coordinator, notary, tmp_path):
    base, app, token = notary
    made = files(tmp_path, known_xpt=unique("known"), empty_txt=b"", fresh_csv=unique("fresh"))
    known_sha = hashlib.sha256(made["known_xpt"].read_bytes()).hexdigest()
    earlier = requests.post(f"{base}/api/v1/submissions", timeout=10,
                            headers={"Authorization": f"Bearer {token}"},
                            json={"trial": TRIAL, "site": SITE, "dataset": "Known export",
                                  "sha256": known_sha}).json()
    open_register(coordinator, base)
    add_files(coordinator, made["known_xpt"], made["empty_txt"], made["fresh_csv"])
    known, empty = row_of(coordinator, "known.xpt"), row_of(coordinator, "empty.txt")
    flag = known.locator(".flag").inner_text()
    assert flag.startswith("⚠ Already registered on ") and "“Known export”" in flag
    assert known.locator(f"a[href='/r/{earlier['id']}']").count() == 1
    assert "Empty file (0 bytes)" in empty.locator(".flag").inner_text()
    assert row_of(coordinator, "fresh.csv").locator(".flag").count() == 0

    press_register(coordinator)  # registers only what is not flagged
    message = coordinator.locator("#register-message").inner_text()
    assert "1 file(s) registered" in message and "2 flagged file(s) not registered" in message
    assert len(stored(notary, known_sha)) == 1
    assert not stored(notary, hashlib.sha256(b"").hexdigest())

    known.get_by_label("Register anyway").check()  # a deliberate choice, row by row
    press_register(coordinator)
    assert len(stored(notary, known_sha)) == 2
    assert not stored(notary, hashlib.sha256(b"").hexdigest())
    assert "1 flagged file(s) not registered" in coordinator.locator(
        "#register-message").inner_text()


def test_one_file_can_be_removed_before_registering(coordinator, notary, tmp_path):
    made = files(tmp_path, keep_csv=unique("keep"), drop_csv=unique("drop"))
    open_register(coordinator, notary[0])
    add_files(coordinator, made["keep_csv"], made["drop_csv"])
    coordinator.get_by_role("button", name="Remove drop.csv").click()
    assert coordinator.locator("#file-list tbody tr").count() == 1
    assert "Removed drop.csv" in coordinator.locator("#register-message").inner_text()
    press_register(coordinator)
    assert len(stored(notary, hashlib.sha256(made["keep_csv"].read_bytes()).hexdigest())) == 1
    assert not stored(notary, hashlib.sha256(made["drop_csv"].read_bytes()).hexdigest())


def test_leaving_with_unregistered_files_asks_first(coordinator, notary, tmp_path):
    base = notary[0]
    made = files(tmp_path, unsaved_csv=unique("unsaved"))
    open_register(coordinator, base)
    coordinator.get_by_label("Label").click()  # the page has had a user gesture
    add_files(coordinator, made["unsaved_csv"])
    dialogs = []

    def dismiss(dialog):
        dialogs.append(dialog.type)
        dialog.dismiss()

    coordinator.on("dialog", dismiss)
    coordinator.get_by_role("link", name="My registrations").click()
    coordinator.wait_for_timeout(500)
    assert dialogs == ["beforeunload"]
    assert coordinator.url == f"{base}/register"  # stayed: the file is still listed
    press_register(coordinator)
    coordinator.get_by_role("link", name="My registrations").click()
    coordinator.wait_for_url(f"{base}/registrations")
    assert dialogs == ["beforeunload"]  # nothing left to lose: no question


# --- item 16: field errors, no truncation -----------------------------------------------

def test_a_refused_field_is_named_and_marked_and_nothing_is_cut(coordinator, notary, tmp_path):
    made = files(tmp_path, labelled_csv=unique("labelled"))
    sha = hashlib.sha256(made["labelled_csv"].read_bytes()).hexdigest()
    open_register(coordinator, notary[0])
    add_files(coordinator, made["labelled_csv"])
    label = coordinator.locator("#label")
    label.fill("Visit 3 \u0007 export")
    press_register(coordinator)
    assert label.get_attribute("aria-invalid") == "true"
    assert coordinator.locator("#label-error").inner_text() == \
        "Label: must not hold control characters (U+0007)"
    assert "Nothing was registered: Label: must not hold control characters" in \
        coordinator.locator("#register-message").inner_text()
    assert coordinator.evaluate("document.activeElement.id") == "label"

    long_label = "L" * 230
    label.fill(long_label)
    press_register(coordinator)
    assert label.input_value() == long_label  # never cut short
    assert coordinator.locator("#label-error").inner_text() == \
        "Label: must be at most 200 characters (it has 230)."
    assert not stored(notary, sha)

    label.fill("Visit 3 export")
    press_register(coordinator)
    assert label.get_attribute("aria-invalid") is None
    assert coordinator.locator("#label-error").is_hidden()
    assert stored(notary, sha)[0].dataset == "Visit 3 export"


def test_a_too_long_file_name_marks_its_row_and_nothing_is_sent(coordinator, notary,
                                                                 tmp_path):
    """In a folder, a file's name is its path below the folder: it can pass 255
    characters while each part fits the disk's limit. It is refused, never cut."""
    folder = tmp_path / "tall"
    deep = folder / ("d" * 200)
    deep.mkdir(parents=True)
    (deep / ("f" * 60 + ".csv")).write_bytes(unique("long name"))
    (folder / "short.csv").write_bytes(unique("short name"))
    open_register(coordinator, notary[0])
    before = len(stored(notary))
    coordinator.locator("#folder-input").set_input_files(str(folder))
    coordinator.locator("#file-list tbody tr td:text-is('hashed')").nth(1).wait_for()
    press_register(coordinator)
    row = coordinator.locator("#file-list tbody tr.row-error")
    assert row.count() == 1 and "f" * 60 in row.locator("td").first.inner_text()
    assert row.locator(".field-error").inner_text() == \
        "File name: must be at most 255 characters (it has 265); rename the file."
    assert len(stored(notary)) == before  # not even the short one: nothing half-done


# --- item 16: the wait, the outage, one upload's receipts --------------------------------

def test_the_wait_and_an_outage_are_shown_and_an_uploads_receipts_download(
        coordinator, notary, tmp_path, anvil):
    base, app, _ = notary
    engine = engine_of(notary)
    made = files(tmp_path, one_csv=unique("one"), two_csv=unique("two"))
    anchoring.record_status(engine, "local", reachable=False, alert=None)
    try:
        open_register(coordinator, base)
        add_files(coordinator, made["one_csv"], made["two_csv"])
        press_register(coordinator)
        outage = coordinator.locator("#wait-notice #chain-outage")
        outage.wait_for()
        assert "The chain is unreachable since" in outage.inner_text()
        assert "registrations are kept and will be anchored when it is back" in \
            outage.inner_text()
        assert "Expected wait" in coordinator.locator("#wait-notice #expected-wait").inner_text()
        one = stored(notary, hashlib.sha256(made["one_csv"].read_bytes()).hexdigest())[0]
        page = coordinator.context.new_page()
        page.goto(f"{base}/r/{one.id}")
        assert "The chain is unreachable since" in page.locator("#chain-outage").inner_text()
        page.close()
    finally:
        anchoring.record_status(engine, "local", reachable=True, alert=None)

    upload = coordinator.locator("#upload-list li").last
    assert upload.get_by_role("button", name="Download these receipts").is_disabled()
    anchor_and_confirm(app, anvil)
    upload.locator("button:enabled").wait_for(timeout=30_000)
    assert "2 confirmed" in upload.inner_text()
    with coordinator.expect_download() as download_info:
        upload.get_by_role("button", name="Download these receipts").click()
    bundle = zipfile.ZipFile(io.BytesIO(download_info.value.path().read_bytes()))
    receipts = [json.loads(bundle.read(name)) for name in bundle.namelist()
                if name.startswith("receipts/")]
    assert sorted(r["trialnotary"]["record"]["filename"] for r in receipts) == [
        "one.csv", "two.csv"]
    assert "one upload (2 registrations)" in bundle.read("HOW-TO-VERIFY.txt").decode()
    coordinator.locator("#wait-notice:empty").wait_for(state="attached")  # nothing to wait for


# --- item 16: rows registered elsewhere --------------------------------------------------

def test_my_registrations_shows_rows_registered_elsewhere_without_reload(coordinator, notary):
    base, _, token = notary
    coordinator.goto(f"{base}/registrations")
    coordinator.evaluate("window.notReloaded = true")
    before = coordinator.locator("table.registrations tbody tr[data-live-id]").count()
    made = requests.post(f"{base}/api/v1/submissions/bulk", timeout=10,
                         headers={"Authorization": f"Bearer {token}"},
                         json={"submissions": [{"trial": TRIAL, "site": SITE,
                                                "dataset": f"from the API {n}",
                                                "sha256": hashlib.sha256(unique(f"api {n}"))
                                                .hexdigest()} for n in range(2)]}).json()
    ids = [m["id"] for m in made["submissions"]]
    for registration_id in ids:
        coordinator.locator(f"tr[data-live-id='{registration_id}']").wait_for(timeout=20_000)
    rows = coordinator.locator("table.registrations tbody tr[data-live-id]")
    assert rows.count() == before + 2
    assert [rows.nth(i).get_attribute("data-live-id") for i in range(2)] == ids[::-1]
    assert coordinator.evaluate("window.notReloaded") is True


# --- item 13: the verify page's notice of a correction -----------------------------------

def test_the_verify_page_says_a_receipt_was_superseded_as_the_notarys_word(
        browser, notary, anvil, tmp_path):
    base, app, token = notary
    data = tmp_path / "adsl.xpt"
    data.write_bytes(unique("adsl"))
    auth = {"Authorization": f"Bearer {token}"}
    item = {"trial": TRIAL, "site": SITE, "dataset": "ADSL", "filename": "adsl.xpt",
            "sha256": hashlib.sha256(data.read_bytes()).hexdigest()}
    first = requests.post(f"{base}/api/v1/submissions", json=item, headers=auth,
                          timeout=10).json()
    fix = requests.post(f"{base}/api/v1/submissions", headers=auth, timeout=10, json={
        **item, "dataset": "ADSL v2", "sha256": "ab" * 32, "supersedes": first["id"],
        "reason": "wrong visit"}).json()
    anchor_and_confirm(app, anvil)
    receipt = tmp_path / "first.receipt.json"
    receipt.write_text(requests.get(f"{base}/api/v1/submissions/{first['id']}/receipt",
                                    timeout=10).text)
    context = browser.new_context(timezone_id="Europe/Berlin")
    context.set_default_timeout(30_000)
    page = context.new_page()

    def verify() -> None:
        page.goto(f"{base}/verify")
        page.locator("#verify-form[data-ready='true']").wait_for()
        page.locator("#file-input").set_input_files(str(data))
        page.locator("#receipt-input").set_input_files(str(receipt))
        page.locator("#verify-button").click()
        page.locator("#verdict[data-ok='true']").wait_for()

    verify()
    notice = page.locator("#superseded-notice")
    notice.wait_for()
    assert "the notary's information, not part of the proof" in notice.inner_text()
    assert notice.locator(f"a[href='/r/{fix['id']}']").inner_text() == "ADSL v2"
    assert "wrong visit" not in notice.inner_text()  # reasons are for the trial's people

    # Without an answer from the notary, the verdict is the same and nothing is claimed.
    page.route(re.compile(r"/api/v1/submissions/[0-9a-f-]{36}$"), lambda route: route.abort())
    verify()
    page.wait_for_timeout(500)
    assert notice.is_hidden()
    assert {page.locator(f"[data-step='{name}']").get_attribute("data-ok")
            for name in ("file-hash", "leaf", "merkle-path", "anchor-tx")} == {"true"}
    context.close()
