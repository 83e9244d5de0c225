"""Invisible characters (bidi controls such as U+202E, zero-width spaces and joiners, the
other format and default-ignorable code points) cannot spoof what a label, a file name or a
name shows: free text refuses them, naming the field and the character, in the API, the
pages and the browser's own check, from one list; text stored before is shown with each one
spelled out, on every page and in the PDFs."""

from __future__ import annotations

import hashlib
import html
import json
import re
import sys
import unicodedata

import pytest
import sqlalchemy as sa
from markupsafe import escape

from tests.conftest import insert_registrations
from tests.utils import (
    PASSWORD,
    add_enrolled_site,
    add_person,
    bearer,
    engine_of,
    migrated_sqlite,
    post_form,
    serving,
    signed_in,
)
from tests.web.test_reports import make_receipts, make_record, make_row, pdf_strings
from trialnotary import db
from trialnotary.config import load_settings
from trialnotary.notary.models import Registration
from trialnotary.people import sites
from trialnotary.validation import (
    INVISIBLE,
    INVISIBLE_RANGES,
    ValidationError,
    show_invisible,
    validate_text,
)
from trialnotary.web import openapi
from trialnotary.web.app import create_app
from trialnotary.web.documents import pdf as plumbing
from trialnotary.web.documents.report_pdf import report_pdf

TRIAL, SITE = "NCT01234567", "SITE-01"
SPOOF = "invoice\u202efdp.exe"  # shows as "invoiceexe.pdf"
SPELLED = "invoice<U+202E>fdp.exe"


# --- the rule ------------------------------------------------------------------------

@pytest.mark.parametrize("char, name", [
    ("\u202e", "RIGHT-TO-LEFT OVERRIDE"), ("\u202a", "LEFT-TO-RIGHT EMBEDDING"),
    ("\u2066", "LEFT-TO-RIGHT ISOLATE"), ("\u2069", "POP DIRECTIONAL ISOLATE"),
    ("\u200e", "LEFT-TO-RIGHT MARK"), ("\u200f", "RIGHT-TO-LEFT MARK"),
    ("\u061c", "ARABIC LETTER MARK"), ("\u200b", "ZERO WIDTH SPACE"),
    ("\u200c", "ZERO WIDTH NON-JOINER"), ("\u200d", "ZERO WIDTH JOINER"),
    ("\u2060", "WORD JOINER"), ("\u2064", "INVISIBLE PLUS"),
    ("\ufeff", "ZERO WIDTH NO-BREAK SPACE"), ("\u00ad", "SOFT HYPHEN"),
    ("\u034f", "COMBINING GRAPHEME JOINER"), ("\u3164", "HANGUL FILLER"),
    ("\ufe0f", "VARIATION SELECTOR-16"), ("\U000e0041", "TAG LATIN CAPITAL LETTER A"),
])
def test_invisible_characters_are_refused_by_name(char, name):
    with pytest.raises(ValidationError) as refused:
        validate_text(f"AD{char}SL", "dataset", 200, required=True)
    assert refused.value.field == "dataset"
    assert refused.value.message == \
        f"must not hold the invisible character U+{ord(char):04X} ({name})"


@pytest.mark.parametrize("text", ["Données — vague 2", "😀 emoji", "治験データ", "بيانات",
                                  "データ\u3000セット", "a\u00a0b", "line\u2028separator"])
def test_visible_text_of_any_script_is_kept(text):
    assert validate_text(text, "dataset", 200, required=True) == text


def test_the_list_holds_every_format_character_and_only_invisible_ones():
    """Every format character (Cf) of Python's Unicode database is in the one list; what
    else it holds are default-ignorable code points: combining marks that show nothing on
    their own (U+034F, variation selectors), the Hangul fillers, unassigned ones."""
    listed = {code for first, last in INVISIBLE_RANGES for code in range(first, last + 1)}
    every = range(sys.maxunicode + 1)
    assert [c for c in every if unicodedata.category(chr(c)) == "Cf"
            and c not in listed] == []
    others = {unicodedata.category(chr(c)) for c in listed} - {"Cf"}
    assert others <= {"Mn", "Lo", "Cn"}
    assert {c for c in listed if unicodedata.category(chr(c)) == "Lo"} == \
        {0x115F, 0x1160, 0x3164, 0xFFA0}
    assert [c for c in every if INVISIBLE.search(chr(c))] == sorted(listed)


