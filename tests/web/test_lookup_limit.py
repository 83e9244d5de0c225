"""The verify page, when anonymous look-ups by hash are spent, says so in words (and when
to try again) instead of an HTTP status."""

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
