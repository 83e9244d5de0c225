"""Odd input never gets a 5xx. Every route, as every principal that reaches it, gets extreme
values in each query parameter its view reads, in each path argument and in each form field
of its POST, on SQLite and PostgreSQL. The parameters are not listed by hand: the app's
argument dictionaries record which names a request reads, and every name read is then
thrown odd values (again until no new name turns up), so a parameter added later cannot be
missed. Then the cases of the issue one by one, and bodies over the limit under the real
server."""

from __future__ import annotations

import hashlib
import html
import itertools
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import flask
import pytest
import requests
from werkzeug.datastructures import ImmutableMultiDict

from tests.conftest import free_port
from tests.utils import (
    DATABASES,
    PASSWORD,
    add_person,
    anchor_and_confirm,
    bearer,
    csrf_token,
    engine_of,
    migrated_sqlite,
    module_app,
    notary_env,
    quick_password_hashing,
)
from trialnotary import db
from trialnotary.db import write_session
from trialnotary.people import access, passwords, sessions, sites, user_tokens
from trialnotary.people.models import User
from trialnotary.web.app import MAX_BODY_BYTES

T1, S1 = "NCT00000001", "SITE-01"
PEOPLE = {"admin": "admin@example.org", "sponsor": "sponsor@example.org",
          "coordinator": "coordinator@example.org"}
PAGE_PRINCIPALS = ("anonymous", "coordinator", "admin", "sponsor")
API_PRINCIPALS = ("anonymous", "site-token", "admin-token", "sponsor-token")

# Each value as sent, percent-encoded already, so that bytes which are not UTF-8 go out as
# they are ("raw bytes": not even percent-encoded, as a client may send them).
ODD_VALUES = {
    "empty": "", "zero": "0", "minus one": "-1", "huge": "99999999999999999999",
    "huge negative": "-99999999999999999999", "2^31": str(2**31), "2^63": str(2**63),
    "exponent": "1e309", "0000-00-00": "0000-00-00", "9999-12-31": "9999-12-31",
    "10000-01-01": "10000-01-01", "NUL": "%00", "CR/LF": "%0D%0A",
    "header injection": quote("/\r\nSet-Cookie: a=1", safe=""),
    "protocol-relative": quote("//evil.example/", safe=""),
    "backslash host": quote("/\\evil.example/", safe=""), "long": "x" * 10_000,
    "not UTF-8": "%FF%FE", "raw bytes": "\xff\xfe", "lone surrogate": "%ED%A0%80",
    "bidi override": quote("\u202e"), "NUL in an address": "a%00b%40example.org",
    "hex 64": "a" * 64, "uuid": "00000000-0000-4000-8000-000000000000",
}
# A name given twice, the second time odd.
TWICE = "1&{name}=99999999999999999999"


class RecordingArgs(ImmutableMultiDict):
    """The query's and the form's arguments, noting every name a request looks up."""

    read: set[str] = set()

    def __getitem__(self, key):
        RecordingArgs.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None, type=None):  # noqa: A002 (werkzeug's signature)
        RecordingArgs.read.add(key)
        return super().get(key, default, type)

    def getlist(self, key, type=None):  # noqa: A002
        RecordingArgs.read.add(key)
        return super().getlist(key, type)

    def __contains__(self, key):
        RecordingArgs.read.add(key)
        return super().__contains__(key)


class RecordingRequest(flask.Request):
    parameter_storage_class = RecordingArgs


@dataclass
class World:
    app: flask.Flask
    engine: object
    names: dict
    clients: dict
    headers: dict

    def send(self, who: str, method: str, path: str, query: str = "", form: str | None = None,
             client=None):
        """The answer to one request (a raised exception counts as a 500), and the names of
        the arguments the app read for it."""
        client = client or self.clients[who]
        headers = self.headers.get(who, {})
        RecordingArgs.read = set()
        try:
            if method == "GET":  # the query as it comes over the wire
                response = client.get(path, headers=headers,
                                      environ_overrides={"QUERY_STRING": query})
            else:
                response = client.post(path, data=form or "", headers=headers,
                                       content_type="application/x-www-form-urlencoded")
            status = response.status_code
        except Exception as exc:  # noqa: BLE001 (the app raised: the server's 500)
            status, response = 500, exc
        return status, response, set(RecordingArgs.read)


