"""Signing in over HTTP: where it returns to, throttling after failures, unlocking, rate limits."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from tests.conftest import insert_registrations
from tests.utils import (
    PASSWORD,
    SITE,
    TRIAL,
    WRONG,
    _answer,
    _shown_token,
    bearer,
    engine_of,
    fresh_email,
    new_app,
    person,
    post_form,
    require_redis,
    scalar,
    sign_in,
    signed_in,
    user_row,
)
from trialnotary.db import utcnow, write_session
from trialnotary.people import signin
from trialnotary.people.models import LoginAttempt

pytestmark = pytest.mark.usefixtures("quick_argon2")


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
