"""`trialnotary timeline` (docs/cli.md, docs/verification.md "Was it pre-specified?") on a
trial the notary itself registered, sealed and anchored batch by batch on a real anvil, run
where only `pip install trialnotary` is installed: the proven order, the rules, their exit
codes, a receipts zip as the notary serves it, a tampered receipt."""

from __future__ import annotations

import copy
import hashlib
import json

import pytest

from tests.cli.test_without_the_server import run, without_the_server  # noqa: F401
from tests.utils import (
    add_person,
    migrated_sqlite,
    register_past_the_api,
    seal_in_a_later_second,
    signed_in,
)
from trialnotary.notary import identity

pytestmark = pytest.mark.usefixtures("quick_argon2")

TRIAL = "NCT01234567"


@pytest.fixture
def database_url(tmp_path):
    """SQLite only: the server's database is not what these tests are about."""
    return migrated_sqlite(tmp_path)


class Trial:
    """Registers through the API, seals each batch and waits for its anchor, so batches
    sealed one after the other are proven in that order (one block each)."""

    def __init__(self, client, token, engine, chain, anvil, folder):
        self.client, self.engine, self.chain, self.anvil = client, engine, chain, anvil
        self.tokens = {"SITE-01": token}
        self.auth = {"SITE-01": {"Authorization": f"Bearer {token}"}}
        self.folder = folder
        self.ids: dict[str, str] = {}

    def add_site(self, site: str) -> None:
        """Another site enrolled in the trial, with its own token."""
        from trialnotary.db import write_session
        from trialnotary.people import sites

        with write_session(self.engine) as session:
            sites.add_site(session, TRIAL, site)
            token = sites.create_token(session, site)
            session.commit()
        self.tokens[site] = token
        self.auth[site] = {"Authorization": f"Bearer {token}"}

    def register(self, name: str, kind: str, *, supersedes: str | None = None,
                 site: str = "SITE-01", not_before: dict | None = None,
                 past_the_api: bool = False) -> str:
        """``past_the_api``: through the registering service, as a forged ``notBefore``
        (which the API refuses) gets in."""
        body = {"trial": TRIAL, "site": site, "kind": kind, "dataset": name,
                "sha256": hashlib.sha256(name.encode()).hexdigest()}
        if supersedes:
            body |= {"supersedes": self.ids[supersedes], "reason": f"amends {supersedes}"}
        if not_before:
            body["notBefore"] = not_before
        if past_the_api:
            self.ids[name] = register_past_the_api(self.engine, self.tokens[site], body)["id"]
            return self.ids[name]
        answer = self.client.post("/api/v1/submissions", headers=self.auth[site], json=body)
        assert answer.status_code == 201, answer.get_data(as_text=True)
        self.ids[name] = answer.get_json()["id"]
        return self.ids[name]

    def seal(self) -> None:
        seal_in_a_later_second(self.engine, self.chain, self.anvil)

    def receipt(self, name: str) -> dict:
        answer = self.client.get(f"/api/v1/submissions/{self.ids[name]}/receipt")
        assert answer.status_code == 200, answer.get_data(as_text=True)
        return answer.get_json()

    def save(self, names, **changed) -> list:
        paths = []
        for name in names:
            path = self.folder / f"{name}.receipt.json"
            path.write_text(json.dumps(changed.get(name) or self.receipt(name)))
            paths.append(path)
        return paths


@pytest.fixture
def trial(client, site_token, engine, chain, anvil, tmp_path):
    return Trial(client, site_token, engine, chain, anvil, tmp_path)


@pytest.fixture
def pin(engine, settings, tmp_path):
    """The notary's identity document, saved when first asked for (after the anchors)."""
    path = tmp_path / "identity.json"

    def saved():
        if not path.exists():
            path.write_text(identity.document_text(engine, settings))
        return path
    return saved


def timeline(environment, anvil, pin, *arguments, check_exit=0) -> dict:
    done = run(environment, "timeline", *arguments, "--rpc", anvil.url, "--notary", pin(),
               "--json", check_exit=check_exit)
    return json.loads(done.stdout)


ORDERLY = [["protocol", "randomisation list"], ["amendment 1"], ["amendment 2", "SAP"],
           ["ADSL"], ["lock"], ["unblinding"], ["results"]]
