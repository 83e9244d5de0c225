"""The pages on SQLite and PostgreSQL: script in every free-text field rendered inert on
every page that shows it; the register form's JSON call; the trial's bundle and audit
reports; the printable receipt, its PDF, and the public registration page."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile

import pytest
import sqlalchemy as sa
from markupsafe import escape

from tests.utils import (
    DATABASES,
    Page,
    add_person,
    anchor_and_confirm,
    assert_inert,
    assert_shown_escaped,
    bearer,
    engine_of,
    location_path,
    module_app,
    page_of,
    post_form,
    post_json,
    scalar,
    shown_once,
    sign_in,
    signed_in,
    user_row,
    xss,
)
from trialnotary.filenames import receipt_filename
from trialnotary.proof.verify import verify_receipt
from trialnotary.web.documents.bundle import PAGE_NAME

TRIAL, SITE, OTHER_SITE = "NCT01234567", "SITE-01", "SITE-02"
TITLE, SITE_NAME = xss("trial title"), xss("site name")
LABEL, FILENAME = xss("label"), xss("file name")
FIX_LABEL, REASON = xss("correction label"), xss("reason")
SITE_TOKEN_NAME, USER_TOKEN_NAME = xss("site token name"), xss("user token name")
USER_NAME, MADE_NAME = xss("user name"), xss("admin-made name")
SCRIPT_EMAIL = "<script>alert(1)</script>@evil.example"
FORMULA = "=HYPERLINK(\"http://evil.example\",\"x\")"


def sha(n: int) -> str:
    return f"{n:064x}"


pytestmark = pytest.mark.usefixtures("quick_argon2")


@pytest.fixture(scope="module", params=DATABASES)
def web(request, tmp_path_factory, anvil):
    """A trial, its sites, people and tokens made through the pages with script in every
    free-text field; registrations through the API and a correction through the register
    form, all confirmed on the test anvil; then one pending registration."""
    with module_app(request, tmp_path_factory, anvil.url,
                    LOGIN_RATE_LIMIT="1000 per minute") as app:
        engine = engine_of(app)
        clients = {role: app.test_client() for role in ("admin", "sponsor", "coordinator")}
        add_person(engine, "admin@example.org", "admin")
        signed_in(clients["admin"], "admin@example.org")
        admin = clients["admin"]
        assert post_form(admin, "/admin/trials", {"trial": TRIAL, "title": TITLE}).status_code \
            == 302
        for site in (SITE, OTHER_SITE):
            assert post_form(admin, "/admin/sites", {"trial": TRIAL, "site": site,
                                                     "name": SITE_NAME}).status_code == 302
        made = post_form(admin, "/admin/users", {"email": SCRIPT_EMAIL, "role": "sponsor",
                                                 "name": MADE_NAME})
        made_password = shown_once(admin, made, "temporary-password")
        coordinator_id = add_person(engine, "coordinator@example.org", "coordinator",
                                    sites=[SITE], name=USER_NAME)
        add_person(engine, "sponsor@example.org", "sponsor", trials=[TRIAL])
        signed_in(clients["coordinator"], "coordinator@example.org")
        signed_in(clients["sponsor"], "sponsor@example.org")
        shown = post_form(clients["coordinator"], "/tokens/site",
                          {"site": SITE, "name": SITE_TOKEN_NAME})
        site_token = shown_once(clients["coordinator"], shown, "new-token-value")
        shown = post_form(clients["sponsor"], "/tokens/user", {"name": USER_TOKEN_NAME})
        user_token = shown_once(clients["sponsor"], shown, "new-token-value")

        api = app.test_client()
        items = [{"trial": TRIAL, "site": SITE, "dataset": LABEL, "filename": FILENAME,
                  "sha256": sha(1), "sizeBytes": 1234},
                 {"trial": TRIAL, "site": SITE, "dataset": "ADSL", "filename": "adsl.xpt",
                  "sha256": sha(2)},
                 {"trial": TRIAL, "site": SITE, "dataset": FORMULA, "sha256": sha(3)}]
        answer = api.post("/api/v1/submissions/bulk", headers=bearer(site_token),
                          json={"submissions": items})
        assert answer.status_code == 201
        records = [a["record"] for a in answer.get_json()["submissions"]]
        fixed = post_json(clients["coordinator"], "/register", {"reason": REASON, "submissions": [{
            "trial": TRIAL, "site": SITE, "dataset": FIX_LABEL, "filename": FILENAME,
            "sha256": sha(4), "supersedes": records[0]["id"]}]})
        assert fixed.status_code == 201, fixed.get_data(as_text=True)
        records.append(fixed.get_json()["submissions"][0]["record"])
        anchor_and_confirm(app, anvil)
        pending = api.post("/api/v1/submissions", headers=bearer(site_token), json={
            "trial": TRIAL, "site": SITE, "dataset": "later", "sha256": sha(5)}).get_json()
        # Someone tries to sign in with script as an address (kept among the attempts).
        sign_in(app.test_client(), SCRIPT_EMAIL, "not the password at all")
        yield {"app": app, "engine": engine, "clients": clients, "anvil": anvil,
               "records": records, "pending": pending["record"], "site_token": site_token,
               "user_token": user_token, "coordinator_id": coordinator_id,
               "made_password": made_password}
        engine.dispose()


# --- script in free text -------------------------------------------------------------

def _pages(web) -> list[tuple[str, str, list[str]]]:
    """(who, path, the values the page must show as text)."""
    first, fix = web["records"][0]["id"], web["records"][3]["id"]
    made_id = user_row(web["engine"], SCRIPT_EMAIL).id
    return [
        ("anonymous", f"/r/{first}", [LABEL, FILENAME, FIX_LABEL]),
        ("coordinator", f"/r/{first}", [LABEL, FILENAME, FIX_LABEL, REASON]),
        ("anonymous", f"/r/{fix}", [FIX_LABEL, FILENAME]),
        ("anonymous", f"/r/{first}/print", [LABEL, FILENAME]),
        ("anonymous", f"/lookup?sha256={sha(1)}", [LABEL, FILENAME]),
        ("coordinator", "/registrations", [LABEL, FILENAME, FIX_LABEL, REASON]),
        ("coordinator", "/register", [TITLE]),
        ("coordinator", f"/register?supersedes={fix}", [FIX_LABEL, FILENAME, TITLE]),
        ("coordinator", "/tokens", [SITE_TOKEN_NAME]),
        ("sponsor", "/tokens", [USER_TOKEN_NAME]),
        ("sponsor", "/trials", [TITLE]),
        ("sponsor", f"/trials/{TRIAL}", [TITLE, LABEL, FILENAME, FIX_LABEL, REASON]),
        ("sponsor", f"/trials/{TRIAL}?q=label", [LABEL]),
        ("sponsor", f"/trials/{TRIAL}/report", [TITLE, LABEL, FILENAME, FIX_LABEL, REASON]),
        ("admin", "/admin/trials", [TITLE]),
        ("admin", "/admin/sites", [SITE_NAME]),
        ("admin", "/admin/users", [USER_NAME, MADE_NAME, SCRIPT_EMAIL]),
        ("admin", f"/admin/users/{web['coordinator_id']}", [USER_NAME]),
        ("admin", f"/admin/users/{made_id}", [MADE_NAME, SCRIPT_EMAIL]),
        ("admin", "/admin/tokens", [SITE_TOKEN_NAME, USER_TOKEN_NAME]),
        ("admin", "/admin/logins", [SCRIPT_EMAIL]),
        ("admin", "/admin/audit", [REASON]),
    ]


def test_a_correction_reason_is_for_the_trial_people_not_for_whoever_holds_the_id(web):
    """Reasons are free text (they may name people): the registration's public page shows
    its corrections, but their reasons only to those who may read the site or trial."""
    page = f"/r/{web['records'][0]['id']}"
    anonymous = web["app"].test_client().get(page).get_data(as_text=True)
    coordinator = web["clients"]["coordinator"].get(page).get_data(as_text=True)
    assert "Corrected by" in anonymous and "Corrected by" in coordinator
    assert str(escape(REASON)) in coordinator and str(escape(REASON)) not in anonymous


def test_script_in_every_free_text_field_is_shown_as_text_on_every_page(web):
    for who, path, values in _pages(web):
        client = web["app"].test_client() if who == "anonymous" else web["clients"][who]
        response = client.get(path)
        assert response.status_code == 200, (who, path, response.status)
        html = response.get_data(as_text=True)
        assert_inert(html, where=path)
        # Shown escaped, with "{{7*7}}" left as it is (never evaluated into 49).
        for value in values:
            assert_shown_escaped(html, value, where=f"{path} as {who}")


def test_the_audit_trail_page_shows_old_and_new_values_inert(web):
    html = web["clients"]["admin"].get("/admin/audit").get_data(as_text=True)
    assert_inert(html, where="/admin/audit")
    for value in (TITLE, SITE_NAME, MADE_NAME, SITE_TOKEN_NAME, USER_TOKEN_NAME, FIX_LABEL):
        assert_shown_escaped(html, value, where="/admin/audit")


def test_an_address_with_script_is_shown_as_text_to_its_owner(web):
    client = web["app"].test_client()
    assert sign_in(client, SCRIPT_EMAIL, web["made_password"]).status_code == 302
    response = client.get("/account/password")
    html = response.get_data(as_text=True)
    assert_inert(html, where="/account/password")
    assert_shown_escaped(html, SCRIPT_EMAIL, where="the page header")


def test_script_in_an_error_message_is_shown_as_text(web):
    admin = web["clients"]["admin"]  # may name any site: the view itself refuses it
    response = post_form(admin, "/tokens/site", {"site": "<script>alert(1)</script>"})
    assert response.status_code == 302
    html = admin.get("/tokens").get_data(as_text=True)
    assert_inert(html, where="flash")
    assert "unknown site &lt;script&gt;alert(1)&lt;/script&gt;" in html
    login = web["app"].test_client().get(
        "/login?next=%22%3E%3Cscript%3Ealert(1)%3C/script%3E")
    assert_inert(login.get_data(as_text=True), where="/login?next=")
    lookup = web["app"].test_client().get("/lookup?sha256=%3Cscript%3Ealert(1)%3C/script%3E")
    assert lookup.status_code == 400
    assert_inert(lookup.get_data(as_text=True), where="/lookup")


# --- corrections ---------------------------------------------------------------------

def _links_to(html: str, registration_id: str) -> bool:
    return bool(Page(html).find("a", href=f"/r/{registration_id}"))


def test_a_superseded_registration_says_so_everywhere(web):
    """The first registration was corrected through the form: its page, the lists, the
    look-up, the reports, index.csv and the API name the correction; the correction's page
    shows its reason to the trial's people."""
    first, fix = web["records"][0], web["records"][3]
    anonymous, coordinator = web["app"].test_client(), web["clients"]["coordinator"]
    sponsor = web["clients"]["sponsor"]
    for client, reason_shown in ((anonymous, False), (coordinator, True)):
        html = client.get(f"/r/{first['id']}").get_data(as_text=True)
        notice = html.split('id="superseded-notice"')[1].split("</p>")[0]
        assert "Superseded" in notice and f'href="/r/{fix["id"]}"' in notice
        assert (str(escape(REASON)) in notice) is reason_shown
        html = client.get(f"/r/{fix['id']}").get_data(as_text=True)
        correction = html.split('id="correction-of"')[1].split("</p>")[0]
        assert f'href="/r/{first["id"]}"' in correction
        assert (str(escape(REASON)) in correction) is reason_shown
        assert 'id="superseded-notice"' not in html
    html = coordinator.get(f"/r/{first['id']}").get_data(as_text=True)
    assert f'href="/register?supersedes={fix["id"]}"' in html  # correct the correction
    for client, path in ((coordinator, "/registrations"), (sponsor, f"/trials/{TRIAL}"),
                         (sponsor, f"/trials/{TRIAL}/report"),
                         (anonymous, f"/lookup?sha256={sha(1)}")):
        html = client.get(path).get_data(as_text=True)
        assert "superseded by" in html and _links_to(html, fix["id"]), path
    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(
        sponsor.get(f"/trials/{TRIAL}/report.csv").get_data(as_text=True)))}
    assert list(rows[first["id"]])[-3:] == ["supersededBy", "supersededReason", "signOff"]
    assert rows[first["id"]]["supersededBy"] == fix["id"]
    assert rows[first["id"]]["supersededReason"] == REASON
    assert rows[fix["id"]]["supersededBy"] == "" and rows[fix["id"]]["reason"] == REASON
    bundle = _bundle(sponsor.get(f"/trials/{TRIAL}/receipts.zip"))
    index = {row["id"]: row for row in csv.DictReader(io.StringIO(
        bundle["index.csv"].decode()))}
    assert index[first["id"]]["supersededBy"] == fix["id"]
    listed = anonymous.get(f"/api/v1/trials/{TRIAL}/submissions",
                           headers=bearer(web["user_token"])).get_json()["submissions"]
    assert {row["id"]: row["supersededBy"] for row in listed}[first["id"]] == fix["id"]


