"""Helpers shared by the people and web tests: a migrated database and an app for a whole
module, people and their sign-in, CSRF tokens read from the pages, reading pages back, and
what the people tests over HTTP share (a trial and site, users, sessions, token rows)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from markupsafe import escape
from sqlmodel import Session, select

from trialnotary import db
from trialnotary.config import load_settings
from trialnotary.notary import anchoring, batches
from trialnotary.people import accounts, passwords, sites
from trialnotary.people.models import User
from trialnotary.web.app import create_app

PASSWORD = "a long test password"
#: A receipt's ``notary`` where domain tests build receipts without a request.
RECEIPT_NOTARY = {"name": "trialnotary", "url": "http://127.0.0.1:5000"}
DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
REDIS_URL = os.environ.get("TRIALNOTARY_TEST_REDIS_URL", "redis://127.0.0.1:6379")


# --- databases and apps --------------------------------------------------------------

@contextlib.contextmanager
def migrated_database(request, folder) -> Iterator[str]:
    """A migrated, empty database of the kind ``request.param`` names (sqlite, in ``folder``,
    or a fresh PostgreSQL database, dropped afterwards)."""
    if request.param == "sqlite":
        yield migrated_sqlite(folder)
        return
    from tests.conftest import _drop_postgres_database, _fresh_postgres_database

    server = request.getfixturevalue("postgres_server")
    url = _fresh_postgres_database(server)
    db.upgrade(url)
    try:
        yield url
    finally:
        _drop_postgres_database(server, url)


def migrated_sqlite(folder) -> str:
    """The URL of a new, migrated SQLite database in ``folder``."""
    url = f"sqlite:///{folder / 'trialnotary.sqlite3'}"
    db.upgrade(url)
    return url


def module_database(request, tmp_path_factory):
    """A migrated database for a whole module (``request.param``: sqlite or postgresql)."""
    return migrated_database(request, tmp_path_factory.mktemp("db"))


@contextlib.contextmanager
def module_app(request, tmp_path_factory, anvil_url: str, **extra: str):
    """An app (as ``new_app`` builds it) on a migrated database for a whole module
    (``request.param``: sqlite or postgresql) and the test anvil; ``extra`` settings without
    the prefix. Its ``env`` builds apps with other settings on the same database."""
    with module_database(request, tmp_path_factory) as url:
        env = notary_env(url, str(tmp_path_factory.mktemp("instance")), anvil_url, **extra)
        app = new_app(env)
        app.env = env
        yield app


def notary_env(database_url: str, instance: str, anvil_url: str, **extra: str) -> dict:
    """The configuration of a notary on the test anvil; ``extra`` without the prefix."""
    return {
        "TRIALNOTARY_INSTANCE_PATH": instance, "TRIALNOTARY_DATABASE_URL": database_url,
        "TRIALNOTARY_CHAIN": "local", "TRIALNOTARY_CHAIN_RPC_URL": anvil_url,
        "TRIALNOTARY_SEAL_INTERVAL_SECONDS": "3600",
        **{f"TRIALNOTARY_{key}": value for key, value in extra.items()},
    }


def new_app(env: dict, **config):
    """An app as ``create_app`` builds it (CSRF on unless ``WTF_CSRF_ENABLED=False``)."""
    return create_app(load_settings(env), {"TESTING": True, **config})


def sqlite_app(folder, anvil_url: str, **extra: str):
    """An app as it is served (not in testing mode) on a new, migrated SQLite database in
    ``folder``, on the test anvil; ``extra`` settings without the prefix."""
    return create_app(load_settings(notary_env(migrated_sqlite(folder),
                                               str(folder / "instance"), anvil_url, **extra)))


@contextlib.contextmanager
def serving(app, *, threads: int = 8) -> Iterator[str]:
    """The app behind a real WSGI server (waitress) on a free port; yields its base URL."""
    import threading

    import waitress

    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=threads)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        thread.join(5)


@contextlib.contextmanager
def serving_http(handler) -> Iterator[str]:
    """A plain ``http.server`` with ``handler`` on a free loopback port (a loopback host:
    http is allowed, and Chromium lets such a page ask a loopback node); yields its URL."""
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def engine_of(app):
    return app.extensions["trialnotary"].engine


def anchor_and_confirm(app, anvil) -> list[int]:
    """Seal everything pending, anchor every sealed batch on the test anvil, and confirm
    them all; returns the ids of the batches confirmed now."""
    services = app.extensions["trialnotary"]
    batches.seal_all(services.engine, services.settings.max_batch)
    anchoring.anchor_sealed(services.engine, services.chain)
    anvil.mine(3)
    confirmed = anchoring.confirm_sent(services.engine, services.chain)
    assert confirmed
    assert scalar(services.engine, "SELECT count(*) FROM batch WHERE state <> 'confirmed'") == 0
    return confirmed


def confirm_by_mining(engine, chain, anvil, *, max_batch: int, tries: int) -> None:
    """What the scheduler does, run by hand: seal, anchor, then confirm as blocks come (one
    block a try)."""
    assert batches.seal_all(engine, max_batch)
    assert anchoring.anchor_sealed(engine, chain)
    for _ in range(tries):
        anvil.mine(1)
        if anchoring.confirm_sent(engine, chain):
            return
    raise AssertionError(f"the anchor was not confirmed in {tries} blocks")


def seal_in_a_later_second(engine, chain, anvil) -> None:
    """Seal what is pending and confirm it in a block of a later second than any before, so
    that batches sealed one after the other are proven in that order."""
    latest = int(anvil.rpc("eth_getBlockByNumber", "latest", False)["timestamp"], 16)
    anvil.rpc("evm_setNextBlockTimestamp", max(latest + 1, int(time.time())))
    anchoring.run_seal_job(engine, chain, max_batch=100)
    for _ in range(30):
        anvil.mine(1)
        if anchoring.run_tick(engine, chain, max_batch=100).confirmed:
            return
    pytest.fail("the batch was not confirmed")


# --- people --------------------------------------------------------------------------

def add_person(engine, email: str, role: str, *, trials=(), sites=(), name=None,
               password: str | None = PASSWORD) -> int:
    """A user (with ``password``, so no change is forced) and their grants; their id."""
    with db.write_session(engine) as session:
        user, _ = accounts.create_user(session, email, role, name=name, password=password)
        for trial in trials:
            accounts.grant(session, user, trial=trial)
        for site in sites:
            accounts.grant(session, user, site=site)
        session.commit()
        return user.id


def add_enrolled_site(engine, trial: str, site: str, *, title: str | None = None,
                      name: str | None = None) -> None:
    """Trial ``trial``, and site ``site`` enrolled in it."""
    with db.write_session(engine) as session:
        sites.add_trial(session, trial, title=title)
        sites.add_site(session, trial, site, name=name)
        session.commit()


def user_row(engine, email: str) -> User | None:
    with Session(engine) as session:
        return session.exec(select(User).where(User.email == email)).first()


def scalar(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


@contextlib.contextmanager
def quick_password_hashing():
    """Argon2id at its smallest cost, for tests where passwords are a means, not the
    subject (a real sign-in takes ~0.2 s). The memory-hard default is tested on its own."""
    from argon2 import PasswordHasher

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024,
                                                          parallelism=1))
        yield


# --- pages ---------------------------------------------------------------------------

class Page(HTMLParser):
    """What a page holds: its tags with their attributes, and its CSRF token."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {name: value or "" for name, value in attrs}))

    def find(self, tag: str, **attrs) -> list[dict]:
        return [found for name, found in self.tags
                if name == tag and all(found.get(k) == v for k, v in attrs.items())]

    @property
    def csrf_token(self) -> str:
        meta = self.find("meta", name="csrf-token")
        assert meta, "the page has no <meta name=csrf-token>"
        return meta[0]["content"]


