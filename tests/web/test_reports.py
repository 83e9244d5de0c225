"""Downloadable documents: receipt PDFs, audit reports (CSV, JSON, PDF), bundles, QR codes."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
import uuid
import zipfile
from pathlib import Path

import pytest
import segno

from trialnotary.filenames import receipt_filename
from trialnotary.notary.merkle import build_levels, proof_from_levels
from trialnotary.proof.receipt import build_receipt, record_leaf
from trialnotary.web.documents import pdf as plumbing
from trialnotary.web.documents.bundle import write_bundle
from trialnotary.web.documents.qr import qr_svg
from trialnotary.web.documents.receipt_pdf import receipt_pdf
from trialnotary.web.documents.report_pdf import report_pdf
from trialnotary.web.documents.tables import INDEX_COLUMNS, REPORT_COLUMNS, report_csv, report_json

PUBLIC_URL = "https://notary.example.org/submissions/{id}"
EXPLORER = "https://sepolia.etherscan.io/tx/0x{tx}"
SENDER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
UNICODE_LABELS = ("Données — vague 2", "数据集", "emoji 🧪")
LONG_NAME = "very-long-folder/" + "é" * 100 + "_" + "x" * 132 + ".xpt"


# --- fixtures ----------------------------------------------------------------------------

def make_record(index: int, **fields) -> dict:
    record = {
        "id": str(uuid.UUID(int=index + 1, version=4)), "trial": "NCT01234567",
        "site": "SITE-01", "kind": "dataset", "dataset": f"DS{index}",
        "sha256": hashlib.sha256(f"file {index}".encode()).hexdigest(), "sizeBytes": 1000 + index,
        "filename": f"ds{index}.xpt", "supersedes": None,
        "submittedAt": "2026-11-23T18:59:01.123Z",
    }
    return record | fields


NOTARY = {"name": "Example Trials Notary", "url": "https://notary.example.org"}


def make_receipts(records: list[dict], *, batch_id: int = 7) -> list[dict]:
    """Real receipts of one batch: leaves, tree and proofs as the notary builds them
    (version 2, naming the notary)."""
    leaves = [record_leaf(record) for record in records]
    levels = build_levels(leaves)
    anchor = {"tx_hash": hashlib.sha256(f"tx {batch_id}".encode()).hexdigest(),
              "chain_id": 11155111, "sender": SENDER, "block_number": 7_654_321,
              "block_hash": "0x" + hashlib.sha256(f"block {batch_id}".encode()).hexdigest(),
              "block_time": "2026-11-23T19:00:12Z", "name": "sepolia"}
    return [build_receipt(record=record, leaf=leaf, root=levels[-1],
                          proof=proof_from_levels(levels, index), anchor=anchor,
                          batch={"id": batch_id, "leaf_index": index,
                                 "leaf_count": len(records),
                                 "sealed_at": "2026-11-23T19:00:00.000Z"}, notary=NOTARY)
            for index, (record, leaf) in enumerate(zip(records, leaves, strict=True))]


@pytest.fixture
def receipt() -> dict:
    records = [make_record(i) for i in range(5)]
    records[3]["supersedes"] = records[0]["id"]
    return make_receipts(records)[3]


def make_row(index: int, **fields) -> dict:
    """A report row as the lead builds them from the database."""
    record = make_record(index)
    row = {
        "id": record["id"], "trial": record["trial"], "site": f"SITE-{index % 7:02d}",
        "kind": "dataset", "dataset": record["dataset"], "filename": record["filename"],
        "sha256": record["sha256"], "sizeBytes": record["sizeBytes"], "supersedes": None,
        "reason": None, "submittedAt": record["submittedAt"],
        "registeredBy": "alice@site.org (coordinator)",
        "status": "confirmed" if index % 10 else "pending", "batchId": index // 100 + 1,
        "leafIndex": index % 100,
        "txHash": "0x" + hashlib.sha256(f"tx {index // 100}".encode()).hexdigest(),
        "chainId": 11155111, "blockNumber": 7_654_321 + index // 100,
        "blockTime": "2026-11-23T19:00:12Z", "supersededBy": None, "supersededReason": None,
        "signOff": None,
    }
    return row | fields


@pytest.fixture(autouse=True)
def uncompressed(monkeypatch):
    monkeypatch.setattr(plumbing, "COMPRESS", False)


def require_font(path, package: str) -> None:
    if not path.is_file():
        message = f"{path} is missing: apt-get install {package} (make test does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(params=["unicode", "core"])
def font_mode(request, monkeypatch, tmp_path) -> str:
    """Both ways of drawing text: DejaVu Sans, and the core-font fallback (no font files);
    both with Noto Sans CJK for what they lack."""
    require_font(plumbing.CJK_FONT, "fonts-noto-cjk")
    if request.param == "core":
        monkeypatch.setattr(plumbing, "FONT_DIR", tmp_path)
    else:
        require_font(plumbing.FONT_DIR / "DejaVuSans.ttf", "fonts-dejavu-core")
    return request.param


@pytest.fixture
def no_log_warnings(caplog):
    """fpdf2 reports missing glyphs through logging, not ``warnings``: fail on those too."""
    yield
    noisy = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert noisy == []


# --- reading PDFs back ---------------------------------------------------------------------

def pdf_strings(data: bytes) -> list[str]:
    """The text of every text object (BT ... ET) of an uncompressed fpdf2 PDF, decoded.

    Core fonts (Helvetica, Courier) write cp1252 (/WinAnsiEncoding) literal strings. An
    embedded TrueType font is a Type0 font with Identity-H encoding: its strings hold 2-byte
    glyph codes, which only the font's /ToUnicode CMap turns back into text. Decoding through
    that map is what a viewer's search and copy-and-paste do, so the check sees what a reader
    of the PDF gets, in both font modes, without a PDF library.
    """
    objects = {int(num): body for num, body in
               re.findall(rb"(?m)^(\d+) 0 obj\n(.*?)\nendobj", data, re.S)}
    resources = re.search(rb"/Font <<(.*?)>>", data, re.S).group(1)
    cmaps = {}
    for name, num in re.findall(rb"/F(\d+) (\d+) 0 R", resources):
        to_unicode = re.search(rb"/ToUnicode (\d+) 0 R", objects[int(num)])
        if to_unicode:
            stream = objects[int(to_unicode.group(1))]
            cmaps[name] = {
                int(code, 16): bytes.fromhex(text.decode()).decode("utf-16-be")
                for block in re.findall(rb"beginbfchar(.*?)endbfchar", stream, re.S)
                for code, text in re.findall(rb"<([0-9A-Fa-f]+)> <([0-9A-Fa-f]+)>", block)
            }
    strings, font, text_object = [], None, []
    for body in objects.values():
        if b"stream" not in body or b" Tf" not in body:
            continue
        for match in re.finditer(rb"/F(\d+) [\d.]+ Tf|\(((?:[^\\)]|\\.)*)\) Tj|\bET\b",
                                 body, re.S):
            if match.group(1):
                font = match.group(1)
            elif match.group(2) is not None:
                raw = _unescape(match.group(2))
                if font in cmaps:
                    codes = [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]
                    text_object.append("".join(cmaps[font][code] for code in codes))
                else:
                    text_object.append(raw.decode("cp1252"))
            elif text_object:
                strings.append("".join(text_object))
                text_object = []
    return strings


_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def _unescape(raw: bytes) -> bytes:
    def one(match):
        code = match.group(1)
        if code.isdigit():
            return bytes([int(code, 8)])
        return _ESCAPES.get(code, code)
    return re.sub(rb"\\([0-7]{1,3}|.)", one, raw, flags=re.S)


def page_count(data: bytes) -> int:
    return int(re.search(rb"/Count (\d+)", data).group(1))


def qr_cells_in_pdf(data: bytes) -> set[tuple[int, int]]:
    """(row, column) of the dark modules drawn as filled rectangles (``re f``)."""
    rects = [tuple(map(float, found)) for found in
             re.findall(rb"([\d.]+) ([\d.]+) ([\d.]+) (-[\d.]+) re f", data)]
    module = min(-h for _, _, _, h in rects)
    left = min(x for x, _, _, _ in rects)
    top = max(y for _, y, _, _ in rects)
    cells = set()
    for x, y, w, _ in rects:
        row, column = round((top - y) / module), round((x - left) / module)
        cells.update((row, column + i) for i in range(round(w / module)))
    return cells


def qr_cells_in_svg(svg: str) -> set[tuple[int, int]]:
    """(row, column) of the dark modules of segno's path: horizontal strokes, one per run."""
    path = re.search(r' d="([^"]+)"', svg).group(1)
    x = y = 0.0
    drawn = []
    for op, a, b in re.findall(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?", path):
        if op == "M":
            x, y = float(a), float(b)
        elif op == "m":
            x, y = x + float(a), y + float(b)
        else:
            drawn.append((int(y), int(x), int(float(a))))
            x += float(a)
    top, left = min(row for row, _, _ in drawn), min(col for _, col, _ in drawn)
    return {(row - top, col - left + i) for row, col, length in drawn for i in range(length)}


def segno_cells(url: str) -> set[tuple[int, int]]:
    matrix = segno.make_qr(url, error="m").matrix
    return {(r, c) for r, row in enumerate(matrix) for c, dark in enumerate(row) if dark}


# --- QR codes --------------------------------------------------------------------------

def test_qr_svg_is_an_inline_titled_svg_of_the_url():
    url = "https://notary.example.org/submissions/3f1c2a9e?a=1&b=2"
    svg = qr_svg(url)
    assert svg.startswith('<svg role="img" ') and "<?xml" not in svg
    assert "viewBox=" in svg
    assert f"<title>QR code for {url.replace('&', '&amp;')}</title>" in svg
    assert qr_cells_in_svg(svg) == segno_cells(url)
    assert qr_cells_in_svg(svg) != segno_cells(url + "x")


# --- receipt PDF -------------------------------------------------------------------------

def test_receipt_pdf_shows_the_record_the_times_and_the_anchor(receipt, font_mode,
                                                                no_log_warnings):
    record = receipt["trialnotary"]["record"]
    anchor = receipt["anchors"][0]
    url = PUBLIC_URL.format(id=record["id"])
    explorer = EXPLORER.format(tx=anchor["sourceId"])
    data = receipt_pdf(receipt, public_url=url, explorer_url=explorer)

    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert page_count(data) == 1
    text = "\n".join(pdf_strings(data))
    for expected in (
        "Registration receipt", record["trial"], record["site"], record["dataset"],
        record["filename"], f"{record['sizeBytes']} bytes", record["sha256"], record["id"],
        record["supersedes"],
        "Proven time (block time): 2026-11-23T19:00:12Z UTC \u2014 proven by the Ethereum block",
        "Submitted (the notary's claim, not proven): 2026-11-23T18:59:01.123Z",
        "ethereumSepolia (chain 11155111)", "0x" + anchor["sourceId"], "7654321",
        anchor["blockHash"], SENDER, receipt["merkleRoot"], "index 3 of 5 leaves",
        "trialnotary verify <file>.receipt.json --file <the file> --rpc <node>",
        "without trusting the notary", "What it does not prove", "authoritative proof",
        "page 1 of 1", "Issued by", "Example Trials Notary \u2014 https://notary.example.org",
        "--notary", "pins the notary's published identity",
    ):
        assert expected in text, expected
    # Long URLs wrap over several lines; their links carry them whole.
    assert f"/URI ({url})".encode() in data
    assert f"/URI ({explorer})".encode() in data


def test_receipt_pdf_draws_the_qr_code_of_the_public_url(receipt, no_log_warnings):
    url = PUBLIC_URL.format(id=receipt["trialnotary"]["record"]["id"])
    data = receipt_pdf(receipt, public_url=url)
    assert qr_cells_in_pdf(data) == segno_cells(url)
    assert b"/Subtype /Image" not in data
    assert "Block explorer" not in pdf_strings(data)


def test_receipt_pdf_stays_on_one_page_with_the_longest_fields(font_mode, no_log_warnings):
    record = make_record(0, dataset=" ".join(UNICODE_LABELS) + " " + "d" * 170,
                         filename=LONG_NAME, supersedes=str(uuid.uuid4()))
    receipt = make_receipts([record, make_record(1)])[0]
    data = receipt_pdf(receipt, public_url="https://notary.example.org/s/" + "u" * 180,
                               explorer_url="https://explorer.example.org/tx/" + "e" * 150)
    assert page_count(data) == 1
    page_height = float(re.search(rb"/MediaBox \[0 0 [\d.]+ ([\d.]+)\]", data).group(1))
    baselines = [float(y) for y in re.findall(rb"BT [\d.]+ (-?[\d.]+) Td", data)]
    assert baselines and all(10 < y < page_height - 10 for y in baselines)


def test_receipt_pdf_refuses_what_is_not_a_receipt(receipt):
    plain = {key: value for key, value in receipt.items() if key != "trialnotary"}
    with pytest.raises(ValueError, match="not a trialnotary receipt"):
        receipt_pdf(plain, public_url="https://notary.example.org/")


# --- text fitting --------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "", "short", LONG_NAME, " ".join(UNICODE_LABELS) * 4, "a b " * 80,
    "folder/sub-folder/" * 12, "W" * 300,
])
def test_text_is_wrapped_and_cut_to_fit_its_box(text, font_mode):
    pdf = plumbing.Pdf()
    pdf.use(plumbing.SANS, 8)
    for width, max_lines in ((30, 1), (30, 3), (100, 2), (2, 2)):
        lines = pdf.lines(text, width, max_lines)
        assert 1 <= len(lines) <= max_lines
        assert all(pdf.width_of(line) <= width + 1e-6 for line in lines if len(line) > 1)
        whole = "".join(lines).replace(" ", "")
        if whole.endswith("\u2026"):
            assert len(lines) == max_lines
        else:
            assert whole == pdf.clean(text).replace(" ", "")