KINDS = {"protocol": "protocol", "amendment 1": "protocol", "amendment 2": "protocol",
         "randomisation list": "randomisation-list", "SAP": "sap", "ADSL": "dataset",
         "lock": "database-lock", "unblinding": "unblinding", "results": "analysis-results"}
SUPERSEDES = {"amendment 1": "protocol", "amendment 2": "amendment 1"}


def register_in_batches(trial: Trial, batches) -> list[str]:
    names = []
    for batch in batches:
        for name in batch:
            trial.register(name, KINDS[name], supersedes=SUPERSEDES.get(name))
            names.append(name)
        trial.seal()
    return names


def test_a_trial_registered_in_order_passes_every_rule(trial, without_the_server,  # noqa: F811
                                                       anvil, pin):
    names = register_in_batches(trial, ORDERLY)
    answer = timeline(without_the_server, anvil, pin, *trial.save(reversed(names)))

    assert answer["ok"] is True and answer["exitCode"] == 0
    entries = answer["entries"]
    assert [entry["dataset"] for entry in entries][:3] == ["protocol", "randomisation list",
                                                          "amendment 1"] or \
        [entry["dataset"] for entry in entries][:3] == ["randomisation list", "protocol",
                                                       "amendment 1"]
    assert [entry["dataset"] for entry in entries][-4:] == ["ADSL", "lock", "unblinding",
                                                           "results"]
    times = [entry["provenTime"] for entry in entries]
    assert None not in times and times == sorted(times)
    protocol = {entry["dataset"]: entry for entry in entries if entry["kind"] == "protocol"}
    assert protocol["amendment 2"]["supersedes"] == trial.ids["amendment 1"]
    assert [(protocol[name]["versionChain"]["version"], protocol[name]["versionChain"]["final"])
            for name in ("protocol", "amendment 1", "amendment 2")] == [
        (1, False), (2, False), (3, True)]
    assert {entry["versionChain"]["first"] for entry in protocol.values()} == {
        trial.ids["protocol"]}
    assert all(entry["state"] == "verified-no-file" for entry in entries)

    checks = {check["rule"]: check for check in answer["checks"]}
    assert [check["ok"] for check in answer["checks"]] == [True] * 4 + [None]  # no sign-off
    lock = checks["sap-before-database-lock"]
    assert (lock["earlier"]["dataset"], lock["later"]["dataset"]) == ("SAP", "lock")
    assert lock["marginSeconds"] > 0
    assert checks["protocol-before-analysis-results"]["earlier"]["dataset"] == "amendment 2"
    assert checks["randomisation-before-site-data"]["site"] == "SITE-01"

    text = run(without_the_server, "timeline", *trial.save(names), "--rpc", anvil.url,
               "--notary", pin()).stdout
    assert ("✓ the final SAP was proven before the first database-lock: sap SAP proven at"
            in text)
    assert text.splitlines()[-1].startswith("PASS")


def test_a_sap_proven_after_the_lock_fails_and_absent_kinds_are_not_judged(
        trial, without_the_server, anvil, pin):  # noqa: F811
    names = register_in_batches(trial, [["protocol"], ["lock"], ["SAP"]])
    answer = timeline(without_the_server, anvil, pin, *trial.save(names), check_exit=1)

    assert answer["ok"] is False and answer["exitCode"] == 1
    checks = {check["rule"]: check for check in answer["checks"]}
    lock = checks["sap-before-database-lock"]
    assert lock["ok"] is False and lock["marginSeconds"] < 0
    assert lock["earlier"]["provenTime"] > lock["later"]["provenTime"]
    assert "is NOT before" in lock["detail"]
    assert checks["sap-before-unblinding"] == {**checks["sap-before-unblinding"], "ok": None,
                                               "detail": "n/a: no unblinding among the "
                                                         "receipts given"}
    assert checks["protocol-before-analysis-results"]["ok"] is None
    assert checks["randomisation-before-site-data"]["ok"] is None


