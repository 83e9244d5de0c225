"""QR codes of a registration's public address: inline SVG for pages, squares for PDFs."""

from __future__ import annotations

import segno
from fpdf import FPDF


def qr_code(url: str) -> segno.QRCode:
    """A full-size QR code of ``url``, medium error correction."""
    # segno.make would pick a Micro QR for short data, which many phone cameras cannot read.
    return segno.make_qr(url, error="m")


def qr_svg(url: str) -> str:
    """An inline ``<svg>`` QR code of ``url`` that scales with CSS and has a ``<title>``."""
    svg = qr_code(url).svg_inline(title=f"QR code for {url}", omitsize=True, svgclass="qr",
                                  lineclass=None)
    return svg.replace("<svg ", '<svg role="img" ', 1)


def draw_qr(pdf: FPDF, url: str, *, x: float, y: float, size: float) -> None:
    """The QR code of ``url`` as filled squares (runs of dark modules), quiet zone included."""
    matrix = qr_code(url).matrix
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