def test_the_register_page_says_when_a_correction_cannot_be_made(web):
    first, fix = web["records"][0], web["records"][3]
    coordinator = web["clients"]["coordinator"]
    for target in ("3f1c2a9e-5b7d-4c1e-9a2b-6d8e0f1a2b3c", "not-an-id"):
        html = coordinator.get(f"/register?supersedes={target}").get_data(as_text=True)
        problem = " ".join(html.split('id="supersedes-problem"')[1].split("</p>")[0].split())
        assert "The link names no registration of your sites to correct" in problem
        assert 'name="supersedes"' not in html
    html = coordinator.get(f"/register?supersedes={first['id']}").get_data(as_text=True)
    problem = html.split('id="supersedes-problem"')[1].split("</p>")[0]
    assert "already" in problem and f'href="/r/{fix["id"]}"' in problem
    assert f'href="/register?supersedes={fix["id"]}"' in problem
    assert 'name="supersedes"' not in html
    html = coordinator.get(f"/register?supersedes={fix['id']}").get_data(as_text=True)
    assert 'id="supersedes-problem"' not in html and f'value="{fix["id"]}"' in html
    before = _count(web)
    response = post_json(coordinator, "/register", {"reason": "again", "submissions": [
        {"trial": TRIAL, "site": SITE, "dataset": "again", "sha256": sha(7),
         "supersedes": first["id"]}]})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["field"] == "submissions[0].supersedes" and fix["id"] in error["message"]
    assert _count(web) == before


