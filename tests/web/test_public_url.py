"""The notary's public address never comes from a request: links, QR codes, printed
receipts and PDFs carry ``TRIALNOTARY_PUBLIC_URL``, and without it only the host names of
``TRIALNOTARY_ALLOWED_HOSTS`` (local default: 127.0.0.1, localhost, [::1], any port) are
answered; any other ``Host`` gets a 400 that names no host."""

from __future__ import annotations

import pytest

from tests.conftest import insert_registrations
from tests.utils import engine_of, new_app, notary_env, page_of
from trialnotary import db
from trialnotary.config import ConfigError, load_settings
from trialnotary.db import write_session
from trialnotary.people import sites

EVIL = "evil.example"


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    """One migrated SQLite database with a registration, for the whole module."""
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'trialnotary.sqlite3'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    with write_session(engine) as session:
        sites.add_trial(session, "NCT01234567")
        sites.add_site(session, "NCT01234567", "SITE-01")
        session.commit()
    [record] = insert_registrations(engine, 1)
    engine.dispose()
    return url, record["id"]


@pytest.fixture
def make_app(database, tmp_path, anvil):
    apps = []

    def make(**extra: str):
        url, _ = database
        app = new_app(notary_env(url, str(tmp_path / "instance"), anvil.url, **extra))
        apps.append(app)
        return app.test_client()
    yield make
    for app in apps:
        engine_of(app).dispose()


def shown_url(response) -> str:
    """The public address a registration's page prints under its QR code."""
    html = response.get_data(as_text=True)
    return html.split('<p class="hash hint">')[1].split("</p>")[0]


def test_without_a_public_url_only_local_host_names_are_answered(make_app, database):
    _, registration_id = database
    client = make_app()
    for host in ("localhost", "127.0.0.1:5000", "[::1]:8080", "LOCALHOST:8000"):
        page = client.get(f"/r/{registration_id}", headers={"Host": host})
        assert page.status_code == 200, host
        assert shown_url(page) == f"http://{host.lower()}/r/{registration_id}"
    for path in (f"/r/{registration_id}", f"/r/{registration_id}/print", "/verify", "/login"):
        refused = client.get(path, headers={"Host": EVIL})
        assert refused.status_code == 400, path
        assert EVIL not in refused.get_data(as_text=True)
        assert "does not answer to that host name" in refused.get_data(as_text=True)
    for host in (f"{EVIL}:5000", "localhost.evil.example", "127.0.0.1.evil.example",
                 "localhost:99999", "local host", "user@localhost"):
        assert client.get("/verify", headers={"Host": host}).status_code == 400, host
    api = client.get(f"/api/v1/submissions/{registration_id}", headers={"Host": EVIL})
    assert api.status_code == 400
    assert api.get_json()["error"]["code"] == "unknown_host"


def test_the_public_url_is_used_whatever_host_the_request_names(make_app, database):
    _, registration_id = database
    client = make_app(PUBLIC_URL="https://notary.example.org/")
    for host in ("localhost:5000", "notary.example.org"):
        page = client.get(f"/r/{registration_id}", headers={"Host": host})
        assert shown_url(page) == f"https://notary.example.org/r/{registration_id}"
    printed = client.get(f"/r/{registration_id}/print", headers={"Host": "notary.example.org"})
    assert f"https://notary.example.org/r/{registration_id}" in printed.get_data(as_text=True)
    assert client.get(f"/r/{registration_id}", headers={"Host": EVIL}).status_code == 400


def test_configured_host_names_replace_the_local_ones(make_app, database):
    _, registration_id = database
    client = make_app(ALLOWED_HOSTS="notary.example.org, .example.net")
    for host in ("notary.example.org:8443", "example.net", "www.example.net"):
        page = client.get(f"/r/{registration_id}", headers={"Host": host})
        assert page.status_code == 200, host
        assert shown_url(page) == f"http://{host}/r/{registration_id}"
    for host in ("localhost", "example.org", "evilexample.net"):
        assert client.get("/verify", headers={"Host": host}).status_code == 400, host
    anything = make_app(ALLOWED_HOSTS="*")
    assert anything.get("/verify", headers={"Host": EVIL}).status_code == 200


def test_a_forwarded_host_is_checked_behind_a_trusted_proxy(make_app, database):
    _, registration_id = database
    client = make_app(TRUSTED_PROXIES="1", ALLOWED_HOSTS="notary.example.org")
    forwarded = client.get(f"/r/{registration_id}", headers={
        "X-Forwarded-Host": "notary.example.org", "X-Forwarded-Proto": "https"})
    assert forwarded.status_code == 200
    assert shown_url(forwarded) == f"https://notary.example.org/r/{registration_id}"
    assert client.get("/verify", headers={"X-Forwarded-Host": EVIL}).status_code == 400


def test_a_public_chain_needs_its_public_url_or_host_names(database, tmp_path, anvil):
    url, _ = database
    key = tmp_path / "key"
    key.write_text("ab" * 32)
    env = notary_env(url, str(tmp_path / "instance"), anvil.url, CHAIN="sepolia",
                     ANCHOR_KEY_FILE=str(key))
    assert load_settings(env).allowed_hosts == ()  # the CLI's commands still work
    with pytest.raises(ConfigError, match="PUBLIC_URL .*ALLOWED_HOSTS.* is required"):
        new_app(env)
    app = new_app({**env, "TRIALNOTARY_PUBLIC_URL": "https://notary.example.org"})
    client = app.test_client()
    assert client.get("/verify", headers={"Host": "notary.example.org"}).status_code == 200
    assert client.get("/verify", headers={"Host": "localhost"}).status_code == 400
    engine_of(app).dispose()


@pytest.mark.parametrize(("name", "value"), [
    ("ALLOWED_HOSTS", "https://notary.example.org"),
    ("ALLOWED_HOSTS", "localhost:5000"),
    ("ALLOWED_HOSTS", "::1"),
    ("PUBLIC_URL", "notary.example.org"),
    ("PUBLIC_URL", "ftp://notary.example.org"),
    ("PUBLIC_URL", "https://user@notary.example.org"),
])
def test_bad_host_settings_name_their_variable(tmp_path, name, value):
    with pytest.raises(ConfigError, match=name):
        load_settings({"TRIALNOTARY_INSTANCE_PATH": str(tmp_path),
                       f"TRIALNOTARY_{name}": value})


def test_the_page_form_of_the_refusal_is_a_page(make_app):
    refused = make_app().get("/", headers={"Host": EVIL})
    assert refused.status_code == 400 and "text/html" in refused.content_type
    assert page_of(refused).find("h1")
