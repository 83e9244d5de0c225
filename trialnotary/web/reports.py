"""Documents people download: receipt PDFs, trial audit reports, receipt bundles, QR codes.

Pure functions over plain data (receipt dicts and report rows), nothing about Flask or the
database. The JSON receipt stays the proof; everything here is a readable copy or a listing.

PDF text goes through fpdf2 with DejaVu Sans when its files are installed (Debian's
``fonts-dejavu-core``), else through the PDF core fonts, which only know cp1252. What that
font lacks is drawn from Noto Sans CJK when installed (Debian's ``fonts-noto-cjk``): the
Chinese, Japanese and Korean of jRCT or ChiCTR labels. fpdf2 embeds only the glyphs used, so
a PDF grows by a few kilobytes, and the collection is read only for a document that needs it.
Every string is cleaned for the fonts before it is drawn: a character none has a glyph for
becomes a replacement character. fpdf2 would otherwise raise (core fonts) or log "missing
glyphs" and draw nothing (TrueType), and a label may hold any Unicode: emoji, or CJK without
the font, show as U+FFFD (or "?") in the PDF while the CSV and JSON keep them.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import segno
from fontTools.ttLib import TTFont
from fpdf import FPDF

from trialnotary.filenames import MAX_FILENAME, safe_filename
from trialnotary.validation import show_invisible

#: Compress PDF content streams. Tests switch it off to read the drawn text back.
COMPRESS = True
#: Where DejaVuSans.ttf and DejaVuSans-Bold.ttf are looked for; ``None`` forces core fonts.
FONT_DIR: Path | None = Path("/usr/share/fonts/truetype/dejavu")
#: The CJK collection (its bold sibling beside it, ``-Bold``); ``None`` turns it off.
CJK_FONT: Path | None = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
#: The collection's faces: one set of characters, each region's forms of them. ChiCTR
#: (China) reads simplified Chinese; jRCT and every other registry the Japanese forms.
CJK_FACES = {"JP": 0, "KR": 1, "SC": 2, "TC": 3}

REPORT_COLUMNS = (
    "id", "trial", "site", "kind", "dataset", "filename", "sha256", "sizeBytes", "supersedes",
    "reason", "submittedAt", "registeredBy", "status", "batchId", "leafIndex", "txHash",
    "chainId", "blockNumber", "blockTime", "supersededBy", "supersededReason",
)
#: A bundle's ``index.csv``: the report's columns and where each row's receipt is in the zip.
INDEX_COLUMNS = (*REPORT_COLUMNS, "receiptFile")

STATUS_ORDER = ("pending", "sealed", "sent", "confirmed")


# --- QR codes ----------------------------------------------------------------------------

def _qr(url: str) -> segno.QRCode:
    # segno.make would pick a Micro QR for short data, which many phone cameras cannot read.
    return segno.make_qr(url, error="m")


def qr_svg(url: str) -> str:
    """An inline ``<svg>`` QR code of ``url`` that scales with CSS and has a ``<title>``."""
    svg = _qr(url).svg_inline(title=f"QR code for {url}", omitsize=True, svgclass="qr",
                              lineclass=None)
    return svg.replace("<svg ", '<svg role="img" ', 1)


# --- CSV and JSON reports --------------------------------------------------------------

_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str | int | float:
    """A report value as a CSV cell, defused against formula injection (OWASP).

    Only text is prefixed with ``'``: numbers keep their value, and hashes and timestamps
    never start with a trigger character.
    """
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_TRIGGERS):
        return "'" + value
    return value


#: Put first, it tells spreadsheet programs (Excel above all) that the text is UTF-8.
BOM = "\ufeff"


def to_csv(lines: Iterable[Iterable], *, bom: bool = False) -> str:
    """Lines of cells as CSV text, every cell defused (:func:`csv_cell`); with ``bom``, a
    UTF-8 byte order mark first, for spreadsheet programs."""
    out = io.StringIO()
    if bom:
        out.write(BOM)
    writer = csv.writer(out)
    for line in lines:
        writer.writerow([csv_cell(value) for value in line])
    return out.getvalue()


def report_csv(rows: Iterable[dict], *, columns: tuple[str, ...] = REPORT_COLUMNS,
               bom: bool = False) -> str:
    """The registrations as CSV: a header of ``columns``, one line per row."""
    return to_csv([columns, *([row.get(key) for key in columns] for row in rows)], bom=bom)


def report_json(*, trial: str, title: str | None, generated_at: str, rows: Iterable[dict]) -> dict:
    registrations = list(rows)
    return {"trial": trial, "title": title, "generatedAt": generated_at,
            "count": len(registrations), "registrations": registrations}


# --- PDF plumbing ------------------------------------------------------------------------

SANS, BOLD, MONO = "sans", "bold", "mono"
_CORE_FACES = {SANS: ("helvetica", ""), BOLD: ("helvetica", "B"), MONO: ("courier", "")}
_TTF_FILES = {SANS: "DejaVuSans.ttf", BOLD: "DejaVuSans-Bold.ttf", MONO: "DejaVuSansMono.ttf"}
_TTF_FAMILIES = {SANS: ("dejavu", ""), BOLD: ("dejavu", "B"), MONO: ("dejavumono", "")}

#: Total page count placeholder. User text can never contain it: cleaning removes controls.
_NB_PAGES = "\x00nb\x00"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: The core fonts are declared /WinAnsiEncoding: cp1252, Latin-1 plus dashes, quotes, "…".
_CORE_ENCODING = "cp1252"
_CORE_GLYPHS = frozenset(map(ord, bytes(range(32, 256)).decode(_CORE_ENCODING, "ignore")))
_PT = 25.4 / 72


def _font_files() -> dict[str, Path] | None:
    if FONT_DIR is None:
        return None
    files = {face: FONT_DIR / name for face, name in _TTF_FILES.items()}
    if not (files[SANS].is_file() and files[BOLD].is_file()):
        return None
    if not files[MONO].is_file():
        files[MONO] = files[SANS]
    return files


@lru_cache(maxsize=8)
def _glyphs(path: Path, number: int = 0) -> frozenset[int]:
    """The characters a font file (``number`` in a collection) has glyphs for."""
    with TTFont(path, lazy=True, fontNumber=number) as font:
        return frozenset(font.getBestCmap())


def cjk_region(trial: str | None) -> str:
    """Which regional forms of Chinese characters suit a trial: by its registry."""
    return "SC" if (trial or "").upper().startswith("CHICTR") else "JP"


class _Fallback:
    """The CJK font, added to a document the first time it needs a glyph of it."""

    FAMILY = "notocjk"

    def __init__(self, pdf: FPDF, region: str):
        self.pdf = pdf
        self.number = CJK_FACES[region]
        self.path = CJK_FONT if CJK_FONT is not None and CJK_FONT.is_file() else None
        self.styles: set[str] = set()

    def has(self, char: str) -> bool:
        return self.path is not None and ord(char) in _glyphs(self.path, self.number)

    def use(self, style: str) -> None:
        """Select the fallback font at the current size, bold when ``style`` is "B"."""
        if style not in self.styles:
            bold = self.path.with_name(self.path.name.replace("-Regular", "-Bold"))
            file = bold if style == "B" and bold.is_file() else self.path
            self.pdf.add_font(self.FAMILY, style, str(file), collection_font_number=self.number)
            self.styles.add(style)
        self.pdf.set_font(self.FAMILY, style, self.pdf.font_size_pt)


class _Pdf(FPDF):
    """An A4 page set with our fonts, text cleaning, cached widths and a numbered footer."""

    def __init__(self, *, orientation: str = "P", footer: str = "", margin: float = 12,
                 region: str = "JP"):
        super().__init__(orientation=orientation, unit="mm", format="A4")
        self.fallback = _Fallback(self, region)
        self.set_compression(COMPRESS)
        self.set_margins(margin, margin, margin)
        # Pages break where we decide, so a table row never splits and its header repeats.
        self.set_auto_page_break(False, margin=margin + 6)
        self.alias_nb_pages(_NB_PAGES)
        self.set_creator("trialnotary")
        self.core_fonts_encoding = _CORE_ENCODING
        self.footer_text = footer
        self.on_new_page: Callable[[], None] | None = None
        self._faces: dict[str, tuple[str, str]] = {}
        self._glyph_sets: dict[str, frozenset[int]] = {}
        files = _font_files()
        if files is None:
            self._faces = dict(_CORE_FACES)
        else:
            added: dict[Path, tuple[str, str]] = {}
            for face, path in files.items():
                if path not in added:
                    added[path] = _TTF_FAMILIES[face]
                    self.add_font(*added[path], str(path))
                self._faces[face] = added[path]
                self._glyph_sets[face] = _glyphs(path)
        self._face = SANS
        self._widths: dict[str, float] = {}
        self._width_cache: dict[tuple[str, float], dict[str, float]] = {}
        self.use(SANS, 9)

    def use(self, face: str, size: float) -> None:
        family, style = self._faces[face]
        self.set_font(family, style, size)
        self._face = face
        self._widths = self._width_cache.setdefault((face, size), {})

    def clean(self, text) -> str:
        """``text`` as the current font can draw it: one line, every character drawable,
        invisible ones spelled out (``<U+202E>``) so that the page shows what is stored."""
        text = unicodedata.normalize("NFC", _CONTROL.sub(" ", "" if text is None else str(text)))
        text = show_invisible(text)
        glyphs = self._glyph_sets.get(self._face, _CORE_GLYPHS)
        replacement = "\ufffd" if 0xFFFD in glyphs else "?"
        return "".join(
            char if ord(char) in glyphs
            else char if self.fallback.has(char)
            else replacement
            for char in text
        )

    def _primary_has(self, char: str) -> bool:
        return ord(char) in self._glyph_sets.get(self._face, _CORE_GLYPHS)

    def char_width(self, char: str) -> float:
        width = self._widths.get(char)
        if width is None:
            if self._primary_has(char):
                width = self.get_string_width(char)
            else:
                width = self._in_fallback(lambda: self.get_string_width(char))
            self._widths[char] = width
        return width

    def width_of(self, text: str) -> float:
        """The width of a cleaned line as :meth:`draw` draws it, in mm."""
        return sum(self.char_width(char) for char in text)

    def _in_fallback(self, action):
        """Run ``action`` with the fallback font selected, then the current face again."""
        family, style = self._faces[self._face]
        self.fallback.use("B" if "B" in style else "")
        try:
            return action()
        finally:
            self.set_font(family, style, self.font_size_pt)

    def draw(self, x: float, y: float, line: str) -> None:
        """Draw a cleaned line at baseline ``y``: runs of the current font, and runs of the
        fallback font for what the current one has no glyph for."""
        start = 0
        while start < len(line):
            primary = self._primary_has(line[start])
            end = start + 1
            while end < len(line) and self._primary_has(line[end]) == primary:
                end += 1
            run = line[start:end]
            if primary:
                self.text(x, y, run)
            else:
                self._in_fallback(lambda x=x, run=run: self.text(x, y, run))
            x += self.width_of(run)
            start = end

    def lines(self, text, width: float, max_lines: int = 1) -> list[str]:
        """``text`` cleaned and wrapped into ``width`` mm, at most ``max_lines`` lines.

        Breaks after spaces and ``/ _ -`` where it can, anywhere in a long word otherwise;
        cut text ends with an ellipsis. Widths add up per character (no kerning in fpdf2
        without text shaping), which keeps thousands of table cells fast.
        """
        text = self.clean(text)
        lines: list[str] = []
        start, used, last_break, i = 0, 0.0, -1, 0
        while i < len(text):
            char_w = self.char_width(text[i])
            if used + char_w > width and i > start:
                cut = last_break + 1 if last_break >= start else i
                lines.append(text[start:cut].rstrip())
                start = cut
                while start < len(text) and text[start] == " ":
                    start += 1
                if len(lines) == max_lines:
                    if start < len(text):
                        lines[-1] = self._with_ellipsis(lines[-1], width)
                    return lines
                i, used, last_break = start, 0.0, -1
                continue
            if text[i] in " /_-":
                last_break = i
            used += char_w
            i += 1
        lines.append(text[start:])
        return lines

    def _with_ellipsis(self, line: str, width: float) -> str:
        mark = "\u2026"
        limit = width - self.char_width(mark)
        used, end = 0.0, 0
        while end < len(line) and used + self.char_width(line[end]) <= limit:
            used += self.char_width(line[end])
            end += 1
        return line[:end].rstrip() + mark

    def put(self, x: float, y: float, width: float, text, *, max_lines: int = 1,
            line_height: float | None = None, link: str | None = None) -> float:
        """Draw wrapped text with its top at ``y``; the height used, in mm."""
        height = line_height or self.font_size * 1.3
        lines = self.lines(text, width, max_lines)
        for index, line in enumerate(lines):
            if line:
                self.draw(x, y + index * height + 0.5 * height + 0.3 * self.font_size, line)
        if link:
            self.link(x, y, width, height * len(lines), link)
        return height * len(lines)

    def header(self) -> None:
        if self.on_new_page is not None:
            self.on_new_page()

    def footer(self) -> None:
        self.use(SANS, 7)
        self.set_text_color(90)
        self.set_xy(self.l_margin, self.h - self.b_margin + 2)
        width = self.w - self.l_margin - self.r_margin
        self.put(self.l_margin, self.get_y(), width - 30, self.footer_text)
        self.set_xy(self.w - self.r_margin - 30, self.get_y())
        self.cell(30, 4, f"page {self.page_no()} of {_NB_PAGES}", align="R")
        self.set_text_color(0)


# --- receipt PDF ---------------------------------------------------------------------

def _short(value, length: int) -> str:
    if value is None:
        return ""
    value = str(value)
    return value if len(value) <= length else value[:length] + "\u2026"


def _or_dash(value) -> str:
    return "\u2014" if value is None or value == "" else str(value)


def _hex0x(value) -> str | None:
    if not value:
        return None
    return "0x" + str(value).removeprefix("0x")


def _receipt_parts(receipt: dict) -> tuple[dict, dict, dict]:
    part = receipt.get("trialnotary") if isinstance(receipt, dict) else None
    anchors = receipt.get("anchors") if isinstance(receipt, dict) else None
    record = part.get("record") if isinstance(part, dict) else None
    if not isinstance(record, dict) or not anchors or not isinstance(anchors[0], dict):
        raise ValueError("not a trialnotary receipt: it needs trialnotary.record and an anchor")
    batch = part.get("batch")
    return record, anchors[0], batch if isinstance(batch, dict) else {}


class _Form:
    """Label/value lines down an A4 page."""

    LABEL = 44

    def __init__(self, pdf: _Pdf):
        self.pdf = pdf
        self.left = pdf.l_margin
        self.width = pdf.w - pdf.l_margin - pdf.r_margin

    def heading(self, text: str) -> None:
        pdf = self.pdf
        pdf.set_y(pdf.get_y() + 3)
        pdf.use(BOLD, 11)
        pdf.put(self.left, pdf.get_y(), self.width, text)
        pdf.set_y(pdf.get_y() + 6)
        pdf.set_draw_color(160)
        pdf.line(self.left, pdf.get_y(), self.left + self.width, pdf.get_y())
        pdf.set_y(pdf.get_y() + 1.5)

    def field(self, label: str, value, *, mono: bool = False, max_lines: int = 1,
              link: str | None = None) -> None:
        pdf = self.pdf
        top = pdf.get_y()
        pdf.use(SANS, 8.5)
        pdf.set_text_color(90)
        pdf.put(self.left, top, self.LABEL - 2, label, line_height=4.6)
        pdf.set_text_color(0)
        if link:
            pdf.set_text_color(20, 60, 160)
        pdf.use(MONO if mono else SANS, 8.5)
        used = pdf.put(self.left + self.LABEL, top, self.width - self.LABEL, _or_dash(value),
                       max_lines=max_lines, line_height=4.6, link=link)
        pdf.set_text_color(0)
        pdf.set_y(top + used + 0.6)

    def paragraph(self, text: str, *, width: float | None = None, size: float = 8.5,
                  face: str = SANS, max_lines: int = 12) -> None:
        pdf = self.pdf
        pdf.use(face, size)
        used = pdf.put(self.left, pdf.get_y(), width or self.width, text,
                       max_lines=max_lines, line_height=size * _PT * 1.45)
        pdf.set_y(pdf.get_y() + used + 1)


def _draw_qr(pdf: FPDF, url: str, *, x: float, y: float, size: float) -> None:
    """The QR code of ``url`` as filled squares (runs of dark modules), quiet zone included."""
    matrix = _qr(url).matrix
    module = size / (len(matrix) + 8)
    pdf.set_fill_color(0)
    for row_index, row in enumerate(matrix):
        top = y + (row_index + 4) * module
        column = 0
        while column < len(row):
            if not row[column]:
                column += 1
                continue
            run = column
            while run < len(row) and row[run]:
                run += 1
            pdf.rect(x + (column + 4) * module, top, (run - column) * module, module, style="F")
            column = run


_RECEIPT_PROVES = (
    "What it proves, without trusting anyone: this exact file (its SHA-256) existed no later "
    "than the proven time above, the time of the Ethereum block that holds the batch's Merkle "
    "root. On the notary's word, made tamper-evident by that anchor: the record above is what "
    "the notary registered. What it does not prove: who made the file, or that its content is "
    "right; the submitted time is the notary's claim, not proven."
)


def receipt_pdf(receipt: dict, *, public_url: str, explorer_url: str | None = None) -> bytes:
    """A one-page A4 PDF of a version-1 receipt: a readable copy, not the proof itself."""
    record, anchor, batch = _receipt_parts(receipt)
    pdf = _Pdf(footer=f"trialnotary receipt {record.get('id') or ''}: a readable copy; "
                      "the JSON receipt is the proof", region=cjk_region(record.get("trial")))
    pdf.set_title(f"Registration receipt {record.get('id') or ''}".strip())
    pdf.add_page()
    form = _Form(pdf)

    pdf.use(BOLD, 18)
    pdf.put(form.left, pdf.get_y(), form.width, "Registration receipt")
    pdf.set_y(pdf.get_y() + 9)
    pdf.set_text_color(70)
    form.paragraph("A human-readable copy of a trialnotary receipt. The JSON receipt "
                   "(.receipt.json) is the authoritative proof: verify that file, not this page.",
                   size=9)
    pdf.set_text_color(0)

    form.heading("Record")
    size = record.get("sizeBytes")
    form.field("Trial", record.get("trial"))
    form.field("Site", record.get("site"))
    form.field("Kind", record.get("kind"))
    form.field("Dataset", record.get("dataset"), max_lines=3)
    form.field("File name", record.get("filename"), max_lines=4)
    form.field("Size", None if size is None else f"{size} bytes")
    form.field("SHA-256", record.get("sha256"), mono=True, max_lines=2)
    form.field("Registration id", record.get("id"), mono=True)
    form.field("Supersedes", record.get("supersedes") or "nothing (not a correction)",
               mono=bool(record.get("supersedes")))

    _time_box(pdf, form, anchor.get("blockTime"), record.get("submittedAt"))

    form.heading("Anchor on Ethereum")
    chain_id = anchor.get("chainId")
    form.field("Chain", f"{_or_dash(anchor.get('chain'))} (chain id {_or_dash(chain_id)})")
    form.field("Transaction", _hex0x(anchor.get("sourceId")), mono=True, max_lines=2)
    form.field("Block number", anchor.get("blockNumber"))
    form.field("Block hash", anchor.get("blockHash"), mono=True, max_lines=2)
    form.field("Sender (the notary)", anchor.get("sender"), mono=True)
    form.field("Merkle root", receipt.get("merkleRoot"), mono=True, max_lines=2)
    if explorer_url:
        form.field("Block explorer", explorer_url, max_lines=2, link=explorer_url)

    form.heading("Batch")
    form.field("Batch id", batch.get("id"))
    form.field("Leaf", f"index {_or_dash(batch.get('leafIndex'))} of "
                       f"{_or_dash(batch.get('leafCount'))} leaves")

    form.heading("How to verify")
    _how_to_verify(pdf, form, public_url)
    return bytes(pdf.output())


def _time_box(pdf: _Pdf, form: _Form, block_time, submitted_at) -> None:
    top = pdf.get_y() + 3
    pdf.set_y(top + 2)
    pdf.use(BOLD, 10)
    used = pdf.put(form.left + 3, pdf.get_y(), form.width - 6,
                   f"Proven time (block time): {_or_dash(block_time)} UTC \u2014 proven by the "
                   "Ethereum block", max_lines=2)
    pdf.set_y(pdf.get_y() + used + 0.5)
    pdf.use(SANS, 9)
    used = pdf.put(form.left + 3, pdf.get_y(), form.width - 6,
                   f"Submitted (the notary's claim, not proven): {_or_dash(submitted_at)}",
                   max_lines=2)
    pdf.set_y(pdf.get_y() + used + 2)
    pdf.set_draw_color(40)
    pdf.set_line_width(0.4)
    pdf.rect(form.left, top, form.width, pdf.get_y() - top)
    pdf.set_line_width(0.2)
    pdf.set_y(pdf.get_y() + 1)


def _how_to_verify(pdf: _Pdf, form: _Form, public_url: str) -> None:
    qr_size = 38
    text_width = form.width - qr_size - 6
    top = pdf.get_y()
    form.paragraph("Anyone can check this receipt without trusting the notary, with the "
                   "receipt file, the data file and any node of the chain above:",
                   width=text_width)
    form.paragraph("trialnotary verify <file>.receipt.json --file <the file> --rpc <node>",
                   width=text_width, face=MONO, size=7.5, max_lines=3)
    form.paragraph("(pip install trialnotary; add --expect-sender with the notary's published "
                   "address to pin it). The notary's web page /verify does the same in a "
                   "browser; the file never leaves the computer.", width=text_width)
    form.paragraph(_RECEIPT_PROVES, width=text_width)
    text_bottom = pdf.get_y()

    qr_x = form.left + form.width - qr_size
    _draw_qr(pdf, public_url, x=qr_x, y=top, size=qr_size)
    pdf.use(MONO, 6)
    pdf.set_text_color(20, 60, 160)
    pdf.put(qr_x, top + qr_size, qr_size, public_url, max_lines=6, line_height=2.6,
            link=public_url)
    pdf.set_text_color(0)
    pdf.set_y(max(text_bottom, pdf.get_y()))


# --- trial audit report PDF --------------------------------------------------------------

@dataclass(frozen=True)
class _Column:
    heading: str
    width: float
    value: Callable[[dict], object]
    max_lines: int = 1


#: Widths in mm (scaled to the page) fit the fixed-width values on one line in DejaVu Sans.
_REPORT_TABLE = (
    _Column("Submitted (claim)", 33.5, lambda r: r["submittedAt"], 2),
    _Column("Site", 16, lambda r: r["site"], 2),
    _Column("Kind", 17, lambda r: r["kind"]),
    _Column("Dataset", 25, lambda r: r["dataset"], 2),
    _Column("File", 29.5, lambda r: r["filename"], 2),
    _Column("SHA-256", 26.5, lambda r: _short(r["sha256"], 16)),
    _Column("Registered by", 34, lambda r: r["registeredBy"], 2),
    _Column("Correction", 23.3, lambda r: correction_text(r), 3),
    _Column("Status", 13.5, lambda r: r["status"]),
    _Column("Batch", 9.8, lambda r: r["batchId"]),
    _Column("Tx", 21, lambda r: _short(r["txHash"], 12)),
    _Column("Block time (proven)", 28.5, lambda r: r["blockTime"], 2),
)


def correction_text(row: dict) -> str | None:
    """What a report row says of corrections: the registration it corrects and why, and
    the one that superseded it, if any (``supersededBy``, where the rows carry it)."""
    parts = []
    if row.get("supersedes"):
        parts.append(f"corrects {_short(row['supersedes'], 8)}"
                     + (f": {row['reason']}" if row.get("reason") else ""))
    if row.get("supersededBy"):
        parts.append(f"superseded by {_short(row['supersededBy'], 8)}")
    return "; ".join(parts) or None


_TABLE_SIZE = 6.3
_TABLE_LINE = 3.1
_CELL_PAD = 0.8


def status_counts(rows: Iterable[dict]) -> list[tuple[str, int]]:
    """``(status, count)`` in lifecycle order, then any other status alphabetically."""
    counts = Counter(row["status"] or "unknown" for row in rows)
    known = [(status, counts.pop(status)) for status in STATUS_ORDER if status in counts]
    return known + sorted(counts.items())


def report_pdf(*, trial: str, title: str | None, generated_at: str, chain: str,
               rows: Iterable[dict]) -> bytes:
    """A landscape A4 audit report: a title block, then one table line per registration."""
    rows = list(rows)
    pdf = _Pdf(orientation="L", margin=10, region=cjk_region(trial),
               footer=f"trialnotary audit report of {trial}, generated {generated_at} UTC")
    pdf.set_title(f"Audit report {trial}")
    pdf.add_page()
    _report_title(pdf, trial=trial, title=title, generated_at=generated_at, chain=chain,
                  rows=rows)
    scale = (pdf.w - pdf.l_margin - pdf.r_margin) / sum(c.width for c in _REPORT_TABLE)
    widths = [column.width * scale for column in _REPORT_TABLE]

    _table_header(pdf, widths)
    pdf.on_new_page = lambda: _table_header(pdf, widths)
    pdf.use(SANS, _TABLE_SIZE)
    if not rows:
        pdf.put(pdf.l_margin, pdf.get_y() + 1, 100, "No registrations.")
    bottom = pdf.h - pdf.b_margin
    for row in rows:
        cells = [pdf.lines(column.value(row), width - 2 * _CELL_PAD, column.max_lines)
                 for column, width in zip(_REPORT_TABLE, widths, strict=True)]
        height = max(len(lines) for lines in cells) * _TABLE_LINE + 1
        if pdf.get_y() + height > bottom:
            pdf.add_page()
            pdf.use(SANS, _TABLE_SIZE)
        _table_row(pdf, widths, cells, height)
    return bytes(pdf.output())


def _report_title(pdf: _Pdf, *, trial, title, generated_at, chain, rows) -> None:
    left, width = pdf.l_margin, pdf.w - pdf.l_margin - pdf.r_margin
    pdf.use(BOLD, 16)
    pdf.put(left, pdf.get_y(), width, f"Trial audit report \u2014 {trial}")
    pdf.set_y(pdf.get_y() + 8)
    pdf.use(SANS, 9)
    counts = ", ".join(f"{status} {count}" for status, count in status_counts(rows))
    for label, value, lines in (
        ("Trial", trial, 1),
        ("Title", title, 2),
        ("Generated", f"{generated_at} (UTC)", 1),
        ("Chain", chain, 1),
        ("Registrations", f"{len(rows)}" + (f" ({counts})" if counts else ""), 2),
    ):
        pdf.use(SANS, 9)
        pdf.set_text_color(90)
        pdf.put(left, pdf.get_y(), 30, label, line_height=4.4)
        pdf.set_text_color(0)
        used = pdf.put(left + 30, pdf.get_y(), width - 30, _or_dash(value), max_lines=lines,
                       line_height=4.4)
        pdf.set_y(pdf.get_y() + used)
    pdf.use(SANS, 7.5)
    pdf.set_text_color(70)
    pdf.put(left, pdf.get_y() + 1.5, width,
            "Block time is the proven time: the time of the Ethereum block holding the batch "
            "root. Submitted is the notary's claim. Hashes and transactions are shortened here; "
            "the CSV and JSON exports and the receipts hold them in full.", max_lines=2,
            line_height=3.4)
    pdf.set_text_color(0)
    pdf.set_y(pdf.get_y() + 10)


def _table_header(pdf: _Pdf, widths: list[float]) -> None:
    pdf.use(BOLD, _TABLE_SIZE)
    cells = [pdf.lines(column.heading, width - 2 * _CELL_PAD, 2)
             for column, width in zip(_REPORT_TABLE, widths, strict=True)]
    height = max(len(lines) for lines in cells) * _TABLE_LINE + 1.5
    pdf.set_fill_color(225)
    pdf.rect(pdf.l_margin, pdf.get_y(), sum(widths), height, style="F")
    _table_row(pdf, widths, cells, height)
    pdf.use(SANS, _TABLE_SIZE)


def _table_row(pdf: _Pdf, widths: list[float], cells: list[list[str]], height: float) -> None:
    top = pdf.get_y()
    x = pdf.l_margin
    for lines, width in zip(cells, widths, strict=True):
        for index, line in enumerate(lines):
            if line:
                pdf.draw(x + _CELL_PAD, top + 0.5 + index * _TABLE_LINE + 0.5 * _TABLE_LINE
                         + 0.3 * pdf.font_size, line)
        x += width
    pdf.set_draw_color(200)
    pdf.line(pdf.l_margin, top + height, pdf.l_margin + sum(widths), top + height)
    pdf.set_y(top + height)


# --- receipts bundle ---------------------------------------------------------------------

HOW_TO_VERIFY = """\
Receipts of {scope}, exported {generated_at} (UTC)

