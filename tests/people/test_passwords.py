"""Passwords over HTTP: the policy, the Argon2id hash, and the forced change of a temporary one."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from tests.utils import (
    PASSWORD,
    TRIAL,
    bearer,
    fresh_email,
    is_sign_in_redirect,
    location_path,
    page_of,
    person,
    post_form,
    sessions_of,
    shown_once,
    sign_in,
    signed_in,
    user_row,
)
from trialnotary.db import write_session
from trialnotary.people import passwords, signin, user_tokens
from trialnotary.validation import ValidationError

REAL_HASHER = passwords._hasher


# These tests sign in a hundred times; the test of the stored hash puts the real parameters
# back.
pytestmark = pytest.mark.usefixtures("quick_argon2")


def test_passwords_are_stored_as_argon2id_never_in_plain_text(engine, monkeypatch):
    monkeypatch.setattr(passwords, "_hasher", REAL_HASHER)
    email = person(engine, "hash")
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM app_user WHERE email = :e"),
                           {"e": email}).mappings().one()
    stored = row["password_hash"]
    assert stored.startswith("$argon2id$")
    memory_kib = int(re.search(r"\$m=(\d+),", stored).group(1))
    assert memory_kib >= 19 * 1024  # memory-hard: OWASP's floor for Argon2id is 19 MiB
    assert PasswordHasher().verify(stored, PASSWORD)
    assert not any(PASSWORD in str(value) for value in row.values())
    with write_session(engine) as session:
        assert signin.sign_in(session, email, PASSWORD).user is not None
        assert signin.sign_in(session, email, PASSWORD.upper()).user is None
        session.rollback()


@pytest.mark.parametrize("password, accepted", [
    ("x" * 11, False), ("x" * 12, True), ("y" * 1024, True), ("y" * 1025, False),
    ("Someone@Example.org", False), ("  someone@example.org ", False), (None, False),
])
def test_the_password_policy(password, accepted):
    if accepted:
        assert passwords.check_password(password, "someone@example.org") == password
    else:
        with pytest.raises(ValidationError) as refused:
            passwords.check_password(password, "someone@example.org")
        assert refused.value.field == "password"


def test_a_short_new_password_is_refused_and_the_old_one_kept(notary, engine):
    email = person(engine, "policy")
    client = notary.test_client()
    signed_in(client, email)
    before = user_row(engine, email).password_hash
    response = post_form(client, "/account/password",
                         {"current": PASSWORD, "new": "short", "repeat": "short"})
    assert response.status_code == 400
    assert "at least 12 characters" in response.get_data(as_text=True)
    assert user_row(engine, email).password_hash == before


# --- the forced password change ------------------------------------------------------

def test_an_admin_created_user_must_choose_a_password_first(notary, engine, admin):
    email = fresh_email("new")
    created = post_form(admin, "/admin/users", {"email": email, "role": "sponsor",
                                                "name": "New Person"})
    password = shown_once(admin, created, "temporary-password")
    stored = user_row(engine, email)
    assert stored.must_change_password is True and stored.name == "New Person"
    assert stored.password_hash.startswith("$argon2id$") and password not in stored.password_hash

    client = notary.test_client()
    assert sign_in(client, email, password).status_code == 302
    for path in ("/", "/trials", "/tokens", "/verify"):
        response = client.get(path)
        assert response.status_code == 302 and location_path(response) == "/account/password"
    assert client.get("/account/password").status_code == 200
    mine = "my very own password"
    changed = post_form(client, "/account/password",
                        {"current": password, "new": mine, "repeat": mine})
    assert changed.status_code == 302 and location_path(changed) == "/"
    assert client.get("/tokens").status_code == 200
    assert user_row(engine, email).must_change_password is False
    assert sign_in(notary.test_client(), email, password).status_code == 401
    assert sign_in(notary.test_client(), email, mine).status_code == 302


def test_the_api_answers_json_not_a_page_when_a_password_must_change(notary, engine, admin):
    """An admin's password reset must not turn a sponsor's API calls into redirects to
    the password page: the API answers JSON, always."""
    email = person(engine, "api-reset", "sponsor", trials=[TRIAL])
    user = user_row(engine, email)
    with write_session(engine) as session:
        token = user_tokens.create_user_token(session, session.get(type(user), user.id),
                                           actor="test")
        session.commit()
    url = f"/api/v1/trials/{TRIAL}/submissions"
    assert notary.test_client().get(url, headers=bearer(token)).status_code == 200
    browser = notary.test_client()
    signed_in(browser, email)
    reset = post_form(admin, f"/admin/users/{user.id}", {"action": "reset-password"})
    assert reset.status_code == 302 and user_row(engine, email).must_change_password
    # The reset ends the sponsor's sessions.
    assert is_sign_in_redirect(browser.get("/trials")) and sessions_of(engine, email) == []
    response = notary.test_client().get(url, headers=bearer(token))
    assert response.status_code in (200, 401, 403), response.headers.get("Location")
    assert response.is_json


def test_every_signed_in_page_links_to_changing_the_password(notary, coordinator):
    for path in ("/", "/register", "/registrations", "/tokens"):
        links = page_of(coordinator.get(path)).find("a", href="/account/password")
        assert [link["id"] for link in links] == ["change-password"], path
    assert page_of(notary.test_client().get("/verify")).find(
        "a", href="/account/password") == []