@pytest.fixture(scope="module", params=DATABASES)
def world(request, tmp_path_factory, anvil):
    """Trial T1 with site S1, one confirmed and one pending registration; an admin, a
    sponsor of T1 and a coordinator of S1, signed in; the admin's and the sponsor's user
    tokens and S1's site token; a person and tokens (id 3 of each kind) for the forms to
    change and revoke."""
    with quick_password_hashing(), pytest.MonkeyPatch.context() as patch, \
            module_app(request, tmp_path_factory, anvil.url,
                       LOGIN_RATE_LIMIT="100000 per minute",
                       LOOKUP_RATE_LIMIT="100000 per minute") as app:
        # Unknown e-mail addresses are checked against a dummy hash: a quick one here too.
        patch.setattr(passwords, "_DUMMY_HASH", passwords._hasher.hash("dummy"))
        app.request_class = RecordingRequest
        engine = engine_of(app)
        with write_session(engine) as session:
            sites.add_trial(session, T1, title="Trial one")
            sites.add_site(session, T1, S1, name="Site one")
            site_token = sites.create_token(session, S1)
            session.commit()
        user_ids = {"admin": add_person(engine, PEOPLE["admin"], "admin"),
                    "sponsor": add_person(engine, PEOPLE["sponsor"], "sponsor", trials=[T1]),
                    "coordinator": add_person(engine, PEOPLE["coordinator"], "coordinator",
                                              sites=[S1]),
                    "victim": add_person(engine, "victim@example.org", "coordinator",
                                         sites=[S1])}
        with write_session(engine) as session:
            tokens_by_role = {role: user_tokens.create_user_token(
                session, session.get(User, user_ids[role]), actor="test")
                for role in ("admin", "sponsor")}
            user_tokens.create_user_token(session, session.get(User, user_ids["admin"]),
                                       name="to revoke", actor="test")  # id 3
            for _ in range(2):
                sites.create_token(session, S1, name="to revoke")  # ids 2 and 3
            session.commit()
        client = app.test_client()
        confirmed = client.post("/api/v1/submissions", headers=bearer(site_token),
                                json=_item("confirmed")).get_json()["record"]
        anchor_and_confirm(app, anvil)
        pending = client.post("/api/v1/submissions", headers=bearer(site_token),
                              json=_item("pending")).get_json()["record"]
        clients = {who: app.test_client() for who in (*PAGE_PRINCIPALS, *API_PRINCIPALS)}
        for role in PEOPLE:
            clients[role].set_cookie("tn_session", _session_of(engine, user_ids[role]))
        headers = {"admin-token": bearer(tokens_by_role["admin"]),
                   "sponsor-token": bearer(tokens_by_role["sponsor"]),
                   "site-token": bearer(site_token)}
        names = {"registration_id": confirmed["id"], "pending_id": pending["id"], "trial": T1,
                 "user_id": user_ids["victim"], "batch_id": 1, "fmt": "csv",
                 "token_id": 3}
        yield World(app=app, engine=engine, names=names, clients=clients, headers=headers)
        engine.dispose()


def _item(label: str) -> dict:
    return {"trial": T1, "site": S1, "dataset": label, "filename": f"{label}.csv",
            "sha256": hashlib.sha256(label.encode()).hexdigest()}


def _session_of(engine, user_id: int) -> str:
    with write_session(engine) as session:
        token = sessions.start_session(session, session.get(User, user_id))
        session.commit()
    return token


def routes(world: World, method: str) -> list[tuple[str, str]]:
    """(endpoint, URL with valid path arguments) of every route taking ``method``."""
    found = []
    for rule in world.app.url_map.iter_rules():
        if rule.endpoint == "static" or method not in rule.methods:
            continue
        missing = set(rule.arguments) - set(world.names)
        assert not missing, f"{rule.rule}: give a valid value for {missing} in world.names"
        found.append((rule.endpoint, _path(rule, world.names)))
    return found


