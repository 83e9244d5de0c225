"""Download names made safe wherever they are saved or unzipped.

Not part of the receipt format (a receipt never holds its own file name), so it lives
beside the other shared input rules rather than in :mod:`trialnotary.proof`.
"""

from __future__ import annotations

import re

from trialnotary.proof.facts import BUNDLE_RECEIPT_SUFFIX

_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_DOT_RUNS = re.compile(r"\.{2,}")
# The longest file name most file systems take (bytes; a safe name is ASCII).
MAX_FILENAME = 255
#: How a receipt's file name ends (the bundle readers take only such entries).
RECEIPT_SUFFIX = BUNDLE_RECEIPT_SUFFIX


def safe_filename(name: str) -> str:
    """A download name made safe wherever it is saved or unzipped: every character outside
    ``A-Z a-z 0-9 . _ -`` replaced by ``_``, every run of dots made one dot, a leading dot
    made ``_`` (no hidden files, no ``..``), never empty, at most ``MAX_FILENAME`` long
    (keeping its extension). A safe name is left as it is."""
    name = _DOT_RUNS.sub(".", _fit(_UNSAFE_NAME_CHARS.sub("_", name)))
    if name.startswith("."):
        name = "_" + name[1:]
    return name or "_"


def _fit(name: str) -> str:
    if len(name) <= MAX_FILENAME:
        return name
    stem, _, extension = name.rpartition(".")
    if stem and len(extension) < 16:
        return f"{stem[:MAX_FILENAME - len(extension) - 1]}.{extension}"
    return name[:MAX_FILENAME]


def receipt_filename(trial: str, dataset: str, registration_id: str) -> str:
    """``<trial>_<dataset>_<id>.receipt.json``, made safe; a long label is cut so that the
    name fits ``MAX_FILENAME`` with its id whole (the id keeps names apart)."""
    tail = safe_filename(f"_{registration_id}") + RECEIPT_SUFFIX
    head = safe_filename(f"{trial}_{dataset}")[:MAX_FILENAME - len(tail)]
    return safe_filename(head + tail)
