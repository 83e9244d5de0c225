"""Download names: every receipt name is made safe when it is built, so the bundle of any
trial always downloads, whatever its labels, trial and site ids and file names."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlmodel import Session

from tests.utils import (
    DATABASES,
    add_person,
    anchor_and_confirm,
    bearer,
    engine_of,
    migrated_database,
    new_app,
    notary_env,
    page_of,
    quick_password_hashing,
    signed_in,
)
from trialnotary.cli import receipts
from trialnotary.filenames import receipt_filename, safe_filename
from trialnotary.notary.merkle import build_levels, proof_from_levels
from trialnotary.people import accounts, sites, user_tokens
from trialnotary.proof.receipt import build_receipt, record_leaf
from trialnotary.validation import (
    CONTROL_OR_SURROGATE,
    MAX_DATASET_CHARS,
    MAX_FILENAME_CHARS,
    PROTOCOL_ID,
    SITE_ID,
    TRIAL_PATTERNS,
    ValidationError,
    normalize_trial_id,
    validate_site_id,
    validate_text,
)
from trialnotary.web.documents.bundle import write_bundle
from trialnotary.web.documents.tables import REPORT_COLUMNS

SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+")
MAX_NAME = 255


def assert_safe(name: str) -> None:
    assert SAFE_NAME.fullmatch(name), name
    assert ".." not in name and not name.startswith("."), name
    assert len(name) <= MAX_NAME, len(name)


# --- what the validators accept ------------------------------------------------------

def free_text(max_chars: int):
    return st.text(max_size=max_chars).filter(
        lambda s: s.strip() and not CONTROL_OR_SURROGATE.search(s))


def dotty_text(max_chars: int):
    """Text heavy in the characters that make names dangerous."""
    return st.text(st.sampled_from("./\\ .._-é数 \u202e:*?\"<>|~"), min_size=1,
                   max_size=max_chars).filter(lambda s: s.strip())


def accepted(validator, value, **options):
    """What ``validator`` makes of ``value``, or ``None`` if it refuses it."""
    try:
        return validator(value, **options)
    except ValidationError:
        return None


def text_accepted(max_chars: int, *, required: bool):
    """What the free-text rule keeps of a value (drawn values it refuses are dropped)."""
    return lambda value: accepted(lambda v: validate_text(v, "text", max_chars,
                                                          required=required), value)


labels = st.one_of(free_text(MAX_DATASET_CHARS), dotty_text(MAX_DATASET_CHARS),
                   st.sampled_from(["Interim results...", "..", ".", "...hidden", "a/../b",
                                    "." * MAX_DATASET_CHARS, "x" * MAX_DATASET_CHARS]),
                   ).map(text_accepted(MAX_DATASET_CHARS, required=True)).filter(bool)
file_names = st.one_of(st.none(), st.one_of(free_text(MAX_FILENAME_CHARS),
                                            dotty_text(MAX_FILENAME_CHARS))
                       .map(text_accepted(MAX_FILENAME_CHARS, required=False)).filter(bool))
trial_ids = st.one_of(
    *[st.from_regex(pattern, fullmatch=True) for pattern in TRIAL_PATTERNS.values()],
    st.from_regex(PROTOCOL_ID, fullmatch=True),
    st.sampled_from(["A" + "." * 63, "0..", "P/../..", "X" * 64]),
).map(lambda t: accepted(normalize_trial_id, t, protocol_id=True)).filter(bool)
site_ids = st.one_of(st.from_regex(SITE_ID, fullmatch=True),
                     st.sampled_from(["..", ".", "...", "-", "." * 64]))


@st.composite
def registrations(draw):
    count = draw(st.integers(min_value=1, max_value=6))
    trial = draw(trial_ids)
    records = []
    for index in range(count):
        records.append({
            "id": str(draw(st.uuids(version=4))), "trial": trial,
            "site": validate_site_id(draw(site_ids)), "kind": "dataset",
            "dataset": draw(labels),
            "sha256": hashlib.sha256(bytes([index])).hexdigest(), "sizeBytes": index,
            "filename": draw(file_names),
            "supersedes": None, "submittedAt": "2026-11-23T18:59:01.123Z",
        })
    return trial, records


def receipts_of(records: list[dict]) -> list[dict]:
    leaves = [record_leaf(record) for record in records]
    levels = build_levels(leaves)
    anchor = {"tx_hash": "ab" * 32, "chain_id": 31337, "sender": "0x" + "12" * 20,
              "block_number": 5, "block_hash": "0x" + "cd" * 32,
              "block_time": "2026-11-23T19:00:12Z"}
    return [build_receipt(record=record, leaf=leaf, root=levels[-1],
                          proof=proof_from_levels(levels, index), anchor=anchor,
                          batch={"id": 1, "leaf_index": index, "leaf_count": len(records),
                                 "sealed_at": "2026-11-23T19:00:00.000Z"})
            for index, (record, leaf) in enumerate(zip(records, leaves, strict=True))]


def report_row(record: dict) -> dict:
    return {**{column: None for column in REPORT_COLUMNS}, **record,
            "status": "confirmed"}


@hypothesis_settings(max_examples=300, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])
@given(registrations())
def test_a_bundle_of_any_registrations_builds_with_safe_unique_names(drawn):
    trial, records = drawn
    receipts = receipts_of(records)
    named = [(receipt_filename(r["trial"], r["dataset"], r["id"]), receipt)
             for r, receipt in zip(records, receipts, strict=True)]
    out = io.BytesIO()
    written = write_bundle(out, trial=trial, generated_at="2026-11-24T08:00:00Z",
                                   receipts=iter(named), rows=[report_row(r) for r in records])
    assert written == len(records)
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as bundle:
        assert bundle.testzip() is None
        names = bundle.namelist()
        assert len({name.casefold() for name in names}) == len(names) == len(records) + 2
        for name in names:
            folder, _, base = name.rpartition("/")
            assert folder in ("", "receipts"), name
            assert_safe(base)
        for (name, _), record in zip(named, records, strict=True):
            assert record["id"] in name
            assert bundle.read(f"receipts/{name}")


@hypothesis_settings(max_examples=2000, deadline=None)
@given(st.one_of(st.text(), st.text(st.sampled_from("./\\_-a "), max_size=600)))
def test_safe_filename_of_any_text_is_safe_and_stable(text):
    name = safe_filename(text)
    assert_safe(name)
    assert safe_filename(name) == name


@hypothesis_settings(max_examples=500, deadline=None)
@given(trial_ids, labels, st.uuids(version=4))
def test_a_receipt_name_follows_the_pattern_and_keeps_its_id(trial, label, uuid):
    name = receipt_filename(trial, label, str(uuid))
    assert_safe(name)
    assert name.endswith(f"_{uuid}.receipt.json")
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", f"{trial}_{label}")
    assert re.sub(r"\.{2,}", ".", stem).startswith(name.removesuffix(f"_{uuid}.receipt.json"))


@pytest.mark.parametrize(("trial", "label", "expected"), [
    ("NCT01234567", "Interim results...", "NCT01234567_Interim_results._{id}.receipt.json"),
    ("NCT01234567", "v1..2/../x", "NCT01234567_v1.2_._x_{id}.receipt.json"),
    ("P..1", "ADSL", "P.1_ADSL_{id}.receipt.json"),
    ("CTRI/2024/01/000123", "a . b", "CTRI_2024_01_000123_a_._b_{id}.receipt.json"),
])
def test_every_run_of_dots_becomes_one_dot(trial, label, expected):
    uuid = "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert receipt_filename(trial, label, uuid) == expected.format(id=uuid)


def test_a_long_label_is_cut_so_the_name_fits_a_file_system():
    uuid = "0f8fad5b-d9cb-469f-a165-70867728950e"
    name = receipt_filename("X" * 64, "é" * MAX_DATASET_CHARS, uuid)
    assert len(name) == MAX_NAME and name.endswith(f"_{uuid}.receipt.json")


@pytest.mark.parametrize("header", ["", "attachment; filename=../x.json",
                                    "attachment; filename=Interim_results..._x.receipt.json"])
def test_the_cli_saves_a_receipt_under_a_safe_name(header):
    uuid = "0f8fad5b-d9cb-469f-a165-70867728950e"

    class Reply:
        headers = {"Content-Disposition": header}

        @staticmethod
        def json():
            return {"trialnotary": {"record": {"trial": "NCT01234567",
                                               "dataset": "Interim results...", "id": uuid}}}

    name = receipts.download_name(Reply())
    assert_safe(name)
    assert name == f"NCT01234567_Interim_results._{uuid}.receipt.json"


@pytest.mark.parametrize("bad", ["A/", "A//B", "A/./B", "A/../B", "A/.B", "A/-B"])
def test_a_protocol_id_has_no_part_a_browser_would_fold_away(bad):
    with pytest.raises(ValidationError):
        normalize_trial_id(bad, protocol_id=True)


@pytest.fixture(scope="module")
def url_map(tmp_path_factory):
    folder = tmp_path_factory.mktemp("routes")
    app = new_app(notary_env(f"sqlite:///{folder / 'unused.sqlite3'}", str(folder),
                             "http://127.0.0.1:9"))
    return app.url_map.bind("")


@hypothesis_settings(max_examples=500, deadline=None)
@given(trial_ids)
def test_the_pages_of_any_trial_have_addresses_a_browser_keeps(url_map, trial):
    for endpoint in ("web.trial_dashboard", "web.trial_bundle", "web.trial_report",
                     "web.trial_timeline", "web.public_timeline", "api.trial_receipts"):
        url = url_map.build(endpoint, {"trial": trial})
        parts = url.split("/")[1:]
        assert "" not in parts and "." not in parts and ".." not in parts, url
        assert url_map.match(url) == (endpoint, {"trial": trial})


# --- through the API and the pages ---------------------------------------------------

ODD_TRIALS = ["NCT01234567", "CTRI/2020/01/123456", "P..1-.A"]
ODD_SITES = ["..", "...", ".hidden"]
ODD_LABELS = ["Interim results...", "..", "../../etc/passwd", ".", "a\\b:c*?"]


@pytest.fixture(params=DATABASES)
def notary(request, tmp_path, anvil):
    with quick_password_hashing(), migrated_database(request, tmp_path) as url:
        app = new_app(notary_env(url, str(tmp_path / "instance"), anvil.url))
        yield app
        engine_of(app).dispose()


def test_odd_labels_and_ids_never_break_the_bundle(notary, anvil):
    engine = engine_of(notary)
    tokens = {}
    with Session(engine) as session:
        for trial in ODD_TRIALS:
            sites.add_trial(session, trial, protocol_id=True)
        for trial, site in zip(ODD_TRIALS, ODD_SITES, strict=True):
            sites.add_site(session, trial, site)
            tokens[trial] = sites.create_token(session, site)
        session.commit()
    add_person(engine, "sponsor@example.org", "sponsor", trials=ODD_TRIALS)
    with Session(engine) as session:
        user_token = user_tokens.create_user_token(
            session, accounts.find_user(session, "sponsor@example.org"), actor="test")
        session.commit()
    api = notary.test_client()
    registered = {}
    for (trial, site), n in zip(zip(ODD_TRIALS, ODD_SITES, strict=True), range(3),
                                strict=True):
        items = [{"trial": trial, "site": site, "dataset": label,
                  "sha256": hashlib.sha256(f"{n} {label}".encode()).hexdigest(),
                  "filename": label} for label in ODD_LABELS]
        response = api.post("/api/v1/submissions/bulk", headers=bearer(tokens[trial]),
                            json={"submissions": items})
        assert response.status_code == 201, response.get_json()
        registered[trial] = response.get_json()["submissions"]
    anchor_and_confirm(notary, anvil)

    web = notary.test_client()
    signed_in(web, "sponsor@example.org")
    for trial in ODD_TRIALS:
        dashboard = web.get(f"/trials/{trial}")
        assert dashboard.status_code == 200, (trial, dashboard.status)
        link = page_of(dashboard).find("a", id="bundle-link")[0]["href"]
        for asker, path, headers in (
                (web, link, {}),
                (api, f"/api/v1/trials/{trial}/receipts.zip", bearer(user_token))):
            response = asker.get(path, headers=headers)
            assert response.status_code == 200, (path, response.status)
            assert response.mimetype == "application/zip"
            disposition = response.headers["Content-Disposition"]
            assert_safe(re.search(r"filename=(\S+)", disposition).group(1))
            with zipfile.ZipFile(io.BytesIO(response.get_data())) as bundle:
                assert bundle.testzip() is None
                receipts = [n for n in bundle.namelist() if n.startswith("receipts/")]
            assert len(receipts) == len(ODD_LABELS)
            for name in receipts:
                assert_safe(name.removeprefix("receipts/"))
            ids = {item["id"] for item in registered[trial]}
            assert {name.rsplit("_", 1)[1].removesuffix(".receipt.json")
                    for name in receipts} == ids
    for item in registered["NCT01234567"]:
        response = api.get(f"/api/v1/submissions/{item['id']}/receipt")
        assert response.status_code == 200
        assert_safe(re.search(r"filename=(\S+)",
                              response.headers["Content-Disposition"]).group(1))
    assert "NCT01234567_Interim_results._" in " ".join(
        zipfile.ZipFile(io.BytesIO(web.get("/trials/NCT01234567/receipts.zip").get_data()))
        .namelist())

