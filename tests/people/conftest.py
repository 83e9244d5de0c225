"""Fixtures of the people tests over HTTP: one notary a module, its engine, its admin and a
coordinator.

This ``engine`` (the notary's) takes the place of tests/conftest.py's for every module here:
test_audit.py, on tests/conftest.py's app and database, takes that one back."""

from __future__ import annotations

import pytest

from tests.utils import (
    DATABASES,
    SITE,
    TRIAL,
    add_enrolled_site,
    add_person,
    engine_of,
    module_app,
    person,
    signed_in,
)


@pytest.fixture(scope="module", params=DATABASES)
def notary(request, tmp_path_factory, anvil):
    """One database per module; its ``env`` builds apps with other settings on it. The
    base app's sign-in limit is high: every test signs in from 127.0.0.1."""
    with module_app(request, tmp_path_factory, anvil.url,
                    LOGIN_RATE_LIMIT="10000 per minute") as app:
        engine = engine_of(app)
        add_enrolled_site(engine, TRIAL, SITE, title="Trial")
        admin = app.test_client()
        add_person(engine, "admin@example.org", "admin")
        signed_in(admin, "admin@example.org")
        app.admin = admin
        yield app
        engine.dispose()


@pytest.fixture
def engine(notary):
    return engine_of(notary)


@pytest.fixture
def admin(notary):
    """The admin's signed-in client."""
    return notary.admin


@pytest.fixture(scope="module")
def coordinator(notary):
    """A coordinator of SITE-01, signed in once for the module."""
    client = notary.test_client()
    signed_in(client, person(engine_of(notary), "coordinator"))
    return client
