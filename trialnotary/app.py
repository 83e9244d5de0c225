"""The Flask application factory. It builds no threads: the scheduler is started by
``serve``/``worker``, never here, so WSGI workers never start one each."""

from __future__ import annotations

from importlib.resources import files

from flask import Flask, make_response, request
from werkzeug.exceptions import HTTPException, ServiceUnavailable

from . import admin, api, auth, security, web
from .chain import ChainClient
from .config import Settings, load_settings
from .context import Services, close_db_session
from .db import WriterBusy, engine_for

MAX_BODY_BYTES = 16 * 1024 * 1024
# The web process only asks the chain for readiness and the admin page: answer fast.
WEB_CHAIN_TIMEOUT = 3.0


def create_app(settings: Settings | None = None, test_config: dict | None = None) -> Flask:
    settings = settings or load_settings()
    app = Flask(
        __name__,
        instance_path=str(settings.instance_path),
        template_folder=str(files("trialnotary.templates")),
    )
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        JSON_SORT_KEYS=False,
    )
    if test_config:
        app.config.update(test_config)
    app.json.sort_keys = False
    app.extensions["trialnotary"] = Services(
        settings=settings,
        engine=engine_for(settings),
        chain=ChainClient(settings, timeout=WEB_CHAIN_TIMEOUT),
    )
    app.teardown_appcontext(close_db_session)
    security.init_app(app, settings)
    auth.init_app(app)
    api.init_app(app)
    web.init_app(app)
    admin.init_app(app)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(WriterBusy, _writer_busy)
    return app


def _http_error(exc: HTTPException):
    """JSON errors under the API prefix, HTML pages elsewhere."""
    return api.http_error(exc) if api.is_api_path(request.path) else web.error_page(exc)


def _writer_busy(exc: WriterBusy):
    """A write that found no turn in time: 503, and when to try again."""
    response = make_response(_http_error(ServiceUnavailable(
        f"The database is busy; try again in {exc.retry_after} s.")))
    response.headers["Retry-After"] = str(exc.retry_after)
    return response
