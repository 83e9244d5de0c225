"""Browser hashing (hash-worker.js in Debian's Chromium) against `hashlib.file_digest`.

    .venv/bin/python bench/browser_hash.py [--size-mib 1024] [--rounds 3]
        [--webcrypto-mib 256] [--chunks-mib 1,2,4,8,16,32] [--file PATH]

A 1 GiB file is hashed by hashlib and by the page's worker streaming it through hash-wasm
(files above the WebCrypto threshold take that path), alternating round by round on the
same warm page cache; a file that fits the threshold is hashed with WebCrypto as the page
would. `--chunks-mib` also sweeps the streaming slice size. The page is Python's
http.server serving the package folder (so /static/js/... are the real files) on 127.0.0.1,
a secure context, so WebCrypto is available. Prints MB/s (10^6 bytes per second).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "trialnotary"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update"]
MIB = 1024 * 1024

HASH_IN_PAGE = """async ([chunkSize, webCrypto, threshold]) => {
  const { hashFiles } = await import("/static/js/hashing.js");
  const file = document.getElementById("bench-input").files[0];
  const start = performance.now();
  const [result] = await hashFiles([{ file, path: file.name }],
                                   { chunkSize, webCrypto, threshold }).promise;
  return { seconds: (performance.now() - start) / 1000, sha256: result.sha256 };
}"""


def make_file(directory: str, size_mib: int, name: str) -> Path:
    """Random-looking bytes (a repeated 1 MiB random block, written fast)."""
    path = Path(directory) / name
    block = os.urandom(MIB)
    with open(path, "wb") as file:
        file.writelines(block for _ in range(size_mib))
    return path


def serve_package() -> tuple[http.server.ThreadingHTTPServer, str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(PACKAGE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def time_hashlib(path: Path) -> tuple[float, str]:
    start = time.perf_counter()
    with open(path, "rb") as file:
        digest = hashlib.file_digest(file, "sha256").hexdigest()
    return time.perf_counter() - start, digest


def time_browser(page, path: Path, *, chunk: int, webcrypto: bool,
                 threshold: int) -> tuple[float, str]:
    page.set_input_files("#bench-input", str(path))
    answer = page.evaluate(HASH_IN_PAGE, [chunk, webcrypto, threshold])
    return answer["seconds"], answer["sha256"]


def rate(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def line(name: str, rates: list[float]) -> str:
    return f"{name:44} {max(rates):10.0f} {statistics.median(rates):12.0f}"


def compare(page, path: Path, rounds: int, **browser) -> tuple[list[float], list[float]]:
    """hashlib and the browser on one file, alternating; the digests must agree."""
    size = path.stat().st_size
    time_hashlib(path)  # warm the page cache
    theirs, ours = [], []
    for round_ in range(rounds):
        runs = [("hashlib", lambda: time_hashlib(path)),
                ("browser", lambda: time_browser(page, path, **browser))]
        if round_ % 2:
            runs.reverse()
        results = {name: run() for name, run in runs}
        if results["hashlib"][1] != results["browser"][1]:
            sys.exit(f"the digests differ: {results}")
        theirs.append(rate(size, results["hashlib"][0]))
        ours.append(rate(size, results["browser"][0]))
    return theirs, ours


def main() -> int:
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(ROOT))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--webcrypto-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chunks-mib", default="", help="e.g. 1,2,4,8,16,32: sweep slices")
    parser.add_argument("--file", type=Path, help="stream this file instead of a new one")
    args = parser.parse_args()
    server, base = serve_package()
    try:
        with tempfile.TemporaryDirectory(prefix="trialnotary-bench-") as directory, \
                sync_playwright() as playwright:
            big = args.file or make_file(directory, args.size_mib, "big.bin")
            small = make_file(directory, args.webcrypto_mib, "small.bin")
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(base)
            page.evaluate("""() => { const input = document.createElement("input");
                input.type = "file"; input.id = "bench-input"; document.body.append(input); }""")
            chunk = page.evaluate("async () => (await import('/static/js/hashing.js')).CHUNK_BYTES")
            limit = page.evaluate(
                "async () => (await import('/static/js/hashing.js')).WEBCRYPTO_MAX_BYTES")
            print(f"Chromium {browser.version}; chunk {chunk // MIB} MiB, "
                  f"WebCrypto up to {limit // MIB} MiB; {args.rounds} rounds, alternating")
            print(f"{'':44} {'best MB/s':>10} {'median MB/s':>12}")

            size = big.stat().st_size
            theirs, ours = compare(page, big, args.rounds, chunk=chunk, webcrypto=True,
                                   threshold=limit)
            print(line(f"hashlib.file_digest, {size // MIB} MiB", theirs))
            print(line(f"browser hash-wasm streaming, {size // MIB} MiB", ours))
            print(f"{'ratio browser / hashlib':44} {max(ours) / max(theirs):10.3f} "
                  f"{statistics.median(ours) / statistics.median(theirs):12.3f}")

            theirs, ours = compare(page, small, args.rounds, chunk=chunk, webcrypto=True,
                                   threshold=max(limit, small.stat().st_size))
            print(line(f"hashlib.file_digest, {args.webcrypto_mib} MiB", theirs))
            print(line(f"browser WebCrypto whole file, {args.webcrypto_mib} MiB", ours))
            print(f"{'ratio browser / hashlib':44} {max(ours) / max(theirs):10.3f} "
                  f"{statistics.median(ours) / statistics.median(theirs):12.3f}")

            for mib in [int(x) for x in args.chunks_mib.split(",") if x.strip()]:
                rates = []
                for _ in range(args.rounds):
                    seconds, _ = time_browser(page, small, chunk=mib * MIB, webcrypto=False,
                                              threshold=limit)
                    rates.append(rate(small.stat().st_size, seconds))
                print(line(f"hash-wasm streaming, {mib} MiB slices", rates))
            browser.close()
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
