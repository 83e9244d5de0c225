"""Alembic environment: migrates the database named in the Alembic config."""

from alembic import context
from sqlmodel import SQLModel

from trialnotary.db import make_engine
from trialnotary.notary import models  # noqa: F401  (registers every table on the metadata)

target_metadata = SQLModel.metadata
config = context.config


def run_migrations_online() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            # Several replicas may start at once: one migrates, the others wait.
            connection.exec_driver_sql("SELECT pg_advisory_lock(7246001)")
            connection.exec_driver_sql("SET lock_timeout = '60s'")
            connection.commit()
        try:
            context.configure(connection=connection, target_metadata=target_metadata,
                              render_as_batch=True, compare_type=True)
            with context.begin_transaction():
                context.run_migrations()
        finally:
            if engine.dialect.name == "postgresql":
                connection.exec_driver_sql("SELECT pg_advisory_unlock(7246001)")
                connection.commit()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `trialnotary db upgrade`")
run_migrations_online()
