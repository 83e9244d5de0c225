"""Least privilege as a matrix: every route of the app × every principal × its own and
another's trial, site or token, against a table written by hand from the policy (never
computed with ``access.can``), on SQLite and PostgreSQL.

The policy, from the issue: anonymous visitors reach the verify page, the look-up by hash,
one registration's pages by its id and the login page; a coordinator registers for its
granted sites and reads their registrations; a sponsor reads everything of its granted
trials; an admin manages everything and registers nothing. The JSON API knows tokens only:
site tokens register, sponsors' and admins' user tokens read the trial endpoints; cookies
mean nothing there.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from tests.utils import (
    DATABASES,
    PASSWORD,
    add_person,
    anchor_and_confirm,
    bearer,
    csrf_token,
    engine_of,
    is_sign_in_redirect,
    location_path,
    module_app,
    page_of,
    post_form,
    scalar,
    signed_in,
)
from trialnotary.db import utcnow, write_session
from trialnotary.notary import publication
from trialnotary.people import access, accounts, sessions, sites, user_tokens
from trialnotary.people.models import SiteToken, User, UserToken
from trialnotary.validation import ValidationError

T1, T2 = "NCT00000001", "NCT00000002"
S1, S2 = "SITE-01", "SITE-02"
PEOPLE = {"admin": "admin@example.org", "sponsor": "sponsor@example.org",
          "coordinator": "coordinator@example.org"}
PRINCIPALS = ("anonymous", "admin", "sponsor", "coordinator",
              "admin-token", "sponsor-token", "site-token")

# Outcomes: A allowed (the view's own answer), L sign-in needed (302 to /login for pages,
# 401 for the API), D denied (403), H hidden (404: the view hides that the thing exists).
# A cell "A/D" is own scope / other scope; a single letter holds for every scope.
# Principals: cookie sessions of nobody, an admin, a sponsor of T1 and a coordinator of S1;
# then bearer tokens (no cookie): the admin's and the sponsor's user tokens, S1's site token.
EXPECTED = {
    #                                   anon admin spons coord admTk spnTk siteTk
    # -- anyone ---------------------------------------------------------------------
    "web.index GET":                   "A    A     A     A     A     A     A",
    "web.verify GET":                  "A    A     A     A     A     A     A",
    "web.verifier_page GET":           "A    A     A     A     A     A     A",
    "web.identity_document GET":       "A    A     A     A     A     A     A",
    "web.lookup GET":                  "A    A     A     A     A     A     A",
    "web.registration GET":            "A    A     A     A     A     A     A",
    "web.registration_print GET":      "A    A     A     A     A     A     A",
    "web.registration_pdf GET":        "A    A     A     A     A     A     A",
    "auth.login GET":                  "A    A     A     A     A     A     A",
    # a published timeline (T1's); an unpublished one (T2's) is hidden from everyone
    "web.public_timeline GET":         "A/H  A/H   A/H   A/H   A/H   A/H   A/H",
    "web.public_receipts GET":         "A/H  A/H   A/H   A/H   A/H   A/H   A/H",
    "auth.login POST":                 "A    A     A     A     A     A     A",
    "auth.logout POST":                "A    A     A     A     A     A     A",
    # -- anyone signed in ------------------------------------------------------------
    "auth.change_password GET":        "L    A     A     A     L     L     L",
    "auth.change_password POST":       "L    A     A     A     L     L     L",
    "web.registration_statuses GET":   "L    A     A     A     L     L     L",
    "web.waiting GET":                 "L    A     A     A     L     L     L",
    "web.tokens GET":                  "L    A     A     A     L     L     L",
    # -- coordinators (admins read, never register) ----------------------------------
    "web.register GET":                "L    D     D     A     L     L     L",
    "web.register_files POST":         "L    D     D     A/D   L     L     L",
    "web.registered_already POST":     "L    D     D     A     L     L     L",
    "web.my_registrations GET":        "L    A     D     A     L     L     L",
    "web.newer_registrations GET":     "L    A     D     A     L     L     L",
    "web.site_receipts GET":           "L    A     D     A     L     L     L",
    "web.upload_receipts POST":        "L    A     D     A     L     L     L",
    # -- whoever may read the registration signs it (its site's, its trial's, admins) --
    "web.sign_registration POST":      "L    A     A/D   A/D   L     L     L",
    "web.create_site_token POST":      "L    A     D     A/D   L     L     L",
    "web.revoke_site_token POST":      "L    A     D     A/H   L     L     L",
    # -- sponsors (and admins) -------------------------------------------------------
    "web.trials GET":                  "L    A     A     D     L     L     L",
    "web.trial_dashboard GET":         "L    A     A/D   D     L     L     L",
    "web.trial_bundle GET":            "L    A     A/D   D     L     L     L",
    "web.trial_report GET":            "L    A     A/D   D     L     L     L",
    "web.trial_report_file GET":       "L    A     A/D   D     L     L     L",
    "web.trial_timeline GET":          "L    A     A/D   D     L     L     L",
    "web.trial_timeline_file GET":     "L    A     A/D   D     L     L     L",
    "web.publish_timeline POST":       "L    A     A/D   D     L     L     L",
    "web.create_user_token POST":      "L    A     A     D     L     L     L",
    "web.revoke_user_token POST":      "L    A     A/H   D     L     L     L",
    # -- admins ----------------------------------------------------------------------
    "admin.overview GET":              "L    A     D     D     L     L     L",
    "admin.trials GET":                "L    A     D     D     L     L     L",
    "admin.trials POST":               "L    A     D     D     L     L     L",
    "admin.sites_page GET":            "L    A     D     D     L     L     L",
    "admin.sites_page POST":           "L    A     D     D     L     L     L",
    "admin.users GET":                 "L    A     D     D     L     L     L",
    "admin.users POST":                "L    A     D     D     L     L     L",
    "admin.user GET":                  "L    A     D     D     L     L     L",
    "admin.update_user POST":          "L    A     D     D     L     L     L",
    "admin.logins GET":                "L    A     D     D     L     L     L",
    "admin.unlock POST":               "L    A     D     D     L     L     L",
    "admin.tokens GET":                "L    A     D     D     L     L     L",
    "admin.batches_page GET":          "L    A     D     D     L     L     L",
    "admin.batch GET":                 "L    A     D     D     L     L     L",
    "admin.audit_trail GET":           "L    A     D     D     L     L     L",
    "admin.audit_export GET":          "L    A     D     D     L     L     L",
    # -- the JSON API: tokens only, cookies are nobody -------------------------------
    "api.list_registrations GET":        "A    A     A     A     A     A     A",
    "api.registration GET":              "A    A     A     A     A     A     A",
    "api.receipt GET":                 "A    A     A     A     A     A     A",
    "api.batch GET":                   "A    A     A     A     A     A     A",
    "api.openapi GET":                 "A    A     A     A     A     A     A",
    "api.healthz GET":                 "A    A     A     A     A     A     A",
    "api.readyz GET":                  "A    A     A     A     A     A     A",
    "api.beacon_block GET":                  "A    A     A     A     A     A     A",
    "api.create_registration POST":      "L    L     L     L     L     L     A/D",
    "api.create_registrations POST":     "L    L     L     L     L     L     A/D",
    "api.trial_registrations GET":       "L    L     L     L     A     A/D   L",
    "api.trial_receipts GET":          "L    L     L     L     A     A/D   L",
}


def expectation(key: str, who: str, scopes: tuple[str, ...]) -> dict[str, str]:
    cell = EXPECTED[key].split()[PRINCIPALS.index(who)]
    outcomes = cell.split("/")
    assert len(outcomes) in (1, len(scopes)), f"{key}: cell {cell} for scopes {scopes}"
    return dict(zip(scopes, outcomes * len(scopes) if len(outcomes) == 1 else outcomes,
                    strict=False))


# --- the world -----------------------------------------------------------------------

@dataclass
class Req:
    """One request of the matrix, and how to tell that it changed something."""

    method: str
    url: str
    ok: int = 200                 # the view's status when access is granted
    form: dict | None = None
    json: Any = None
    probe: Callable[[], Any] | None = None  # state a refused request must leave alone
    changes: bool = True          # whether an allowed request changes what probe reads
    to_login: bool = False        # the allowed answer itself redirects to /login
    client: Any = None            # a client of its own instead of the principal's


@dataclass
class World:
    app: Any
    engine: Any
    clients: dict
    headers: dict
    user_ids: dict
    user_tokens: dict
    site_tokens: dict
    registrations: dict
    pending: dict
    counter: itertools.count = field(default_factory=lambda: itertools.count(1))

    def names(self) -> dict:
        r1, r2 = self.registrations[S1], self.registrations[S2]
        return {"T1": T1, "T2": T2, "r1": r1["id"], "r2": r2["id"], "r1_sha": r1["sha256"],
                "p1": self.pending[S1]["id"], "p2": self.pending[S2]["id"],
                "r2_sha": r2["sha256"], "b1": self.batch_of(r1["id"]),
                "b2": self.batch_of(r2["id"]), "coordinator": self.user_ids["coordinator"]}

    def batch_of(self, registration_id: str) -> int:
        return scalar(self.engine, "SELECT s.batch_id FROM leaf_slot s "
                      "JOIN submission u ON u.seq = s.seq WHERE u.id = :i", i=registration_id)

    def send(self, who: str, req: Req):
        client = req.client or self.clients[who]
        headers = dict(self.headers.get(who, {}))
        if req.method == "GET":
            return client.get(req.url, headers=headers)
        if req.url.startswith("/api/"):  # token-only: no CSRF token, none needed
            return client.post(req.url, json=req.json, headers=headers)
        token = csrf_token(client)
        if req.json is not None:
            return client.post(req.url, json=req.json,
                               headers={**headers, "X-CSRFToken": token})
        return client.post(req.url, data={**(req.form or {}), "csrf_token": token},
                           headers=headers)

    def next(self) -> int:
        return next(self.counter)

    def count(self, sql: str, **params) -> int:
        return scalar(self.engine, sql, **params)

    def probe(self, sql: str, **params) -> Callable[[], Any]:
        """What ``count`` answers when the probe is taken."""
        return lambda: self.count(sql, **params)


def item(site: str, label: str) -> dict:
    trial = T1 if site == S1 else T2
    return {"trial": trial, "site": site, "dataset": label,
            "sha256": hashlib.sha256(label.encode()).hexdigest(), "filename": "f.csv"}


@pytest.fixture(scope="module", params=DATABASES)
def world(request, tmp_path_factory, anvil):
    """Trials T1 (site S1) and T2 (site S2) with a confirmed registration each; an admin, a
    sponsor of T1 and a coordinator of S1, signed in; user tokens of the admin and the
    sponsor; site tokens of S1 and S2."""
    with module_app(request, tmp_path_factory, anvil.url,
                    LOGIN_RATE_LIMIT="1000 per minute") as app:
        engine = engine_of(app)
        with write_session(engine) as session:
            sites.add_trial(session, T1, title="Trial one")
            sites.add_trial(session, T2, title="Trial two")
            sites.add_site(session, T1, S1, name="Site one")
            sites.add_site(session, T2, S2, name="Site two")
            site_tokens = {site: sites.create_token(session, site) for site in (S1, S2)}
            session.commit()
        user_ids = {
            "admin": add_person(engine, PEOPLE["admin"], "admin", name="Admin"),
            "sponsor": add_person(engine, PEOPLE["sponsor"], "sponsor", trials=[T1],
                                  name="Sponsor"),
            "coordinator": add_person(engine, PEOPLE["coordinator"], "coordinator",
                                      sites=[S1], name="Coordinator"),
            "victim": add_person(engine, "victim@example.org", "coordinator"),
        }
        with write_session(engine) as session:
            tokens_by_role = {role: user_tokens.create_user_token(
                session, session.get(User, user_ids[role]), name=f"{role}'s", actor="test")
                for role in ("admin", "sponsor")}
            session.commit()
        client = app.test_client()
        registrations = {}
        for site in (S1, S2):
            answer = client.post("/api/v1/submissions", headers=bearer(site_tokens[site]),
                                 json=item(site, f"first of {site}"))
            assert answer.status_code == 201
            registrations[site] = answer.get_json()["record"]
        anchor_and_confirm(app, anvil)
        with write_session(engine) as session:
            publication.publish(session, T1, publication.Choice(("dataset",), False, True),
                                actor="test", user_id=None)
            session.commit()
        pending = {site: client.post("/api/v1/submissions", headers=bearer(site_tokens[site]),
                                     json=item(site, f"pending of {site}")).get_json()["record"]
                   for site in (S1, S2)}
        clients = {who: app.test_client() for who in PRINCIPALS}
        for role, email in PEOPLE.items():
            signed_in(clients[role], email)
        headers = {"admin-token": bearer(tokens_by_role["admin"]),
                   "sponsor-token": bearer(tokens_by_role["sponsor"]),
                   "site-token": bearer(site_tokens[S1])}
        yield World(app=app, engine=engine, clients=clients, headers=headers,
                    user_ids=user_ids, user_tokens=tokens_by_role, site_tokens=site_tokens,
                    registrations=registrations, pending=pending)
        engine.dispose()


# --- the requests --------------------------------------------------------------------

# GET routes: the URL of the own scope, and of the other one (None: one scope only), and
# the status when allowed if not 200.
GETS: dict[str, tuple] = {
    "web.index GET": ("/", None),
    "web.verify GET": ("/verify", None),
    "web.verifier_page GET": ("/verify/page", None),
    "web.identity_document GET": ("/.well-known/trialnotary.json", None),
    "web.lookup GET": ("/lookup?sha256={r1_sha}", "/lookup?sha256={r2_sha}"),
    "web.registration GET": ("/r/{r1}", "/r/{r2}"),
    "web.registration_print GET": ("/r/{r1}/print", "/r/{r2}/print"),
    # Of pending registrations: the view sends back to the registration's page (drawing
    # PDFs fourteen times would only slow the matrix; test_web checks the PDF itself).
    "web.registration_pdf GET": ("/r/{p1}/receipt.pdf", "/r/{p2}/receipt.pdf", 302),
    "auth.login GET": ("/login", None),
    "auth.change_password GET": ("/account/password", None),
    "web.registration_statuses GET": ("/registrations/status?ids={r1}",
                                      "/registrations/status?ids={r2}"),
    "web.tokens GET": ("/tokens", None),
    "web.waiting GET": ("/registrations/wait", None),
    "web.newer_registrations GET": ("/registrations/newer?after={r1}", None),
    "web.site_receipts GET": ("/registrations/receipts.zip", None),
    "web.register GET": ("/register?supersedes={r1}", "/register?supersedes={r2}"),
    "web.my_registrations GET": ("/registrations?site=SITE-01", "/registrations?site=SITE-02"),
    "web.trials GET": ("/trials", None),
    "web.trial_dashboard GET": ("/trials/{T1}", "/trials/{T2}"),
    "web.trial_bundle GET": ("/trials/{T1}/receipts.zip", "/trials/{T2}/receipts.zip"),
    "web.trial_report GET": ("/trials/{T1}/report", "/trials/{T2}/report"),
    "web.trial_report_file GET": ("/trials/{T1}/report.csv", "/trials/{T2}/report.csv"),
    "web.trial_timeline GET": ("/trials/{T1}/timeline", "/trials/{T2}/timeline"),
    "web.trial_timeline_file GET": ("/trials/{T1}/timeline.json", "/trials/{T2}/timeline.json"),
    "web.public_timeline GET": ("/t/{T1}", "/t/{T2}"),
    "web.public_receipts GET": ("/t/{T1}/receipts.zip", "/t/{T2}/receipts.zip"),
    "admin.overview GET": ("/admin/", None),
    "admin.trials GET": ("/admin/trials", None),
    "admin.sites_page GET": ("/admin/sites", None),
    "admin.users GET": ("/admin/users", None),
    "admin.user GET": ("/admin/users/{coordinator}", None),
    "admin.logins GET": ("/admin/logins", None),
    "admin.tokens GET": ("/admin/tokens", None),
    "admin.batches_page GET": ("/admin/batches", None),
    "admin.batch GET": ("/admin/batches/{b1}", None),
    "admin.audit_trail GET": ("/admin/audit", None),
    "admin.audit_export GET": ("/admin/audit.csv", "/admin/audit.json"),
    "api.list_registrations GET": ("/api/v1/submissions?sha256={r1_sha}",
                                 "/api/v1/submissions?sha256={r2_sha}"),
    "api.registration GET": ("/api/v1/submissions/{r1}", "/api/v1/submissions/{r2}"),
    "api.receipt GET": ("/api/v1/submissions/{r1}/receipt", "/api/v1/submissions/{r2}/receipt"),
    "api.batch GET": ("/api/v1/batches/{b1}", "/api/v1/batches/{b2}"),
    "api.openapi GET": ("/api/v1/openapi.json", None),
    "api.healthz GET": ("/api/v1/healthz", None),
    "api.readyz GET": ("/api/v1/readyz", None),
    "api.beacon_block GET": ("/api/v1/beacon", None),
    "api.trial_registrations GET": ("/api/v1/trials/{T1}/submissions",
                                  "/api/v1/trials/{T2}/submissions"),
    "api.trial_receipts GET": ("/api/v1/trials/{T1}/receipts.zip",
                               "/api/v1/trials/{T2}/receipts.zip"),
}

POSTS: dict[str, tuple[Callable[[World, str, str], Req], bool]] = {}


def post(key: str, *, scoped: bool = False):
    def register(build):
        POSTS[key] = (build, scoped)
        return build
    return register


def _other_site(scope: str) -> str:
    return S1 if scope == "own" else S2


@post("auth.login POST")
def _login(w: World, who: str, scope: str) -> Req:
    # Wrong credentials of an unknown address: the sign-in view itself answers 401.
    return Req("POST", "/login", ok=401, form={"email": f"nobody-{who}@example.org",
                                               "password": "not the password at all"})


@post("auth.logout POST")
def _logout(w: World, who: str, scope: str) -> Req:
    """On a client of its own, so that the principal stays signed in for the other cases."""
    client = w.app.test_client()
    if who not in PEOPLE:
        return Req("POST", "/logout", ok=302, to_login=True, client=client)
    with write_session(w.engine) as session:
        token = sessions.start_session(session, session.get(User, w.user_ids[who]))
        session.commit()
    client.set_cookie("tn_session", token)
    digest = sites.token_digest(token)
    return Req("POST", "/logout", ok=302, to_login=True, client=client, probe=w.probe(
        "SELECT count(*) FROM user_session WHERE digest = :d", d=digest))


@post("auth.change_password POST")
def _change_password(w: World, who: str, scope: str) -> Req:
    # The right current password but two new ones that differ: the view answers 400 and
    # nothing changes, so the principal keeps its password for the other cases.
    email = PEOPLE.get(who, PEOPLE["admin"])
    return Req("POST", "/account/password", ok=400, changes=False,
               form={"current": PASSWORD, "new": "one new long password",
                     "repeat": "another new long password"},
               probe=w.probe("SELECT password_hash FROM app_user WHERE email = :e", e=email))


@post("web.register_files POST", scoped=True)
def _register_files(w: World, who: str, scope: str) -> Req:
    label = f"matrix {who} {scope} {w.next()}"
    return Req("POST", "/register", ok=201,
               json={"submissions": [item(_other_site(scope), label)]},
               probe=w.probe("SELECT count(*) FROM submission"))


@post("web.registered_already POST")
def _registered_already(w: World, who: str, scope: str) -> Req:
    return Req("POST", "/register/check", json={"sha256": [w.registrations[S1]["sha256"]]})


@post("web.upload_receipts POST")
def _upload_receipts(w: World, who: str, scope: str) -> Req:
    return Req("POST", "/registrations/receipts.zip", json={"ids": [w.registrations[S1]["id"]]})


#: Each principal signs with a meaning of its own: nobody signs a registration with one
#: meaning twice, and the matrix asks each once per scope.
MEANING = {"admin": "approved", "sponsor": "reviewed", "coordinator": "authored"}


@post("web.sign_registration POST", scoped=True)
def _sign_registration(w: World, who: str, scope: str) -> Req:
    signed = w.registrations[_other_site(scope)]["id"]
    return Req("POST", f"/r/{signed}/sign", ok=302,
               form={"meaning": MEANING.get(who, "locked"), "password": PASSWORD,
                     "email": PEOPLE.get(who, "nobody@example.org")},
               probe=w.probe("SELECT count(*) FROM submission WHERE signs = :s", s=signed))


@post("web.create_site_token POST", scoped=True)
def _create_site_token(w: World, who: str, scope: str) -> Req:
    site = _other_site(scope)
    return Req("POST", "/tokens/site", ok=302, form={"site": site, "name": f"matrix {who}"},
               probe=w.probe("SELECT count(*) FROM site_token JOIN site ON "
                             "site.id = site_token.site_id WHERE site.code = :s", s=site))


def _fresh_site_token(w: World, site: str) -> int:
    with write_session(w.engine) as session:
        token = sites.create_token(session, site, name="to revoke")
        session.commit()
        return session.execute(sa.select(SiteToken.id).where(
            SiteToken.digest == sites.token_digest(token))).scalar_one()


def _revoked(w: World, table: str, token_id: int) -> Callable[[], bool]:
    return lambda: w.count(f"SELECT revoked_at FROM {table} WHERE id = :i",
                           i=token_id) is not None


@post("web.revoke_site_token POST", scoped=True)
def _revoke_site_token(w: World, who: str, scope: str) -> Req:
    token_id = _fresh_site_token(w, _other_site(scope))
    return Req("POST", f"/tokens/site/{token_id}/revoke", ok=302,
               probe=_revoked(w, "site_token", token_id))


@post("web.create_user_token POST")
def _create_user_token(w: World, who: str, scope: str) -> Req:
    return Req("POST", "/tokens/user", ok=302, form={"name": f"matrix {who}"},
               probe=w.probe("SELECT count(*) FROM user_token"))


def _token_owner(who: str, scope: str) -> str:
    """Whose user token a principal revokes: its own, or someone else's."""
    me = who.removesuffix("-token")
    if scope == "own" and me in ("admin", "sponsor"):
        return me
    return "sponsor" if me == "admin" else "admin"


