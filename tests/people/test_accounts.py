"""People and their credentials over HTTP, on SQLite and PostgreSQL: passwords, sessions
and their cookies, idle time-out, lock-out, the forced password change, disabled users,
CSRF on every form, rate limits (in memory and shared through Redis), security headers,
and site and user tokens (kept as digests, shown once, revocable, "last used")."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from sqlmodel import Session, select

from tests.conftest import insert_registrations
from tests.utils import (
    DATABASES,
    PASSWORD,
    add_enrolled_site,
    add_person,
    bearer,
    csrf_token,
    engine_of,
    is_sign_in_redirect,
    location_path,
    module_app,
    new_app,
    page_of,
    post_form,
    post_json,
    require_redis,
    scalar,
    shown_once,
    sign_in,
    signed_in,
    user_row,
)
from trialnotary.db import as_utc, utcnow, write_session
from trialnotary.people import accounts, passwords, signin, sites
from trialnotary.people.models import LoginAttempt, SiteToken, UserSession
from trialnotary.validation import ValidationError

TRIAL, SITE = "NCT01234567", "SITE-01"
WRONG = "not the right password"
SHA = "ab" * 32


REAL_HASHER = passwords._hasher


# These tests sign in a hundred times; the test of the stored hash puts the real parameters
# back.
pytestmark = pytest.mark.usefixtures("quick_argon2")


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


def fresh_email(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.org"


def person(engine, tag: str, role: str = "coordinator", **grants) -> str:
    email = fresh_email(tag)
    if role == "coordinator" and "sites" not in grants:
        grants["sites"] = [SITE]
    add_person(engine, email, role, **grants)
    return email


def set_cookie_headers(response, name: str) -> list[str]:
    return [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]


def cookie_flags(header: str) -> dict:
    morsel = SimpleCookie(header)
    (only,) = morsel.values()
    return {key.lower(): value for key, value in only.items() if value}


def sessions_of(engine, email: str) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT s.digest, s.id FROM user_session s JOIN app_user u ON u.id = s.user_id "
            "WHERE u.email = :e"), {"e": email}).all()


def flash_text(response) -> str:
    return " ".join(re.findall(r'<p class="flash[^"]*"[^>]*>(.*?)</p>',
                               response.get_data(as_text=True), re.S))


# --- passwords -----------------------------------------------------------------------

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


# --- sessions ------------------------------------------------------------------------

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


@pytest.mark.parametrize("target, lands", [
    ("/tokens", "/tokens"), ("//evil.example/x", "/"), ("https://evil.example/", "/"),
    ("/\\evil.example", "/"), ("/\t/evil.example", "/"),
])
def test_signing_in_returns_only_to_a_page_of_this_site(notary, engine, target, lands):
    email = person(engine, "next")
    client = notary.test_client()
    response = post_form(client, "/login", {"email": email, "password": PASSWORD,
                                            "next": target})
    assert response.status_code == 302
    assert response.headers["Location"] == lands


# --- throttled sign-ins --------------------------------------------------------------

def _attempts(engine, email: str) -> list[str]:
    with engine.connect() as conn:
        return [kind for (kind,) in conn.execute(sa.text(
            "SELECT kind FROM login_attempt WHERE email = :e ORDER BY id"), {"e": email})]


def _throttled_now(admin) -> str:
    """The "Throttled now" part of the admin's sign-ins page."""
    page = admin.get("/admin/logins").get_data(as_text=True)
    return page.split("<h2>Throttled now</h2>")[1].split("<h2>Recent attempts</h2>")[0]


def _answer(response) -> tuple[int, str]:
    text = re.sub(r"\d+ seconds", "N seconds", response.get_data(as_text=True))
    message = re.search(r'id="login-error">(.*?)</p>', text, re.S)
    return response.status_code, message.group(1) if message else ""


NOT_RIGHT = "The e-mail address or the password is not right."
WAIT = ("Too many failed sign-ins to this account from your address: try again in N seconds, "
        "or ask an administrator to unlock it.")


