"""What every template gets: filters for times, the chain's label, the kinds' labels, the
characters free text refuses, and every printed value shown as stored."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask
from markupsafe import Markup

from trialnotary.db import as_utc
from trialnotary.people import sites
from trialnotary.proof.facts import chain_label
from trialnotary.validation import (
    CONTROL_RANGES,
    INVISIBLE_RANGES,
    SURROGATE_RANGES,
    show_invisible,
)
from trialnotary.web.context import services
from trialnotary.web.pages.blueprint import KIND_LABELS

# What free text may not hold, for the browser's own check before it sends (app.js).
REFUSED_CHARACTERS = {"control": CONTROL_RANGES, "surrogate": SURROGATE_RANGES,
                      "invisible": INVISIBLE_RANGES}


def utc_text(value: str | None) -> str:
    """``2026-11-23T19:00:12Z`` → ``2026-11-23 19:00:12 UTC`` (app.js adds local time)."""
    if not value:
        return ""
    return value.replace("T", " ").removesuffix("Z") + " UTC"


def iso_utc(value):
    """A stored ``datetime`` as ``2026-11-23T19:00:12Z`` (text is left as it is)."""
    if isinstance(value, datetime):
        return as_utc(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def shown_as_stored(value):
    """Every value a template prints, with invisible characters spelled out (``<U+202E>``):
    text stored before they were refused, or read from elsewhere, cannot pose as other text
    on any page. Markup built by the code itself is left as it is; ASCII holds none."""
    if isinstance(value, str) and not value.isascii() and not isinstance(value, Markup):
        return show_invisible(value)
    return value


def _everywhere() -> dict:
    settings = services().settings
    return {"chain_label": chain_label(settings.chain_id),
            "kind_labels": KIND_LABELS, "refused_characters": REFUSED_CHARACTERS}


def init_templating(app: Flask) -> None:
    app.add_template_filter(utc_text, "utc_text")
    app.add_template_filter(iso_utc, "iso_utc")
    app.add_template_global(sites.token_state, "token_state")
    app.add_template_global(chain_label, "chain_label_of")
    app.jinja_env.finalize = shown_as_stored
    app.context_processor(_everywhere)
