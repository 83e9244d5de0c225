"""Users over HTTP: disabling, an admin's own account, role changes, and every form's redirect."""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from tests.utils import (
    PASSWORD,
    SHA,
    SITE,
    TRIAL,
    _answer,
    _count,
    _row,
    add_person,
    bearer,
    flash_text,
    fresh_email,
    is_sign_in_redirect,
    person,
    post_form,
    post_json,
    sessions_of,
    sign_in,
    signed_in,
    user_row,
)
from trialnotary.db import write_session
from trialnotary.people import accounts, sites, user_tokens

pytestmark = pytest.mark.usefixtures("quick_argon2")


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
        user_token = user_tokens.create_user_token(
            session, session.get(type(user_row(engine, sponsor_email)),
                                 user_row(engine, sponsor_email).id), actor="test")
        registering = sites.create_token(session, SITE, name="registers what is signed")
        session.commit()
    site_token_id = _row(engine, "site_token", site_token)["id"]
    signed = _registered(notary, registering)
    signer = notary.test_client()
    signer_email = fresh_email("signer")
    add_person(engine, signer_email, "coordinator", sites=[SITE], name="Form Signer")
    signed_in(signer, signer_email)
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
        "web.sign_registration": [(signer, f"/r/{signed}/sign", {
            "meaning": "approved", "email": signer_email.upper(), "password": PASSWORD},
            "Signed as approved")],
        "web.publish_timeline": [(sponsor, f"/trials/{TRIAL}/timeline/publication",
                                  {"kinds": "sap"}, "The timeline is published.")],
    }


def _registered(notary, site_token: str) -> str:
    """The id of a new registration of TRIAL at SITE, registered with ``site_token``."""
    answer = notary.test_client().post("/api/v1/submissions", headers=bearer(site_token), json={
        "trial": TRIAL, "site": SITE, "kind": "sap", "dataset": "to sign",
        "sha256": uuid.uuid4().hex * 2})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["record"]["id"]


def _state(engine) -> tuple:
    return tuple(_count(engine, table) for table in (
        "audit_entry", "site_token", "user_token", "app_user", "trial", "login_attempt",
        "submission", "publication"))


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