def _path(rule, values: dict) -> str:
    path = rule.rule
    for name in rule.arguments:
        path = _replace_argument(path, name, str(values[name]))
    return path


def _replace_argument(path: str, name: str, value: str) -> str:
    start = path.index("<")
    while True:
        end = path.index(">", start)
        if path[start + 1:end].split(":")[-1] == name:
            return path[:start] + value + path[end + 1:]
        start = path.index("<", end)


def principals_of(world: World, endpoint: str) -> tuple[str, ...]:
    """Who asks: every principal of the pages (or of the API). Public views behave alike
    for everyone signed in, so there anonymous and one signed-in principal suffice."""
    every = API_PRINCIPALS if endpoint.startswith("api.") else PAGE_PRINCIPALS
    rule = access.rule_of(world.app.view_functions[endpoint])
    return every[:2] if rule.permission == access.PUBLIC else every


def assert_no_server_error(failures: list[str], tried: int) -> None:
    assert tried > 0
    assert not failures, f"{len(failures)} of {tried} odd requests got a 5xx:\n" + \
        "\n".join(failures[:40])


def _describe(status, response) -> str:
    if isinstance(response, Exception):
        return f"{type(response).__name__}: {str(response)[:200]}"
    return f"{status} {response.get_data(as_text=True)[:120]!r}"


# --- every query parameter -----------------------------------------------------------

def test_every_query_parameter_takes_extreme_values_without_a_server_error(world):
    failures, tried, fuzzed = [], 0, set()
    for endpoint, path in routes(world, "GET"):
        for who in principals_of(world, endpoint):
            status, response, to_try = world.send(who, "GET", path)
            tried += 1
            if status >= 500:
                failures.append(f"{who} GET {path}: {_describe(status, response)}")
            done: set[str] = set()
            while to_try - done:
                name = sorted(to_try - done)[0]
                done.add(name)
                fuzzed.add((endpoint, name))
                for label, value in [*ODD_VALUES.items(), ("twice", TWICE.format(name=name))]:
                    query = f"{quote(name)}={value}"
                    status, response, read = world.send(who, "GET", path, query)
                    tried += 1
                    to_try |= read  # names read only when this one is given
                    if status >= 500:
                        failures.append(f"{who} GET {path}?{name}= {label}: "
                                        f"{_describe(status, response)}")
    assert_no_server_error(failures, tried)
    # The walk found the parameters the pages are known to read (it finds new ones itself).
    assert {("web.my_registrations", "date_to"), ("web.my_registrations", "page"),
            ("admin.audit_trail", "before"), ("auth.login", "next"),
            ("web.trial_dashboard", "q")} <= fuzzed


# --- every path argument -------------------------------------------------------------

ODD_PATH_VALUES = {label: ODD_VALUES[label] for label in (
    "zero", "minus one", "huge", "2^31", "2^63", "NUL", "CR/LF", "long", "not UTF-8",
    "lone surrogate", "bidi override")}


def test_every_path_argument_takes_extreme_values_without_a_server_error(world):
    failures, tried = [], 0
    tokens = {who: csrf_token(world.clients[who]) for who in world.clients}
    for method in ("GET", "POST"):
        for rule in world.app.url_map.iter_rules():
            if rule.endpoint == "static" or method not in rule.methods:
                continue
            form = "csrf_token={}" if method == "POST" else None
            for who in reaching(world, rule, method):
                for name in rule.arguments:
                    for label, value in ODD_PATH_VALUES.items():
                        path = _path(rule, {**world.names, name: value})
                        status, response, _ = world.send(
                            who, method, path, form=form and form.format(quote(tokens[who])))
                        tried += 1
                        if status >= 500:
                            failures.append(f"{who} {method} {path[:80]} ({name} {label}): "
                                            f"{_describe(status, response)}")
    assert_no_server_error(failures, tried)