def page_of(response) -> Page:
    return Page(response.get_data(as_text=True))


def csrf_token(client, path: str = "/login") -> str:
    """A CSRF token of the client's session, read from a rendered page's meta tag."""
    response = client.get(path, follow_redirects=True)
    assert response.status_code == 200, response.status
    return page_of(response).csrf_token


def post_form(client, path: str, data: dict | None = None, **kw):
    """POST a form with the session's CSRF token, as the browser would."""
    return client.post(path, data={**(data or {}), "csrf_token": csrf_token(client)}, **kw)


def post_json(client, path: str, body, **kw):
    """POST JSON with the CSRF token in ``X-CSRFToken``, as the register page's script does."""
    return client.post(path, json=body, headers={"X-CSRFToken": csrf_token(client)}, **kw)


def sign_in(client, email: str, password: str = PASSWORD, **kw):
    return post_form(client, "/login", {"email": email, "password": password}, **kw)


def signed_in(client, email: str, password: str = PASSWORD):
    """Sign in and check it worked; returns the session cookie's value."""
    response = sign_in(client, email, password)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    cookie = client.get_cookie("tn_session")
    assert cookie is not None
    return cookie.value


def sign_in_page(page, base: str, email: str, password: str = PASSWORD) -> None:
    """Sign in through the login page in the browser, and wait for the home page."""
    page.goto(f"{base}/login")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")


def shown_once(client, response, element_id: str) -> str:
    """Follow a form's redirect; the secret (token, password) that page shows, by the id of
    the element holding it."""
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:300]
    page = client.get(response.headers["Location"])
    assert page.status_code == 200
    found = re.search(rf'id="{element_id}">([^<]+)<', page.get_data(as_text=True))
    assert found, f"no #{element_id} on {response.headers['Location']}"
    return found.group(1)


