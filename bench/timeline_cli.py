"""`trialnotary timeline` over a trial's receipts zip, against a local node, as a whole process.

    python bench/timeline_cli.py [--receipts 1000] [--batches 50] [--runs 3]

A real anvil; a trial's registrations (a protocol and its amendment, a SAP, a randomisation
list, datasets, a database lock, an unblinding and results: the rules are judged and hold)
registered by the real notary in `--batches` batches, each sealed, anchored and confirmed in
its own block, one second after the one before. Their receipts are zipped as the notary
serves them (`GET /trials/T/receipts.zip`'s writer) and also saved as files. Then, in the
same run, each timed from spawn to exit (each must exit 0), median of `--runs`:
`trialnotary timeline receipts.zip --rpc URL --notary identity.json`, the same over the
receipt files, the same over 20 receipts (of 20 batches), and `trialnotary verify` of one
receipt (the baseline: what one receipt costs the process).
Floor (issue 12): the zip of 1,000 receipts of 50 batches ≤ 15 s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Figure, report, start_anvil  # noqa: E402
from bench.verify_time import BIN, local_notary, register_bulk, rpc, timed  # noqa: E402
from trialnotary import db  # noqa: E402
from trialnotary.notary import anchoring, batches, identity, registrations  # noqa: E402
from trialnotary.notary.chain import ChainClient  # noqa: E402
from trialnotary.web.documents.bundle import write_bundle  # noqa: E402

FLOOR_S = 15.0
TRIAL = "NCT01234567"
FEW = 20
#: The first batch: the documents fixed before any data (then consent forms); every later
#: registration is a dataset, but the last three batches end with the milestones after data.
OPENING = ["randomisation-list", "protocol", "sap"]
CLOSING = ["database-lock", "unblinding", "analysis-results"]


def kinds_of(count: int, batch_count: int) -> list[list[str]]:
    """``count`` registrations' kinds in ``batch_count`` batches."""
    per_batch = [count // batch_count + (index < count % batch_count)
                 for index in range(batch_count)]
    found = []
    for index, size in enumerate(per_batch):
        kinds = ["dataset"] * size
        if index == 0:
            kinds = [*OPENING, *["consent-form"] * (size - len(OPENING))][:size]
        if index >= batch_count - len(CLOSING):
            kinds[-1] = CLOSING[index - (batch_count - len(CLOSING))]
        found.append(kinds)
    return found


def anchored_trial(folder: Path, rpc_url: str, count: int, batch_count: int) -> list[dict]:
    """The trial registered batch by batch (bulk calls), each batch anchored and confirmed in
    a block a second after the last; every receipt. The identity goes to identity.json."""
    settings, engine, token = local_notary(folder, rpc_url)
    chain = ChainClient(settings)
    ids = []
    for number, kinds in enumerate(kinds_of(count, batch_count)):
        ids += [record["id"] for record in register_bulk(engine, token, [
            {"trial": TRIAL, "site": "SITE-01", "kind": kind, "dataset": f"{kind} {number}.{i}",
             "sha256": hashlib.sha256(f"{number}.{i}".encode()).hexdigest()}
            for i, kind in enumerate(kinds)])]
        batches.seal_all(engine, len(kinds) + 1)
        latest = int(rpc(rpc_url, "eth_getBlockByNumber", "latest", False)["timestamp"], 16)
        rpc(rpc_url, "evm_setNextBlockTimestamp", latest + 1)
        anchoring.anchor_sealed(engine, chain)
        while not anchoring.confirm_sent(engine, chain):
            rpc(rpc_url, "anvil_mine", "0x1")
    with db.write_session(engine) as session:
        found = [registrations.receipt_of(session, registration_id,
                                          identity.notary_of(settings)).receipt
                 for registration_id in ids]
    (folder / "identity.json").write_text(identity.document_text(engine, settings))
    engine.dispose()
    return found


def zipped(path: Path, receipts: list[dict]) -> Path:
    with open(path, "wb") as out:
        write_bundle(out, trial=TRIAL, generated_at="2026-11-30T00:00:00Z",
                     receipts=[(f"{receipt['trialnotary']['record']['id']}.receipt.json",
                                receipt) for receipt in receipts], rows=[])
    return path


def figures(count: int = 1000, batch_count: int = 50, runs: int = 3) -> list[Figure]:
    anvil, rpc_url = start_anvil()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            receipts = anchored_trial(folder, rpc_url, count, batch_count)
            files = []
            for receipt in receipts:
                path = folder / f"{receipt['trialnotary']['record']['id']}.receipt.json"
                path.write_text(json.dumps(receipt))
                files.append(str(path))
            by_batch = {receipt["trialnotary"]["batch"]["id"]: path
                        for receipt, path in zip(receipts, files, strict=True)}
            bundle = zipped(folder / "receipts.zip", receipts)
            pin = ["--rpc", rpc_url, "--notary", str(folder / "identity.json")]
            timeline = [str(BIN / "trialnotary"), "timeline", *pin]
            commands = {"zip": [*timeline, str(bundle)], "files": [*timeline, *files],
                        "few": [*timeline, *list(by_batch.values())[:FEW]],
                        "one": [str(BIN / "trialnotary"), "verify", *pin, files[0]]}
            times: dict[str, list[float]] = {name: [] for name in commands}
            for command in commands.values():
                timed(command)  # warm the page cache; each must exit 0 (every rule holds)
            for _ in range(runs):
                for name, command in commands.items():
                    times[name].append(timed(command) / 1000)
    finally:
        anvil.terminate()
    median = {name: statistics.median(values) for name, values in times.items()}
    what = f"{count:,} receipts of {batch_count} batches"
    return [
        Figure(f"trialnotary timeline, a zip of {what}, local node (median)", median["zip"],
               "s", f"verify one receipt {median['one']:.2f} s", f"≤ {FLOOR_S:g} s",
               median["zip"] <= FLOOR_S, ratio=median["zip"] / median["one"]),
        Figure(f"trialnotary timeline, {what} as files (median)", median["files"], "s",
               f"timeline of {FEW} receipts {median['few']:.2f} s", f"≤ {FLOOR_S:g} s",
               median["files"] <= FLOOR_S, ratio=median["files"] / median["few"]),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receipts", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    given = parser.parse_args()
    return report(figures(given.receipts, given.batches, given.runs))


if __name__ == "__main__":
    sys.exit(main())
