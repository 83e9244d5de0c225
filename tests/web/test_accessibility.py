"""Accessibility in Debian's Chromium: axe-core (from npm) finds no violation on any page,
for every role that reaches it, with real data (registrations confirmed on anvil, a
correction, tokens, sign-ins); at 390 px nothing overflows; the file pickers show their
focus ring; Register and Verify move the focus to their result. The audit report fits its
page on screen and on paper.
"""

from __future__ import annotations

import hashlib
import json

import pytest
import requests

from tests.conftest import ROOT
from tests.utils import (
    anchor_and_confirm,
    quick_password_hashing,
    serving,
    sign_in_page,
    sqlite_app,
)
from trialnotary import db
from trialnotary.notary import publication
from trialnotary.people import accounts, sites, user_tokens

AXE = ROOT / "node_modules/axe-core/axe.min.js"
TRIAL, SITE = "jRCT2031210001", "SITE-01"
PASSWORD = "a long accessible password"
PEOPLE = {"admin": "admin@example.org", "sponsor": "sponsor@example.org",
          "coordinator": "coordinator@example.org"}
ROLES = ("anonymous", *PEOPLE)
PHONE = 390

#: GET routes that answer with something other than an HTML page: files, JSON, and the
#: fragments the register and registrations pages insert into themselves.
NOT_PAGES = {
    "web.registration_pdf", "web.registration_statuses", "web.trial_bundle",
    "web.trial_report_file", "admin.audit_export", "web.site_receipts",
    "web.newer_registrations", "web.waiting", "web.identity_document",
    "web.trial_timeline_file", "web.public_receipts",
    "web.verifier_page",  # a download: axe runs on it opened from disk (test_verifier_page)
}


@pytest.fixture(scope="module")
def notary(tmp_path_factory, anvil):
    """A notary on SQLite with a trial (Japanese title and labels), a site, one person per
    role, site and user tokens, confirmed registrations, a correction with its reason, a
    pending registration, failed sign-ins and a locked address; served by waitress."""
    app = sqlite_app(tmp_path_factory.mktemp("a11y"), anvil.url, CONFIRMATIONS="2",
                     LOGIN_RATE_LIMIT="1000 per minute")
    engine = app.extensions["trialnotary"].engine
    ids = {}
    with quick_password_hashing(), db.write_session(engine) as session:
        sites.add_trial(session, TRIAL, title="臨床試験 第2相 — a long title of a trial")
        sites.add_site(session, TRIAL, SITE, name="Site one")
        for role, email in PEOPLE.items():
            user, _ = accounts.create_user(session, email, role, password=PASSWORD)
            ids[role] = user.id
            if role == "sponsor":
                accounts.grant(session, user, trial=TRIAL)
                user_tokens.create_user_token(session, user, name="nightly export",
                                           actor="test")
            elif role == "coordinator":
                accounts.grant(session, user, site=SITE)
        token = sites.create_token(session, SITE, name="lab robot")
        session.commit()
    client = app.test_client()

    def register(label: str, **extra) -> dict:
        body = {"trial": TRIAL, "site": SITE, "dataset": label, "filename": f"{label}.xpt",
                "sha256": hashlib.sha256(label.encode()).hexdigest(),
                "sizeBytes": len(label.encode()),
                **extra}
        answer = client.post("/api/v1/submissions", json=body,
                             headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 201, answer.get_data(as_text=True)
        return answer.get_json()["record"]

    first = register("臨床データ ADSL visit 1 with a rather long label to wrap")
    fixed = register("ADSL", supersedes=first["id"], reason="the wrong visit was exported")
    anchor_and_confirm(app, anvil)
    pending = register("ADAE")
    with db.write_session(engine) as session:
        publication.publish(session, TRIAL, publication.Choice(("dataset",), False, True),
                            actor="test", user_id=None)
        session.commit()
    for _ in range(6):  # a locked address and failures on the sign-ins page
        client.post("/login", data={"email": "locked@example.org", "password": "wrong!"})
    with serving(app) as base:
        batch = requests.get(f"{base}/api/v1/submissions/{first['id']}", timeout=10).json()
        yield {"base": base, "app": app, "first": first, "fixed": fixed, "pending": pending,
               "ids": ids, "batch": batch["batch"]["id"]}
    engine.dispose()


def pages(w: dict) -> dict[str, list[str]]:
    """Every HTML page of the app, by endpoint, in the states worth checking."""
    first, fixed, pending = w["first"], w["fixed"], w["pending"]
    return {
        "web.index": ["/"],
        "web.verify": ["/verify", f"/verify?id={first['id']}"],
        "web.lookup": ["/lookup", f"/lookup?sha256={first['sha256']}", "/lookup?sha256=zz"],
        "web.registration": [f"/r/{first['id']}", f"/r/{fixed['id']}", f"/r/{pending['id']}"],
        "web.registration_print": [f"/r/{fixed['id']}/print", f"/r/{pending['id']}/print"],
        "auth.login": ["/login"],
        "auth.change_password": ["/account/password"],
        "web.tokens": ["/tokens"],
        "web.register": ["/register", f"/register?supersedes={fixed['id']}"],
        "web.my_registrations": ["/registrations", "/registrations?label=nothing"],
        "web.trials": ["/trials"],
        "web.trial_dashboard": [f"/trials/{TRIAL}"],
        "web.trial_report": [f"/trials/{TRIAL}/report"],
        "web.trial_timeline": [f"/trials/{TRIAL}/timeline", f"/trials/{TRIAL}/timeline?kind=sap"],
        "web.public_timeline": [f"/t/{TRIAL}"],
        "admin.overview": ["/admin/"],
        "admin.trials": ["/admin/trials"],
        "admin.sites_page": ["/admin/sites"],
        "admin.users": ["/admin/users"],
        "admin.user": [f"/admin/users/{w['ids'][role]}" for role in PEOPLE],
        "admin.logins": ["/admin/logins"],
        "admin.tokens": ["/admin/tokens"],
        "admin.batches_page": ["/admin/batches"],
        "admin.batch": [f"/admin/batches/{w['batch']}"],
        "admin.audit_trail": ["/admin/audit", "/admin/audit?check=1",
                              "/admin/audit?action=user.&before=99"],
        "error": ["/no-such-page"],
    }


def browse(browser, role: str, base: str, *, width: int = 1280):
    """A browser context of ``role`` (signed in through the page); CSP is bypassed only so
    that axe's script can be injected."""
    context = browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True,
                                  locale="en-GB", timezone_id="Asia/Tokyo")
    context.set_default_timeout(20_000)
    page = context.new_page()
    if role != "anonymous":
        sign_in_page(page, base, PEOPLE[role], PASSWORD)
    return context, page


