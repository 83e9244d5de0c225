"""The baseline of the registration benchmark: a bare Flask endpoint that inserts one row
through SQLModel, served the way `trialnotary serve` serves (waitress, same threads).

    python -m bench.baseline_app --database-url URL --port P [--threads 16]
"""

from __future__ import annotations

import argparse

import waitress
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    waitress.serve(create_app(args.database_url), host="127.0.0.1", port=args.port,
                   threads=args.threads, ident="baseline", _quiet=True)


if __name__ == "__main__":
    main()
