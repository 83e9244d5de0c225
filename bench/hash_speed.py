"""Hashing throughput of `trialnotary submit` against `hashlib.file_digest`.

    .venv/bin/python bench/hash_speed.py [--size-mib 1024] [--rounds 5] [--file PATH]

Both read the same file, alternating round by round so both see the same (warm) page
cache. trialnotary's side is the function `submit` uses, with its progress bar enabled and
drawing into a null stream, so the bar's per-chunk cost is counted. Exits 1 when the ratio
of the best rounds falls below the floor.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from trialnotary.cli import client

FLOOR = 0.90
MIB = 1024 * 1024


def make_file(directory: str, size_mib: int) -> Path:
    """A file of random-looking bytes (a repeated 1 MiB random block, written fast)."""
    path = Path(directory) / "bench.bin"
    block = os.urandom(MIB)
    with open(path, "wb") as file:
        file.writelines(block for _ in range(size_mib))
    return path


def time_hashlib(path: Path) -> tuple[float, str]:
    start = time.perf_counter()
    with open(path, "rb") as file:
        digest = hashlib.file_digest(file, "sha256").hexdigest()
    return time.perf_counter() - start, digest


def time_trialnotary(path: Path, size: int) -> tuple[float, str]:
    with open(os.devnull, "w") as null:
        bar = client.progress_bar(size, enabled=True, stream=null)
        start = time.perf_counter()
        digest, _ = client.hash_file(path, buffer=client.new_buffer(), progress=bar)
        elapsed = time.perf_counter() - start
        bar.close()
    return elapsed, digest


def measure(path: Path, rounds: int) -> tuple[list[float], list[float]]:
    size = path.stat().st_size
    time_hashlib(path)
    ours, theirs = [], []
    for round_ in range(rounds):
        pair = [("hashlib", lambda: time_hashlib(path)),
                ("trialnotary", lambda: time_trialnotary(path, size))]
        if round_ % 2:
            pair.reverse()
        results = {name: run() for name, run in pair}
        if results["hashlib"][1] != results["trialnotary"][1]:
            sys.exit("the digests differ")
        theirs.append(size / results["hashlib"][0] / 1e6)
        ours.append(size / results["trialnotary"][0] / 1e6)
    return theirs, ours


def print_rounds(size: int, theirs: list[float], ours: list[float]) -> float:
    ratio = max(ours) / max(theirs)
    print(f"file: {size / MIB:.0f} MiB, {len(ours)} rounds each, alternating; "
          f"chunk {client.CHUNK_BYTES // 1024} KiB")
    print(f"{'':26} {'best MB/s':>10} {'median MB/s':>12}")
    print(f"{'hashlib.file_digest':26} {max(theirs):10.0f} {statistics.median(theirs):12.0f}")
    print(f"{'trialnotary.cli.client':26} {max(ours):10.0f} {statistics.median(ours):12.0f}")
    print(f"{'ratio (floor ' + f'{FLOOR:.2f})':26} {ratio:10.3f} "
          f"{statistics.median(ours) / statistics.median(theirs):12.3f}")
    return ratio


def figures(size_mib: int = 1024, rounds: int = 5, file: Path | None = None) -> list:
    from bench.common import Figure

    with tempfile.TemporaryDirectory(prefix="trialnotary-bench-") as directory:
        path = file or make_file(directory, size_mib)
        size = path.stat().st_size
        theirs, ours = measure(path, rounds)
        ratio = print_rounds(size, theirs, ours)
    return [Figure(f"CLI hashing (submit), {size // MIB} MiB file", max(ours), "MB/s",
                   f"hashlib.file_digest {max(theirs):,.0f} MB/s", f"≥ {FLOOR:.2f} of baseline",
                   ratio >= FLOOR, ratio=ratio)]


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.common import report

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--file", type=Path, help="hash this file instead of a new one")
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    found = figures(args.size_mib, args.rounds, args.file)
    return report(found)


if __name__ == "__main__":
    sys.exit(main())