# --- CSV and JSON reports ------------------------------------------------------------------

def test_report_csv_has_the_columns_and_every_row():
    rows = [make_row(i) for i in range(3)]
    rows[1] |= {"dataset": UNICODE_LABELS[0], "reason": 'typo, "fixed"\nsecond line',
                "supersedes": rows[0]["id"], "txHash": None, "blockTime": None}
    parsed = list(csv.reader(io.StringIO(report_csv(rows))))
    assert tuple(parsed[0]) == REPORT_COLUMNS
    expected = [["" if row[key] is None else str(row[key]) for key in REPORT_COLUMNS]
                for row in rows]
    assert parsed[1:] == expected


def test_report_columns_are_the_row_keys_in_order():
    assert REPORT_COLUMNS == tuple(make_row(0))


@pytest.mark.parametrize("value", ["=HYPERLINK(\"http://evil\")", "+1+2", "-2+3", "@SUM(A1)",
                                   "\tx", "\rx"])
def test_report_csv_defuses_formulas_in_text_cells(value):
    row = make_row(0, dataset=value, filename=value, registeredBy=value, reason=value)
    parsed = dict(zip(REPORT_COLUMNS,
                      list(csv.reader(io.StringIO(report_csv([row]))))[1], strict=True))
    for key in ("dataset", "filename", "registeredBy", "reason"):
        assert parsed[key] == "'" + value
    assert parsed["sha256"] == row["sha256"] and parsed["txHash"] == row["txHash"]


