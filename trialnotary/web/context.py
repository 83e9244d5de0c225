"""The per-application services and the per-request database session, for the views."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app, g, request
from sqlalchemy.engine import Engine
from sqlmodel import Session

from trialnotary.config import Settings
from trialnotary.notary.chain import ChainClient
from trialnotary.notary.identity import document_text, notary_of


@dataclass
class Services:
    """What the views need, built once by ``create_app``; no background threads."""

    settings: Settings
    engine: Engine
    chain: ChainClient = field(repr=False)  # the first EVM anchor's
    chains: dict[str, ChainClient] = field(default_factory=dict, repr=False)  # every one's


def services() -> Services:
    return current_app.extensions["trialnotary"]


def receipt_notary() -> dict:
    """The receipts' ``notary``: its configured name, and its public URL (else the address
    this request came to)."""
    return notary_of(services().settings, request.url_root)


def served_identity() -> str:
    """The notary's identity document (its newest version) as this request serves it."""
    found = services()
    return document_text(found.engine, found.settings, found.chain,
                         served_url=request.url_root)


def page_default_rpc(settings: Settings) -> str:
    """The node the verify pages offer: the local chain's; on a public chain none, so that
    the reviewer's browser asks the chain's public node (or theirs), not one we chose."""
    return settings.rpc_urls[0] if settings.chain == "local" else ""


def db_session() -> Session:
    """The request's session, closed when the request ends."""
    if "db_session" not in g:
        g.db_session = Session(services().engine, expire_on_commit=False)
    return g.db_session


def close_db_session(_exc=None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
