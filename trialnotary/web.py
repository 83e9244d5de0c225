"""Server-rendered pages (the accounts and UI issue builds on these)."""

from __future__ import annotations

from flask import Blueprint, render_template

from .context import services

bp = Blueprint("web", __name__)


@bp.get("/")
def index():
    settings = services().settings
    return render_template("index.html", chain=settings.chain, chain_id=settings.chain_id)


def init_app(app) -> None:
    app.register_blueprint(bp)
