"""Browser hashing (hash-worker.js in Debian's Chromium) against `hashlib.file_digest`.

    .venv/bin/python bench/browser_hash.py [--size-mib 1024] [--rounds 3]
        [--chunks-mib 1,2,4,8,16,32] [--file PATH]

A 1 GiB file is hashed by hashlib and by the page's worker, alternating round by round on
the same warm page cache: first as the page would hash it on this machine (WebCrypto when
the file is under hashing.js's webCryptoLimit() for this device's memory), then streamed
through hash-wasm (the path of larger files and smaller devices). `--chunks-mib` also sweeps
the streaming slice size. The page is Python's
http.server serving the package folder (so /static/js/... are the real files) on 127.0.0.1,
a secure context, so WebCrypto is available. MB/s are 10^6 bytes per second. Floor: the
page's way at least 0.15 of hashlib.
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
PACKAGE = ROOT / "trialnotary" / "web"
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


FLOOR = 0.15


def figures(size_mib: int = 1024, rounds: int = 3, file: Path | None = None,
            chunks_mib: str = "") -> list:
    """The 1 GiB file hashed as the page would here (WebCrypto when the device's limit
    allows it), then streamed through hash-wasm as on a smaller device; each beside
    hashlib in the same run."""
    from playwright.sync_api import sync_playwright

    from bench.common import Figure

    server, base = serve_package()
    found = []
    try:
        with tempfile.TemporaryDirectory(prefix="trialnotary-bench-") as directory, \
                sync_playwright() as playwright:
            big = file or make_file(directory, size_mib, "big.bin")
            size = big.stat().st_size
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(base)
            page.evaluate("""() => { const input = document.createElement("input");
                input.type = "file"; input.id = "bench-input"; document.body.append(input); }""")
            chunk, limit, memory = page.evaluate("""async () => {
                const h = await import('/static/js/hashing.js');
                return [h.CHUNK_BYTES, h.webCryptoLimit(), navigator.deviceMemory]; }""")
            print(f"Chromium {browser.version}; navigator.deviceMemory {memory} GiB → "
                  f"WebCrypto up to {limit // MIB} MiB; streaming slices {chunk // MIB} MiB; "
                  f"{rounds} rounds, alternating with hashlib")
            method = "WebCrypto, whole file" if size <= limit else "hash-wasm, streamed"
            theirs, ours = compare(page, big, rounds, chunk=chunk, webcrypto=True,
                                   threshold=limit)
            ratio = max(ours) / max(theirs)
            found.append(Figure(f"browser hashing, {size // MIB} MiB, as the page does it "
                                f"here ({method})", max(ours), "MB/s",
                                f"hashlib.file_digest {max(theirs):,.0f} MB/s",
                                f"≥ {FLOOR:.2f} of baseline", ratio >= FLOOR, ratio=ratio))
            theirs, ours = compare(page, big, rounds, chunk=chunk, webcrypto=False,
                                   threshold=limit)
            ratio = max(ours) / max(theirs)
            found.append(Figure(f"browser hashing, {size // MIB} MiB, hash-wasm streamed "
                                "(over the limit, or a smaller device)", max(ours), "MB/s",
                                f"hashlib.file_digest {max(theirs):,.0f} MB/s",
                                "reported", True, ratio=ratio))
            for mib in [int(x) for x in chunks_mib.split(",") if x.strip()]:
                rates = [rate(size, time_browser(page, big, chunk=mib * MIB, webcrypto=False,
                                                 threshold=limit)[0]) for _ in range(rounds)]
                print(line(f"hash-wasm streaming, {mib} MiB slices", rates))
            browser.close()
    finally:
        server.shutdown()
    return found


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from bench.common import report

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chunks-mib", default="", help="e.g. 1,2,4,8,16,32: sweep slices")
    parser.add_argument("--file", type=Path, help="hash this file instead of a new one")
    args = parser.parse_args()
    found = figures(args.size_mib, args.rounds, args.file, args.chunks_mib)
    return report(found)


if __name__ == "__main__":
    sys.exit(main())