def test_report_csv_leaves_numbers_and_plain_text_alone():
    row = make_row(0, sizeBytes=-1, blockNumber=0, dataset="a=b", filename="x-1.xpt")
    parsed = dict(zip(REPORT_COLUMNS,
                      list(csv.reader(io.StringIO(report_csv([row]))))[1], strict=True))
    assert (parsed["sizeBytes"], parsed["blockNumber"]) == ("-1", "0")
    assert (parsed["dataset"], parsed["filename"]) == ("a=b", "x-1.xpt")


def test_report_json_shape():
    rows = (make_row(i) for i in range(4))
    report = report_json(trial="NCT01234567", title=None,
                                 generated_at="2026-11-24T08:00:00Z", rows=rows)
    assert report == {"trial": "NCT01234567", "title": None,
                      "generatedAt": "2026-11-24T08:00:00Z", "count": 4,
                      "registrations": [make_row(i) for i in range(4)]}
    json.dumps(report)


# --- audit report PDF ----------------------------------------------------------------------

def test_report_pdf_of_thousands_of_rows_has_numbered_pages_and_repeated_headers(
        font_mode, no_log_warnings):
    rows = [make_row(i) for i in range(2000)]
    rows[5] |= {"dataset": UNICODE_LABELS[0], "supersedes": rows[1]["id"]}
    rows[1] |= {"supersededBy": rows[5]["id"]}
    data = report_pdf(trial="NCT01234567", title="Dose finding — étude",
                              generated_at="2026-11-24T08:00:00Z",
                              chain="ethereumSepolia (chain 11155111)", rows=rows)
    assert data.startswith(b"%PDF-")
    pages = page_count(data)
    assert pages >= 10
    strings = pdf_strings(data)
    text = "\n".join(strings)
    assert f"page 1 of {pages}" in text and f"page {pages} of {pages}" in text
    assert strings.count("Block time (proven)") == pages
    ellipsis = "\u2026"
    for expected in (
        "NCT01234567", "2026-11-24T08:00:00Z (UTC)", "ethereumSepolia (chain 11155111)",
        "2000 (pending 200, confirmed 1800)", rows[1999]["sha256"][:16] + ellipsis,
        rows[1999]["txHash"][:12] + ellipsis,
        rows[1999]["submittedAt"], rows[1999]["filename"], "alice@site.org (coordinator)",
        rows[5]["id"][:8] + ellipsis,
    ):
        assert expected in strings, expected
    assert f"corrects {rows[1]['id'][:8]}{ellipsis}" in " ".join(strings)
    assert rows[1999]["sha256"] not in text
    assert "superseded" in text  # row 1 says what corrected it