def test_five_failures_from_one_address_make_it_wait_until_an_admin_unlocks(notary, engine,
                                                                             admin):
    email = person(engine, "throttled")
    client = _limited_client(notary, _unique_address())
    answers = [_answer(sign_in(client, email, WRONG)) for _ in range(5)]
    assert answers == [(401, NOT_RIGHT)] * 4 + [(401, f"{NOT_RIGHT} {WAIT}")]
    # During the wait not even the right password is checked, and nothing is counted.
    waiting = sign_in(client, email)
    assert _answer(waiting) == (429, WAIT)
    assert 55 <= int(waiting.headers["Retry-After"]) <= 60
    assert client.get_cookie("tn_session") is None
    assert _attempts(engine, email) == ["failure"] * 5 + ["locked"]
    address = client.environ_base["REMOTE_ADDR"]
    entry = scalar(engine, "SELECT new FROM audit_entry WHERE action = 'login.locked' "
                           "AND entity_id = :e", e=email)
    assert f'"address":"{address}"' in entry
    assert email in _throttled_now(admin) and address in _throttled_now(admin)
    user_id = user_row(engine, email).id
    assert "sign-in throttled" in admin.get(f"/admin/users/{user_id}").get_data(as_text=True)

    assert post_form(admin, "/admin/logins/unlock", {"email": email}).status_code == 302
    assert email not in _throttled_now(admin)
    assert scalar(engine, "SELECT actor FROM audit_entry WHERE action = 'login.unlock' "
                          "AND entity_id = :e", e=email).endswith("admin@example.org")
    assert sign_in(client, email).status_code == 302
    assert _attempts(engine, email)[-2:] == ["unlock", "success"]


def test_failures_from_elsewhere_never_lock_the_owner_out(notary, engine):
    """Anyone may try an admin's e-mail address: only their own address waits."""
    attacker = _limited_client(notary, _unique_address())
    for _ in range(8):
        sign_in(attacker, "admin@example.org", WRONG)
    owner = _limited_client(notary, _unique_address())
    assert sign_in(owner, "admin@example.org").status_code == 302
    assert sign_in(attacker, "admin@example.org").status_code == 429  # still waiting


def test_an_unknown_address_gets_the_same_answers(notary, engine):
    known, unknown = person(engine, "known"), fresh_email("nobody")
    for email in (known, unknown):
        client = _limited_client(notary, _unique_address())
        answers = [_answer(sign_in(client, email, WRONG)) for _ in range(5)]
        answers.append(_answer(sign_in(client, email, PASSWORD)))
        if email == known:
            expected = answers
        else:
            assert answers == expected
    assert _attempts(engine, unknown) == ["failure"] * 5 + ["locked"]


def test_a_success_resets_the_count_of_failures(notary, engine):
    email = person(engine, "reset")
    client = _limited_client(notary, _unique_address())
    for _ in range(4):
        sign_in(client, email, WRONG)
    assert sign_in(client, email).status_code == 302
    for _ in range(4):
        assert _answer(sign_in(client, email, WRONG)) == (401, NOT_RIGHT)


def _failures(engine, email: str, *minutes_ago: float, kind: str = "failure",
              ip: str | None = "10.0.0.1") -> None:
    with write_session(engine) as session:
        for ago in minutes_ago:
            session.add(LoginAttempt(email=email, kind=kind, ip=ip,
                                     at=utcnow() - timedelta(minutes=ago)))
        session.commit()


def test_the_wait_doubles_with_each_failure_and_is_capped(engine):
    def wait(email, ip="10.0.0.1") -> float | None:
        with Session(engine) as session:
            until = signin.throttled_until(session, email, ip)
        return None if until is None else round((until - utcnow()).total_seconds() / 60, 1)

    four = fresh_email("four")
    _failures(engine, four, 4, 3, 2, 1)
    assert wait(four) is None
    for count, expected in ((5, 1), (6, 2), (7, 4), (8, 8), (9, 15), (12, 15)):
        email = fresh_email(f"n{count}")
        _failures(engine, email, *[0] * count)
        assert wait(email) == pytest.approx(expected, abs=0.1), count
        assert wait(email, "10.9.9.9") is None  # another address does not wait
        assert wait(email, None) is None
    served = fresh_email("served")  # the wait counts from the newest failure, and ends
    _failures(engine, served, 10, 9, 8, 7, 6)
    assert wait(served) is None
    reset = fresh_email("reset")
    _failures(engine, reset, 5, 4, 3, 2)
    _failures(engine, reset, 1.5, kind="success")
    _failures(engine, reset, 1)
    assert wait(reset) is None
    unlocked = fresh_email("unlocked")
    _failures(engine, unlocked, 5, 4, 3, 2, 1.5, 1.2)
    _failures(engine, unlocked, 1.1, kind="unlock", ip=None)
    _failures(engine, unlocked, 1)
    assert wait(unlocked) is None
    forgotten = fresh_email("forgotten")  # failures older than a day are forgotten
    _failures(engine, forgotten, 25 * 60, 25 * 60, 25 * 60, 25 * 60, 0)
    assert wait(forgotten) is None


