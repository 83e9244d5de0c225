"""The admin's pages on SQLite and PostgreSQL: the audit trail paged, filtered and readable,
a batch opened from the batches page, the sub-navigation marking where one is, and times
given in the viewer's zone with UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlmodel import Session

from tests.conftest import insert_registrations
from tests.utils import (
    Page,
    add_enrolled_site,
    add_person,
    anchor_and_confirm,
    anchors_of_batch,
    new_app,
    page_of,
    post_form,
    sign_in,
    signed_in,
)
from trialnotary.db import write_session
from trialnotary.notary.models import Batch
from trialnotary.people import audit
from trialnotary.web import admin

TRIAL, SITE = "NCT01234567", "SITE-01"
ADMIN = "admin@example.org"


pytestmark = pytest.mark.usefixtures("quick_argon2")


@pytest.fixture
def admin_client(client, engine):
    add_person(engine, ADMIN, "admin")
    signed_in(client, ADMIN)
    return client


def _record(engine, count: int, *, actor: str, action: str, entity: str = "thing",
            at: datetime | None = None, monkeypatch=None) -> None:
    if at is not None:
        monkeypatch.setattr(audit, "utcnow", lambda: at)
    with write_session(engine) as session:
        for index in range(count):
            audit.record(session, actor=actor, action=action, entity=entity, entity_id=index,
                         new={"n": index})
        session.commit()
    if at is not None:
        monkeypatch.undo()


def _seqs(response) -> list[int]:
    return [int(tr["data-seq"]) for tr in page_of(response).find("tr") if "data-seq" in tr]


# --- the audit trail -------------------------------------------------------------------

def test_the_audit_trail_pages_older_and_newer_with_cursors(admin_client, engine, monkeypatch):
    monkeypatch.setattr(admin, "AUDIT_PAGE", 10)
    _record(engine, 34, actor="system", action="thing.make")
    with Session(engine) as session:
        every = [entry["seq"] for entry in audit.entries(session, descending=True)]
    pages, url = [], "/admin/audit"
    while url:
        response = admin_client.get(url)
        assert response.status_code == 200
        pages.append(_seqs(response))
        older = page_of(response).find("a", rel="next")
        url = older[0]["href"] if older else None
    assert sum(pages, []) == every  # every entry once, newest first, in pages of ten
    assert len(pages) == 4 and all(len(page) == 10 for page in pages[:-1])
    back, url = [], page_of(response).find("a", rel="prev")[0]["href"]
    while url:
        response = admin_client.get(url)
        back.insert(0, _seqs(response))
        newer = page_of(response).find("a", rel="prev")
        url = newer[0]["href"] if newer else None
    assert back == pages[:-1]
    assert page_of(admin_client.get("/admin/audit")).find("a", rel="prev") == []


def test_the_audit_trail_filters_by_who_what_on_what_and_day(admin_client, engine,
                                                             monkeypatch):
    day = datetime(2026, 3, 14, 12, tzinfo=UTC)
    _record(engine, 3, actor="user:7 alice@example.org", action="token.create",
            entity="site_token", at=day, monkeypatch=monkeypatch)
    _record(engine, 2, actor="user:8 bob_50%@example.org", action="token.revoke",
            entity="user_token")
    _record(engine, 4, actor="system", action="login.locked", entity="login")

    def shown(**query) -> list[dict]:
        response = admin_client.get("/admin/audit", query_string=query)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        with Session(engine) as session:
            every = {entry["seq"]: entry for entry in audit.entries(session)}
        return [every[seq] for seq in _seqs(response)]

    assert {e["actor"] for e in shown(actor="ALICE")} == {"user:7 alice@example.org"}
    assert len(shown(actor="_50%")) == 2  # LIKE's wildcards are taken literally
    assert len(shown(actor="b_b")) == 0
    assert {e["action"] for e in shown(action="token.")} == {"token.create", "token.revoke"}
    assert {e["action"] for e in shown(action="token.revoke")} == {"token.revoke"}
    assert {e["entity"] for e in shown(entity="login")} == {"login"}
    assert len(shown(**{"from": "2026-03-14", "to": "2026-03-14"})) == 3
    assert len(shown(**{"from": "2026-03-15"})) == 6 + len(shown(action="user."))
    assert shown(actor="alice", action="login.locked") == []
    page = admin_client.get("/admin/audit?actor=alice&action=token.").get_data(as_text=True)
    # Filters stay in the export links and the form.
    assert "/admin/audit.csv?actor=alice&amp;action=token." in page
    assert 'value="alice"' in page
    exported = admin_client.get("/admin/audit.json?actor=alice").get_json()["entries"]
    assert len(exported) == 3


@pytest.mark.parametrize("query, says", [
    ("before=abc", "before: must be a whole number"),
    ("before=99999999999999999999", "before: must be a whole number"),
    ("after=-1", "after: must be a whole number"),
    ("from=2026-13-01", "from: must be a date"),
    ("to=tomorrow", "to: must be a date"),
])
def test_a_bad_audit_parameter_is_a_clear_400(admin_client, query, says):
    response = admin_client.get(f"/admin/audit?{query}")
    assert response.status_code == 400
    assert says in response.get_data(as_text=True)


def test_the_last_day_there_is_is_a_fine_filter(admin_client):
    assert admin_client.get("/admin/audit?to=9999-12-31").status_code == 200


def test_old_and_new_values_read_as_key_old_to_new(admin_client, engine):
    user_id = add_person(engine, "changed@example.org", "coordinator", sites=())
    post_form(admin_client, f"/admin/users/{user_id}", {"action": "role", "role": "sponsor"})
    page = admin_client.get("/admin/audit?action=user.update").get_data(as_text=True)
    row = page.split('<tr data-seq="')[1].split("</tr>")[0]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", row))
    assert "role: coordinator → sponsor" in text
    assert "email: changed@example.org" in text
    assert "{" not in text and "&#34;" not in row  # no raw JSON


def test_changes_lists_every_key_of_either_side():
    assert audit.changes({"role": "a", "email": "e", "gone": 1},
                         {"role": "b", "email": "e", "new": [1, "x"]}) == [
        {"key": "role", "old": "a", "new": "b", "change": "changed"},
        {"key": "email", "old": "e", "new": "e", "change": "same"},
        {"key": "gone", "old": "1", "new": None, "change": "removed"},
        {"key": "new", "old": None, "new": '[1, "x"]', "change": "set"}]
    assert audit.changes({"expiresAt": None}, {"expiresAt": "2027-01-01"}) == [
        {"key": "expiresAt", "old": None, "new": "2027-01-01", "change": "changed"}]
    assert audit.changes(None, None) == []
    assert audit.changes(None, 5) == [{"key": "value", "old": None, "new": "5",
                                       "change": "set"}]


# --- batches -------------------------------------------------------------------------

def test_a_batch_opens_from_the_batches_page(app, admin_client, engine, anvil):
    add_enrolled_site(engine, TRIAL, SITE)
    records = insert_registrations(engine, 3)
    (batch_id,) = anchor_and_confirm(app, anvil)
    listing = admin_client.get("/admin/batches")
    assert page_of(listing).find("a", href=f"/admin/batches/{batch_id}")
    response = admin_client.get(f"/admin/batches/{batch_id}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    with Session(engine) as session:
        batch = session.get(Batch, batch_id)
        anchors = anchors_of_batch(session, batch_id)
    assert bytes(batch.root).hex() in html
    assert all(f'title="0x{anchor.tx_hash}"' in html for anchor in anchors)
    assert all(f"/r/{record['id']}" in html for record in records)
    assert "the audit trail&#39;s head" in html or "audit trail's head" in html
    assert admin_client.get("/admin/batches/999999").status_code == 404
    assert admin_client.get(f"/admin/batches/{batch_id}?page=x").status_code == 400


def test_a_batch_pages_its_registrations(app, admin_client, engine, anvil, monkeypatch):
    add_enrolled_site(engine, TRIAL, SITE)
    records = insert_registrations(engine, 5)
    (batch_id,) = anchor_and_confirm(app, anvil)
    monkeypatch.setattr(admin, "BATCH_PAGE", 2)
    shown = []
    for page in (1, 2, 3):
        html = admin_client.get(f"/admin/batches/{batch_id}?page={page}").get_data(as_text=True)
        found = re.findall(r'href="/r/([0-9a-f-]{36})"', html)
        assert len(found) == (2 if page < 3 else 1)
        assert f"Page {page} of 3" in html
        shown += found
    assert shown == [record["id"] for record in records]


# --- navigation and times ------------------------------------------------------------

def _current(html: str) -> dict[str, str]:
    return {tag["href"]: tag["aria-current"] for tag in Page(html).find("a")
            if "aria-current" in tag}


def test_the_navigation_marks_the_current_page_and_its_section(admin_client, engine):
    user_id = add_person(engine, "someone@example.org", "sponsor")
    assert _current(admin_client.get("/admin/users").get_data(as_text=True)) == {
        "/admin/users": "page", "/admin/": "true"}
    assert _current(admin_client.get(f"/admin/users/{user_id}").get_data(as_text=True)) == {
        "/admin/users": "true", "/admin/": "true"}
    assert _current(admin_client.get("/admin/").get_data(as_text=True)) == {
        "/admin/": "page"}


def test_admin_times_are_time_elements_in_utc(admin_client, engine):
    sign_in(admin_client.application.test_client(), "nobody@example.org", "wrong password!")
    html = admin_client.get("/admin/logins").get_data(as_text=True)
    stamps = re.findall(r'<time datetime="([^"]+)"[^>]*>([^<]+)</time>', html)
    assert stamps and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", iso)
                          and text.endswith(" UTC") for iso, text in stamps)
    assert "strftime" not in html


def test_the_audit_csv_sends_one_charset_and_a_bom_on_request(admin_client):
    plain = admin_client.get("/admin/audit.csv")
    assert plain.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert not plain.data.startswith(b"\xef\xbb\xbf")
    excel = admin_client.get("/admin/audit.csv?bom=1")
    assert excel.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert excel.data.startswith(b"\xef\xbb\xbfseq,at,actor")
    assert excel.data[3:] == plain.data


def test_the_overview_links_the_notarys_identity(admin_client):
    links = Page(admin_client.get("/admin/").get_data(as_text=True)).find("a")
    hrefs = {tag["href"]: tag for tag in links}
    assert "/.well-known/trialnotary.json" in hrefs
    assert "download" in hrefs["/.well-known/trialnotary.json?download=1"]


def test_the_overview_shows_each_anchor_its_cost_and_a_coming_retirement(
        settings_env, engine, anvil, tsa, tmp_path):
    """With ``[[anchors]]``: a row per anchor (where, how often, its status, the account's
    balance and the cost a day at current fees), and a warning ahead of ``retire_on``."""
    from datetime import timedelta

    from trialnotary.db import utcnow

    instance = tmp_path / "instance"
    instance.mkdir(mode=0o700, exist_ok=True)
    soon = (utcnow() + timedelta(days=20)).date().isoformat()
    (instance / "config.toml").write_text(f"""
