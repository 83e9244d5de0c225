"""Server-rendered pages for coordinators, sponsors and anonymous reviewers.

Views are thin: they read the request, call the domain modules, render a template. Each
declares who may reach it with ``@requires`` (checked in ``auth.check_access``); lists
are narrowed to the principal's grants by ``overview``. One module per audience or task
(``public``, ``register``, ``lists``, ``trials``, ``tokens``, ``signoffs``), all on the one
blueprint of ``blueprint``; ``errors`` and ``templating`` serve every page.
"""

from __future__ import annotations

from flask import Flask

from trialnotary.web.pages import lists, public, register, signoffs, timeline, tokens, trials
from trialnotary.web.pages.blueprint import bp
from trialnotary.web.pages.templating import init_templating

#: The modules whose views the blueprint holds once they are imported.
VIEW_MODULES = (public, register, lists, trials, timeline, tokens, signoffs)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    init_templating(app)
