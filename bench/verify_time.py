"""`trialnotary verify` against a local node, as a whole process: one receipt with its
chain evidence against the same receipt without it (version 1), a thousand receipts of one
batch in one call, and what the evidence adds to a receipt's size.

    python bench/verify_time.py [--runs 20]

A real anvil; registrations sealed, anchored and confirmed through the real register →
seal → anchor path, so the receipts carry the anchor's evidence as the notary takes it.
Then, alternating in the same run:
`trialnotary verify RECEIPT --file FILE --rpc URL --expect-sender ADDR` on the receipt with
evidence, on the same receipt with the evidence taken out (a version 1 receipt, verified by
the transaction's hash), and the bare interpreter (`python -c pass`), each timed from spawn
to exit (each must exit 0). Then one `verify` of 1,000 receipts of one batch, and the sizes
of a receipt whose anchor is alone in its block and of one mined after 210 other
transactions (the two proofs at their longest here).
Floors: median ≤ 300 ms, with evidence ≤ 1.3 × version 1; 1,000 receipts ≤ 3 s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Figure, report, seed_site, start_anvil  # noqa: E402
from trialnotary import db
from trialnotary.config import load_settings
from trialnotary.notary import anchoring, batches, identity, registrations
from trialnotary.notary.chain import ChainClient

BIN = Path(sys.executable).parent
FLOOR_MS = 300
FLOOR_RATIO = 1.3
FLOOR_MANY_S = 3.0
MANY = 1000
CROWD = 210


def rpc(url: str, method: str, *params):
    return requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                    "params": list(params)}, timeout=10).json()["result"]


def local_notary(folder: Path, rpc_url: str) -> tuple:
    """A notary in ``folder`` anchoring on ``rpc_url`` with one confirmation: its settings,
    its migrated database's engine and a site token of the benchmarks' site."""
    settings = load_settings({"TRIALNOTARY_INSTANCE_PATH": str(folder),
                              "TRIALNOTARY_CHAIN_RPC_URL": rpc_url,
                              "TRIALNOTARY_CONFIRMATIONS": "1"})
    db.upgrade(settings.database_url)
    engine = db.make_engine(settings.database_url)
    return settings, engine, seed_site(engine)


def register_bulk(engine, token: str, items: list[dict]) -> list[dict]:
    """``items`` registered in one bulk call, as the API does it; their records."""
    answer = registrations.submit(
        engine, token=token, bulk=True, path="/api/v1/submissions/bulk",
        render=lambda records: registrations.Answer(201, json.dumps(records)),
        read_payload=lambda: {"submissions": items})
    return json.loads(answer.body)


def confirmed_receipts(folder: Path, rpc_url: str, files: list[Path],
                       crowd: Callable[[], None] | None = None) -> tuple[list[dict], str]:
    """The files registered in one bulk call, sealed, anchored and confirmed; their
    receipts, and the notary's anchoring address (its identity document is saved in
    ``folder/identity.json``). ``crowd`` runs with the node not mining, before the anchor is
    sent: the anchor is then mined after what it sent."""
    settings, engine, token = local_notary(folder, rpc_url)
    records = register_bulk(engine, token, [
        {"trial": "NCT01234567", "site": "SITE-01", "dataset": path.stem,
         "filename": path.name, "sizeBytes": path.stat().st_size,
         "sha256": hashlib.sha256(path.read_bytes()).hexdigest()} for path in files])
    chain = ChainClient(settings)
    batches.seal_all(engine, len(files) + 1)
    if crowd is not None:
        rpc(rpc_url, "evm_setAutomine", False)
        crowd()
    anchoring.anchor_sealed(engine, chain)
    if crowd is not None:
        rpc(rpc_url, "anvil_mine", "0x1")
        rpc(rpc_url, "evm_setAutomine", True)
    while not anchoring.confirm_sent(engine, chain):
        rpc(rpc_url, "anvil_mine", "0x1")
        time.sleep(0.1)
    with db.write_session(engine) as session:
        found = [registrations.receipt_of(session, record["id"],
                                          identity.notary_of(settings)).receipt
                 for record in records]
    (folder / "identity.json").write_text(identity.document_text(engine, settings))
    engine.dispose()
    return found, chain.address


def crowd_of(rpc_url: str, count: int = CROWD) -> Callable[[], None]:
    """Queue ``count`` transfers from anvil's dev accounts 2 to 9, with a higher tip than
    the anchor's, so that the anchor is mined last."""
    def crowd() -> None:
        accounts = rpc(rpc_url, "eth_accounts")[2:10]
        first = {account: int(rpc(rpc_url, "eth_getTransactionCount", account, "latest"), 16)
                 for account in accounts}
        for index in range(count):
            sender = accounts[index % len(accounts)]
            rpc(rpc_url, "eth_sendTransaction", {
                "from": sender, "to": accounts[1], "value": "0x1",
                "nonce": hex(first[sender] + index // len(accounts)),
                "maxPriorityFeePerGas": hex(3 * 10**9), "maxFeePerGas": hex(30 * 10**9)})
    return crowd


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    elapsed = (time.perf_counter() - started) * 1000
    if result.returncode != 0:
        sys.exit(f"{command[0]} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return elapsed


def write(path: Path, receipt: dict) -> Path:
    path.write_text(json.dumps(receipt))
    return path


def size(receipt: dict) -> int:
    return len(json.dumps(receipt).encode())


def without_evidence(receipt: dict) -> dict:
    plain = json.loads(json.dumps(receipt))
    del plain["anchors"][0]["evidence"]
    return plain


def sample_files(folder: Path, count: int) -> list[Path]:
    folder.mkdir()
    files = []
    for index in range(count):
        path = folder / f"visits-{index}.csv"
        path.write_bytes(f"subject,visit,value\n{1000 + index},1,42\n".encode())
        files.append(path)
    return files


def figures(runs: int = 20) -> list[Figure]:
    anvil, rpc_url = start_anvil()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            files = sample_files(folder / "files", MANY)
            found, notary = confirmed_receipts(folder / "one", rpc_url, files)
            crowded, _ = confirmed_receipts(folder / "crowded", rpc_url, files[:4],
                                            crowd_of(rpc_url))
            single = write(folder / "evidence.json", found[0])
            plain = write(folder / "v1.json", without_evidence(found[0]))
            verify = [str(BIN / "trialnotary"), "verify", "--file", str(files[0]), "--rpc",
                      rpc_url]
            pinned = [*verify, "--expect-sender", notary]
            commands = {"evidence": [*pinned, str(single)], "v1": [*pinned, str(plain)],
                        "notary": [*verify, "--notary", str(folder / "one/identity.json"),
                                   str(single)],
                        "bare": [sys.executable, "-c", "pass"]}
            times: dict[str, list[float]] = {name: [] for name in commands}
            for command in commands.values():
                timed(command)  # warm the page cache
            for _ in range(runs):
                for name, command in commands.items():
                    times[name].append(timed(command))
            many = [write(folder / f"r{i}.json", receipt) for i, receipt in enumerate(found)]
            all_at_once = timed([str(BIN / "trialnotary"), "verify", "--rpc", rpc_url,
                                 "--expect-sender", notary, *map(str, many)]) / 1000
    finally:
        anvil.terminate()
    median = {name: statistics.median(values) for name, values in times.items()}
    ratio = median["evidence"] / median["v1"]
    index = crowded[0]["anchors"][0]["evidence"]["transactionIndex"]
    return [
        Figure("trialnotary verify, one version 1 receipt, local node (median)", median["v1"],
               "ms", f"python -c pass {median['bare']:.0f} ms", f"≤ {FLOOR_MS} ms",
               median["v1"] <= FLOOR_MS, ratio=median["v1"] / median["bare"]),
        Figure("trialnotary verify, one receipt with evidence (median)", median["evidence"],
               "ms", f"version 1 {median['v1']:.0f} ms",
               f"≤ {FLOOR_MS} ms, ≤ {FLOOR_RATIO} ×",
               median["evidence"] <= FLOOR_MS and ratio <= FLOOR_RATIO, ratio=ratio),
        Figure("trialnotary verify --notary FILE, one receipt with evidence (median)",
               median["notary"], "ms", f"--expect-sender {median['evidence']:.0f} ms",
               f"≤ {FLOOR_MS} ms", median["notary"] <= FLOOR_MS,
               ratio=median["notary"] / median["evidence"]),
        Figure(f"trialnotary verify, {MANY:,} receipts of one batch, one call", all_at_once,
               "s", f"one receipt {median['evidence']:.0f} ms", f"≤ {FLOOR_MANY_S:g} s",
               all_at_once <= FLOOR_MANY_S),
        Figure("receipt with evidence, anchor alone in its block", size(found[0]), "bytes",
               f"version 1 {size(without_evidence(found[0])):,} bytes", "reported", True,
               ratio=size(found[0]) / size(without_evidence(found[0]))),
        Figure(f"receipt with evidence, anchor at index {index} of {CROWD + 1}",
               size(crowded[0]), "bytes",
               f"version 1 {size(without_evidence(crowded[0])):,} bytes", "reported", True,
               ratio=size(crowded[0]) / size(without_evidence(crowded[0]))),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    found = figures(parser.parse_args().runs)
    return report(found)


if __name__ == "__main__":
    sys.exit(main())