def test_changing_a_password_is_throttled_like_signing_in(notary, engine):
    email = person(engine, "change")
    client = _limited_client(notary, _unique_address())
    signed_in(client, email)
    for _ in range(5):
        response = post_form(client, "/account/password",
                             {"current": WRONG, "new": "x" * 20, "repeat": "x" * 20})
        assert response.status_code == 400
    assert "Too many wrong passwords" in response.get_data(as_text=True)
    refused = post_form(client, "/account/password",
                        {"current": PASSWORD, "new": "x" * 20, "repeat": "x" * 20})
    assert "Too many wrong passwords" in refused.get_data(as_text=True)
    assert "not right" not in refused.get_data(as_text=True)
    assert sign_in(_limited_client(notary, _unique_address()), email).status_code == 302


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
        token = accounts.create_user_token(session, session.get(type(user), user.id),
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


# --- disabled users ------------------------------------------------------------------

def test_disabling_a_user_ends_their_sessions_and_sign_ins(notary, engine, admin):
    email = person(engine, "disabled")
    client = notary.test_client()
    signed_in(client, email)
    user_id = user_row(engine, email).id
    assert post_form(admin, f"/admin/users/{user_id}", {"action": "disable"}).status_code == 302
    assert user_row(engine, email).disabled_at is not None
    assert sessions_of(engine, email) == []
    assert is_sign_in_redirect(client.get("/registrations"))
    refused = sign_in(notary.test_client(), email)
    assert _answer(refused) == (401, "The e-mail address or the password is not right.")
    assert post_form(admin, f"/admin/users/{user_id}", {"action": "enable"}).status_code == 302
    assert sign_in(notary.test_client(), email).status_code == 302


def test_an_admin_cannot_disable_or_demote_themselves(notary, engine, admin):
    """Nor reset their own password from the admin page: it would end their session before
    they saw the new password."""
    me = user_row(engine, "admin@example.org")
    for form in ({"action": "disable"}, {"action": "role", "role": "sponsor"},
                 {"action": "reset-password"}):
        assert post_form(admin, f"/admin/users/{me.id}", form).status_code == 302
        row = user_row(engine, "admin@example.org")
        assert row.disabled_at is None and row.role == "admin"
        assert row.must_change_password is False and row.password_hash == me.password_hash
    assert admin.get("/admin/").status_code == 200


# --- roles and grants ----------------------------------------------------------------

def test_a_role_change_takes_the_old_roles_grants_away_for_good(notary, engine, admin):
    """Coordinator → sponsor → coordinator: the site granted before does not come back."""
    email = person(engine, "role-change")  # a coordinator of SITE
    user_id = user_row(engine, email).id
    client = notary.test_client()
    signed_in(client, email)
    item = {"submissions": [{"trial": TRIAL, "site": SITE, "dataset": "D", "sha256": SHA}]}
    assert post_json(client, "/register", item).status_code == 201
    to_sponsor = post_form(admin, f"/admin/users/{user_id}", {"action": "role",
                                                             "role": "sponsor"})
    assert to_sponsor.status_code == 302
    said = flash_text(admin.get(to_sponsor.headers["Location"]))
    assert f"{email} is now sponsor (was coordinator)" in said and f"site {SITE}" in said
    post_form(admin, f"/admin/users/{user_id}", {"action": "grant", "trial": TRIAL})
    post_form(admin, f"/admin/users/{user_id}", {"action": "role", "role": "coordinator"})
    with Session(engine) as session:
        assert accounts.grants_of(session, user_id) == (frozenset(), frozenset())
    assert post_json(client, "/register", item).status_code == 403
    with engine.connect() as conn:
        dropped = conn.execute(sa.text(
            "SELECT old, reason FROM audit_entry WHERE action = 'user.revoke-grant' AND "
            "entity_id = :i ORDER BY seq"), {"i": str(user_id)}).all()
    assert [(json.loads(old), reason) for old, reason in dropped] == [
        ({"email": email, "site": SITE}, "the role changed from coordinator to sponsor"),
        ({"email": email, "trial": TRIAL}, "the role changed from sponsor to coordinator")]


# --- forms answer with a redirect ----------------------------------------------------

#: POST routes that take JSON and answer JSON or a download (the register page's script, the
#: API): there is no page to reload.
JSON_POSTS = {"web.register_files", "web.registered_already", "web.upload_receipts",
              "api.create_registration", "api.create_registrations"}


def _successful_forms(notary, engine, admin, coordinator) -> dict:
    """For each form, a request that succeeds: (client, path, form, what the flash says)."""
    sponsor = notary.test_client()
    sponsor_email = person(engine, "forms", "sponsor", trials=[TRIAL])
    signed_in(sponsor, sponsor_email)
    target_email = person(engine, "target")
    target = user_row(engine, target_email).id
    mover = notary.test_client()
    mover_email = person(engine, "mover")
    signed_in(mover, mover_email)
    with write_session(engine) as session:
        site_token = sites.create_token(session, SITE, name="to revoke")
        user_token = accounts.create_user_token(
            session, session.get(type(user_row(engine, sponsor_email)),
                                 user_row(engine, sponsor_email).id), actor="test")
        session.commit()
    site_token_id = _row(engine, "site_token", site_token)["id"]
    user_token_id = _row(engine, "user_token", user_token)["id"]
    new_password = "a brand new password"
    trial = f"NCT0{uuid.uuid4().int % 10**7:07d}"
    page = f"/admin/users/{target}"
    return {
        "auth.login": [(notary.test_client(), "/login",
                        {"email": target_email, "password": PASSWORD}, None)],
        "auth.logout": [(mover, "/logout", {}, "signed out")],
        "auth.change_password": [(sponsor, "/account/password", {
            "current": PASSWORD, "new": new_password, "repeat": new_password},
            "password is changed")],
        "web.create_site_token": [(coordinator, "/tokens/site", {"site": SITE},
                                   f"token for site {SITE} is created")],
        "web.revoke_site_token": [(coordinator, f"/tokens/site/{site_token_id}/revoke", {},
                                   f"{site_token[:14]}… is revoked")],
        "web.create_user_token": [(sponsor, "/tokens/user", {"name": "n"}, "is created")],
        "web.revoke_user_token": [(sponsor, f"/tokens/user/{user_token_id}/revoke", {},
                                   f"{user_token[:14]}… is revoked")],
        "admin.trials": [(admin, "/admin/trials", {"trial": trial}, f"Trial {trial} created")],
        "admin.sites_page": [(admin, "/admin/sites", {"trial": trial, "site": "FORM-SITE"},
                              f"FORM-SITE is enrolled in {trial}")],
        "admin.users": [(admin, "/admin/users", {"email": fresh_email("made"),
                                                 "role": "sponsor"}, "is created as sponsor")],
        "admin.update_user": [
            (admin, page, {"action": "grant", "site": "FORM-SITE"},
             f"{target_email} is granted site FORM-SITE"),
            (admin, page, {"action": "revoke-grant", "site": "FORM-SITE"},
             f"{target_email} no longer has site FORM-SITE"),
            (admin, page, {"action": "role", "role": "sponsor"},
             f"{target_email} is now sponsor (was coordinator)"),
            (admin, page, {"action": "disable"}, f"{target_email} is disabled"),
            (admin, page, {"action": "enable"}, f"{target_email} is enabled"),
            (admin, page, {"action": "reset-password"}, "new temporary password"),
            (admin, page, {"action": "unlock"}, f"{target_email} can sign in again"),
        ],
        "admin.unlock": [(admin, "/admin/logins/unlock", {"email": target_email},
                          f"{target_email} can sign in again")],
    }


def _state(engine) -> tuple:
    return tuple(_count(engine, table) for table in (
        "audit_entry", "site_token", "user_token", "app_user", "trial", "login_attempt"))


def test_every_form_answers_with_a_redirect_and_a_reload_repeats_nothing(
        notary, engine, admin, coordinator):
    """Post/redirect/get: each state-changing form answers a redirect on success, the page
    it leads to says what was done, and loading that page again changes nothing."""
    forms = {rule.endpoint for rule in notary.url_map.iter_rules() if "POST" in rule.methods}
    cases = _successful_forms(notary, engine, admin, coordinator)
    assert forms - JSON_POSTS == set(cases), "a form without a case here"
    for endpoint, requests_ in cases.items():
        for client, path, form, says in requests_:
            before = _state(engine)
            response = post_form(client, path, form)
            what = f"{endpoint} {form}"
            assert response.status_code in (302, 303), f"{what}: {response.status}"
            assert _state(engine) != before or endpoint in ("auth.logout",
                                                            "auth.change_password"), what
            after = _state(engine)
            landing = client.get(response.headers["Location"])
            assert landing.status_code == 200, what
            if says:
                assert says in flash_text(landing), f"{what}: {flash_text(landing)!r}"
                assert "success" in landing.get_data(as_text=True).split(says)[0] \
                    .rsplit("<p class=", 1)[-1] or endpoint == "auth.logout", what
            client.get(response.headers["Location"])  # a reload
            assert _state(engine) == after, f"{what}: the reload changed something"


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

@pytest.fixture(scope="module")
def coordinator(notary):
    """A coordinator of SITE-01, signed in once for the module."""
    client = notary.test_client()
    signed_in(client, person(engine_of(notary), "coordinator"))
    return client


def _count(engine, table: str) -> int:
    return scalar(engine, f"SELECT count(*) FROM {table}")


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


# --- rate limits ---------------------------------------------------------------------

def _limited_client(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _unique_address() -> str:
    raw = uuid.uuid4().bytes
    return f"10.{raw[0]}.{raw[1]}.{raw[2]}"


def test_the_fourth_sign_in_a_minute_from_one_address_is_refused(notary):
    app = new_app({**notary.env, "TRIALNOTARY_LOGIN_RATE_LIMIT": "3 per minute"})
    address = _unique_address()
    client = _limited_client(app, address)
    statuses = [sign_in(client, "someone@example.org", WRONG).status_code for _ in range(3)]
    assert statuses == [401] * 3
    limited = sign_in(client, "someone@example.org", WRONG)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "Too many sign-in attempts" in limited.get_data(as_text=True)
    # Counted per address: another one still gets an answer.
    assert sign_in(_limited_client(app, _unique_address()), "someone@example.org",
                   WRONG).status_code == 401
    engine_of(app).dispose()


def test_anonymous_look_ups_by_hash_are_limited_per_address(notary, engine):
    app = new_app({**notary.env, "TRIALNOTARY_LOOKUP_RATE_LIMIT": "3 per minute"})
    [record] = insert_registrations(engine, 1, trial=TRIAL, site=SITE)
    sha256, label = record["sha256"], record["dataset"]
    address = _unique_address()
    client = _limited_client(app, address)
    page = f"/lookup?sha256={sha256}"
    api = f"/api/v1/submissions?sha256={sha256}"
    answers = [client.get(page), client.get(api), client.get(page)]
    assert [a.status_code for a in answers] == [200] * 3
    assert label in answers[0].get_data(as_text=True)

    limited = client.get(api)
    assert limited.status_code == 429
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    limited_page = client.get(page)
    assert limited_page.status_code == 429
    assert 1 <= int(limited_page.headers["Retry-After"]) <= 60
    text = limited_page.get_data(as_text=True)
    assert "Too many look-ups from your address" in text and label not in text
    assert client.get("/lookup").status_code == 200  # the empty form is no look-up

    # Per address; and people who signed in, or read with their user token, are known.
    assert _limited_client(app, _unique_address()).get(api).status_code == 200
    sponsor = _limited_client(app, address)
    signed_in(sponsor, person(engine, "lookups", "sponsor", trials=[TRIAL]))
    assert sponsor.get(page).status_code == 200
    created = post_form(sponsor, "/tokens/user", {"name": "look-ups"})
    token = _shown_token(sponsor, created)
    assert client.get(api, headers=bearer(token)).status_code == 200
    engine_of(app).dispose()


@pytest.mark.parametrize("storage, shared", [("redis", True), ("memory://", False)])
def test_two_processes_share_the_count_through_redis(notary, storage, shared):
    url = require_redis() if storage == "redis" else storage
    apps = [new_app({**notary.env, "TRIALNOTARY_LOGIN_RATE_LIMIT": "3 per minute",
                     "TRIALNOTARY_RATELIMIT_STORAGE_URL": url}) for _ in range(2)]
    address = _unique_address()
    first, second = (_limited_client(app, address) for app in apps)
    assert [sign_in(first, "x@example.org", WRONG).status_code for _ in range(2)] == [401] * 2
    assert sign_in(second, "x@example.org", WRONG).status_code == 401
    fourth = sign_in(second, "x@example.org", WRONG)
    assert fourth.status_code == (429 if shared else 401)
    if shared:
        assert sign_in(first, "x@example.org", WRONG).status_code == 429
    for app in apps:
        engine_of(app).dispose()


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


# --- tokens --------------------------------------------------------------------------

def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _row(engine, table: str, token: str) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text(f"SELECT * FROM {table} WHERE digest = :d"),
                                 {"d": _digest(token)}).mappings().one())


