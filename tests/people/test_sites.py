"""Site tokens over HTTP: shown once, kept as a digest, their expiry, and their maker's access."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from tests.utils import (
    SHA,
    SITE,
    TRIAL,
    _digest,
    _row,
    _shown_token,
    bearer,
    engine_of,
    flash_text,
    location_path,
    new_app,
    page_of,
    person,
    post_form,
    scalar,
    signed_in,
    user_row,
)
from trialnotary.db import as_utc, utcnow, write_session
from trialnotary.people import sites
from trialnotary.people.models import SiteToken

pytestmark = pytest.mark.usefixtures("quick_argon2")


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
