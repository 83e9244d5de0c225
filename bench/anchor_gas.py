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

from bench.common import Figure, report, start_anvil  # noqa: E402
from bench.seal import fill  # noqa: E402
from trialnotary import db
from trialnotary.config import load_settings
from trialnotary.notary import anchoring, batches
from trialnotary.notary.chain import ChainClient, anchor_gas


def figures(sizes: str = "1,1000,100000") -> list[Figure]:
    anvil, rpc_url = start_anvil()
    rows = []
    try:
        for size in [int(s) for s in sizes.split(",")]:
            with tempfile.TemporaryDirectory() as tmp:
                settings = load_settings({"TRIALNOTARY_INSTANCE_PATH": tmp,
                                          "TRIALNOTARY_CHAIN_RPC_URL": rpc_url,
                                          "TRIALNOTARY_CONFIRMATIONS": "1"})
                db.upgrade(settings.database_url)
                engine = db.make_engine(settings.database_url)
                fill(engine, size)
                chain = ChainClient(settings)
                [batch] = batches.seal_all(engine, size)
                anchors = anchoring.anchor_sealed(engine, chain)
                while not anchoring.confirm_sent(engine, chain):
                    time.sleep(0.2)
                receipt = chain._call(
                    lambda w3, h=anchors[0].tx_hash: w3.eth.get_transaction_receipt("0x" + h))
                rows.append((size, len(anchors), receipt["gasUsed"], anchor_gas(batch.root)))
                engine.dispose()
    finally:
        anvil.terminate()
    return [Figure(f"anchor of a {size:,}-leaf batch ({count} transaction)", used, "gas",
                   f"intrinsic minimum {floor:,} gas", "1 transaction at the minimum",
                   count == 1 and used == floor, ratio=used / floor)
            for size, count, used, floor in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,1000,100000")
    found = figures(parser.parse_args().sizes)
    return report(found)


if __name__ == "__main__":
    sys.exit(main())