@post("web.revoke_user_token POST", scoped=True)
def _revoke_user_token(w: World, who: str, scope: str) -> Req:
    owner = _token_owner(who, scope)
    with write_session(w.engine) as session:
        token = user_tokens.create_user_token(session, session.get(User, w.user_ids[owner]),
                                           name="to revoke", actor="test")
        session.commit()
        token_id = session.execute(sa.select(UserToken.id).where(
            UserToken.digest == sites.token_digest(token))).scalar_one()
    return Req("POST", f"/tokens/user/{token_id}/revoke", ok=302,
               probe=_revoked(w, "user_token", token_id))


@post("web.publish_timeline POST", scoped=True)
def _publish_timeline(w: World, who: str, scope: str) -> Req:
    """T1 published again (an audit entry each time); T2 (never published) asked to be
    unpublished, which changes nothing, so that T2 stays unpublished for the GETs."""
    if scope == "own":
        return Req("POST", f"/trials/{T1}/timeline/publication", ok=302,
                   form={"kinds": "dataset", "offer_receipts": "1"},
                   probe=w.probe("SELECT count(*) FROM audit_entry WHERE action = "
                                 "'timeline.publish' AND entity_id = :t", t=T1))
    return Req("POST", f"/trials/{T2}/timeline/publication", ok=302, changes=False,
               form={"action": "unpublish"},
               probe=w.probe("SELECT count(*) FROM publication WHERE trial = :t", t=T2))


