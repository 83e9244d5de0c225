"""The per-application services and the per-request database session, for the views."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app, g, request
from sqlalchemy.engine import Engine
from sqlmodel import Session

from trialnotary.config import Settings
from trialnotary.notary.chain import ChainClient
from trialnotary.notary.identity import notary_of


@dataclass
class Services:
    """What the views need, built once by ``create_app``; no background threads."""

    settings: Settings
    engine: Engine
    chain: ChainClient = field(repr=False)


def services() -> Services:
    return current_app.extensions["trialnotary"]


def receipt_notary() -> dict:
    """The receipts' ``notary``: its configured name, and its public URL (else the address
    this request came to)."""
    return notary_of(services().settings, request.url_root)


def db_session() -> Session:
    """The request's session, closed when the request ends."""
    if "db_session" not in g:
        g.db_session = Session(services().engine, expire_on_commit=False)
    return g.db_session


def close_db_session(_exc=None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