def test_the_receipts_zip_the_notary_serves_is_read_like_the_files(
        trial, without_the_server, anvil, pin, client, engine, tmp_path):  # noqa: F811
    names = register_in_batches(trial, [["protocol", "SAP"], ["lock"]])
    add_person(engine, "sponsor@example.org", "sponsor", trials=[TRIAL])
    signed_in(client, "sponsor@example.org")
    zipped = client.get(f"/trials/{TRIAL}/receipts.zip")
    assert zipped.status_code == 200
    bundle = tmp_path / "receipts.zip"
    bundle.write_bytes(zipped.data)

    from_zip = timeline(without_the_server, anvil, pin, bundle)
    from_files = timeline(without_the_server, anvil, pin, *trial.save(names))
    assert decisions(from_zip) == decisions(from_files)
    assert [entry["id"] for entry in from_zip["entries"]] == [
        entry["id"] for entry in from_files["entries"]]
    assert all(entry["receipt"].startswith(f"{bundle}:receipts/")
               for entry in from_zip["entries"])
    assert from_zip["ok"] is True


def decisions(answer: dict) -> list[tuple]:
    return [(check["rule"], check["ok"], (check["earlier"] or {}).get("id"),
             (check["later"] or {}).get("id"), check["marginSeconds"])
            for check in answer["checks"]]


def test_a_tampered_receipt_fails_and_fails_the_rules_that_need_it(
        trial, without_the_server, anvil, pin):  # noqa: F811
    names = register_in_batches(trial, [["SAP"], ["lock"]])
    tampered = copy.deepcopy(trial.receipt("SAP"))
    tampered["trialnotary"]["record"]["dataset"] = "SAP v0"
    answer = timeline(without_the_server, anvil, pin,
                      *trial.save(names, SAP=tampered), check_exit=1)

    sap = next(entry for entry in answer["entries"] if entry["kind"] == "sap")
    assert sap["provenTime"] is None and sap["state"] == "failed"
    assert "leaf failed" in sap["why"]
    lock = answer["checks"][0]
    assert lock["ok"] is False and lock["detail"].startswith("cannot be judged: the receipt "
                                                             "of sap SAP v0")


def test_a_record_made_after_the_beacon_shows_its_interval_and_a_forged_one_fails(
        trial, client, without_the_server, anvil, pin):  # noqa: F811
    """docs/verification.md, "Was it pre-specified?": the interval of a record with a
    notBefore; a notBefore naming a block not on the chain fails that receipt (exit 1)."""
    beacon = client.get("/api/v1/beacon").get_json()
    not_before = {key: beacon[key] for key in ("chainId", "blockNumber", "blockHash")}
    trial.register("randomisation list", "randomisation-list", not_before=not_before)
    trial.register("SAP", "sap")
    trial.seal()
    answer = timeline(without_the_server, anvil, pin, *trial.save(["randomisation list", "SAP"]))

    listing, sap = (next(entry for entry in answer["entries"] if entry["dataset"] == name)
                    for name in ("randomisation list", "SAP"))
    assert answer["exitCode"] == 0
    assert listing["madeAfter"] == {**not_before, "blockTime": beacon["blockTime"]}
    assert "madeAfter" not in sap
    text = run(without_the_server, "timeline", *trial.save(["randomisation list"]), "--rpc",
               anvil.url, "--notary", pin()).stdout
    assert (f"\n    made after block {beacon['blockNumber']} at {beacon['blockTime']}; "
            f"existed no later than {listing['provenTime']}\n") in text

    trial.register("list v0", "randomisation-list", past_the_api=True,
                   not_before={**not_before, "blockHash": "0x" + "00" * 32})
    trial.seal()
    forged = timeline(without_the_server, anvil, pin, *trial.save(["list v0", "SAP"]),
                      check_exit=1)
    [entry] = [entry for entry in forged["entries"] if entry["dataset"] == "list v0"]
    assert entry["provenTime"] is None and entry["madeAfter"] is None
    assert entry["state"] == "failed" and "names a block not on the chain" in entry["why"]


def test_unusable_input_exits_2(without_the_server, tmp_path):  # noqa: F811
    not_a_zip = tmp_path / "bundle.zip"
    not_a_zip.write_text("no zip")
    done = run(without_the_server, "timeline", not_a_zip, check_exit=2)
    assert "not a readable zip" in done.stderr