# --- the register form ---------------------------------------------------------------

def _count(web) -> int:
    return scalar(web["engine"], "SELECT count(*) FROM submission")


def test_a_coordinator_registers_for_its_site_through_the_form(web):
    coordinator = web["clients"]["coordinator"]
    items = [{"trial": "nct 0123 4567", "site": SITE, "kind": "protocol", "dataset": "Protocol",
              "sha256": sha(100).upper(), "sizeBytes": 10, "filename": "protocol.pdf"},
             {"trial": TRIAL, "site": SITE, "dataset": "folder", "sha256": sha(101),
              "filename": "sub/a.csv"}]
    response = post_json(coordinator, "/register", {"submissions": items})
    assert response.status_code == 201, response.get_data(as_text=True)
    created = response.get_json()["submissions"]
    assert [c["status"] for c in created] == ["pending", "pending"]
    assert created[0]["record"]["trial"] == TRIAL
    assert created[0]["record"]["sha256"] == sha(100)
    assert created[0]["links"]["page"] == f"/r/{created[0]['id']}"
    with web["engine"].connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT id, user_id, token_id, reason, kind FROM submission WHERE id IN (:a, :b)"),
            {"a": created[0]["id"], "b": created[1]["id"]}).mappings().all()
    assert {row["user_id"] for row in rows} == {web["coordinator_id"]}
    assert {row["token_id"] for row in rows} == {None}
    assert {row["kind"] for row in rows} == {"protocol", "dataset"}
    listed = coordinator.get("/registrations").get_data(as_text=True)
    assert created[0]["id"] in listed and created[1]["id"] in listed
    report = web["clients"]["sponsor"].get(f"/trials/{TRIAL}/report.json").get_json()
    mine = [row for row in report["registrations"] if row["id"] == created[0]["id"]]
    assert mine[0]["registeredBy"] == "coordinator@example.org (coordinator)"