def location_path(response) -> str:
    return urlsplit(response.headers.get("Location", "")).path


def is_sign_in_redirect(response) -> bool:
    return response.status_code == 302 and location_path(response) == "/login"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


XSS_PARTS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "{{7*7}}")


def xss(tag: str) -> str:
    """A free-text value made of every payload, named by ``tag`` to find it on a page."""
    return f"{tag} " + " ".join(XSS_PARTS)


def assert_inert(html: str, *, where: str) -> None:
    """No payload became markup: no raw payload, no inline script, no event handler
    attribute, no injected image."""
    for part in XSS_PARTS[:2]:
        assert part not in html, f"{where}: {part!r} appears unescaped"
    page = Page(html)
    inline = [attrs for tag, attrs in page.tags if tag == "script" and "src" not in attrs]
    assert inline == [], f"{where}: inline <script> elements {inline}"
    handlers = [(tag, name) for tag, attrs in page.tags for name in attrs
                if name.startswith("on")]
    assert handlers == [], f"{where}: event handler attributes {handlers}"
    assert page.find("img", src="x") == [], f"{where}: an injected <img>"


def assert_shown_escaped(html: str, value: str, *, where: str) -> None:
    """The value is on the page as text: HTML-escaped, its template syntax left as is."""
    assert str(escape(value)) in html, f"{where}: {value!r} is not shown as text"


# --- the people tests over HTTP (tests/people) ---------------------------------------

TRIAL, SITE = "NCT01234567", "SITE-01"
WRONG = "not the right password"
SHA = "ab" * 32


def fresh_email(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.org"


def person(engine, tag: str, role: str = "coordinator", **grants) -> str:
    email = fresh_email(tag)
    if role == "coordinator" and "sites" not in grants:
        grants["sites"] = [SITE]
    add_person(engine, email, role, **grants)
    return email


def sessions_of(engine, email: str) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT s.digest, s.id FROM user_session s JOIN app_user u ON u.id = s.user_id "
            "WHERE u.email = :e"), {"e": email}).all()


def flash_text(response) -> str:
    return " ".join(re.findall(r'<p class="flash[^"]*"[^>]*>(.*?)</p>',
                               response.get_data(as_text=True), re.S))


def _answer(response) -> tuple[int, str]:
    text = re.sub(r"\d+ seconds", "N seconds", response.get_data(as_text=True))
    message = re.search(r'id="login-error">(.*?)</p>', text, re.S)
    return response.status_code, message.group(1) if message else ""


def _count(engine, table: str) -> int:
    return scalar(engine, f"SELECT count(*) FROM {table}")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _row(engine, table: str, token: str) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text(f"SELECT * FROM {table} WHERE digest = :d"),
                                 {"d": _digest(token)}).mappings().one())


def _shown_token(client, response) -> str:
    return shown_once(client, response, "new-token-value")


# --- Redis ---------------------------------------------------------------------------

def redis_reachable(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def require_redis() -> str:
    """The machine's Redis. In CI an unreachable server fails; it never skips."""
    if not redis_reachable(REDIS_URL):
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is not reachable at {REDIS_URL}")
        pytest.skip(f"Redis is not reachable at {REDIS_URL} (fails when CI=true)")
    return REDIS_URL


def batch_of(engine, anchor) -> int:
    """The batch an anchor of each batch attests (its roll-up holds that batch alone)."""
    from trialnotary.notary.rollups import rollup_batch_ids

    with Session(engine) as session:
        [batch_id] = rollup_batch_ids(session, anchor.rollup_id)
    return batch_id


def anchors_of_batch(session, batch_id: int) -> list:
    """Every transaction attesting a batch (through its roll-ups), oldest first."""
    from trialnotary.notary.models import Anchor, RollupBatch

    return list(session.exec(select(Anchor)
                             .join(RollupBatch, RollupBatch.rollup_id == Anchor.rollup_id)
                             .where(RollupBatch.batch_id == batch_id).order_by(Anchor.id)))


def register_past_the_api(engine, token: str, item: dict) -> dict:
    """An item registered with the site ``token`` through the registering service, past the
    API's checks of ``notBefore`` against the chain (which refuses a block not on it: 422):
    how a forged ``notBefore`` gets into a receipt for the verifier to fail."""
    from trialnotary.notary import registrations
    from trialnotary.people import sites
    from trialnotary.validation import validate_registration

    with db.write_session(engine) as session:
        record, = registrations.register(session, sites.authenticate(session, token),
                                         [validate_registration(item)])
        session.commit()
    return record
