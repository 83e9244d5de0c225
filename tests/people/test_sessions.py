"""Browser sessions: their cookie, idle and maximum age, CSRF, headers, and secrets shown once."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from tests.utils import (
    PASSWORD,
    SHA,
    SITE,
    TRIAL,
    WRONG,
    _count,
    bearer,
    csrf_token,
    engine_of,
    flash_text,
    fresh_email,
    is_sign_in_redirect,
    location_path,
    new_app,
    person,
    post_form,
    post_json,
    scalar,
    sessions_of,
    shown_once,
    sign_in,
    signed_in,
    user_row,
)
from trialnotary.db import as_utc, utcnow, write_session
from trialnotary.people import sites
from trialnotary.people.models import UserSession

pytestmark = pytest.mark.usefixtures("quick_argon2")


def set_cookie_headers(response, name: str) -> list[str]:
    return [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]


def cookie_flags(header: str) -> dict:
    morsel = SimpleCookie(header)
    (only,) = morsel.values()
    return {key.lower(): value for key, value in only.items() if value}


def test_signing_in_sets_an_httponly_lax_session_cookie_kept_only_as_a_digest(notary, engine):
    email = person(engine, "cookie")
    client = notary.test_client()
    response = sign_in(client, email)
    assert response.status_code == 302 and location_path(response) == "/"
    (header,) = set_cookie_headers(response, "tn_session")
    flags = cookie_flags(header)
    assert flags["httponly"] is True and flags["samesite"] == "Lax" and flags["path"] == "/"
    assert "secure" not in flags  # the local chain's default: plain http
    token = client.get_cookie("tn_session").value
    assert len(token) >= 40
    rows = sessions_of(engine, email)
    assert [digest for digest, _ in rows] == [hashlib.sha256(token.encode()).hexdigest()]
    with engine.connect() as conn:
        everything = conn.execute(sa.text("SELECT * FROM user_session")).all()
    assert not any(token in str(value) for row in everything for value in row)
    assert client.get("/tokens").status_code == 200


def test_cookies_are_secure_when_configured(notary, engine):
    app = new_app({**notary.env, "TRIALNOTARY_SECURE_COOKIES": "true"})
    email = person(engine, "secure")
    client = app.test_client()
    response = sign_in(client, email)
    assert response.status_code == 302
    (header,) = set_cookie_headers(response, "tn_session")
    flags = cookie_flags(header)
    assert flags["secure"] is True and flags["httponly"] is True and flags["samesite"] == "Lax"
    (flask_cookie,) = set_cookie_headers(response, "tn_flask")
    assert cookie_flags(flask_cookie)["secure"] is True
    engine_of(app).dispose()


def test_signing_out_ends_the_session_on_the_server(notary, engine):
    email = person(engine, "logout")
    client = notary.test_client()
    token = signed_in(client, email)
    response = post_form(client, "/logout")
    assert is_sign_in_redirect(response)
    assert sessions_of(engine, email) == []
    # The old cookie, sent again, is nobody's.
    client.set_cookie("tn_session", token)
    assert is_sign_in_redirect(client.get("/tokens"))


def _age_session(engine, email: str, **ago) -> None:
    (_, session_id), = sessions_of(engine, email)
    values = {name: utcnow() - delta for name, delta in ago.items()}
    with Session(engine) as session:
        session.execute(sa.update(UserSession).where(UserSession.id == session_id)
                        .values(**values))
        session.commit()


def test_an_idle_session_ends_and_says_why(notary, engine):
    email = person(engine, "idle")
    client = notary.test_client()
    signed_in(client, email)
    _age_session(engine, email, last_seen_at=timedelta(minutes=16))
    response = client.get("/tokens")
    assert is_sign_in_redirect(response)
    assert any(h.startswith("tn_session=;") for h in response.headers.getlist("Set-Cookie"))
    assert sessions_of(engine, email) == []
    page = client.get(response.headers["Location"])
    assert "signed out after 15 minutes without activity" in flash_text(page)


def test_the_idle_time_out_follows_the_configuration(notary, engine):
    short = new_app({**notary.env, "TRIALNOTARY_SESSION_IDLE_MINUTES": "5"})
    email = person(engine, "idle-config")
    client = notary.test_client()
    signed_in(client, email)
    # Six idle minutes are fine with the default of 15, and the activity is noted...
    _age_session(engine, email, last_seen_at=timedelta(minutes=6))
    assert client.get("/tokens").status_code == 200
    (_, session_id), = sessions_of(engine, email)
    with Session(engine) as session:
        last_seen = session.get(UserSession, session_id).last_seen_at
    assert utcnow() - as_utc(last_seen) < timedelta(minutes=1)
    # ...but not when the notary is configured for five.
    _age_session(engine, email, last_seen_at=timedelta(minutes=6))
    other = short.test_client()
    other.set_cookie("tn_session", client.get_cookie("tn_session").value)
    response = other.get("/tokens")
    assert is_sign_in_redirect(response)
    assert "after 5 minutes without activity" in flash_text(other.get("/login"))
    engine_of(short).dispose()


def test_a_session_ends_after_twelve_hours_however_active(notary, engine):
    email = person(engine, "old")
    client = notary.test_client()
    signed_in(client, email)
    _age_session(engine, email, created_at=timedelta(hours=12, minutes=1))
    assert is_sign_in_redirect(client.get("/tokens"))
    assert sessions_of(engine, email) == []


def _flask_session(app, client) -> dict:
    cookie = client.get_cookie("tn_flask")
    if cookie is None:
        return {}
    return app.session_interface.get_signing_serializer(app).loads(cookie.value)


@pytest.mark.parametrize("kind", ["site token", "user token", "new user", "reset"])
def test_a_new_secret_is_shown_once_after_the_redirect_and_kept_nowhere_whole(
        notary, engine, admin, coordinator, kind, caplog):
    caplog.set_level("DEBUG")
    if kind == "site token":
        client, path, form, shown_id = coordinator, "/tokens/site", {"site": SITE}, \
            "new-token-value"
    elif kind == "user token":
        client, path, form, shown_id = admin, "/tokens/user", {}, "new-token-value"
    elif kind == "new user":
        client, path, form, shown_id = admin, "/admin/users", {
            "email": fresh_email("shown"), "role": "coordinator"}, "temporary-password"
    else:
        target = user_row(engine, person(engine, "reset")).id
        client, path, form, shown_id = admin, f"/admin/users/{target}", {
            "action": "reset-password"}, "temporary-password"
    kept = scalar(engine, "SELECT count(*) FROM shown_once")
    response = post_form(client, path, form)
    assert response.status_code == 302
    assert scalar(engine, "SELECT count(*) FROM shown_once") == kept + 1
    waiting = _flask_session(notary, client)
    secret = shown_once(client, response, shown_id)
    assert len(secret) >= 20
    assert secret not in response.headers["Location"]
    assert secret not in json.dumps(waiting)  # the cookie holds a one-time pad, not it
    assert scalar(engine, "SELECT count(*) FROM shown_once") == kept  # taken: deleted
    again = client.get(response.headers["Location"]).get_data(as_text=True)
    assert secret not in again and f'id="{shown_id}"' not in again
    assert all(secret not in record.getMessage() for record in caplog.records)


def test_a_secret_is_shown_only_to_the_browser_that_made_it(notary, engine, admin):
    """Another session of the same admin (without the pad) sees nothing; the waiting half
    alone is not the secret."""
    other = notary.test_client()
    signed_in(other, "admin@example.org")
    response = post_form(admin, "/tokens/user", {"name": "mine alone"})
    sealed = bytes(scalar(engine, "SELECT sealed FROM shown_once ORDER BY created_at DESC"))
    page = other.get("/tokens").get_data(as_text=True)
    assert 'id="new-token-value"' not in page
    token = shown_once(admin, response, "new-token-value")
    assert token.encode() != sealed and token.encode() not in sealed


# --- CSRF ----------------------------------------------------------------------------

@pytest.mark.parametrize("who, path, form, table", [
    ("anonymous", "/login", {"email": "admin@example.org", "password": PASSWORD},
     "user_session"),
    ("coordinator", "/logout", {}, "user_session"),
    ("coordinator", "/tokens/site", {"site": SITE, "name": "x"}, "site_token"),
    ("admin", "/admin/trials", {"trial": "NCT07777777"}, "trial"),
    ("admin", "/admin/users", {"email": "csrf-victim@example.org", "role": "admin"},
     "app_user"),
    ("coordinator", "/register", None, "submission"),
])
@pytest.mark.parametrize("token", ["missing", "of another session"])
def test_a_form_without_its_csrf_token_is_refused(notary, engine, admin, coordinator, who,
                                                  path, form, table, token):
    client = {"anonymous": notary.test_client(), "coordinator": coordinator,
              "admin": admin}[who]
    sent = {} if token == "missing" else {"csrf_token": csrf_token(notary.test_client())}
    before = _count(engine, table), _count(engine, "audit_entry")
    if form is None:
        headers = {} if token == "missing" else {"X-CSRFToken": sent["csrf_token"]}
        response = client.post(path, headers=headers, json={"submissions": [{
            "trial": TRIAL, "site": SITE, "dataset": "D", "sha256": SHA}]})
    else:
        response = client.post(path, data={**form, **sent})
    assert response.status_code == 400
    assert (_count(engine, table), _count(engine, "audit_entry")) == before
    if who != "anonymous":
        assert client.get("/tokens").status_code == 200  # still signed in


@pytest.mark.parametrize("case", ["no token", "no session", "a forged token"])
def test_a_refused_form_tells_the_user_to_reload_it(notary, coordinator, case):
    """Whatever is wrong with the CSRF token, including a browser that lost the session
    cookie holding its secret, the page explains it, not a bare "Bad request"."""
    if case == "no token":
        response = coordinator.post("/tokens/site", data={"site": SITE})
    elif case == "no session":
        response = notary.test_client().post(
            "/login", data={"email": "a@example.org", "password": WRONG,
                            "csrf_token": csrf_token(notary.test_client())})
    else:
        response = coordinator.post("/tokens/site", data={"site": SITE, "csrf_token": "x.y.z"})
    assert response.status_code == 400
    assert "Form expired" in response.get_data(as_text=True)


def test_the_json_api_needs_no_csrf_token(notary, engine):
    with write_session(engine) as session:
        token = sites.create_token(session, SITE)
        session.commit()
    response = notary.test_client().post("/api/v1/submissions", headers=bearer(token), json={
        "trial": TRIAL, "site": SITE, "dataset": "no csrf", "sha256": SHA})
    assert response.status_code == 201


def test_the_register_form_takes_its_token_in_a_header(coordinator):
    response = post_json(coordinator, "/register", {"submissions": [{
        "trial": TRIAL, "site": SITE, "dataset": "with csrf", "sha256": SHA}]})
    assert response.status_code == 201


# --- headers -------------------------------------------------------------------------

def test_security_headers_on_every_page(notary, coordinator):
    for client, path in ((notary.test_client(), "/login"), (notary.test_client(), "/verify"),
                         (coordinator, "/tokens"), (notary.test_client(), "/api/v1/healthz")):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert "object-src 'none'" in csp and "script-src 'self'" in csp, path
        assert "'unsafe-inline'" not in csp, path
        assert headers["X-Frame-Options"] == "DENY", path
        assert headers["X-Content-Type-Options"] == "nosniff", path
    assert coordinator.get("/tokens").headers["Cache-Control"] == "no-store"
    assert coordinator.get("/registrations").headers["Cache-Control"] == "no-store"
    assert "no-store" not in notary.test_client().get("/verify").headers.get("Cache-Control", "")