def test_report_pdf_without_rows_says_so(font_mode):
    data = report_pdf(trial="NCT01234567", title=None,
                              generated_at="2026-11-24T08:00:00Z", chain="ethereumLocal",
                              rows=[])
    assert page_count(data) == 1
    assert "No registrations." in pdf_strings(data)


def test_unicode_text_renders_in_both_font_modes(receipt, font_mode, no_log_warnings):
    """Latin text keeps its accents, Chinese comes from Noto Sans CJK; what no font has
    becomes a replacement character.

    No font has the emoji: it shows as U+FFFD rather than making fpdf2 log "missing glyphs"
    and draw nothing. The core fonts only know cp1252, and have "?" for the rest.
    """
    rows = [make_row(i, dataset=label, filename=LONG_NAME, registeredBy=label, reason=label)
            for i, label in enumerate(UNICODE_LABELS + ("{nb} pages",))]
    data = report_pdf(trial="NCT01234567", title=" ".join(UNICODE_LABELS),
                              generated_at="2026-11-24T08:00:00Z", chain="ethereumLocal",
                              rows=rows)
    strings = pdf_strings(data)
    missing = "\ufffd" if font_mode == "unicode" else "?"
    shown = ["Données — vague 2", "数据集", f"emoji {missing}"]
    assert set(shown) <= set(strings)
    assert "{nb} pages" in strings
    assert "very-long-folder/" in strings
    assert any(line.startswith("é" * 15) and line.endswith("\u2026") for line in strings)

    record = receipt["trialnotary"]["record"]
    record |= {"dataset": " ".join(UNICODE_LABELS), "filename": LONG_NAME}
    pdf = receipt_pdf(receipt, public_url="https://notary.example.org/")
    # One line, drawn in runs of each font: consecutive text objects.
    assert " ".join(shown) in "".join(pdf_strings(pdf))


