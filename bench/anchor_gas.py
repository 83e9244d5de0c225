"""Gas used by one anchor transaction, whatever the batch size, on a real anvil.

    python bench/anchor_gas.py [--sizes 1,1000,100000]

The baseline is the protocol's floor for a 32-byte payload: 21,000 + the calldata cost
(EIP-7623's floor on current forks: 22,280 when no byte of the root is zero).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import start_anvil  # noqa: E402
from bench.seal import fill  # noqa: E402
from trialnotary import anchoring, batches, db  # noqa: E402
from trialnotary.chain import ChainClient, anchor_gas  # noqa: E402
from trialnotary.config import load_settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,1000,100000")
    args = parser.parse_args()
    anvil, rpc_url = start_anvil()
    rows = []
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            with tempfile.TemporaryDirectory() as tmp:
                settings = load_settings({"TRIALNOTARY_INSTANCE_PATH": tmp,
                                          "TRIALNOTARY_CHAIN_RPC_URL": rpc_url,
                                          "TRIALNOTARY_CONFIRMATIONS": "1"})
                db.upgrade(settings.database_url)
                engine = db.make_engine(settings.database_url)
                fill(engine, size)
                chain = ChainClient(settings)
                [batch] = batches.seal_all(engine, size)
                [anchor] = anchoring.anchor_sealed(engine, chain)
                while not anchoring.confirm_sent(engine, chain):
                    time.sleep(0.2)
                receipt = chain._call(
                    lambda w3, h=anchor.tx_hash: w3.eth.get_transaction_receipt("0x" + h))
                rows.append((size, receipt["gasUsed"], anchor_gas(batch.root)))
                engine.dispose()
    finally:
        anvil.terminate()
    print(f"{'leaves':>10}{'gas used':>12}{'intrinsic floor':>18}")
    for size, used, floor in rows:
        print(f"{size:>10,}{used:>12,}{floor:>18,}")
    holds = all(used == floor for _, used, floor in rows)
    print(f"one transaction per batch at the intrinsic minimum → {'holds' if holds else 'MISSED'}")


if __name__ == "__main__":
    main()