@post("admin.trials POST")
def _create_trial(w: World, who: str, scope: str) -> Req:
    trial = f"NCT{10_000_000 + w.next():08d}"
    return Req("POST", "/admin/trials", ok=302, form={"trial": trial, "title": "made"},
               probe=w.probe("SELECT count(*) FROM trial WHERE registry_id = :t", t=trial))


@post("admin.sites_page POST")
def _create_site(w: World, who: str, scope: str) -> Req:
    site = f"NEW-{w.next()}"
    return Req("POST", "/admin/sites", ok=302, form={"trial": T1, "site": site, "name": "n"},
               probe=w.probe("SELECT count(*) FROM site WHERE code = :s", s=site))


@post("admin.users POST")
def _create_user(w: World, who: str, scope: str) -> Req:
    email = f"new-{w.next()}@example.org"
    return Req("POST", "/admin/users", ok=302, form={"email": email, "role": "sponsor"},
               probe=w.probe("SELECT count(*) FROM app_user WHERE email = :e", e=email))


@post("admin.update_user POST")
def _change_role(w: World, who: str, scope: str) -> Req:
    victim = w.user_ids["victim"]

    def role():
        return w.count("SELECT role FROM app_user WHERE id = :i", i=victim)
    new_role = "sponsor" if role() == "coordinator" else "coordinator"
    return Req("POST", f"/admin/users/{victim}", ok=302,
               form={"action": "role", "role": new_role}, probe=role)