receipts/ holds one receipt (a JSON file) per confirmed registration. index.csv lists every
registration of {scope}: it is a listing, not a proof. Each receipt is the proof.

WHAT A RECEIPT PROVES

- Without trusting anyone: the file whose SHA-256 is in the receipt existed no later than
  the time of the Ethereum block that holds the batch's Merkle root ("blockTime", UTC).
  That block time is the proven time.
- On the notary's word, made tamper-evident: the record in the receipt (trial, site, kind,
  dataset label, file name, submittedAt) is what the notary registered. The account that
  sent the anchoring transaction ("sender") is the notary's published identity.

WHAT IT DOES NOT PROVE

- Who made the file, or that its content is correct or complete.
- When the file was made or registered: "submittedAt" is the notary's claim; only the
  block time is proven, and only as a "no later than".
- Anything about a file whose SHA-256 differs in any way.

THE NOTARY'S ANCHORING ADDRESS

{addresses}

HOW TO VERIFY ONE RECEIPT

With the command-line verifier (Python 3.11 or later):

    pip install trialnotary          (or, from a clone of the source: pip install .)
    trialnotary verify receipts/<name>.receipt.json --file <the data file> \\
        --rpc <URL of an Ethereum node of the receipt's chain> \\
        --expect-sender {sender}