def test_the_openapi_patterns_refuse_exactly_what_validation_refuses():
    """The documented patterns and the server agree on every code point (the browser reads
    the same list from the page: see the browser test below)."""
    schema = openapi.document()["components"]["schemas"]["SubmissionRequest"]["properties"]
    patterns = {field: re.compile(schema[field]["pattern"]) for field in ("dataset", "filename")}
    disagree = []
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue  # no JSON string holds a lone surrogate unescaped; the server refuses them
        text = f"x{chr(code)}"
        try:
            validate_text(text, "dataset", 200, required=True)
            valid = True
        except ValidationError:
            valid = False
        if any(bool(pattern.fullmatch(text)) != valid for pattern in patterns.values()):
            disagree.append(f"U+{code:04X}")
    assert disagree == []


def test_show_invisible_spells_each_one_out():
    assert show_invisible(SPOOF) == SPELLED
    assert show_invisible("\u200b\u200b") == "<U+200B><U+200B>"
    assert show_invisible("tag \U000e0041") == "tag <U+E0041>"
    assert show_invisible("Données 😀") == "Données 😀"


# --- the API and the pages refuse them -----------------------------------------------

GOOD = {"trial": TRIAL, "site": SITE, "dataset": "ADSL", "filename": "adsl.xpt",
        "sha256": hashlib.sha256(b"adsl").hexdigest()}


@pytest.mark.parametrize("field, value, char", [
    ("dataset", SPOOF, "U+202E"), ("filename", "adsl\u200b.xpt", "U+200B"),
])
def test_the_api_refuses_a_spoofing_label_or_file_name(client, site_token, field, value, char):
    response = client.post("/api/v1/submissions", headers=bearer(site_token),
                           json={**GOOD, field: value})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert (error["code"], error["field"]) == ("validation_error", field)
    assert f"must not hold the invisible character {char}" in error["message"]


@pytest.mark.parametrize("path, form, refusal", [
    ("/admin/trials", {"trial": TRIAL, "title": "Trial \u202eone"},
     "title: must not hold the invisible character U+202E"),
    ("/admin/users", {"email": "x@example.org", "role": "sponsor", "name": "Ann\u200b Lee"},
     "name: must not hold the invisible character U+200B"),
    ("/admin/users", {"email": "ann\u202e@example.org", "role": "sponsor"},
     "email: must not hold the invisible character U+202E"),
])
def test_admins_cannot_give_names_or_titles_that_spoof(engine, client, path, form, refusal):
    add_person(engine, "admin@example.org", "admin")
    signed_in(client, "admin@example.org")
    answer = post_form(client, path, form, follow_redirects=True)
    assert refusal.lower() in html.unescape(answer.get_data(as_text=True)).lower()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM trial")).scalar() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM app_user")).scalar() == 1


# --- text stored before is shown spelled out -----------------------------------------

@pytest.fixture
def legacy(app, engine):
    """A registration stored (as before the rule) with U+202E in its label and file name,
    and a sponsor of its trial, signed in."""
    with db.write_session(engine) as session:
        sites.add_trial(session, TRIAL, title="Trial")
        sites.add_site(session, TRIAL, SITE)
        session.commit()
    record = insert_registrations(engine, 1)[0]
    with engine.begin() as conn:
        conn.execute(sa.update(Registration).where(Registration.id == record["id"])
                     .values(dataset=SPOOF, filename=SPOOF))
    add_person(engine, "sponsor@example.org", "sponsor", trials=[TRIAL])
    client = app.test_client()
    signed_in(client, "sponsor@example.org")
    return record, client


