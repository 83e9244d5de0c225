"""The timeline's pure logic (trialnotary/proof/timeline.py): proven order, version chains,
and the words of the rules ("final", "before", "n/a", an unproven entry), on records alone.
The same rules on real receipts: tests/cli/test_timeline.py."""

from __future__ import annotations

import json
import uuid

from trialnotary.proof.facts import FACTS_FILE, KINDS
from trialnotary.proof.timeline import RULES, Verified, build, duration


def verified(kind: str, label: str, proven: str | None, *, site: str = "SITE-01",
             supersedes: Verified | None = None) -> Verified:
    record = {"id": str(uuid.uuid4()), "kind": kind, "dataset": label, "site": site,
              "supersedes": supersedes.record["id"] if supersedes else None,
              "submittedAt": "2026-01-01T00:00:00.000Z"}
    return Verified(f"{label}.receipt.json", record,
                    f"2026-01-01T{proven}Z" if proven else None,
                    "verified-no-file" if proven else "failed",
                    None if proven else "This receipt does NOT verify: leaf failed — …")


def by_rule(timeline) -> dict:
    return {(check.rule.name, check.site): check for check in timeline.checks}


def test_the_rules_name_kinds_of_the_receipt_format():
    assert {kind for rule in RULES for kind in (rule.earlier, rule.later)} <= set(KINDS)


def test_the_rules_are_facts_json_s_which_the_browser_reads_too():
    from tests.conftest import ROOT

    stated = json.loads((ROOT / "trialnotary" / "proof" / FACTS_FILE).read_text())
    assert [(rule.name, rule.earlier, rule.later, rule.final_only, rule.per_site,
             rule.statement, rule.proves, rule.cannot_prove) for rule in RULES] == [
        (rule["name"], rule["earlier"], rule["later"], rule["finalOnly"], rule["perSite"],
         rule["statement"], rule["proves"], rule["cannotProve"])
        for rule in stated["timelineRules"]["rules"]]


def test_only_the_final_sap_counts_and_before_is_strict():
    first = verified("sap", "SAP", "10:00:00")
    final = verified("sap", "SAP 2", "12:00:00", supersedes=first)
    lock = verified("database-lock", "lock", "12:00:00")
    timeline = build([lock, final, first])
    check = by_rule(timeline)[("sap-before-database-lock", None)]
    assert check.ok is False and check.margin_seconds == 0
    assert check.earlier.verified is final and "the same second" in check.detail
    assert [entry.version for entry in timeline.entries if entry.kind == "sap"] == [1, 2]

    earlier_lock = verified("database-lock", "lock", "12:00:01")
    check = by_rule(build([earlier_lock, final, first]))[("sap-before-database-lock", None)]
    assert check.ok is True and check.margin_seconds == 1


def test_every_protocol_version_counts_and_the_first_results_decide():
    protocol = verified("protocol", "protocol", "09:00:00")
    amendment = verified("protocol", "amendment", "11:00:00", supersedes=protocol)
    results = [verified("analysis-results", "interim", "10:00:00"),
               verified("analysis-results", "final", "13:00:00")]
    check = by_rule(build([protocol, amendment, *results]))[
        ("protocol-before-analysis-results", None)]
    assert check.ok is False and check.margin_seconds == -3600
    assert (check.earlier.verified, check.later.verified) == (amendment, results[0])
    assert "NOT before" in check.detail and "(1h 00m 00s after)" in check.detail


def test_the_randomisation_rule_is_judged_per_site():
    listing = verified("randomisation-list", "list", "10:00:00")
    checks = by_rule(build([listing, verified("dataset", "ADSL", "11:00:00", site="A"),
                            verified("dataset", "ADSL", "09:00:00", site="B")]))
    assert checks[("randomisation-before-site-data", "A")].ok is True
    assert checks[("randomisation-before-site-data", "B")].ok is False


def test_absent_kinds_are_not_applicable_and_fail_nothing():
    timeline = build([verified("sap", "SAP", "10:00:00")])
    # the four rules, and the sign-offs' check (no sign-off given)
    assert [check.ok for check in timeline.checks] == [None] * 5 and timeline.rules_hold
    assert timeline.checks[1].detail == "n/a: no unblinding among the receipts given"


def test_an_unproven_entry_fails_the_rules_that_need_it_and_goes_last():
    sap = verified("sap", "SAP", None)
    lock = verified("database-lock", "lock", "10:00:00")
    timeline = build([sap, lock])
    assert [entry.verified for entry in timeline.entries] == [lock, sap]
    check = timeline.checks[0]
    assert check.ok is False and not timeline.rules_hold
    assert check.detail.startswith("cannot be judged: the receipt of sap SAP (SAP.receipt."
                                   "json) did not verify: This receipt does NOT verify")