@pytest.mark.parametrize("sites", [[OTHER_SITE], [SITE, OTHER_SITE]])
def test_a_coordinator_cannot_register_for_another_site(web, sites):
    before = _count(web)
    items = [{"trial": TRIAL, "site": site, "dataset": "x", "sha256": sha(200 + i)}
             for i, site in enumerate(sites)]
    response = post_json(web["clients"]["coordinator"], "/register", {"submissions": items})
    assert response.status_code == 403
    error = response.get_json()["error"]
    assert error["code"] == "forbidden"
    assert error["field"] == f"submissions[{len(sites) - 1}].site"
    assert _count(web) == before


def test_the_form_takes_at_most_ten_thousand_items(web):
    before = _count(web)
    item = {"trial": TRIAL, "site": SITE, "dataset": "x", "sha256": sha(300)}
    response = post_json(web["clients"]["coordinator"], "/register",
                         {"submissions": [item] * 10_001})
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "submissions"
    assert _count(web) == before


def test_the_form_refuses_what_is_not_json(web):
    coordinator = web["clients"]["coordinator"]
    token = page_of(coordinator.get("/register")).csrf_token
    response = coordinator.post("/register", data="trial=x", headers={"X-CSRFToken": token},
                                content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_json"


# --- the trial's bundle and reports --------------------------------------------------

def _bundle(response) -> dict[str, bytes]:
    assert response.status_code == 200, response.status
    assert response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    with zipfile.ZipFile(io.BytesIO(response.get_data())) as bundle:
        return {name: bundle.read(name) for name in bundle.namelist()}


def test_the_trial_bundle_holds_every_confirmed_receipt_and_each_verifies(web):
    from_web = _bundle(web["clients"]["sponsor"].get(f"/trials/{TRIAL}/receipts.zip"))
    from_api = _bundle(web["app"].test_client().get(f"/api/v1/trials/{TRIAL}/receipts.zip",
                                                    headers=bearer(web["user_token"])))
    confirmed = web["records"]
    expected = {f"receipts/{receipt_filename(r['trial'], r['dataset'], r['id'])}"
                for r in confirmed}
    for files in (from_web, from_api):
        assert set(files) == {"HOW-TO-VERIFY.txt", "index.csv", PAGE_NAME} | expected
        assert b'id="notary-identity"' in files[PAGE_NAME]
        assert TRIAL in files["HOW-TO-VERIFY.txt"].decode()
        index = list(csv.DictReader(io.StringIO(files["index.csv"].decode())))
        listed = {row["id"] for row in index}
        assert {r["id"] for r in confirmed} | {web["pending"]["id"]} <= listed
        named = {row["id"]: row["receiptFile"] for row in index}
        assert {named[r["id"]] for r in confirmed} == expected
        assert named[web["pending"]["id"]] == ""
        sender = json.loads(files[min(expected)])["anchors"][0]["sender"]
        assert f"--expect-sender {sender}" in files["HOW-TO-VERIFY.txt"].decode()
    receipts = {name: json.loads(from_web[name]) for name in expected}
    assert receipts == {name: json.loads(from_api[name]) for name in expected}
    for name, receipt in receipts.items():
        assert name.endswith(f"{receipt['trialnotary']['record']['id']}.receipt.json")
        result = verify_receipt(receipt, rpc_urls=[web["anvil"].url])
        assert result.ok, (name, [(s.name, s.detail) for s in result.steps])
        assert result.step("anchor-tx").ok and result.step("block").ok


def test_audit_report_downloads(web):
    sponsor = web["clients"]["sponsor"]
    ids = {r["id"] for r in web["records"]} | {web["pending"]["id"]}
    as_csv = sponsor.get(f"/trials/{TRIAL}/report.csv")
    assert as_csv.headers["Content-Type"] == "text/csv; charset=utf-8"  # one charset
    for_excel = sponsor.get(f"/trials/{TRIAL}/report.csv?bom=1")
    assert for_excel.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert for_excel.data == b"\xef\xbb\xbf" + as_csv.data
    assert re.fullmatch(rf"attachment; filename={TRIAL}_audit-report_\d{{4}}-\d\d-\d\d\.csv",
                        as_csv.headers["Content-Disposition"])
    rows = list(csv.DictReader(io.StringIO(as_csv.get_data(as_text=True))))
    assert ids <= {row["id"] for row in rows}
    labels = {row["dataset"] for row in rows}
    assert LABEL in labels and "'" + FORMULA in labels and FORMULA not in labels
    as_json = sponsor.get(f"/trials/{TRIAL}/report.json")
    assert as_json.mimetype == "application/json"
    body = as_json.get_json()
    assert body["trial"] == TRIAL and body["title"] == TITLE
    assert body["count"] == len(body["registrations"]) and ids <= {
        row["id"] for row in body["registrations"]}
    fixed = [row for row in body["registrations"] if row["supersedes"]]
    assert fixed[0]["reason"] == REASON
    as_pdf = sponsor.get(f"/trials/{TRIAL}/report.pdf")
    assert as_pdf.mimetype == "application/pdf" and as_pdf.get_data().startswith(b"%PDF")
    assert as_pdf.headers["Content-Disposition"].endswith(".pdf")
    assert sponsor.get(f"/trials/{TRIAL}/report.html").status_code == 404


# --- one registration ----------------------------------------------------------------

def test_the_printable_receipt_and_its_pdf(web):
    record = web["records"][1]
    client = web["app"].test_client()
    receipt = client.get(f"/api/v1/submissions/{record['id']}/receipt").get_json()
    anchor = receipt["anchors"][0]
    page = client.get(f"/r/{record['id']}/print")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for shown in (anchor["sourceId"], receipt["merkleRoot"], anchor["blockHash"], anchor["sender"],
                  record["sha256"], record["id"]):
        assert shown in html, shown
    assert f'datetime="{anchor["blockTime"]}" class="t-proven"' in html
    pdf = client.get(f"/r/{record['id']}/receipt.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.get_data().startswith(b"%PDF")
    assert receipt_filename(TRIAL, "ADSL", record["id"]).removesuffix(".json") + ".pdf" \
        in pdf.headers["Content-Disposition"]
    # Not confirmed yet: no PDF, back to its page with a word why.
    pending = client.get(f"/r/{web['pending']['id']}/receipt.pdf")
    assert pending.status_code == 302
    assert location_path(pending) == f"/r/{web['pending']['id']}"
    assert "once the anchor is confirmed" in client.get(pending.headers["Location"]).get_data(
        as_text=True)
    assert client.get("/r/3f1c2a9e-5b7d-4c1e-9a2b-6d8e0f1a2b3c/receipt.pdf").status_code == 404


def test_the_public_page_shows_the_proven_time_and_the_claimed_one(web):
    record = web["records"][1]
    client = web["app"].test_client()
    receipt = client.get(f"/api/v1/submissions/{record['id']}/receipt").get_json()
    block_time = receipt["anchors"][0]["blockTime"]
    html = client.get(f"/r/{record['id']}").get_data(as_text=True)
    proven = html.split("Proven time (block time)")[1].split("<dt>")[0]
    assert f'<time datetime="{block_time}" class="t-proven"' in proven
    assert block_time.replace("T", " ").removesuffix("Z") + " UTC" in proven
    submitted = html.split("<dt>Submitted</dt>")[1].split("</dd>")[0]
    assert f'<time datetime="{record["submittedAt"]}" class="t-claimed"' in submitted
    assert "The notary's claim, not proven." in submitted
    pending = client.get(f"/r/{web['pending']['id']}").get_data(as_text=True)
    assert "not yet anchored" in pending.split("Proven time (block time)")[1].split("<dt>")[0]
    assert client.get("/r/not-an-id").status_code == 404


def test_a_deeply_nested_body_is_refused_not_a_crash(web):
    """The web form's JSON goes through the API's reader: depth bounded before parsing."""
    client = web["clients"]["coordinator"]
    body = b"[" * 200_000 + b"]" * 200_000
    response = client.post("/register", data=body, content_type="application/json",
                           headers={"X-CSRFToken": page_of(client.get("/register")).csrf_token})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_json"


# --- what coordinators wait for, and rows registered elsewhere ----------------------

def test_the_expected_wait_follows_the_seal_interval_and_the_chain(engine):
    from datetime import UTC, datetime, timedelta

    from sqlmodel import Session

    from trialnotary.notary import anchoring, overview
    from trialnotary.notary.models import Batch
    from trialnotary.proof.receipt import rfc3339_ms

    now = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)

    def wait(**kw):
        with Session(engine) as session:
            return overview.expected_wait(session, **{
                "seal_interval_seconds": 60, "confirmations": 2, "chain_id": 31337,
                "now": now, **kw})

    first = wait()  # nothing sealed yet: at most one interval
    assert first.next_seal_at == now + timedelta(seconds=60)
    assert first.expected_by == first.next_seal_at + timedelta(seconds=3)  # block + 2
    assert first.chain_unreachable_since is None and first.anchoring_held_since is None
    with Session(engine) as session:
        session.add(Batch(root=b"\x01" * 32, leaf_count=1, state="confirmed",
                          sealed_at=rfc3339_ms(now - timedelta(seconds=90))))
        session.commit()
    assert wait().next_seal_at == now + timedelta(seconds=30)  # whole intervals after it
    sepolia = wait(confirmations="finalized", chain_id=11155111)
    assert sepolia.expected_by - sepolia.next_seal_at == timedelta(seconds=65 * 12)
    anchoring.record_status(engine, "local", reachable=False, alert=None)
    assert wait().chain_unreachable_since is not None
    anchoring.record_status(engine, "local", reachable=True, alert="the account cannot pay")
    held = wait()
    assert held.chain_unreachable_since is None and held.anchoring_held_since is not None


def test_waiting_pages_show_the_wait_and_the_outage(web):
    from trialnotary.notary import anchoring

    coordinator = web["clients"]["coordinator"]
    notice = coordinator.get("/registrations/wait").get_data(as_text=True)
    assert "Expected wait" in notice and "chain-outage" not in notice
    anchoring.record_status(web["engine"], "local", reachable=False, alert=None)
    try:
        for path in ("/registrations/wait", f"/r/{web['pending']['id']}", "/registrations"):
            html = coordinator.get(path).get_data(as_text=True)
            outage = " ".join(html.split('id="chain-outage">')[1].split("</p>")[0].split())
            assert outage.startswith("The chain is unreachable since <time"), path
            assert outage.endswith("registrations are kept and will be anchored when it "
                                   "is back."), path
        confirmed = coordinator.get(f"/r/{web['records'][1]['id']}").get_data(as_text=True)
        assert "chain-outage" not in confirmed  # nothing to wait for
    finally:
        anchoring.record_status(web["engine"], "local", reachable=True, alert=None)


def test_newer_rows_are_those_registered_after_the_lists_newest(web):
    coordinator = web["clients"]["coordinator"]
    listed = page_of(coordinator.get("/registrations"))
    table = listed.find("table")[0]
    assert table["data-newer-url"].startswith("/registrations/newer")
    assert "data-newer-url" not in page_of(coordinator.get("/registrations?page=2")).find(
        "table")[0]
    newest = listed.find("tr")[1]["data-live-id"]
    assert coordinator.get(f"/registrations/newer?after={newest}").get_data(
        as_text=True).strip() == ""
    added = post_json(coordinator, "/register", {"submissions": [
        {"trial": TRIAL, "site": SITE, "dataset": "added later", "sha256": sha(400)},
        {"trial": TRIAL, "site": SITE, "dataset": "and another", "sha256": sha(401)}]})
    ids = [s["id"] for s in added.get_json()["submissions"]]
    rows = page_of(coordinator.get(f"/registrations/newer?after={newest}")).find("tr")
    assert [row["data-live-id"] for row in rows] == ids[::-1]
    filtered = page_of(coordinator.get(f"/registrations/newer?after={newest}&label=another"))
    assert [row["data-live-id"] for row in filtered.find("tr")] == [ids[1]]


def test_the_register_page_asks_about_well_formed_hashes_only(web):
    coordinator = web["clients"]["coordinator"]
    token = page_of(coordinator.get("/register")).csrf_token
    for body, field in [({"sha256": [sha(1), "nope"]}, "sha256[1]"), ({"sha256": "x"}, "sha256"),
                        ({"sha256": [sha(1)] * 10_001}, "sha256"), ([], "sha256")]:
        answer = coordinator.post("/register/check", json=body, headers={"X-CSRFToken": token})
        assert answer.status_code == 422 and answer.get_json()["error"]["field"] == field
    known = coordinator.post("/register/check", json={"sha256": [sha(1).upper(), sha(999)]},
                             headers={"X-CSRFToken": token}).get_json()["registered"]
    assert list(known) == [sha(1)]
    assert known[sha(1)][0] == {
        "id": web["records"][0]["id"], "trial": TRIAL, "site": SITE, "dataset": LABEL,
        "filename": FILENAME, "submittedAt": web["records"][0]["submittedAt"],
        "page": f"/r/{web['records'][0]['id']}"}