def reaching(world: World, rule, method: str) -> list[str]:
    """Who sends the odd paths: for a GET, the principals whose request with valid path
    arguments gets past the access check; a POST (which would act) is sent by every
    signed-in principal, and by anonymous to the sign-in routes only."""
    if method == "POST":
        return [who for who in principals_of(world, rule.endpoint)
                if who != "anonymous" or rule.endpoint.startswith("auth.")]
    found = []
    for who in principals_of(world, rule.endpoint):
        status, response, _ = world.send(who, "GET", _path(rule, world.names))
        if status not in (401, 403) and not (
                status == 302 and "/login" in response.headers.get("Location", "")):
            found.append(who)
    return found


# --- the forms -----------------------------------------------------------------------

# Valid forms to start from, so that the view gets past its first check; a route may have
# several (each action of the user page reads other fields). {names} are filled in.
FORMS = {
    "auth.login": [{"email": "{email}", "password": PASSWORD, "next": "/trials"}],
    "auth.change_password": [{"current": PASSWORD, "new": "one new long password",
                              "repeat": "another new long password"}],
    "web.create_site_token": [{"site": S1, "name": "odd", "expires_in_days": "30"}],
    "web.create_user_token": [{"name": "odd", "expires_in_days": "30"}],
    "web.revoke_site_token": [{"back": "admin"}],
    "admin.trials": [{"trial": "NCT09999999", "title": "odd", "protocol_id": "on"}],
    "admin.sites_page": [{"trial": T1, "site": "ODD-SITE", "name": "odd"}],
    "admin.users": [{"email": "odd@example.org", "role": "sponsor", "name": "odd"}],
    "admin.update_user": [{"action": "role", "role": "coordinator"},
                          {"action": "grant", "trial": T1}, {"action": "grant", "site": S1},
                          {"action": "revoke-grant", "site": S1}, {"action": "unlock"}],
    "admin.unlock": [{"email": "someone@example.org"}],
}
# JSON bodies have their own fuzzing (test_schemathesis) and validation tests.
JSON_POSTS = {"web.register_files", "api.create_registration", "api.create_registrations"}
ODD_FORM_VALUES = {label: ODD_VALUES[label] for label in (
    "empty", "huge", "2^63", "NUL", "header injection", "protocol-relative",
    "backslash host", "long", "lone surrogate", "bidi override", "NUL in an address")}


def test_every_form_field_takes_extreme_values_without_a_server_error(world):
    """Each (route, principal, field) signs in a fresh person of that role, so that failed
    passwords and changes made by one case cannot lock out or disturb another."""
    failures, tried, fuzzed = [], 0, set()
    for endpoint, path in routes(world, "POST"):
        if endpoint in JSON_POSTS:
            continue
        for who in principals_of(world, endpoint):
            for base in FORMS.get(endpoint, [{}]):
                fresh = _fresh_person(world, who)
                form = {key: quote(value.format(email=fresh.email), safe="")
                        for key, value in base.items()}
                status, response, to_try = fresh.post(path, form)
                tried += 1
                if status >= 500:
                    failures.append(f"{who} POST {path} {base}: {_describe(status, response)}")
                for name in sorted(to_try - {"csrf_token"}):
                    fuzzed.add((endpoint, name))
                    fresh = _fresh_person(world, who)
                    form = {key: quote(value.format(email=fresh.email), safe="")
                            for key, value in base.items()}
                    for label, value in ODD_FORM_VALUES.items():
                        status, response, _ = fresh.post(path, {**form, name: value})
                        tried += 1
                        if status >= 500:
                            failures.append(f"{who} POST {path} {name}= {label} ({base}): "
                                            f"{_describe(status, response)}")
    assert_no_server_error(failures, tried)
    assert {("auth.login", "next"), ("admin.update_user", "role"),
            ("web.create_site_token", "expires_in_days")} <= fuzzed


@dataclass
class Fresh:
    """A new person and a client of its own; posts forms as the browser would."""

    world: World
    who: str
    email: str
    client: object
    token: str = ""

    def post(self, path: str, form: dict):
        """POST the form (values percent-encoded already); a sign-in starts a new session,
        whose CSRF token is read again."""
        if not self.token or path == "/login":
            self.token = csrf_token(self.client)
        body = "&".join(f"{quote(key)}={value}" for key, value in
                        {"csrf_token": quote(self.token, safe=""), **form}.items())
        return self.world.send(self.who, "POST", path, form=body, client=self.client)