def _shown_token(client, response) -> str:
    return shown_once(client, response, "new-token-value")


def test_a_site_token_is_shown_once_kept_as_a_digest_and_revocable(notary, engine,
                                                                   coordinator):
    created = post_form(coordinator, "/tokens/site", {"site": SITE, "name": "lab export"})
    token = _shown_token(coordinator, created)
    assert coordinator.get("/tokens").headers["Cache-Control"] == "no-store"
    assert token.startswith("tn_site_")
    row = _row(engine, "site_token", token)
    assert token not in [str(value) for value in row.values()]
    assert row["prefix"] == token[:14] and row["name"] == "lab export"
    assert row["last_used_at"] is None

    again = coordinator.get("/tokens").get_data(as_text=True)
    assert token not in again and row["prefix"] in again

    item = {"trial": TRIAL, "site": SITE, "dataset": "D", "sha256": SHA}
    api = notary.test_client()
    assert api.post("/api/v1/submissions", headers=bearer(token), json=item).status_code == 201
    assert _row(engine, "site_token", token)["last_used_at"] is not None
    listed = page_of(coordinator.get("/tokens")).find("tr", **{"data-token-prefix": row["prefix"]})
    assert listed
    last_used = coordinator.get("/tokens").get_data(as_text=True).split(
        f'data-token-prefix="{row["prefix"]}"')[1].split("</tr>")[0]
    assert last_used.count("never") == 0  # it expires (by default), and it was used

    revoked = post_form(coordinator, f"/tokens/site/{row['id']}/revoke")
    assert revoked.status_code == 302
    refused = api.post("/api/v1/submissions", headers=bearer(token), json=item)
    assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "unauthorized"


