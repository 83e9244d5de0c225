"""Registrations as tables: the audit report's CSV and JSON, and CSV text in general,
every cell defused against formula injection."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable

REPORT_COLUMNS = (
    "id", "trial", "site", "kind", "dataset", "filename", "sha256", "sizeBytes", "supersedes",
    "reason", "submittedAt", "registeredBy", "status", "batchId", "leafIndex", "txHash",
    "chainId", "blockNumber", "blockTime", "supersededBy", "supersededReason", "signOff",
)
#: A bundle's ``index.csv``: the report's columns and where each row's receipt is in the zip.
INDEX_COLUMNS = (*REPORT_COLUMNS, "receiptFile")

_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str | int | float:
    """A report value as a CSV cell, defused against formula injection (OWASP).

    Only text is prefixed with ``'``: numbers keep their value, and hashes and timestamps
    never start with a trigger character. An object (``signOff``) is written as JSON.
    """
    if value is None:
        return ""
    if isinstance(value, dict):  # a sign-off's manifestation, as compact JSON
        value = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
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
    """The audit report as JSON: the trial, when it was generated, and every row."""
    registrations = list(rows)
    return {"trial": trial, "title": title, "generatedAt": generated_at,
            "count": len(registrations), "registrations": registrations}