@post("admin.unlock POST")
def _unlock(w: World, who: str, scope: str) -> Req:
    return Req("POST", "/admin/logins/unlock", ok=302, form={"email": "locked@example.org"},
               probe=w.probe("SELECT count(*) FROM login_attempt WHERE kind = "
                             "'unlock' AND email = 'locked@example.org'"))


@post("api.create_registration POST", scoped=True)
def _api_register(w: World, who: str, scope: str) -> Req:
    return Req("POST", "/api/v1/submissions", ok=201,
               json=item(_other_site(scope), f"api {who} {scope} {w.next()}"),
               probe=w.probe("SELECT count(*) FROM submission"))


@post("api.create_registrations POST", scoped=True)
def _api_register_bulk(w: World, who: str, scope: str) -> Req:
    label = f"api bulk {who} {scope} {w.next()}"
    return Req("POST", "/api/v1/submissions/bulk", ok=201,
               json={"submissions": [item(_other_site(scope), label)]},
               probe=w.probe("SELECT count(*) FROM submission"))


def scopes_of(key: str) -> tuple[str, ...]:
    if key in GETS:
        return ("own",) if GETS[key][1] is None else ("own", "other")
    return ("own", "other") if POSTS[key][1] else ("own",)


def build(w: World, key: str, who: str, scope: str) -> Req:
    if key in GETS:
        own, other, *ok = GETS[key]
        return Req("GET", (own if scope == "own" else other).format(**w.names()),
                   ok=ok[0] if ok else 200)
    return POSTS[key][0](w, who, scope)