CJK_TEXT = "臨床試験データ 第2版"  # jRCT: Japanese; ChiCTR below: simplified Chinese


@pytest.mark.parametrize("trial, text, face", [
    ("jRCT2031210001", CJK_TEXT, b"NotoSansCJKJP"),
    ("ChiCTR2100041234", "中国临床试验数据集", b"NotoSansCJKSC"),
])
def test_cjk_labels_are_drawn_with_their_glyphs_embedded(font_mode, no_log_warnings, trial,
                                                          text, face):
    label = text[:4]
    rows = [make_row(i, trial=trial, dataset=label, filename=f"{label}.xpt") for i in range(3)]
    data = report_pdf(trial=trial, title=text, generated_at="2026-11-24T08:00:00Z",
                              chain="ethereumLocal", rows=rows)
    drawn = "".join(pdf_strings(data))  # a line mixing fonts is drawn in runs
    assert text in drawn and f"{label}.xpt" in drawn and label in pdf_strings(data)
    assert face in data and b"/FontFile3" in data  # the CJK face, embedded (CFF outlines)
    receipt = make_receipts([make_record(0, trial=trial, dataset=text)])[0]
    assert text in "".join(pdf_strings(receipt_pdf(receipt,
                                                          public_url="https://n.example/")))


def test_cjk_adds_kilobytes_not_the_font(font_mode, monkeypatch):
    """fpdf2 embeds only the glyphs used: a CJK report stays small."""
    rows = [make_row(i, dataset=f"{CJK_TEXT} {i}") for i in range(50)]
    monkeypatch.setattr(plumbing, "COMPRESS", True)
    data = report_pdf(trial="jRCT2031210001", title=None,
                              generated_at="2026-11-24T08:00:00Z", chain="x", rows=rows)
    assert len(data) < 200_000