def test_a_user_token_is_shown_once_kept_as_a_digest_and_notes_its_use(notary, engine):
    sponsor = notary.test_client()
    signed_in(sponsor, person(engine, "tokens", "sponsor", trials=[TRIAL]))
    created = post_form(sponsor, "/tokens/user", {"name": "nightly", "expires_in_days": "30"})
    token = _shown_token(sponsor, created)
    assert token.startswith("tn_user_")
    row = _row(engine, "user_token", token)
    assert token not in [str(value) for value in row.values()]
    assert row["expires_at"] is not None and row["last_used_at"] is None
    assert token not in sponsor.get("/tokens").get_data(as_text=True)
    used = notary.test_client().get(f"/api/v1/trials/{TRIAL}/submissions", headers=bearer(token))
    assert used.status_code == 200
    assert _row(engine, "user_token", token)["last_used_at"] is not None
    assert post_form(sponsor, f"/tokens/user/{row['id']}/revoke").status_code == 302
    again = notary.test_client().get(f"/api/v1/trials/{TRIAL}/submissions",
                                     headers=bearer(token))
    assert again.status_code == 401


def test_a_token_expiry_must_be_sensible(notary, engine, coordinator):
    before = scalar(engine, "SELECT count(*) FROM site_token")
    for days in ("0", "-3", "abc", "3651"):
        response = post_form(coordinator, "/tokens/site",
                             {"site": SITE, "expires_in_days": days})
        assert response.status_code == 302 and location_path(response) == "/tokens"
    assert scalar(engine, "SELECT count(*) FROM site_token") == before


