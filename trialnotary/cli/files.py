"""Which files a submission registers, and the labels they get.

Which files a folder contributes: regular files found by walking it recursively, in sorted
order of their relative paths (compared component by component, by code point), so the same
folder always gives the same list. Skipped, with a count on stderr: hidden entries (names
starting with ``.``, such as ``.DS_Store`` or ``.git``), symbolic links (never followed, so no
cycles and nothing from outside the folder), and anything that is not a regular file or a
directory. A path named on the command line is used as given, even if it is a symlink.

Labels: a file's label (``dataset``) defaults to its name and its ``filename`` is its name; a
folder's label defaults to the folder's name and each ``filename`` is the path relative to the
folder with ``/`` separators. ``--dataset`` overrides the label of everything submitted.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from trialnotary.cli.errors import CliError


@dataclass
class Entry:
    """One file to register, and what the server said about it."""

    path: Path
    shown: str
    dataset: str
    filename: str
    size: int
    sha256: str | None = None
    id: str | None = None
    status: str | None = None
    receipt: str | None = None

    def view(self) -> dict:
        return {"path": self.shown, "id": self.id, "sha256": self.sha256,
                "status": self.status, "receipt": self.receipt}


def walk_folder(folder: Path) -> tuple[list[tuple[Path, str]], int]:
    """Regular files under ``folder`` as (path, relative POSIX path), sorted; and how many
    entries were skipped (hidden, symlinks, special files)."""
    found: list[tuple[Path, str]] = []
    skipped = _walk(folder, (), found)
    return found, skipped


def _walk(folder: Path, parts: tuple[str, ...], found: list) -> int:
    skipped = 0
    with os.scandir(folder) as scan:
        entries = sorted(scan, key=lambda e: e.name)
    for entry in entries:
        if entry.name.startswith(".") or entry.is_symlink():
            skipped += 1
        elif entry.is_dir(follow_symlinks=False):
            skipped += _walk(Path(entry.path), (*parts, entry.name), found)
        elif entry.is_file(follow_symlinks=False):
            found.append((Path(entry.path), "/".join((*parts, entry.name))))
        else:
            skipped += 1
    return skipped


def collect(paths: Iterable[str], dataset: str | None = None) -> tuple[list[Entry], int]:
    """The files to register for the given paths, with their labels and file names; and
    how many entries of folders were skipped."""
    entries: list[Entry] = []
    skipped = 0
    for given in paths:
        try:
            found, skipped_here = _collect_one(given, dataset)
        except OSError as exc:
            raise CliError(f"cannot read {exc.filename or given}: "
                           f"{exc.strerror or exc}") from None
        entries += found
        skipped += skipped_here
    return entries, skipped


def _collect_one(given: str, dataset: str | None) -> tuple[list[Entry], int]:
    path = Path(given)
    if path.is_file():
        return [Entry(path=path, shown=given, dataset=dataset or path.name,
                      filename=path.name, size=_size(path))], 0
    if not path.is_dir():
        raise CliError(f"{given}: not a regular file or a folder")
    files, skipped = walk_folder(path)
    if not files:
        raise CliError(f"{given}: no files to register in this folder")
    label = dataset if dataset is not None else _folder_name(path)
    return [Entry(path=file, shown=os.path.join(given, *relative.split("/")), dataset=label,
                  filename=relative, size=_size(file)) for file, relative in files], skipped


def _folder_name(path: Path) -> str:
    return path.resolve().name or str(path.resolve())


def _size(path: Path) -> int:
    return path.stat().st_size