_NEXT_PERSON = itertools.count(1)


def _fresh_person(world: World, who: str) -> Fresh:
    """A new person of the principal's role (same grants), signed in on a client of its
    own; for anonymous, a new client and a person to sign in as."""
    role = "coordinator" if who == "anonymous" else who
    email = f"odd-{next(_NEXT_PERSON)}@example.org"
    user_id = add_person(world.engine, email, role, trials=[T1] if role == "sponsor" else [],
                         sites=[S1] if role == "coordinator" else [])
    client = world.app.test_client()
    if who != "anonymous":
        client.set_cookie("tn_session", _session_of(world.engine, user_id))
    return Fresh(world, who, email, client)


# --- the cases of the issue ----------------------------------------------------------

def _text(response) -> str:
    return response.get_data(as_text=True)


@pytest.mark.parametrize("query, named", [
    ("page=99999999999999999999", "page: must be a whole number from 1 to 2147483647"),
    ("page=0", "page: must be a whole number"), ("page=%EF%BC%91", "page: must be a whole"),
    ("date_to=10000-01-01", "date_to: must be a date like 2026-11-23"),
    ("date_from=0000-00-00", "date_from: must be a date"), ("date_to=20261123", "date_to:"),
    ("kind=poem", "kind: must be one of dataset, protocol"),
    ("status=lost", "status: must be one of pending"),
    ("trial=%00", "trial: "), ("site=a%00b", "site: must be 1–64 letters"),
    ("label=%00", "label: must not hold control characters (U+0000)"),
    ("label=" + "x" * 256, "label: must be at most 255 characters"),
])
def test_an_odd_filter_is_a_400_that_names_the_parameter(world, query, named):
    response = world.clients["admin"].get(f"/registrations?{query}")
    assert response.status_code == 400, _text(response)[:300]
    assert named in html.unescape(_text(response))


def test_the_last_day_there_is_ends_a_date_range(world):
    """``date_to=9999-12-31`` (the day after overflows) means every registration."""
    admin = world.clients["admin"]
    everything = admin.get("/registrations").get_data(as_text=True)
    until_the_end = admin.get("/registrations?date_from=0001-01-01&date_to=9999-12-31")
    assert until_the_end.status_code == 200
    for registration in (world.names["registration_id"], world.names["pending_id"]):
        assert registration in everything
        assert registration in until_the_end.get_data(as_text=True)
    assert world.names["registration_id"] not in \
        admin.get("/registrations?date_to=2000-01-01").get_data(as_text=True)


@pytest.mark.parametrize("path", ["/trials/NCT00000001?page=99999999999999999999",
                                  "/trials/NCT00000001?q=%00", "/trials/NCT00000001?site=a%0D%0Ab"])
def test_an_odd_dashboard_parameter_is_a_400(world, path):
    response = world.clients["sponsor"].get(path)
    assert response.status_code == 400, _text(response)[:300]


@pytest.mark.parametrize("before", ["99999999999999999999", str(2**31), "-1", "0", "1e3"])
def test_an_odd_audit_position_is_a_400(world, before):
    response = world.clients["admin"].get(f"/admin/audit?before={before}")
    assert response.status_code == 400
    assert "before: must be a whole number from 1 to 2147483647" in _text(response)
    assert world.clients["admin"].get("/admin/audit?before=2147483647").status_code == 200


@pytest.mark.parametrize("path", ["/admin/users/99999999999999999999",
                                  f"/admin/users/{2**31}", f"/api/v1/batches/{2**63}"])
def test_an_id_wider_than_the_database_holds_is_not_found(world, path):
    who = "admin-token" if path.startswith("/api/") else "admin"
    assert world.send(who, "GET", path)[0] == 404


def test_live_status_refuses_ids_that_are_not_ids_in_json(world):
    response = world.clients["coordinator"].get("/registrations/status?ids=a%00b")
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "ids"
    ok = world.clients["coordinator"].get(
        f"/registrations/status?ids={world.names['registration_id']}")
    assert list(ok.get_json()) == [world.names["registration_id"]]


