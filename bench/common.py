"""Helpers the benchmarks share: a throw-away anvil, a server thread, percentiles."""

from __future__ import annotations

import socket
import statistics
import subprocess
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
ANVIL = ROOT / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_anvil() -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([str(ANVIL), "--port", str(port), "--silent"],
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