[[anchors]]
name = "alpha"
kind = "evm"
chain = "local"
rpc = ["{anvil.url}"]
retire_on = {soon}

[[anchors]]
name = "stamps"
kind = "rfc3161"
url = "{tsa.url}"
ca_file = "{tsa.ca_file}"
every = "24h"
""")
    app = new_app(settings_env)
    client = app.test_client()
    add_person(engine, ADMIN, "admin")
    signed_in(client, ADMIN)
    html = client.get("/admin/").get_data(as_text=True)
    alpha, stamps = _text_of(html, "tr", "anchor-alpha"), _text_of(html, "tr", "anchor-stamps")
    assert "ethereumLocal" in alpha and "batch" in alpha and "ETH" in alpha
    assert "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266" in alpha and soon in alpha
    assert tsa.url in stamps and "24h" in stamps and "authority" in stamps
    warning = " ".join(_text_of(html, "p", "retire-warning-alpha").split())
    assert "trialnotary anchor retire alpha" in warning and "20 day(s) left" in warning
    assert 'id="retire-warning-stamps"' not in html
    ready = client.get("/api/v1/readyz").get_json()
    assert [a["name"] for a in ready["anchors"]] == ["alpha", "stamps"]
    app.extensions["trialnotary"].engine.dispose()


def _text_of(html: str, tag: str, element_id: str) -> str:
    """The text of the element ``<tag id=element_id>`` (its tags dropped)."""
    import re

    found = re.search(rf'<{tag}[^>]*id="{element_id}"[^>]*>(.*?)</{tag}>', html, re.S)
    assert found, f"no {tag}#{element_id}"
    return re.sub(r"<[^>]+>", " ", found[1])
