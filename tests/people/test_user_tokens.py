"""User tokens over HTTP: shown once, kept as a digest, noting their use, and revocable."""

from __future__ import annotations

import pytest

from tests.utils import (
    TRIAL,
    _row,
    _shown_token,
    bearer,
    person,
    post_form,
    signed_in,
)

pytestmark = pytest.mark.usefixtures("quick_argon2")


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
