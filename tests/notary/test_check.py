"""``trialnotary check`` finds rows edited in the database: a record, a leaf, the leaf order,
a batch's root or audit head, a batch rewritten whole, an anchor pointed at another
transaction. On SQLite and PostgreSQL, against the test anvil."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlmodel import Session

from tests.conftest import insert_registrations
from tests.utils import anchors_of_batch
from trialnotary.cli import main
from trialnotary.notary import anchoring, batches, merkle
from trialnotary.notary.models import Batch
from trialnotary.notary.registrations import leaf_of


@pytest.fixture
def notary(engine, chain, anvil, site_token, settings_env):
    """Two confirmed batches (3 and 2 registrations, each with the audit head), then one
    pending registration; ``ids`` maps each batch (and ``pending``) to its registrations."""
    insert_registrations(engine, 3)
    (first,) = batches.seal_all(engine, 100)
    insert_registrations(engine, 2)
    (second,) = batches.seal_all(engine, 100)
    anchoring.anchor_sealed(engine, chain)
    anvil.mine(3)
    assert set(anchoring.confirm_sent(engine, chain)) == {first.id, second.id}
    (pending,) = insert_registrations(engine, 1)
    ids = {batch_id: [row[0] for row in rows(engine, "SELECT s.id FROM submission s JOIN "
                                                    "leaf_slot l ON l.seq = s.seq WHERE "
                                                    "l.batch_id = :b ORDER BY l.leaf_index",
                                             b=batch_id)]
           for batch_id in (first.id, second.id)}
    return {"engine": engine, "env": settings_env, "first": first.id, "second": second.id,
            "ids": ids, "pending": pending["id"]}


def rows(engine, sql: str, **params) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).all()


def execute(engine, sql: str, **params) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(sql), params)


def run_check(notary):
    return CliRunner().invoke(main, ["check"], env=notary["env"], catch_exceptions=False)


def record_of(engine, registration_id: str) -> dict:
    (row,) = rows(engine, "SELECT id, trial, site, kind, dataset, sha256, size_bytes, filename, "
                          "supersedes, submitted_at FROM submission WHERE id = :i",
                  i=registration_id)
    keys = ("id", "trial", "site", "kind", "dataset", "sha256", "sizeBytes", "filename",
            "supersedes", "submittedAt")
    return dict(zip(keys, row, strict=True))


def test_an_untouched_database_is_consistent(notary):
    result = run_check(notary)
    assert result.exit_code == 0, result.output
    assert "leaves recomputed: 6" in result.output and "roots recomputed: 2" in result.output
    assert result.output.strip().endswith("consistent")


# --- one edit each -------------------------------------------------------------------

def edit_label(n):
    victim = n["ids"][n["first"]][1]
    execute(n["engine"], "UPDATE submission SET dataset = 'Interim results (final)' "
                         "WHERE id = :i", i=victim)
    return [f"registration {victim} (batch {n['first']}, leaf 1): its stored record no longer "
            "gives its leaf"]


def edit_sha256(n):
    victim = n["ids"][n["second"]][0]
    execute(n["engine"], "UPDATE submission SET sha256 = :h WHERE id = :i", h="ab" * 32,
            i=victim)
    return [f"registration {victim} (batch {n['second']}, leaf 0): its stored record"]


def edit_pending_label(n):
    execute(n["engine"], "UPDATE submission SET dataset = 'x' WHERE id = :i", i=n["pending"])
    return [f"registration {n['pending']} (pending): its stored record no longer gives its leaf"]


def edit_leaf(n):
    victim = n["ids"][n["first"]][2]
    execute(n["engine"], "UPDATE submission SET leaf = :l WHERE id = :i", l=b"\1" * 32,
            i=victim)
    return [f"registration {victim} (batch {n['first']}, leaf 2)",
            f"batch {n['first']}: its stored leaves no longer give its root"]


def edit_root(n):
    execute(n["engine"], "UPDATE batch SET root = :r WHERE id = :b", r=b"\2" * 32,
            b=n["second"])
    return [f"batch {n['second']}: its stored leaves no longer give its root",
            f"not the batch's root {'02' * 32}"]


def edit_leaf_order(n):
    engine, batch = n["engine"], n["first"]
    for old, new in ((0, -1), (1, 0), (-1, 1)):
        execute(engine, "UPDATE leaf_slot SET leaf_index = :new WHERE batch_id = :b AND "
                        "leaf_index = :old", new=new, old=old, b=batch)
    return [f"batch {batch}: its stored leaves no longer give its root"]


def edit_audit_head(n):
    execute(n["engine"], "UPDATE batch SET audit_head = :h WHERE id = :b", h="cd" * 32,
            b=n["first"])
    return [f"batch {n['first']}: its stored leaves no longer give its root"]


def rewrite_batch_whole(n):
    """Record, leaf and root changed together: the database agrees with itself, only the
    anchor transaction (which carries the old root) tells."""
    engine, batch_id = n["engine"], n["first"]
    victim = n["ids"][batch_id][0]
    forged = {**record_of(engine, victim), "dataset": "forged"}
    execute(engine, "UPDATE submission SET dataset = 'forged', leaf = :l WHERE id = :i",
            l=leaf_of(forged), i=victim)
    with Session(engine) as session:
        batch = session.get(Batch, batch_id)
        root = merkle.root_of(merkle.build_levels(batches.batch_leaves(session, batch)))
    execute(engine, "UPDATE batch SET root = :r WHERE id = :b", r=root, b=batch_id)
    return [f"batch {batch_id}: anchor 0x", f"not the batch's root {root.hex()}"]


def swap_anchor_transactions(n):
    """Each batch's confirmed anchor pointed at the other's transaction and block: every
    anchor is still a mined transaction of the account, in the block recorded."""
    engine = n["engine"]
    with Session(engine) as session:
        one, two = ([a for a in anchors_of_batch(session, b) if a.state == "confirmed"][0]
                    for b in (n["first"], n["second"]))
    swap = "UPDATE anchor SET tx_hash = :t, block_number = :n, block_hash = :h WHERE id = :i"
    execute(engine, swap, t="00" * 32, n=0, h="0x", i=one.id)
    execute(engine, swap, t=one.tx_hash, n=one.block_number, h=one.block_hash, i=two.id)
    execute(engine, swap, t=two.tx_hash, n=two.block_number, h=two.block_hash, i=one.id)
    return [f"batch {n['first']}: anchor 0x{two.tx_hash} carries",
            f"batch {n['second']}: anchor 0x{one.tx_hash} carries"]


@pytest.mark.parametrize("edit", [edit_label, edit_sha256, edit_pending_label, edit_leaf,
                                  edit_root, edit_leaf_order, edit_audit_head,
                                  rewrite_batch_whole, swap_anchor_transactions])
def test_an_edited_row_is_found_and_named(notary, edit):
    expected = edit(notary)
    result = run_check(notary)
    assert result.exit_code == 1, result.output
    for fragment in expected:
        assert fragment in result.output, (fragment, result.output)
    assert "problem(s)" in result.output.strip().splitlines()[-1]


def test_many_changed_registrations_are_counted_not_all_named(notary, engine):
    insert_registrations(engine, 40)
    execute(engine, "UPDATE submission SET sha256 = :h", h="ef" * 32)
    result = run_check(notary)
    assert result.exit_code == 1
    assert result.output.count("its stored record no longer gives its leaf") == 20
    assert "… 26 more changed registration(s)" in result.output


def test_an_unreachable_node_still_checks_the_database(notary):
    edit_label(notary)
    env = {**notary["env"], "TRIALNOTARY_CHAIN_RPC_URL": "http://127.0.0.1:9"}
    result = CliRunner().invoke(main, ["check"], env=env, catch_exceptions=False)
    assert result.exit_code == 1
    assert "its stored record no longer gives its leaf" in result.output
    assert "the chain could not be checked: no chain node answers" in result.output


def test_audit_verify_checks_the_registrations_too(notary, anvil):
    victim = notary["ids"][notary["first"]][0]
    audit_verify = ["audit", "verify", "--rpc", anvil.url]
    before = CliRunner().invoke(main, audit_verify, env=notary["env"])
    assert before.exit_code == 0, before.output
    assert "6 registrations' records give their leaves" in before.output
    assert "2 batches' leaves (with the audit head each sealed) give their roots" \
        in before.output
    execute(notary["engine"], "UPDATE submission SET dataset = 'x' WHERE id = :i", i=victim)
    after = CliRunner().invoke(main, audit_verify, env=notary["env"])
    assert after.exit_code == 1
    assert f"registration {victim} (batch {notary['first']}, leaf 0)" in after.output

