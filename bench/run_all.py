"""Run every benchmark in turn, each printing its figures beside its same-run baseline.

    .venv/bin/python bench/run_all.py        (or `make bench`)

Exits non-zero if any benchmark exits non-zero; each prints whether its floor holds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["seal.py", "receipt_latency.py", "anchor_gas.py", "hash_speed.py"]


def main() -> int:
    failed = []
    for name in BENCHMARKS:
        print(f"\n== {name} ==", flush=True)
        if subprocess.run([sys.executable, str(HERE / name)]).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