def test_every_page_shows_stored_invisible_characters_spelled_out(legacy):
    record, client = legacy
    for path in [f"/r/{record['id']}", f"/r/{record['id']}/print", f"/trials/{TRIAL}",
                 f"/trials/{TRIAL}/report", f"/lookup?sha256={record['sha256']}"]:
        page = client.get(path)
        assert page.status_code == 200, path
        text = page.get_data(as_text=True)
        assert "\u202e" not in text, path
        assert str(escape(SPELLED)) in text, path


def test_the_api_and_the_exports_keep_the_stored_text_exactly(legacy):
    """Data is not display: the record, and with it the receipt, stays as stored."""
    record, client = legacy
    assert client.get(f"/api/v1/submissions/{record['id']}").get_json()["record"]["dataset"] \
        == SPOOF
    assert SPOOF in client.get(f"/trials/{TRIAL}/report.csv").get_data(as_text=True)


def test_the_pdfs_show_stored_invisible_characters_spelled_out(monkeypatch):
    monkeypatch.setattr(plumbing, "COMPRESS", False)
    data = report_pdf(trial=TRIAL, title="Trial\u200b one", generated_at="2026-11-24T"
                              "08:00:00Z", chain="ethereumLocal",
                              rows=[make_row(0, dataset="a\u202eb", filename="short\u2066.csv")])
    strings = pdf_strings(data)
    assert not any(INVISIBLE.search(line) for line in strings)
    assert any("a<U+202E>b" in line for line in strings)
    assert any("short<U+2066>.csv" in line for line in strings)
    assert any("Trial<U+200B> one" in line for line in strings)


# --- the browser checks before it sends ----------------------------------------------

@pytest.fixture(scope="module")
def served(tmp_path_factory, anvil):
    """A notary on SQLite behind waitress with a coordinator of SITE; yields its URL and
    engine."""
    tmp = tmp_path_factory.mktemp("invisible")
    url = migrated_sqlite(tmp)
    app = create_app(load_settings({
        "TRIALNOTARY_INSTANCE_PATH": str(tmp / "instance"), "TRIALNOTARY_DATABASE_URL": url,
        "TRIALNOTARY_CHAIN": "local", "TRIALNOTARY_CHAIN_RPC_URL": anvil.url}))
    engine = engine_of(app)
    add_enrolled_site(engine, TRIAL, SITE)
    add_person(engine, "coordinator@example.org", "coordinator", sites=[SITE])
    with serving(app, threads=4) as base:
        yield base, engine
    engine.dispose()


def test_the_register_page_refuses_a_spoofing_name_before_sending(served, page):
    base, engine = served
    page.goto(f"{base}/login")
    page.get_by_label("E-mail address").fill("coordinator@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{base}/register")
    page.locator("#file-input").set_input_files(
        files=[{"name": SPOOF, "mimeType": "application/octet-stream", "buffer": b"x"}])
    page.locator("#register-message", has_text="hashed").wait_for()
    assert page.locator("#file-list tbody tr td").first.text_content() == SPELLED
    page.get_by_role("button", name="Register").click()
    message = page.locator("#register-message")
    assert message.text_content() == ("Nothing was registered: "
                                      f"{SPELLED}: File name: must not hold the invisible "
                                      "character U+202E")
    page.get_by_label("Label").fill("ADSL\u200b")
    page.get_by_role("button", name="Register").click()
    assert message.text_content() == \
        "Nothing was registered: Label: must not hold the invisible character U+200B"
    page.get_by_label("Label").fill("tab\there")
    page.get_by_role("button", name="Register").click()
    assert message.text_content() == \
        "Nothing was registered: Label: must not hold control characters (U+0009)"
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM submission")).scalar() == 0


def test_the_verify_page_spells_out_a_receipt_label(served, page, tmp_path):
    """A receipt of a registration stored before the rule, read by a reviewer."""
    base, _ = served
    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps(make_receipts([make_record(0, dataset=SPOOF)])[0]),
                       encoding="utf-8")
    page.goto(f"{base}/verify")
    page.locator("#receipt-input").set_input_files(str(receipt))
    status = page.locator("#receipt-status", has_text="receipt.json")
    status.wait_for()
    assert status.text_content() == f"receipt.json: the receipt of {SPELLED} ({TRIAL}, {SITE})."