index.csv names each registration's receipt file (column receiptFile). The verifier hashes
the file locally, recomputes the leaf and the Merkle path, and asks the node (your own or
any public one, not the notary) for the transaction and its block. Its first line is the
verdict in words. Exit status 0 means every step passed and the anchor was sent by that
address; 3 that every step passed but no --expect-sender was given; 1 that a step failed;
4 that no node answered; --json prints the steps. Compare the address with the one the
notary publishes: a receipt (or this file) cannot vouch for itself.

In a browser: open the notary's /verify page and give it the receipt and the data file. The
file is hashed in the browser and never uploaded; the page asks a chain node, not the
notary.
"""


def _entry_name(name: str, seen: set[str]) -> str:
    """``name`` made safe to unzip inside ``receipts/`` and unique there, never refused:
    a bundle of any trial always downloads. Names are told apart case-insensitively
    (Windows and macOS unzip ``A`` and ``a`` onto the same file); a repeated one gets a
    number before its extension."""
    safe = candidate = safe_filename(name)
    number = 1
    while candidate.casefold() in seen:
        number += 1
        stem, dot, extension = safe.partition(".")
        candidate = safe_filename(f"{stem[:MAX_FILENAME - 32]}_{number}{dot}{extension}")
    seen.add(candidate.casefold())
    return candidate


def _zip_time(generated_at: str) -> tuple[int, int, int, int, int, int]:
    """The entries' timestamp: ``generated_at`` in UTC (zip stores local time, no zone)."""
    moment = datetime.fromisoformat(generated_at)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return max(tuple(moment.timetuple()[:6]), (1980, 1, 1, 0, 0, 0))