def assert_outcome(response, outcome: str, req: Req, what: str) -> None:
    body = response.get_data()[:300]
    api = urlsplit(req.url).path.startswith("/api/")
    if outcome == "A":
        assert response.status_code == req.ok, f"{what}: {response.status} {body}"
        if 300 <= req.ok < 400:
            assert (location_path(response) == "/login") == req.to_login, \
                f"{what}: redirected to {response.headers.get('Location')}"
    elif outcome == "L":
        if api:
            assert response.status_code == 401, f"{what}: {response.status} {body}"
            assert response.get_json()["error"]["code"] == "unauthorized"
        else:
            assert is_sign_in_redirect(response), f"{what}: {response.status} " \
                                                  f"{response.headers.get('Location')}"
    elif outcome == "D":
        assert response.status_code == 403, f"{what}: {response.status} {body}"
        if api:
            assert response.get_json()["error"]["code"] == "forbidden"
    else:
        assert outcome == "H", what
        assert response.status_code == 404, f"{what}: {response.status} {body}"


# --- the matrix ----------------------------------------------------------------------

def test_the_table_lists_every_route_and_method(world):
    served = {f"{rule.endpoint} {method}" for rule in world.app.url_map.iter_rules()
              if rule.endpoint != "static" for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert served == set(EXPECTED), "routes missing from (or gone from) the matrix"
    assert set(EXPECTED) == set(GETS) | set(POSTS)
    for key in EXPECTED:
        assert {key.split()[1]} == ({"GET"} if key in GETS else {"POST"})
        assert len(EXPECTED[key].split()) == len(PRINCIPALS), key


def test_every_route_declares_its_permission(world):
    undeclared = [endpoint for endpoint, view in world.app.view_functions.items()
                  if endpoint != "static" and access.rule_of(view) is None]
    assert undeclared == []


@pytest.mark.parametrize("who", PRINCIPALS)
@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_each_route_answers_each_principal_as_the_table_says(world, key, who):
    for scope, outcome in expectation(key, who, scopes_of(key)).items():
        req = build(world, key, who, scope)
        before = req.probe() if req.probe else None
        response = world.send(who, req)
        what = f"{key} as {who} on the {scope} scope ({req.url})"
        assert_outcome(response, outcome, req, what)
        if req.probe:
            changed = req.probe() != before
            assert changed == (outcome == "A" and req.changes), f"{what}: changed={changed}"


# --- what the lists show -------------------------------------------------------------

def shows(world, response, site: str) -> bool:
    return world.registrations[site]["id"] in response.get_data(as_text=True)


def test_a_coordinator_lists_its_sites_registrations_and_never_others(world):
    coordinator = world.clients["coordinator"]
    for query in ("", "?site=SITE-02", f"?trial={T2}", "?label=first", f"?trial={T1}"):
        page = coordinator.get(f"/registrations{query}")
        assert page.status_code == 200
        assert not shows(world, page, S2), query
    assert shows(world, coordinator.get("/registrations"), S1)
    assert "0 registrations" in coordinator.get("/registrations?site=SITE-02").get_data(
        as_text=True)
    admin_page = world.clients["admin"].get("/registrations")
    assert shows(world, admin_page, S1) and shows(world, admin_page, S2)


def test_status_look_ups_answer_only_for_registrations_the_principal_may_see(world):
    r1, r2 = world.registrations[S1]["id"], world.registrations[S2]["id"]
    seen = {who: set(world.clients[who].get(f"/registrations/status?ids={r1},{r2}")
                     .get_json()) for who in PEOPLE}
    assert seen == {"admin": {r1, r2}, "sponsor": {r1}, "coordinator": {r1}}
    assert world.clients["coordinator"].get(f"/registrations/status?ids={r2}").get_json() == {}


def _zip_ids(response) -> tuple[dict[str, str], dict[str, str]]:
    """({id: site} of the receipts, {id: site} listed in index.csv) of a receipts zip."""
    import csv
    import io
    import json
    import zipfile

    assert response.status_code == 200, response.status
    with zipfile.ZipFile(io.BytesIO(response.get_data())) as bundle:
        records = [json.loads(bundle.read(name))["trialnotary"]["record"]
                   for name in bundle.namelist() if name.startswith("receipts/")]
        listed = {row["id"]: row["site"] for row in csv.DictReader(io.StringIO(
            bundle.read("index.csv").decode()))}
    return {record["id"]: record["site"] for record in records}, listed


def test_a_coordinators_receipts_zips_hold_its_sites_only(world):
    r1, r2 = world.registrations[S1]["id"], world.registrations[S2]["id"]
    coordinator = world.clients["coordinator"]
    assert page_of(coordinator.get("/registrations")).find(
        "a", href="/registrations/receipts.zip")
    receipts, listed = _zip_ids(coordinator.get("/registrations/receipts.zip"))
    assert r1 in receipts and set(receipts.values()) == {S1}
    assert {r1, world.pending[S1]["id"]} <= set(listed) and set(listed.values()) == {S1}
    token = csrf_token(coordinator)
    upload = coordinator.post("/registrations/receipts.zip", json={"ids": [r1, r2]},
                              headers={"X-CSRFToken": token})
    assert _zip_ids(upload) == ({r1: S1}, {r1: S1})
    assert _zip_ids(coordinator.post("/registrations/receipts.zip", json={"ids": [r2]},
                                     headers={"X-CSRFToken": token})) == ({}, {})
    refused = coordinator.post("/registrations/receipts.zip", json={"ids": ["x"]},
                               headers={"X-CSRFToken": token})
    assert refused.status_code == 422 and refused.get_json()["error"]["field"] == "ids[0]"
    assert {r1, r2} <= set(_zip_ids(world.clients["admin"].get("/registrations/receipts.zip"))[0])


def test_a_coordinator_is_told_only_of_its_trials_registrations_and_rows(world):
    coordinator = world.clients["coordinator"]
    hashes = [world.registrations[site]["sha256"] for site in (S1, S2)]
    known = coordinator.post("/register/check", json={"sha256": hashes},
                             headers={"X-CSRFToken": csrf_token(coordinator)}).get_json()
    assert list(known["registered"]) == [hashes[0]]
    newer = coordinator.get("/registrations/newer").get_data(as_text=True)
    assert world.registrations[S1]["id"] in newer
    assert world.registrations[S2]["id"] not in newer and world.pending[S2]["id"] not in newer


def test_a_sponsor_sees_its_trials_only(world):
    sponsor = world.clients["sponsor"]
    listing = sponsor.get("/trials").get_data(as_text=True)
    assert T1 in listing and T2 not in listing
    dashboard = sponsor.get(f"/trials/{T1}")
    assert dashboard.status_code == 200 and shows(world, dashboard, S1)
    assert sponsor.get(f"/trials/{T2}").status_code == 403
    # The trial in the address is normalised before the check, in both directions.
    assert sponsor.get("/trials/nct00000001").status_code == 200
    assert sponsor.get("/trials/nct%200000%200002").status_code == 403
    assert sponsor.get(f"/trials/{T2}/report.json").status_code == 403
    assert sponsor.get(f"/trials/{T2}/report.pdf").status_code == 403
    report = sponsor.get(f"/trials/{T1}/report.json").get_json()
    assert [row["id"] for row in report["registrations"]
            if row["site"] == S1][0] == world.registrations[S1]["id"]
    assert all(row["trial"] == T1 for row in report["registrations"])


def test_the_register_page_does_not_reveal_another_sites_registration(world):
    coordinator = world.clients["coordinator"]
    own = coordinator.get(f"/register?supersedes={world.registrations[S1]['id']}")
    assert page_of(own).find("input", id="supersedes",
                             value=world.registrations[S1]["id"])
    other = coordinator.get(f"/register?supersedes={world.registrations[S2]['id']}")
    assert other.status_code == 200
    assert not shows(world, other, S2) and "first of SITE-02" not in other.get_data(
        as_text=True)


def test_the_tokens_page_lists_only_the_principals_own_tokens(world):
    def prefixes(who):
        return {tag["data-token-prefix"] for tag in page_of(world.clients[who].get("/tokens"))
                .find("tr") if "data-token-prefix" in tag}
    s1, s2 = (world.site_tokens[s][:14] for s in (S1, S2))
    admin_token, sponsor_token = (world.user_tokens[r][:14] for r in ("admin", "sponsor"))
    coordinator = prefixes("coordinator")
    assert s1 in coordinator and s2 not in coordinator
    assert admin_token not in coordinator and sponsor_token not in coordinator
    sponsor = prefixes("sponsor")
    assert sponsor_token in sponsor and admin_token not in sponsor and s1 not in sponsor


def test_a_coordinator_cannot_create_a_token_for_another_site_through_the_query(world):
    """The gate reads the site from the query string before the form; the view from the
    form only: they must agree, or a coordinator of S1 mints tokens for S2."""
    def s2_tokens():
        return world.count("SELECT count(*) FROM site_token JOIN site ON site.id = "
                           "site_token.site_id WHERE site.code = :s", s=S2)
    before = s2_tokens()
    response = post_form(world.clients["coordinator"], f"/tokens/site?site={S1}",
                         {"site": S2, "name": "sneaky"})
    assert response.status_code == 403
    assert s2_tokens() == before


def test_a_grant_taken_away_counts_at_the_next_request(world):
    email = "coordinator-b@example.org"
    user_id = add_person(world.engine, email, "coordinator", sites=[S1])
    client = world.app.test_client()
    signed_in(client, email)
    assert client.get("/register").status_code == 200
    admin = world.clients["admin"]
    assert post_form(admin, f"/admin/users/{user_id}",
                     {"action": "revoke-grant", "site": S1}).status_code == 302
    # The page still opens for a coordinator (the role alone), but offers nothing.
    page = client.get("/register").get_data(as_text=True)
    assert "None of your sites is enrolled" in page and T1 not in page
    assert world.registrations[S1]["id"] not in client.get(
        "/registrations").get_data(as_text=True)
    before = world.count("SELECT count(*) FROM submission")
    response = client.post("/register", json={"submissions": [item(S1, "after revoke")]},
                           headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 403
    assert world.count("SELECT count(*) FROM submission") == before


def test_nobody_but_sponsors_and_admins_has_a_user_token(world):
    with write_session(world.engine) as session:
        coordinator = session.get(User, world.user_ids["coordinator"])
        with pytest.raises(ValidationError, match="only sponsors and admins"):
            user_tokens.create_user_token(session, coordinator, actor="test")


# --- the API's trial endpoints with user tokens --------------------------------------

def _listing(world, headers, trial=T1):
    return world.app.test_client().get(f"/api/v1/trials/{trial}/submissions", headers=headers)


def assert_unauthorized(response):
    assert response.status_code == 401, response.get_data(as_text=True)[:300]
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_sponsors_user_token_reads_its_trial_and_nothing_else(world):
    token = bearer(world.user_tokens["sponsor"])
    own = _listing(world, token)
    assert own.status_code == 200
    body = own.get_json()
    assert body["trial"] == T1
    assert world.registrations[S1]["id"] in [row["id"] for row in body["submissions"]]
    assert {row["trial"] for row in body["submissions"]} == {T1}
    forbidden = _listing(world, token, T2)
    assert forbidden.status_code == 403
    assert forbidden.get_json()["error"]["code"] == "forbidden"
    assert_unauthorized(_listing(world, {}))
    assert_unauthorized(_listing(world, bearer("tn_user_" + "x" * 43)))
    assert_unauthorized(_listing(world, bearer(world.site_tokens[S1])))
    assert_unauthorized(_listing(world, {"Authorization": f"Basic {world.user_tokens['sponsor']}"}))
    # A signed-in browser's cookie means nothing to the API.
    cookie_only = world.clients["sponsor"].get(f"/api/v1/trials/{T1}/submissions")
    assert_unauthorized(cookie_only)
    bundle = world.app.test_client().get(f"/api/v1/trials/{T1}/receipts.zip", headers=token)
    assert bundle.status_code == 200 and bundle.mimetype == "application/zip"


@pytest.mark.parametrize("how", ["revoked", "expired", "user disabled", "now a coordinator"])
def test_a_dead_user_token_is_refused(world, how):
    email = f"sponsor-{how.replace(' ', '-')}@example.org"
    user_id = add_person(world.engine, email, "sponsor", trials=[T1])
    with write_session(world.engine) as session:
        user = session.get(User, user_id)
        token = user_tokens.create_user_token(session, user, actor="test")
        session.commit()
    assert _listing(world, bearer(token)).status_code == 200  # live before
    with write_session(world.engine) as session:
        user = session.get(User, user_id)
        row = session.execute(sa.select(UserToken).where(
            UserToken.digest == sites.token_digest(token))).scalar_one()
        if how == "revoked":
            user_tokens.revoke_user_token(session, row.id, actor="test")
        elif how == "expired":
            row.expires_at = utcnow() - timedelta(seconds=1)
            session.add(row)
        elif how == "user disabled":
            accounts.update_user(session, user, disabled=True, actor="test")
        else:
            accounts.update_user(session, user, role="coordinator", actor="test")
        session.commit()
    assert_unauthorized(_listing(world, bearer(token)))
    with Session(world.engine) as session:
        stored = session.execute(sa.select(UserToken.digest, UserToken.prefix).where(
            UserToken.user_id == user_id)).one()
    assert token not in stored


def test_a_site_token_cannot_register_for_another_site_even_in_bulk(world):
    before = world.count("SELECT count(*) FROM submission")
    response = world.app.test_client().post(
        "/api/v1/submissions/bulk", headers=bearer(world.site_tokens[S1]),
        json={"submissions": [item(S1, "mine"), item(S2, "not mine")]})
    assert response.status_code == 403
    assert response.get_json()["error"]["field"] == "submissions[1].site"
    assert world.count("SELECT count(*) FROM submission") == before