def settle(page, url: str) -> None:
    """Wait for what the page's scripts do on their own: a verification by id, then a frame
    for observers (scrollable tables) to run."""
    if url.startswith("/verify?id="):
        page.wait_for_selector("#verdict[data-ok]")
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => "
                  "requestAnimationFrame(done)))")


#: What the width of the window changes: which regions scroll. Every other rule is checked at
#: the desk's width only.
NARROW_RULES = ["scrollable-region-focusable"]


def axe_violations(page, rules: list[str] | None = None) -> list[str]:
    page.add_script_tag(path=str(AXE))
    options = {"resultTypes": ["violations"]}
    if rules:
        options["runOnly"] = rules
    result = page.evaluate("async (options) => (await axe.run(document, options)).violations"
                           ".map(v => ({id: v.id, help: v.help, nodes: v.nodes.map(n => "
                           "n.target.join(' ')).slice(0, 5)}))", options)
    return [json.dumps(v, ensure_ascii=False) for v in result]


def overflow(page) -> list[str]:
    """What sticks out to the right of the page (which must not scroll sideways)."""
    return page.evaluate("""() => {
      const width = document.documentElement.clientWidth;
      if (document.documentElement.scrollWidth <= width) return [];
      return [...document.querySelectorAll('body *')]
        .filter(el => el.getBoundingClientRect().right > width + 1
                      || el.scrollWidth > el.clientWidth + 1
                         && getComputedStyle(el).overflowX === 'visible')
        .filter(el => !el.closest('.table-wrap'))
        .slice(0, 8).map(el => el.tagName + (el.id ? '#' + el.id : '') + '.' + el.className);
    }""")


def test_every_html_page_is_listed(notary):
    served = {rule.endpoint for rule in notary["app"].url_map.iter_rules()
              if "GET" in rule.methods and rule.endpoint != "static"
              and not rule.endpoint.startswith("api.")}
    assert served == (set(pages(notary)) - {"error"}) | NOT_PAGES


@pytest.mark.parametrize("width", [1280, PHONE])
@pytest.mark.parametrize("role", ROLES)
def test_axe_finds_nothing_and_nothing_overflows_a_phone(browser, notary, role, width):
    base = notary["base"]
    context, page = browse(browser, role, base, width=width)
    problems, reached = [], 0
    try:
        for url in (url for urls in pages(notary).values() for url in urls):
            response = page.goto(base + url)
            if page.url.startswith(f"{base}/login") and url != "/login" \
                    or response.status == 403:
                continue  # not a page of this role
            reached += 1
            settle(page, url)
            problems += [f"{role} {url}: {v}" for v in axe_violations(
                page, NARROW_RULES if width == PHONE else None)]
            wide = page.evaluate("document.documentElement.scrollWidth")
            if wide > width:
                problems.append(f"{role} {url}: {wide} px wide at {width} px: "
                                f"{overflow(page)}")
    finally:
        context.close()
    assert reached >= 8
    assert problems == [], "\n".join(problems)