def test_a_too_long_token_name_is_refused_by_its_label_not_cut(notary, engine, coordinator):
    page = page_of(coordinator.get("/tokens"))
    assert "maxlength" not in page.find("input", id="t-name")[0]  # the browser cuts nothing
    sponsor = notary.test_client()
    signed_in(sponsor, person(engine, "longnames", "sponsor", trials=[TRIAL]))
    assert "maxlength" not in page_of(sponsor.get("/tokens")).find("input", id="u-name")[0]
    response = post_form(sponsor, "/tokens/user", {"name": "n" * 150}, follow_redirects=True)
    assert "Name: must be at most 100 characters" in response.get_data(as_text=True)
    before = scalar(engine, "SELECT count(*) FROM site_token")
    response = post_form(coordinator, "/tokens/site", {"site": SITE, "name": "n" * 150},
                         follow_redirects=True)
    assert "Name: must be at most 100 characters" in response.get_data(as_text=True)
    assert scalar(engine, "SELECT count(*) FROM site_token") == before


def test_every_signed_in_page_links_to_changing_the_password(notary, coordinator):
    for path in ("/", "/register", "/registrations", "/tokens"):
        links = page_of(coordinator.get(path)).find("a", href="/account/password")
        assert [link["id"] for link in links] == ["change-password"], path
    assert page_of(notary.test_client().get("/verify")).find(
        "a", href="/account/password") == []