def test_a_query_string_that_is_not_utf8_is_a_400(world):
    """Bytes sent raw, not percent-encoded (waitress hands them on as they came)."""
    page = world.send("anonymous", "GET", "/lookup", "sha256=\xff")[1]
    assert page.status_code == 400
    assert "query: must be UTF-8 (percent-encode other bytes)." in _text(page)
    api = world.send("anonymous", "GET", "/api/v1/submissions", "sha256=\xc3(")[1]
    assert (api.status_code, api.get_json()["error"]["field"]) == (422, "query")


def test_an_odd_api_query_keeps_the_api_error_shape(world):
    response = world.clients["anonymous"].get("/api/v1/submissions?sha256=%00")
    assert response.status_code == 422
    assert response.get_json() == {"error": {
        "code": "validation_error", "field": "sha256",
        "message": "must be 64 hex digits (the file's SHA-256)"}}


@pytest.mark.parametrize("target, goes_to", [
    ("/trials?x=1", "/trials?x=1"), ("/r/abc#top", "/r/abc#top"),
    ("/trials\r\nSet-Cookie: stolen=1", "/"), ("/trials\n", "/"), ("\r\n/trials", "/"),
    ("//evil.example/", "/"), ("/\\evil.example/", "/"), ("\\\\evil.example", "/"),
    ("https://evil.example/", "/"), ("/tr ials", "/"), ("/ünïcode", "/"), ("/a\x00b", "/"),
    ("trials", "/"), ("", "/"), ("/%0d%0aSet-Cookie:%20x", "/%0d%0aSet-Cookie:%20x"),
])
def test_signing_in_goes_only_to_a_plain_path_of_this_site(world, target, goes_to):
    """After the right password, an odd ``next`` falls back to the home page (CR/LF used
    to end in a 500 when it reached the Location header)."""
    fresh = _fresh_person(world, "anonymous")
    status, response, _ = fresh.post("/login", {
        "email": quote(fresh.email, safe=""), "password": quote(PASSWORD, safe=""),
        "next": quote(target, safe="")})
    assert status == 302, response
    assert response.headers["Location"] == goes_to
    assert fresh.client.get_cookie("tn_session") is not None


# --- bodies over the limit under the real server -------------------------------------

@pytest.fixture(scope="module")
def served(tmp_path_factory, anvil):
    """``trialnotary serve`` as users start it, on SQLite; yields its base URL and a site
    token."""
    tmp_path = tmp_path_factory.mktemp("served")
    url = migrated_sqlite(tmp_path)
    engine = db.make_engine(url)
    with write_session(engine) as session:
        sites.add_trial(session, T1)
        sites.add_site(session, T1, S1)
        token = sites.create_token(session, S1)
        session.commit()
    engine.dispose()
    port = free_port()
    env = {**os.environ, **notary_env(url, str(tmp_path / "instance"), anvil.url)}
    process = subprocess.Popen([str(Path(sys.executable).parent / "trialnotary"), "serve",
                                "--no-scheduler", "--port", str(port)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{base}/api/v1/healthz", timeout=2)
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.communicate()[0]
                assert time.monotonic() < deadline, "serve did not start in 30 s"
                time.sleep(0.2)
        yield base, token
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


@pytest.mark.parametrize("size", [MAX_BODY_BYTES + 1, 17 * 1024 * 1024 + 1, 40 * 1024 * 1024])
def test_a_body_over_the_limit_gets_the_api_json_413_under_serve(served, size):
    base, token = served
    response = requests.post(f"{base}/api/v1/submissions/bulk", data=b" " * size,
                             headers={"Content-Type": "application/json", **bearer(token)},
                             timeout=60)
    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "payload_too_large"


def test_a_page_body_over_the_limit_gets_the_413_page_under_serve(served):
    response = requests.post(f"{served[0]}/login", data=b"x" * (20 * 1024 * 1024),
                             headers={"Content-Type": "application/x-www-form-urlencoded"},
                             timeout=60)
    assert response.status_code == 413
    assert "Too large" in response.text