def tab_to(page, selector: str, presses: int = 40) -> None:
    """Move the focus with the Tab key alone until ``selector`` has it."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement?.matches(s)", selector):
            return
    raise AssertionError(f"{selector} never took the focus")


def outline(page, selector: str) -> tuple[str, float]:
    return page.evaluate("(s) => { const style = getComputedStyle(document.querySelector(s)); "
                         "return [style.outlineStyle, parseFloat(style.outlineWidth)]; }",
                         selector)


def test_the_file_pickers_show_their_focus_ring(browser, notary):
    base = notary["base"]
    context, page = browse(browser, "coordinator", base)
    try:
        page.goto(f"{base}/register")
        tab_to(page, "#file-input")  # visually hidden: its label shows the focus
        style, width = outline(page, "label[for=file-input]")
        assert style != "none" and width >= 2
        tab_to(page, "#folder-input")
        assert outline(page, "label[for=file-input]")[0] == "none"
        assert outline(page, "label[for=folder-input]")[0] != "none"
        page.goto(f"{base}/verify")
        for picker in ("#file-input", "#receipt-input"):
            tab_to(page, picker)
            style, width = outline(page, picker)
            assert style != "none" and width >= 2, picker
    finally:
        context.close()


def test_register_moves_the_focus_to_its_result(browser, notary, tmp_path):
    base = notary["base"]
    context, page = browse(browser, "coordinator", base)
    data = tmp_path / "focus-check.csv"
    data.write_bytes(b"focus,check\n1,2\n")
    try:
        page.goto(f"{base}/register")
        page.locator("#file-input").set_input_files(str(data))
        page.locator("#file-list td", has_text="hashed").wait_for()
        page.get_by_role("button", name="Register").click()
        page.locator("#register-message", has_text="registered").wait_for()
        assert page.evaluate("document.activeElement.id") == "register-message"
        assert axe_violations(page) == []
    finally:
        context.close()


def test_verify_moves_the_focus_to_its_result(browser, notary, tmp_path):
    base, first = notary["base"], notary["first"]
    receipt = requests.get(f"{base}/api/v1/submissions/{first['id']}/receipt", timeout=10)
    receipt_path = tmp_path / "first.receipt.json"
    receipt_path.write_bytes(receipt.content)
    data = tmp_path / "first.xpt"
    data.write_bytes(first["dataset"].encode())  # the notary fixture hashed the label
    context, page = browse(browser, "anonymous", base)
    try:
        page.goto(f"{base}/verify")
        page.locator("#file-input").set_input_files(str(data))
        page.locator("#receipt-input").set_input_files(str(receipt_path))
        page.locator("#verify-button").click()
        page.locator("#verdict[data-ok='true']").wait_for()
        page.wait_for_function("document.activeElement.id === 'result'")
        assert axe_violations(page) == []
    finally:
        context.close()


def test_pages_after_an_action_have_no_violation(browser, notary):
    """A token just created, a temporary password just set, a confirmation open."""
    base = notary["base"]
    context, page = browse(browser, "sponsor", base)
    try:
        page.goto(f"{base}/tokens")
        page.get_by_role("button", name="Create user token").click()
        page.locator("#new-token-value").wait_for()
        page.locator("details.confirm summary").first.click()
        assert axe_violations(page) == []
    finally:
        context.close()
    engine = notary["app"].extensions["trialnotary"].engine
    with quick_password_hashing(), db.write_session(engine) as session:
        someone, _ = accounts.create_user(session, "reset-me@example.org", "sponsor",
                                          password=PASSWORD)
        session.commit()
        someone_id = someone.id
    context, page = browse(browser, "admin", base)
    try:
        page.goto(f"{base}/admin/users/{someone_id}")
        page.locator("summary", has_text="Reset password").click()
        page.get_by_role("button", name="Yes, reset the password").click()
        page.locator("#temporary-password").wait_for()
        assert axe_violations(page) == []
    finally:
        context.close()


@pytest.mark.parametrize("media, width", [("screen", 1280), ("print", 1047)])
def test_the_audit_report_fits_its_page(browser, notary, media, width):
    """No column cut off, nothing scrolls sideways: on a laptop, and on A4 landscape paper
    (277 mm of printable width are 1047 CSS pixels)."""
    base = notary["base"]
    context, page = browse(browser, "sponsor", base, width=width)
    try:
        page.emulate_media(media=media)
        page.goto(f"{base}/trials/{TRIAL}/report")
        fits = page.evaluate("""() => {
          const wrap = document.querySelector('.table-wrap');
          const table = wrap.querySelector('table');
          const cut = [...table.querySelectorAll('th, td')]
            .filter(cell => cell.scrollWidth > cell.clientWidth + 1)
            .map(cell => cell.textContent.trim().slice(0, 40));
          return {table: table.scrollWidth, room: wrap.clientWidth, cut,
                  page: document.documentElement.scrollWidth};
        }""")
        assert fits["table"] <= fits["room"] and fits["cut"] == [], fits
        assert fits["page"] <= width, fits
        hashes = page.locator(".report-table code.hash-short")
        assert hashes.count() >= 2
        first = notary["first"]["sha256"]
        assert hashes.first.inner_text() == f"{first[:8]}…{first[-8:]}"
        assert hashes.first.get_attribute("title") == first
        assert "the wrong visit was exported" in page.locator(".report-table").inner_text()
    finally:
        context.close()
