"""The baseline of the registration benchmark: a bare Flask endpoint that inserts one row
through SQLModel, served by the same server as trialnotary in the same run:

    BENCH_DATABASE_URL=URL gunicorn 'bench.baseline_app:from_env()'
"""

from __future__ import annotations

import os

from flask import Flask, jsonify, request
from sqlmodel import Field, Session, SQLModel

from trialnotary.db import make_engine


class BaselineRow(SQLModel, table=True):
    __tablename__ = "bench_baseline"
    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(max_length=64)
    dataset: str = Field(max_length=200)


def create_app(url: str) -> Flask:
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine, tables=[BaselineRow.__table__])
    app = Flask(__name__)

    @app.post("/insert")
    def insert():
        body = request.get_json()
        with Session(engine) as session:
            row = BaselineRow(sha256=body["sha256"], dataset=body["dataset"])
            session.add(row)
            session.commit()
            return jsonify({"id": row.id}), 201

    return app


def from_env() -> Flask:
    return create_app(os.environ["BENCH_DATABASE_URL"])
