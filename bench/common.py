"""Helpers the benchmarks share: a throw-away anvil, a server thread, percentiles."""

from __future__ import annotations

import socket
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
ANVIL = ROOT / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_anvil(*extra: str) -> tuple[subprocess.Popen, str]:
    """A throw-away anvil on a free port (automine unless ``extra`` says otherwise)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([str(ANVIL), "--port", str(port), "--silent", *extra],
                               stdout=subprocess.DEVNULL)
    for _ in range(200):
        try:
            requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId",
                                     "params": []}, timeout=1)
            return process, url
        except requests.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("anvil did not start")


def serve_in_thread(app, threads: int = 8):
    import waitress

    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=threads)
    threading.Thread(target=server.run, daemon=True).start()
    return server, f"http://127.0.0.1:{server.effective_port}"


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    cut = statistics.quantiles(ordered, n=100)
    return {"p50": cut[49], "p90": cut[89], "p99": cut[98]}


@dataclass
class Figure:
    """One measured figure, the baseline measured beside it in the same run, and its floor."""

    what: str
    value: float
    unit: str
    baseline: str
    floor: str
    holds: bool
    ratio: float | None = None


def show(value: float, unit: str) -> str:
    if unit in ("s", "ms"):
        return f"{value:,.2f} {unit}" if value < 100 else f"{value:,.0f} {unit}"
    return f"{value:,.0f} {unit}".strip() if value >= 100 else f"{value:,.3g} {unit}".strip()


def print_figures(figures: list[Figure], out=None) -> None:
    rows = [(f.what, show(f.value, f.unit), f.baseline,
             "" if f.ratio is None else f"{f.ratio:.2f}", f.floor,
             "holds" if f.holds else "MISSED") for f in figures]
    header = ("what", "figure", "baseline (same run)", "ratio", "floor", "")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip(),
              file=out)


def report(figures: list[Figure]) -> int:
    """Print the table; the exit code of a benchmark script: 0 when every floor holds."""
    print_figures(figures)
    return 0 if all(f.holds for f in figures) else 1


def seed_site(engine) -> str:
    """The benchmarks' trial and site, with a new site token for it (returned)."""
    from trialnotary import db
    from trialnotary.people import sites

    with db.write_session(engine) as session:
        sites.add_trial(session, "NCT01234567")
        sites.add_site(session, "NCT01234567", "SITE-01")
        token = sites.create_token(session, "SITE-01")
        session.commit()
    return token
