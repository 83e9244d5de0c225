"""What the CLI tests share: a study folder to submit, and small file helpers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest


def write(path: Path, data: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def sha256_of(path: Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


@pytest.fixture
def study(tmp_path) -> Path:
    """A folder with nesting, names that sort differently as whole strings, a hidden file, a
    hidden folder and a symlink (all three skipped)."""
    root = tmp_path / "Study 1 (v2)"
    for name in ("b.txt", "a/z.txt", "a-b.txt", "A.txt", "a/deep/x.xpt"):
        write(root / name, name.encode())
    write(root / ".DS_Store", b"finder")
    write(root / ".git/config", b"[core]")
    (root / "link.txt").symlink_to(root / "b.txt")
    return root
