"""The PDF plumbing of the receipt and the audit report: fonts, text cleaning and wrapping,
an A4 page set with a numbered footer.

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

import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from fontTools.ttLib import TTFont
from fpdf import FPDF

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
#: Millimetres in a typographic point.
MM_PER_PT = 25.4 / 72


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


class Pdf(FPDF):
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


def shorten(value, length: int) -> str:
    """``value`` as text of at most ``length`` characters, an ellipsis marking a cut."""
    if value is None:
        return ""
    value = str(value)
    return value if len(value) <= length else value[:length] + "\u2026"


def or_dash(value) -> str:
    """``value`` as text, an em dash when there is none."""
    return "\u2014" if value is None or value == "" else str(value)
