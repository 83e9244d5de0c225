"""The schema comes only from the migrations, and they agree with the models."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from trialnotary import db
from trialnotary.notary import models  # noqa: F401


def test_upgrade_from_empty_gives_the_models_schema(database_url):
    engine = db.make_engine(database_url)
    try:
        assert db.is_current(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        assert diff == []
        tables = set(sa.inspect(engine).get_table_names())
        assert {"submission", "pending", "leaf_slot", "batch", "tree_page", "anchor",
                "site_token", "idempotency_key", "trial", "site", "enrolment", "app_user",
                "audit_entry", "chain_status"} <= tables
    finally:
        engine.dispose()


def test_upgrade_twice_is_harmless(database_url):
    db.upgrade(database_url)
    engine = db.make_engine(database_url)
    assert db.is_current(engine)
    engine.dispose()


def test_an_empty_database_is_not_current(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    assert not db.is_current(engine)
    engine.dispose()


def test_upgrading_a_database_with_registrations_keeps_where_each_one_is(database_url):
    """0004 moved "pending" and "sealed where" out of the registration rows: a database
    migrated with registrations in it keeps every fact, and new ones enter the queue."""
    engine = db.make_engine(database_url)
    try:
        from alembic import command

        command.downgrade(db.alembic_config(database_url), "0003")
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO batch (id, root, leaf_count, sealed_at, state) "
                                 "VALUES (1, :root, 2, '2026-11-25T00:00:00.000Z', 'sealed')"),
                         {"root": b"\x01" * 32})
            for seq, batch, index in [(1, 1, 0), (2, 1, 1), (3, None, None)]:
                conn.execute(sa.text(  # seq comes from the database: 1, 2, 3
                    "INSERT INTO submission (id, trial, site, kind, dataset, sha256, "
                    "submitted_at, leaf, batch_id, leaf_index) VALUES (:id, 'NCT01234567',"
                    " 'S', 'dataset', 'd', :sha, '2026-11-25T00:00:00.000Z', :leaf, :batch, "
                    ":index)"), {"id": f"00000000-0000-4000-8000-00000000000{seq}",
                                 "sha": f"{seq:064x}", "leaf": bytes([seq]) * 32,
                                 "batch": batch, "index": index})
        db.upgrade(database_url)
        assert db.is_current(engine)
        with engine.connect() as conn:
            slots = conn.execute(sa.text("SELECT seq, batch_id, leaf_index FROM leaf_slot "
                                         "ORDER BY seq")).all()
            pending = conn.execute(sa.text("SELECT seq FROM pending")).scalars().all()
        assert [tuple(row) for row in slots] == [(1, 1, 0), (2, 1, 1)] and pending == [3]
        from tests.conftest import insert_registrations

        insert_registrations(engine, 1)  # the trigger queues a new registration
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM pending")).scalar() == 2
    finally:
        engine.dispose()


def test_a_database_with_two_corrections_of_one_registration_keeps_both(database_url, caplog):
    """Before 0006 a registration could be corrected twice. Registrations are anchored and
    never change, so both corrections stay: the earliest stands (``supersededBy``), the
    later one is named in a warning and left out of the index, and no new correction of
    that registration, or of any other one corrected already, gets in."""
    from alembic import command

    from trialnotary.notary import registrations

    engine = db.make_engine(database_url)
    ids = [f"00000000-0000-4000-8000-00000000000{n}" for n in range(1, 6)]
    # 1 is corrected by 2 and, later, by 3; 4 by 5.
    supersedes = {ids[1]: ids[0], ids[2]: ids[0], ids[4]: ids[3]}
    try:
        command.downgrade(db.alembic_config(database_url), "0005")
        with engine.begin() as conn:
            for n, registration_id in enumerate(ids, start=1):
                conn.execute(sa.text(
                    "INSERT INTO submission (id, trial, site, kind, dataset, sha256, supersedes,"
                    " submitted_at, leaf) VALUES (:id, 'NCT01234567', 'S', 'dataset', 'd', "
                    ":sha, :supersedes, '2026-11-25T00:00:00.000Z', :leaf)"),
                    {"id": registration_id, "sha": f"{n:064x}", "leaf": bytes([n]) * 32,
                     "supersedes": supersedes.get(registration_id)})
        with caplog.at_level("WARNING"):
            db.upgrade(database_url)
        assert db.is_current(engine)
        assert [r.getMessage() for r in caplog.records if ids[2] in r.getMessage()]
        from sqlmodel import Session

        with Session(engine) as session:
            assert registrations.corrections_by_target(session, [ids[0], ids[3]]).keys() \
                == {ids[0], ids[3]}
            assert registrations.status_of(session, ids[0])["supersededBy"] == ids[1]
            assert registrations.status_of(session, ids[3])["supersededBy"] == ids[4]
        for target in (ids[0], ids[3]):
            try:
                with engine.begin() as conn:
                    conn.execute(sa.text(
                        "INSERT INTO submission (id, trial, site, kind, dataset, sha256, "
                        "supersedes, submitted_at, leaf) VALUES (:id, 'NCT01234567', 'S', "
                        "'dataset', 'd', :sha, :target, '2026-11-26T00:00:00.000Z', :leaf)"),
                        {"id": "00000000-0000-4000-8000-000000000099", "sha": "9" * 64,
                         "leaf": b"\x09" * 32, "target": target})
            except sa.exc.IntegrityError:
                continue
            raise AssertionError(f"a third correction of {target} was stored")
        command.downgrade(db.alembic_config(database_url), "0005")  # and back
        db.upgrade(database_url)
        assert db.is_current(engine)
    finally:
        engine.dispose()