# --- site tokens live as long as their maker's access ----------------------------------

SITE2 = "SITE-02"
ITEM = {"trial": TRIAL, "dataset": "D", "sha256": SHA}


@pytest.fixture
def maker(notary, engine):
    """A coordinator of SITE-01 and SITE-02, signed in, with one token made on the API
    tokens page for each site; yields (email, user id, client, {site: token})."""
    with write_session(engine) as session:
        sites.add_site(session, TRIAL, SITE2)
        session.commit()
    email = person(engine, "maker", sites=[SITE, SITE2])
    client = notary.test_client()
    signed_in(client, email)
    tokens = {site: _shown_token(client, post_form(client, "/tokens/site", {"site": site}))
              for site in (SITE, SITE2)}
    return email, user_row(engine, email).id, client, tokens


def _registers(notary, token: str, site: str = SITE) -> int:
    return notary.test_client().post("/api/v1/submissions", headers=bearer(token),
                                     json={**ITEM, "site": site}).status_code


def _change_user(admin, user_id: int, **form):
    return post_form(admin, f"/admin/users/{user_id}", form, follow_redirects=True)


def _ends_hint(admin, user_id: int, what: str) -> str:
    page = admin.get(f"/admin/users/{user_id}").get_data(as_text=True)
    found = re.search(rf'data-ends="{re.escape(what)}">(.*?)</(?:p|span)>', page, re.S)
    return " ".join(re.sub(r"<[^>]+>", "", found.group(1)).split()) if found else ""


def _revocation_reasons(engine, token: str) -> list[tuple[str, str]]:
    token_id = _row(engine, "site_token", token)["id"]
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text(
            "SELECT actor, reason FROM audit_entry WHERE action = 'token.revoke' "
            "AND entity = 'site_token' AND entity_id = :i"), {"i": str(token_id)})]


def test_disabling_a_coordinator_ends_their_tokens_for_good(notary, engine, admin, maker):
    email, user_id, _, tokens = maker
    assert {_registers(notary, tokens[s], s) for s in tokens} == {201}
    hint = _ends_hint(admin, user_id, "disable")
    assert hint.startswith(f"Disabling ends 2 site tokens {email} made:")
    for token in tokens.values():
        assert token[:14] in hint
    done = _change_user(admin, user_id, action="disable")
    assert "2 site tokens ended" in flash_text(done)
    assert {_registers(notary, tokens[s], s) for s in tokens} == {401}
    for token in tokens.values():
        assert _revocation_reasons(engine, token) == [
            ("user:1 admin@example.org", "its creator was disabled")]
    # Enabling the person again does not bring the tokens back.
    _change_user(admin, user_id, action="enable")
    assert {_registers(notary, tokens[s], s) for s in tokens} == {401}
    assert "made none that is live" in _ends_hint(admin, user_id, "disable")


def test_revoking_a_grant_ends_that_sites_tokens_only(notary, engine, admin, maker):
    email, user_id, _, tokens = maker
    hint = _ends_hint(admin, user_id, f"site-{SITE}")
    assert hint == f"Removing it ends 1 site token {email} made: {tokens[SITE][:14]}… ({SITE})."
    done = _change_user(admin, user_id, action="revoke-grant", site=SITE)
    assert f"1 site token ended: {tokens[SITE][:14]}…" in flash_text(done)
    assert _registers(notary, tokens[SITE]) == 401
    assert _registers(notary, tokens[SITE2], SITE2) == 201
    assert _revocation_reasons(engine, tokens[SITE])[0][1] == \
        f"its creator's grant of site {SITE} was revoked"
    _change_user(admin, user_id, action="grant", site=SITE)  # a re-grant restores nothing
    assert _registers(notary, tokens[SITE]) == 401


