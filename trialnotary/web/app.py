"""The Flask application factory. It builds no threads: the scheduler is started by
``serve``/``worker``, never here, so WSGI workers never start one each."""

from __future__ import annotations

from importlib.resources import files

from flask import Flask, make_response, request
from werkzeug.exceptions import HTTPException, ServiceUnavailable
from werkzeug.routing import IntegerConverter

from trialnotary.anchor_config import EVM
from trialnotary.config import Settings, load_settings
from trialnotary.db import WriterBusy, engine_for
from trialnotary.notary.chain import ChainClient
from trialnotary.validation import ValidationError
from trialnotary.web import admin, api, auth, pages, security
from trialnotary.web.context import Services, close_db_session
from trialnotary.web.pages.errors import bad_input_page, error_page
from trialnotary.web.query import DB_INT_MAX
from trialnotary.web.responses import refusal_response

MAX_BODY_BYTES = 16 * 1024 * 1024
# waitress reads a whole body (to a temporary file) before the app sees it, and answers a
# body over its own cap itself, in plain text. Its cap stays far above ours, so that the
# app answers every body over MAX_BODY_BYTES (the API in JSON) up to this size; waitress
# refuses larger ones unread. 1 GiB is waitress's own default.
SERVER_MAX_BODY_BYTES = 1024 * 1024 * 1024
# The web process only asks the chain for readiness and the admin page: answer fast.
WEB_CHAIN_TIMEOUT = 3.0


def create_app(settings: Settings | None = None, test_config: dict | None = None) -> Flask:
    settings = settings or load_settings()
    app = Flask(
        __name__,
        instance_path=str(settings.instance_path),
        template_folder=str(files("trialnotary.templates")),
    )
    app.url_map.converters["int"] = DatabaseId
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        JSON_SORT_KEYS=False,
    )
    if test_config:
        app.config.update(test_config)
    app.json.sort_keys = False
    chains = {spec.name: ChainClient(settings, timeout=WEB_CHAIN_TIMEOUT, anchor=spec)
              for spec in settings.anchors if spec.kind == EVM}
    app.extensions["trialnotary"] = Services(
        settings=settings,
        engine=engine_for(settings),
        chain=next(iter(chains.values())),
        chains=chains,
    )
    app.teardown_appcontext(close_db_session)
    app.before_request(_utf8_query)
    security.init_app(app, settings)
    auth.init_app(app)
    api.init_app(app)
    pages.init_app(app)
    admin.init_app(app)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(ValidationError, _bad_input)
    app.register_error_handler(WriterBusy, _writer_busy)
    return app


class DatabaseId(IntegerConverter):
    """``<int:…>`` path arguments: ids the database's INTEGER columns can hold. A larger
    number matches no route (404) instead of overflowing in the driver (500)."""

    def __init__(self, map, *args, **kwargs):  # noqa: A002 (werkzeug's signature)
        kwargs.setdefault("max", DB_INT_MAX)
        super().__init__(map, *args, **kwargs)


def _http_error(exc: HTTPException):
    """JSON errors under the API prefix, HTML pages elsewhere; with the ``Retry-After`` of
    an error that says when to try again (429, 503)."""
    response = make_response(api.http_error(exc) if api.is_api_path(request.path)
                             else error_page(exc))
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int):
        response.headers["Retry-After"] = str(retry_after)
    return response


def _utf8_query() -> None:
    """First of all, a query string of UTF-8 (other bytes are percent-encoded, as RFC 3986
    asks): raw bytes that are not would fail wherever its arguments are first read."""
    try:
        request.query_string.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("query", "must be UTF-8 (percent-encode other bytes)") from None


def _bad_input(exc: ValidationError):
    """Input no view caught as wrong, such as a query parameter out of range: the client's
    error (400 page; the API's 422 ``validation_error``), never a 500."""
    if api.is_api_path(request.path):
        return refusal_response(exc)
    return bad_input_page(exc)


def _writer_busy(exc: WriterBusy):
    """A write that found no turn in time: 503, and when to try again."""
    response = make_response(_http_error(ServiceUnavailable(
        f"The database is busy; try again in {exc.retry_after} s.")))
    response.headers["Retry-After"] = str(exc.retry_after)
    return response