def test_without_the_cjk_font_cjk_shows_as_a_visible_replacement(monkeypatch, tmp_path):
    require_font(plumbing.FONT_DIR / "DejaVuSans.ttf", "fonts-dejavu-core")
    monkeypatch.setattr(plumbing, "CJK_FONT", tmp_path / "NotoSansCJK-Regular.ttc")
    data = report_pdf(trial="jRCT2031210001", title=None,
                              generated_at="2026-11-24T08:00:00Z", chain="x",
                              rows=[make_row(0, dataset="数据集")])
    assert "\ufffd" * 3 in pdf_strings(data) and b"NotoSansCJK" not in data


def test_a_latin_document_does_not_load_the_cjk_font(font_mode):
    data = report_pdf(trial="NCT01234567", title="t", generated_at="2026-11-24T08:00:00Z",
                              chain="x", rows=[make_row(0)])
    assert b"NotoSansCJK" not in data


def test_the_report_pdf_says_why_a_correction_was_made(font_mode, no_log_warnings):
    rows = [make_row(0), make_row(1, supersedes=make_row(0)["id"], reason="typo in label"),
            make_row(2, supersededBy=make_row(3)["id"])]
    strings = pdf_strings(report_pdf(
        trial="NCT01234567", title=None, generated_at="2026-11-24T08:00:00Z", chain="x",
        rows=rows))
    text = " ".join(strings)  # a cell's lines, broken at spaces
    assert f"corrects {rows[0]['id'][:8]}\u2026: typo in label" in text
    assert f"superseded by {make_row(3)['id'][:8]}\u2026" in text
    assert "Correction" in strings


def test_the_core_fonts_are_used_without_font_files(monkeypatch):
    monkeypatch.setattr(plumbing, "FONT_DIR", None)
    data = report_pdf(trial="NCT01234567", title="t", generated_at="2026-11-24T08:00:00Z",
                              chain="ethereumLocal", rows=[make_row(0)])
    assert b"/BaseFont /Helvetica" in data and b"DejaVu" not in data


# --- receipts bundle ---------------------------------------------------------------------

def bundle_receipts(count: int) -> list[tuple[str, dict]]:
    receipts = make_receipts([make_record(i, dataset=UNICODE_LABELS[i % 3]) for i in range(count)])
    return [(receipt_filename(r["trialnotary"]["record"]["trial"],
                              r["trialnotary"]["record"]["dataset"],
                              r["trialnotary"]["record"]["id"]), r) for r in receipts]


def test_bundle_holds_each_receipt_the_index_and_how_to_verify():
    named = bundle_receipts(5)
    rows = [make_row(i) for i in range(5)]
    out = io.BytesIO()
    written = write_bundle(out, trial="NCT01234567", generated_at="2026-11-24T08:00:00Z",
                                   receipts=(pair for pair in named), rows=rows)
    assert written == 5
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as bundle:
        assert bundle.testzip() is None
        names = bundle.namelist()
        assert sorted(names) == sorted(["HOW-TO-VERIFY.txt", "index.csv"]
                                       + [f"receipts/{name}" for name, _ in named])
        assert {info.compress_type for info in bundle.infolist()} == {zipfile.ZIP_DEFLATED}
        assert {info.date_time for info in bundle.infolist()} == {(2026, 11, 24, 8, 0, 0)}
        for name, receipt in named:
            text = bundle.read(f"receipts/{name}").decode("utf-8")
            assert json.loads(text) == receipt
            assert text.endswith("}\n") and '\n  "@context": ' in text
        index = list(csv.DictReader(io.StringIO(bundle.read("index.csv").decode("utf-8"))))
        how = bundle.read("HOW-TO-VERIFY.txt").decode("utf-8")
    # index.csv: the report's columns, and each row's receipt file inside the zip.
    assert list(index[0]) == list(INDEX_COLUMNS)
    assert [row.pop("receiptFile") for row in index] == [f"receipts/{n}" for n, _ in named]
    assert index == list(csv.DictReader(io.StringIO(report_csv(rows))))
    for expected in ("NCT01234567", "trialnotary verify", "pip install trialnotary", "--file",
                     "--rpc", f"--expect-sender {SENDER}", "/verify", "WHAT IT DOES NOT PROVE",
                     "proven time", f"sent from:\n\n    {SENDER}\n", "receiptFile"):
        assert expected in how, expected


