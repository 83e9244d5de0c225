"""Every benchmark in turn, then one table: each figure, its same-run baseline, its floor.

    .venv/bin/python bench/run_all.py [--only seal,verify] [--out bench/RESULTS.md]

(or `make bench`). Each benchmark prints its own detail as it goes; the table at the end is
also written, with the date and the machine, to bench/RESULTS.md. Exits 1 if a floor is
missed or a benchmark fails.
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import platform
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import (  # noqa: E402
    anchor_gas,
    browser_hash,
    check,
    hash_speed,
    receipt_e2e,
    receipt_latency,
    register_http,
    renewal,
    reviewer_install,
    seal,
    several_anchors,
    timeline,
    timeline_cli,
    verify_time,
)
from bench.common import Figure, print_figures  # noqa: E402

BENCHMARKS = {
    "register": register_http.figures,
    "seal": lambda: seal.figures(100_000) + seal.figures(1_000_000),
    "receipt": receipt_latency.figures,
    "verify": verify_time.figures,
    "cli-hash": hash_speed.figures,
    "browser-hash": browser_hash.figures,
    "e2e": receipt_e2e.figures,
    "anchor": anchor_gas.figures,
    "check": check.figures,
    "renewal": renewal.figures,
    "anchors": several_anchors.figures,
    "install": reviewer_install.figures,
    "timeline": timeline.figures,
    "timeline-cli": timeline_cli.figures,
}


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "?")
    memory = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text()
                  .splitlines() if line.startswith("MemTotal"))
    return (f"{os.cpu_count()} × {cpu}, {memory / 1024**2:.0f} GiB RAM, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"some of: {','.join(BENCHMARKS)}")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "RESULTS.md")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(BENCHMARKS)
    found: list[Figure] = []
    failed = []
    started = time.monotonic()
    for name in chosen:
        print(f"\n== {name} ==", flush=True)
        try:
            figures = BENCHMARKS[name]()
        except Exception:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            failed.append(name)
            continue
        print_figures(figures)
        found += figures
    table = io.StringIO()
    print_figures(found, out=table)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    summary = (f"# Benchmark results\n\n{stamp}, {machine()}; "
               f"{(time.monotonic() - started) / 60:.0f} min for "
               f"`python bench/run_all.py{' --only ' + args.only if args.only else ''}`.\n"
               "Ratios are figure / baseline, both measured in the same run.\n\n"
               f"```\n{table.getvalue()}```\n"
               + (f"\nFailed to run: {', '.join(failed)}\n" if failed else ""))
    print("\n" + summary)
    args.out.write_text(summary)
    return 0 if not failed and all(f.holds for f in found) else 1


if __name__ == "__main__":
    sys.exit(main())
