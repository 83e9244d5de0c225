"""The schema comes only from the migrations, and they agree with the models."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from trialnotary import db, models  # noqa: F401


def test_upgrade_from_empty_gives_the_models_schema(database_url):
    engine = db.make_engine(database_url)
    try:
        assert db.is_current(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        assert diff == []
        tables = set(sa.inspect(engine).get_table_names())
        assert {"submission", "batch", "tree_page", "anchor", "site_token",
                "idempotency_key", "trial", "site", "enrolment"} <= tables
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
