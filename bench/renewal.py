"""Retiring a chain with many confirmed anchors: build its renewal and send it.

    python bench/renewal.py [--anchors 10000]

A notary of two EVM anchors, ``a`` on a real anvil and ``b`` (chain 4242, its node gone),
holds ``--anchors`` confirmed transactions on ``b`` whose chain evidence it already has
(inserted straight into the database: the evidence of one real anchor, copied; each leaf's
digest differs by its ``sourceId`` and ``blockNumber``). ``anchor retire b`` is timed in its
two parts: building the renewal tree (digests, paths, rows) and sending its root on ``a``.
The baseline is the bare tree over the same digests with hashlib, measured in the same run.

Floor: ≤ 30 s to build and send, one transaction on the remaining chain at the intrinsic
gas of a 32-byte root.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Figure, free_port, report, start_anvil  # noqa: E402
from bench.seal import fill  # noqa: E402
from trialnotary import db  # noqa: E402
from trialnotary.config import ANVIL_DEV_KEY, load_settings  # noqa: E402
from trialnotary.notary import anchoring, batches, renewal  # noqa: E402
from trialnotary.notary.chain import anchor_gas  # noqa: E402
from trialnotary.notary.models import Anchor, Rollup  # noqa: E402
from trialnotary.proof.receipt import canonical_json  # noqa: E402

RETIRED_CHAIN = 4242
FLOOR_SECONDS = 30.0


def _config(folder: Path, rpc_url: str) -> dict:
    key_file = folder / "b.key"
    key_file.write_text(ANVIL_DEV_KEY)
    instance = folder / "instance"
    instance.mkdir(mode=0o700)
    config = instance / "config.toml"
    config.touch(mode=0o600)
    config.write_text(f"""
[[anchors]]
name = "a"
kind = "evm"
chain = "local"
rpc = ["{rpc_url}"]
confirmations = 1

[[anchors]]
name = "b"
kind = "evm"
chain = {RETIRED_CHAIN}
rpc = ["http://127.0.0.1:{free_port()}"]
key_file = "{key_file}"
confirmations = 1
""")
    return {"TRIALNOTARY_INSTANCE_PATH": str(instance),
            "TRIALNOTARY_DATABASE_URL": f"sqlite:///{folder}/bench.sqlite3"}


def _one_real_evidence(engine, settings) -> str:
    """Anchor one batch on ``a`` and confirm it: its chain evidence (JSON text)."""
    fill(engine, 1)
    batches.seal_all(engine, 1)
    [worker] = [w for w in anchoring.anchorers(settings) if w.name == "a"]
    while not anchoring.confirm_sent(engine, worker.chain):
        time.sleep(0.2)
    with db.write_session(engine) as session:
        evidence = session.scalar(Anchor.__table__.select().with_only_columns(Anchor.evidence)
                                  .where(Anchor.name == "a"))
    assert evidence, "anvil gave no evidence"
    return evidence


def _retired_anchors(engine, count: int, evidence: str) -> None:
    """``count`` confirmed transactions of ``b``, each of its own roll-up of one root."""
    rollups = [{"id": 10_000_000 + i, "anchor": "b", "root": hashlib.sha256(b"%d" % i).digest(),
                "leaf_count": 1, "created_at": "2026-01-01T00:00:00.000Z", "state": "confirmed"}
               for i in range(count)]
    anchors = [{"name": "b", "rollup_id": 10_000_000 + i, "chain_id": RETIRED_CHAIN,
                "sender": "0x" + "11" * 20, "nonce": i, "tx_hash": f"{i:064x}", "raw": b"\x00",
                "gas": 22_280, "max_fee_per_gas": 1, "max_priority_fee_per_gas": 1,
                "state": "confirmed", "block_number": 1000 + i,
                "block_hash": "0x" + hashlib.sha256(b"block %d" % i).hexdigest(),
                "block_time": "2026-01-01T00:00:00Z", "evidence": evidence}
               for i in range(count)]
    with db.write_session(engine) as session:
        session.execute(Rollup.__table__.insert(), rollups)
        session.execute(Anchor.__table__.insert(), anchors)
        session.commit()


def _bare_tree(count: int) -> float:
    """The same digests and tree with hashlib alone, for the baseline."""
    started = time.perf_counter()
    level = [hashlib.sha256(canonical_json({
        "chainId": RETIRED_CHAIN, "blockNumber": 1000 + i, "blockHash": "0x" + "ab" * 32,
        "sourceId": f"{i:064x}", "root": "cd" * 32})).digest() for i in range(count)]
    while len(level) > 1:
        level = [hashlib.sha256(level[i] + level[i + 1]).digest() if i + 1 < len(level)
                 else level[i] for i in range(0, len(level), 2)]
    return time.perf_counter() - started


def figures(count: int = 10_000) -> list[Figure]:
    anvil, rpc_url = start_anvil()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env = _config(Path(tmp), rpc_url)
            settings = load_settings(env)
            db.upgrade(settings.database_url)
            engine = db.make_engine(settings.database_url)
            evidence = _one_real_evidence(engine, settings)
            _retired_anchors(engine, count, evidence)
            started = time.perf_counter()
            done = renewal.retire(engine, settings, "b")
            built = time.perf_counter() - started
            sent_at = time.perf_counter()
            sent = renewal.send_renewal(engine, settings, done.renewal.id)
            sending = time.perf_counter() - sent_at
            with db.write_session(engine) as session:
                gases = [row.gas for row in session.execute(
                    Anchor.__table__.select().where(Anchor.rollup_id.in_(
                        [r.id for r in session.execute(Rollup.__table__.select().where(
                            Rollup.leaf_count == 0))])))]
            engine.dispose()
    finally:
        anvil.terminate()
    bare = _bare_tree(count)
    total = built + sending
    one = len(sent) == 1 and all(item.tx_hash for item in sent) and \
        gases == [anchor_gas(bytes(done.renewal.root))]
    return [
        Figure(f"renewal of {count:,} anchors: build (digests, paths, rows)", built, "s",
               f"bare hashlib tree {bare:.2f} s", f"≤ {FLOOR_SECONDS:g} s with sending",
               total <= FLOOR_SECONDS, ratio=built / bare),
        Figure(f"renewal of {count:,} anchors: send on the remaining chain", sending, "s",
               "", f"≤ {FLOOR_SECONDS:g} s with building", total <= FLOOR_SECONDS),
        Figure("renewal: transactions on the remaining chain", len(gases), "",
               f"{gases[0] if gases else 0:,} gas each", "1, at the intrinsic gas", one),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anchors", type=int, default=10_000)
    return report(figures(parser.parse_args().anchors))


if __name__ == "__main__":
    sys.exit(main())