def _bundle_texts(**kwargs) -> tuple[list[dict], str]:
    out = io.BytesIO()
    write_bundle(out, trial="NCT01234567", generated_at="2026-11-24T08:00:00Z",
                         **kwargs)
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as bundle:
        return (list(csv.DictReader(io.StringIO(bundle.read("index.csv").decode()))),
                bundle.read("HOW-TO-VERIFY.txt").decode())


def test_a_row_without_a_receipt_names_no_file_and_the_how_to_names_the_notary():
    notary = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
    index, how = _bundle_texts(receipts=[], rows=[make_row(0)], anchoring_address=notary)
    assert index[0]["receiptFile"] == ""
    assert f"The notary anchors from:\n\n    {notary}" in how
    assert f"--expect-sender {notary}" in how
    _, how = _bundle_texts(receipts=[], rows=[])
    assert "--expect-sender <the notary's published anchoring address>" in how


def test_the_how_to_lists_every_address_that_anchored_the_receipts():
    first, second = bundle_receipts(2)
    second[1]["anchors"][0]["sender"] = ANOTHER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
    _, how = _bundle_texts(receipts=[first, second], rows=[], anchoring_address="0xignored")
    assert f"    {SENDER}\n    {ANOTHER}\n" in how and "0xignored" not in how
    assert "--expect-sender <the receipt's address above>" in how


def test_bundle_streams_to_an_unseekable_file_and_takes_a_custom_note():
    class Pipe(io.RawIOBase):
        def __init__(self):
            self.chunks = []

        def writable(self):
            return True

        def write(self, data):
            self.chunks.append(bytes(data))
            return len(data)

    pipe = Pipe()
    written = write_bundle(pipe, trial="NCT01234567",
                                   generated_at="2026-11-24T08:00:00+01:00",
                                   receipts=iter(bundle_receipts(3)), rows=[],
                                   how_to_verify="Ask the sponsor.\n")
    assert written == 3
    with zipfile.ZipFile(io.BytesIO(b"".join(pipe.chunks))) as bundle:
        assert bundle.read("HOW-TO-VERIFY.txt") == b"Ask the sponsor.\n"
        assert bundle.read("index.csv").decode().strip() == ",".join(INDEX_COLUMNS)
        assert bundle.getinfo("index.csv").date_time == (2026, 11, 24, 7, 0, 0)


@pytest.mark.parametrize(("given", "written"), [
    ("../evil.receipt.json", "__evil.receipt.json"), ("a/b.receipt.json", "a_b.receipt.json"),
    ("a\\b.json", "a_b.json"), ("..", "_"), ("x..receipt.json", "x.receipt.json"), ("", "_"),
    ("tab\there.json", "tab_here.json"), (".hidden", "_hidden")])
def test_bundle_makes_unsafe_names_safe_as_it_writes_them(given, written):
    receipt = bundle_receipts(1)[0][1]
    out = io.BytesIO()
    assert write_bundle(out, trial="NCT01234567", generated_at="2026-11-24T08:00:00Z",
                                receipts=[(given, receipt)], rows=[]) == 1
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as bundle:
        assert json.loads(bundle.read(f"receipts/{written}")) == receipt


@pytest.mark.parametrize("second", ["same.receipt.json", "SAME.receipt.json"])
def test_bundle_numbers_a_repeated_name(second):
    first, other = (receipt for _, receipt in bundle_receipts(2))
    out = io.BytesIO()
    write_bundle(out, trial="NCT01234567", generated_at="2026-11-24T08:00:00Z",
                         receipts=[("same.receipt.json", first), (second, other),
                                   ("same_2.receipt.json", first)], rows=[])
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as bundle:
        names = [name for name in bundle.namelist() if name.startswith("receipts/")]
        assert names == ["receipts/same.receipt.json", f"receipts/{second.split('.')[0]}_2"
                         ".receipt.json", "receipts/same_2_2.receipt.json"]
        assert json.loads(bundle.read(names[1])) == other


@pytest.mark.parametrize("module", sorted(Path(plumbing.__file__).parent.glob("*.py")),
                         ids=lambda path: path.name)
def test_documents_have_no_web_or_database_imports(module):
    source = module.read_text()
    assert not re.search(r"^\s*(from|import) (flask|sqlmodel|sqlalchemy)", source, re.M)
