"""The verify page, when anonymous look-ups by hash are spent, says so in words (and when
to try again) instead of an HTTP status; a public timeline is limited on its own."""

from __future__ import annotations

import pytest


@pytest.fixture
def settings_env(settings_env):
    return {**settings_env, "TRIALNOTARY_LOOKUP_RATE_LIMIT": "1 per minute"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_verify_page_says_when_look_ups_are_limited(live_server, page, tmp_path):
    file = tmp_path / "unregistered.csv"
    file.write_bytes(b"nobody registered this\n")
    message = page.locator("#message")
    for expected in ("has no registration of this file", "Too many look-ups from your address"):
        page.goto(f"{live_server}/verify")
        page.locator("#verify-form[data-ready]").wait_for()
        page.locator("#file-input").set_input_files(str(file))
        page.locator("#verify-button").click()
        page.wait_for_function("(text) => document.querySelector('#message').textContent"
                               ".includes(text)", arg=expected)
    assert "try again in" in message.inner_text() and "HTTP" not in message.inner_text()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_public_timeline_is_limited_per_address_on_its_own(app, client, engine):
    """``/t/<trial>`` and its zip count against their own limit, not the look-ups by hash."""
    from trialnotary import db
    from trialnotary.notary import publication
    from trialnotary.people import sites

    with db.write_session(engine) as session:
        sites.add_trial(session, "NCT01234567")
        publication.publish(session, "NCT01234567", publication.Choice(("protocol",)),
                            actor="test", user_id=None)
        session.commit()
    assert client.get("/t/NCT01234567").status_code == 200
    for path in ("/t/NCT01234567", "/t/NCT01234567/receipts.zip"):
        spent = client.get(path)
        assert spent.status_code == 429 and int(spent.headers["Retry-After"]) > 0
    assert client.get("/api/v1/submissions?sha256=" + "ab" * 32).status_code == 200