def test_a_role_change_ends_the_tokens_the_new_role_may_not_manage(notary, engine, admin,
                                                                   maker):
    email, user_id, _, tokens = maker
    assert _ends_hint(admin, user_id, "role-sponsor").startswith(
        f"Changing the role to sponsor ends 2 site tokens {email} made:")
    assert _ends_hint(admin, user_id, "role-admin") == ""  # an admin manages every site's
    done = _change_user(admin, user_id, action="role", role="sponsor")
    assert "2 site tokens ended" in flash_text(done)
    _change_user(admin, user_id, action="role", role="coordinator")
    assert {_registers(notary, tokens[s], s) for s in tokens} == {401}


def test_a_token_is_checked_against_its_makers_access_when_used(notary, engine, maker):
    """However the access went (here: straight in the database), the token is refused the
    next time it is used, and revoked then, so that giving the access back restores
    nothing."""
    _, user_id, _, tokens = maker
    with engine.begin() as conn:
        site_id = conn.execute(sa.text("SELECT id FROM site WHERE code = :c"),
                               {"c": SITE}).scalar()
        conn.execute(sa.text("DELETE FROM user_grant WHERE user_id = :u AND site_id = :s"),
                     {"u": user_id, "s": site_id})
    assert _registers(notary, tokens[SITE]) == 401
    assert _registers(notary, tokens[SITE2], SITE2) == 201
    assert _row(engine, "site_token", tokens[SITE])["revoked_at"] is not None
    assert _revocation_reasons(engine, tokens[SITE]) == [
        ("system", "its creator may no longer manage this site's tokens")]
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO user_grant (user_id, site_id) VALUES (:u, :s)"),
                     {"u": user_id, "s": site_id})
    assert _registers(notary, tokens[SITE]) == 401


def test_command_line_tokens_belong_to_no_person(notary, engine, admin, maker):
    _, user_id, _, tokens = maker
    with write_session(engine) as session:
        cli_token = sites.create_token(session, SITE, name="cli-made")
        session.commit()
    listing = admin.get("/admin/tokens").get_data(as_text=True)
    row = listing.split(f'data-token-prefix="{cli_token[:14]}"')[1].split("</tr>")[0]
    assert "the command line (no person)" in row
    mine = listing.split(f'data-token-prefix="{tokens[SITE][:14]}"')[1].split("</tr>")[0]
    assert "maker-" in mine
    _change_user(admin, user_id, action="disable")
    assert _registers(notary, cli_token) == 201


def test_site_tokens_expire_after_the_configured_days_unless_asked(notary, engine, maker):
    _, _, client, tokens = maker

    def stored(token: str) -> SiteToken:
        with Session(engine) as session:
            return session.exec(select(SiteToken)
                                .where(SiteToken.digest == _digest(token))).one()

    def lifetime(token: str) -> float | None:
        row = stored(token)
        if row.expires_at is None:
            return None
        return (as_utc(row.expires_at) - as_utc(row.created_at)) / timedelta(days=1)

    assert lifetime(tokens[SITE]) == pytest.approx(90, abs=0.01)
    asked = _shown_token(client, post_form(client, "/tokens/site",
                                           {"site": SITE, "expires_in_days": "7"}))
    assert lifetime(asked) == pytest.approx(7, abs=0.01)
    page = client.get("/tokens").get_data(as_text=True)
    assert "default 90" in page
    row = page.split(f'data-token-prefix="{tokens[SITE][:14]}"')[1].split("</tr>")[0]
    expires = as_utc(stored(tokens[SITE]).expires_at)
    assert expires.strftime("%Y-%m-%d") in row and "live" in row

    cookie = client.get_cookie("tn_session").value
    for days, expected in (("30", 30), ("0", None)):
        other = new_app({**notary.env, "TRIALNOTARY_SITE_TOKEN_DAYS": days})
        same_person = other.test_client()
        same_person.set_cookie("tn_session", cookie)
        made = _shown_token(same_person, post_form(same_person, "/tokens/site",
                                                   {"site": SITE}))
        assert lifetime(made) == (None if expected is None else pytest.approx(expected,
                                                                              abs=0.01))
        engine_of(other).dispose()

    with engine.begin() as conn:  # an expired token is listed as such
        conn.execute(sa.text("UPDATE site_token SET expires_at = :t WHERE digest = :d"),
                     {"t": utcnow() - timedelta(days=1), "d": _digest(asked)})
    row = client.get("/tokens").get_data(as_text=True).split(
        f'data-token-prefix="{asked[:14]}"')[1].split("</tr>")[0]
    assert "expired" in row
    assert _registers(notary, asked) == 401
