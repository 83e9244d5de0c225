"""The trial audit report as a landscape A4 PDF: a title block, then one table line per
registration, the table's header repeated on every page."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from trialnotary.notary.states import RegistrationStatus
from trialnotary.web.documents.pdf import BOLD, SANS, Pdf, cjk_region, or_dash, shorten

#: The statuses in lifecycle order, as the report counts them.
STATUS_ORDER = tuple(RegistrationStatus)


@dataclass(frozen=True)
class Column:
    heading: str
    width: float
    value: Callable[[dict], object]
    max_lines: int = 1


#: Widths in mm (scaled to the page) fit the fixed-width values on one line in DejaVu Sans.
_REPORT_TABLE = (
    Column("Submitted (claim)", 33.5, lambda r: r["submittedAt"], 2),
    Column("Site", 16, lambda r: r["site"], 2),
    Column("Kind", 17, lambda r: r["kind"]),
    Column("Dataset", 25, lambda r: r["dataset"], 2),
    Column("File", 29.5, lambda r: r["filename"], 2),
    Column("SHA-256", 26.5, lambda r: shorten(r["sha256"], 16)),
    Column("Registered by", 34, lambda r: r["registeredBy"], 2),
    Column("Correction", 23.3, lambda r: correction_text(r), 3),
    Column("Status", 13.5, lambda r: r["status"]),
    Column("Batch", 9.8, lambda r: r["batchId"]),
    Column("Tx", 21, lambda r: shorten(r["txHash"], 12)),
    Column("Block time (proven)", 28.5, lambda r: r["blockTime"], 2),
)


def correction_text(row: dict) -> str | None:
    """What a report row says of corrections: the registration it corrects and why, and
    the one that superseded it, if any (``supersededBy``, where the rows carry it); of a
    sign-off, its manifestation and the registration it signs."""
    parts = []
    signed = row.get("signOff")
    if isinstance(signed, dict):
        parts.append(f"{signed['meaning']} by {signed['name']} ({signed['role']}) at "
                     f"{signed['signedAt']} of {shorten(signed['signs'], 8)}")
    if row.get("supersedes"):
        parts.append(f"corrects {shorten(row['supersedes'], 8)}"
                     + (f": {row['reason']}" if row.get("reason") else ""))
    if row.get("supersededBy"):
        parts.append(f"superseded by {shorten(row['supersededBy'], 8)}")
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
    pdf = Pdf(orientation="L", margin=10, region=cjk_region(trial),
               footer=f"trialnotary audit report of {trial}, generated {generated_at} UTC")
    pdf.set_title(f"Audit report {trial}")
    pdf.add_page()
    _report_title(pdf, trial=trial, title=title, generated_at=generated_at, chain=chain,
                  rows=rows)
    draw_table(pdf, _REPORT_TABLE, rows, empty="No registrations.")
    return bytes(pdf.output())


def draw_table(pdf: Pdf, columns: tuple[Column, ...], rows: list[dict], *,
               empty: str) -> None:
    """``rows`` as a table of ``columns`` scaled to the page's width, its header repeated on
    every page (``empty`` when there is no row)."""
    scale = (pdf.w - pdf.l_margin - pdf.r_margin) / sum(c.width for c in columns)
    widths = [column.width * scale for column in columns]

    _table_header(pdf, columns, widths)
    pdf.on_new_page = lambda: _table_header(pdf, columns, widths)
    pdf.use(SANS, _TABLE_SIZE)
    if not rows:
        pdf.put(pdf.l_margin, pdf.get_y() + 1, 100, empty)
    bottom = pdf.h - pdf.b_margin
    for row in rows:
        cells = [pdf.lines(column.value(row), width - 2 * _CELL_PAD, column.max_lines)
                 for column, width in zip(columns, widths, strict=True)]
        height = max(len(lines) for lines in cells) * _TABLE_LINE + 1
        if pdf.get_y() + height > bottom:
            pdf.add_page()
            pdf.use(SANS, _TABLE_SIZE)
        _table_row(pdf, widths, cells, height)


def labelled_lines(pdf: Pdf, lines: Iterable[tuple[str, object, int]]) -> None:
    """A title block's lines: each label in grey, its value beside it on at most the lines
    given."""
    left, width = pdf.l_margin, pdf.w - pdf.l_margin - pdf.r_margin
    for label, value, most in lines:
        pdf.use(SANS, 9)
        pdf.set_text_color(90)
        pdf.put(left, pdf.get_y(), 30, label, line_height=4.4)
        pdf.set_text_color(0)
        used = pdf.put(left + 30, pdf.get_y(), width - 30, or_dash(value), max_lines=most,
                       line_height=4.4)
        pdf.set_y(pdf.get_y() + used)


def _report_title(pdf: Pdf, *, trial, title, generated_at, chain, rows) -> None:
    left, width = pdf.l_margin, pdf.w - pdf.l_margin - pdf.r_margin
    pdf.use(BOLD, 16)
    pdf.put(left, pdf.get_y(), width, f"Trial audit report \u2014 {trial}")
    pdf.set_y(pdf.get_y() + 8)
    pdf.use(SANS, 9)
    counts = ", ".join(f"{status} {count}" for status, count in status_counts(rows))
    labelled_lines(pdf, (
        ("Trial", trial, 1),
        ("Title", title, 2),
        ("Generated", f"{generated_at} (UTC)", 1),
        ("Chain", chain, 1),
        ("Registrations", f"{len(rows)}" + (f" ({counts})" if counts else ""), 2),
    ))
    pdf.use(SANS, 7.5)
    pdf.set_text_color(70)
    pdf.put(left, pdf.get_y() + 1.5, width,
            "Block time is the proven time: the time of the Ethereum block holding the batch "
            "root. Submitted is the notary's claim. Hashes and transactions are shortened here; "
            "the CSV and JSON exports and the receipts hold them in full.", max_lines=2,
            line_height=3.4)
    pdf.set_text_color(0)
    pdf.set_y(pdf.get_y() + 10)


def _table_header(pdf: Pdf, columns: tuple[Column, ...], widths: list[float]) -> None:
    pdf.use(BOLD, _TABLE_SIZE)
    cells = [pdf.lines(column.heading, width - 2 * _CELL_PAD, 2)
             for column, width in zip(columns, widths, strict=True)]
    height = max(len(lines) for lines in cells) * _TABLE_LINE + 1.5
    pdf.set_fill_color(225)
    pdf.rect(pdf.l_margin, pdf.get_y(), sum(widths), height, style="F")
    _table_row(pdf, widths, cells, height)
    pdf.use(SANS, _TABLE_SIZE)


def _table_row(pdf: Pdf, widths: list[float], cells: list[list[str]], height: float) -> None:
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