def how_to_verify_text(*, scope: str, generated_at: str, senders: list[str],
                       anchoring_address: str | None = None) -> str:
    """The bundle's HOW-TO-VERIFY.txt for the receipts of ``scope`` ("trial NCT01234567"),
    naming the addresses that sent their anchors (without any receipt yet, the notary's
    present ``anchoring_address``)."""
    if senders:
        intro = "The anchoring transactions of these receipts were sent from:"
    elif anchoring_address:
        intro = "No receipt is confirmed yet. The notary anchors from:"
        senders = [anchoring_address]
    else:
        intro = "No receipt is confirmed yet."
    listed = "".join(f"\n    {address}" for address in senders)
    addresses = intro + (f"\n{listed}\n\nThat account is the notary's identity on chain."
                         if senders else "")
    sender = senders[0] if len(senders) == 1 else \
        "<the receipt's address above>" if senders else \
        "<the notary's published anchoring address>"
    return HOW_TO_VERIFY.format(scope=scope, generated_at=generated_at, addresses=addresses,
                                sender=sender)


def write_bundle(fileobj, *, trial: str | None, generated_at: str,
                 receipts: Iterable[tuple[str, dict]], rows: Iterable[dict],
                 how_to_verify: str | None = None, anchoring_address: str | None = None,
                 scope: str | None = None) -> int:
    """Write a zip of the trial's receipts to ``fileobj``; the number of receipts written.
    ``scope`` says what the zip holds when it is not one whole trial ("site SITE-01").

    ``receipts`` is read once, so it may be a generator. Each name is made safe and unique
    as it is written (see ``_entry_name``); the index (with each row's ``receiptFile``) and
    the how-to (with the anchors' senders, else ``anchoring_address``) follow the receipts,
    written from what was actually put in.
    """
    stamp = _zip_time(generated_at)
    seen: set[str] = set()
    files: dict[str, str] = {}
    senders: list[str] = []
    with zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name, receipt in receipts:
            path = f"receipts/{_entry_name(name, seen)}"
            _add(bundle, path, json.dumps(receipt, indent=2, ensure_ascii=False) + "\n", stamp)
            files[receipt["trialnotary"]["record"]["id"]] = path
            for anchor in receipt.get("anchors", []):
                if anchor.get("sender") and anchor["sender"] not in senders:
                    senders.append(anchor["sender"])
        _add(bundle, "index.csv", report_csv(
            ({**row, "receiptFile": files.get(row["id"])} for row in rows),
            columns=INDEX_COLUMNS), stamp)
        if how_to_verify is None:
            how_to_verify = how_to_verify_text(scope=scope or f"trial {trial}",
                                               generated_at=generated_at,
                                               senders=senders,
                                               anchoring_address=anchoring_address)
        _add(bundle, "HOW-TO-VERIFY.txt", how_to_verify, stamp)
    return len(files)


def _add(bundle: zipfile.ZipFile, name: str, text: str, stamp) -> None:
    info = zipfile.ZipInfo(name, date_time=stamp)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    bundle.writestr(info, text.encode("utf-8"))