def test_a_version_whose_predecessor_is_not_given_starts_its_chain():
    missing = verified("protocol", "v1", "08:00:00")
    amendment = verified("protocol", "v2", "09:00:00", supersedes=missing)
    [entry] = build([amendment]).entries
    assert entry.predecessor_missing and entry.final and entry.version == 1
    assert entry.to_json()["versionChain"]["predecessorMissing"] is True


def test_durations_read_from_their_largest_unit():
    assert [duration(s) for s in (0, 59, 3600, 90061, -61)] == [
        "0s", "59s", "1h 00m 00s", "1d 01h 01m 01s", "1m 01s"]


def test_an_entry_whose_not_before_passed_carries_its_interval():
    not_before = {"chainId": 31337, "blockNumber": 7, "blockHash": "0x" + "ab" * 32}
    made_after = {**not_before, "blockTime": "2026-01-01T09:59:00Z"}
    plain = verified("sap", "SAP", "10:00:00")
    record = {**plain.record, "notBefore": not_before}
    checked = Verified("list.receipt.json", record, "2026-01-01T10:00:00Z", "verified-no-file",
                       None, made_after)
    failed = Verified("forged.receipt.json", {**record, "id": str(uuid.uuid4())}, None,
                      "failed", "This receipt does NOT verify: not-before failed — …")
    answers = {entry.verified.source: entry.to_json() for entry in
               build([plain, checked, failed]).entries}
    assert answers["list.receipt.json"]["madeAfter"] == made_after
    assert answers["forged.receipt.json"]["madeAfter"] is None
    assert "madeAfter" not in answers["SAP.receipt.json"]


def _sign_off(signed: Verified, proven: str, *, leaf: str | None = None) -> Verified:
    from trialnotary.proof.receipt import record_leaf

    sign_off = verified("sign-off", f"sign-off of {signed.record['dataset']}", proven)
    sign_off.record["signOff"] = {"signs": signed.record["id"],
                                  "signsLeaf": leaf or record_leaf(signed.record).hex()}
    return sign_off


def test_a_sign_off_is_attached_to_the_registration_it_signs():
    sap = verified("sap", "SAP", "10:00:00")
    sign_off, moved = _sign_off(sap, "10:05:00"), _sign_off(sap, "10:06:00", leaf="00" * 32)
    elsewhere = _sign_off(verified("protocol", "P", "09:00:00"), "10:07:00")
    timeline = build([sap, sign_off, moved, elsewhere])
    entries = {entry.id: entry.to_json() for entry in timeline.entries}
    assert entries[sap.record["id"]]["signOffs"] == [sign_off.record["id"], moved.record["id"]]
    assert entries[sign_off.record["id"]]["signs"] == sap.record["id"]
    checks = [check for check in timeline.checks if check.rule.name.startswith("sign-offs")]
    assert [check.ok for check in checks] == [True, False, None]
    assert "not its leaf" in checks[1].detail and not timeline.rules_hold
    assert "not among the receipts given" in checks[2].detail


def test_receipts_sharing_an_id_are_flagged_not_resolved_by_their_order():
    """A tampered copy of SAP v1 (its receipt fails) holding v1's id: neither is taken as
    v1, whichever comes first; a rule over saps fails and names both receipts, a rule over
    other kinds is judged as before."""
    first = verified("sap", "SAP", "10:00:00")
    copy = Verified("copy.receipt.json", {**first.record, "dataset": "SAP (tampered)"}, None,
                    "failed", "This receipt does NOT verify: leaf failed — …")
    final = verified("sap", "SAP 2", "11:00:00", supersedes=first)
    lock = verified("database-lock", "lock", "12:00:00")
    protocol = verified("protocol", "protocol", "09:00:00")
    results = verified("analysis-results", "results", "13:00:00")
    for order in ([first, copy, final, lock, protocol, results],
                  [copy, first, lock, final, results, protocol]):
        timeline = build(order)
        check = by_rule(timeline)[("sap-before-database-lock", None)]
        assert check.ok is False
        assert check.detail == (f"cannot be judged: the receipts SAP.receipt.json, "
                                f"copy.receipt.json share the id {first.record['id']}")
        assert by_rule(timeline)[("sap-before-unblinding", None)].ok is None
        assert by_rule(timeline)[("protocol-before-analysis-results", None)].ok is True
        sap_two = next(entry for entry in timeline.entries if entry.verified is final)
        assert not sap_two.predecessor_missing and sap_two.versions == 1
