"""Signed sign-offs (docs/receipt.md, "Sign-offs"; 21 CFR Part 11 §11.50, §11.70, §11.200):
signing on the registration page with the e-mail address and password re-entered registers
a sign-off, sealed and anchored on a real anvil like any registration; its receipt verifies,
and one copied onto another registration does not."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from tests.utils import (
    PASSWORD,
    add_person,
    anchor_and_confirm,
    bearer,
    csrf_token,
    engine_of,
    page_of,
    post_form,
    scalar,
    signed_in,
)
from trialnotary.proof.receipt import record_leaf
from trialnotary.proof.signoff import sign_off_digest
from trialnotary.proof.verify import verify_receipt

TRIAL, SITE = "NCT01234567", "SITE-01"
ITEM = {"trial": TRIAL, "site": SITE, "kind": "sap", "dataset": "SAP v1", "sha256": "ab" * 32,
        "filename": "sap.pdf"}
NAME = "Dr. Ada Lovelace"


@pytest.fixture
def signer(app, client, site_token):
    """A coordinator of SITE-01 with a printed name, signed in on ``client``."""
    add_person(engine_of(app), "ada@example.org", "coordinator", sites=[SITE], name=NAME)
    signed_in(client, "ada@example.org")
    return client


def _register(client, token, **item) -> dict:
    answer = client.post("/api/v1/submissions", json={**ITEM, **item}, headers=bearer(token))
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["record"]


def _sign(client, registration_id: str, meaning: str = "approved", password: str = PASSWORD,
          email: str = "ada@example.org"):
    return post_form(client, f"/r/{registration_id}/sign",
                     {"meaning": meaning, "email": email, "password": password})


def _sign_offs(app) -> int:
    return scalar(engine_of(app), "SELECT count(*) FROM submission WHERE kind = 'sign-off'")


def _the_sign_off(app, client, signed_id: str) -> dict:
    sign_off_id = scalar(engine_of(app), "SELECT id FROM submission WHERE signs = :s",
                         s=signed_id)
    return client.get(f"/api/v1/submissions/{sign_off_id}").get_json()["record"]


def test_signing_registers_a_sign_off_that_is_anchored_and_verifies(
        app, client, signer, site_token, anvil, tmp_path):
    signed = _register(client, site_token)
    leaf = scalar(engine_of(app), "SELECT leaf FROM submission WHERE id = :i", i=signed["id"])
    beacon = client.get("/api/v1/beacon").get_json()
    answer = _sign(signer, signed["id"])
    assert answer.status_code == 302, answer.get_data(as_text=True)[:800]
    record = _the_sign_off(app, client, signed["id"])
    manifestation = record["signOff"]
    assert manifestation == {"signs": signed["id"], "signsLeaf": bytes(leaf).hex(),
                             "name": NAME, "role": "coordinator", "meaning": "approved",
                             "signedAt": record["submittedAt"]}
    assert record["kind"] == "sign-off" and record["sha256"] == sign_off_digest(manifestation)
    assert (record["trial"], record["site"], record["supersedes"]) == (TRIAL, SITE, None)
    assert record["dataset"] == "sign-off: approved: SAP v1"
    assert record["notBefore"]["chainId"] == 31337
    assert record["notBefore"]["blockNumber"] >= beacon["blockNumber"]
    assert scalar(engine_of(app), "SELECT count(*) FROM audit_entry WHERE action = "
                  "'submission.sign' AND entity_id = :i", i=record["id"]) == 1

    anchor_and_confirm(app, anvil)
    receipt = client.get(f"/api/v1/submissions/{record['id']}/receipt").get_json()
    assert receipt["trialnotary"]["record"] == record
    path = tmp_path / "sign-off.receipt.json"
    path.write_text(json.dumps(receipt))
    identity = tmp_path / "identity.json"
    identity.write_bytes(client.get("/.well-known/trialnotary.json").data)
    ran = subprocess.run([sys.executable, "-m", "trialnotary.cli", "verify", "--json",
                          "--rpc", anvil.url, "--notary", str(identity), str(path)],
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    steps = {step["name"]: step for step in json.loads(ran.stdout)["steps"]}
    assert steps["not-before"]["ok"] is True
    assert steps["sign-off"]["ok"] is True
    assert steps["sign-off"]["detail"].startswith(
        f"{NAME} (coordinator) signed registration {signed['id']} (leaf "
        f"{bytes(leaf).hex()[:8]}…) as approved at {record['submittedAt']}, no later than "
        "the proven time ")

    page = client.get(f"/r/{signed['id']}").get_data(as_text=True)
    assert 'id="sign-offs"' in page and NAME in page and record["submittedAt"] in page
    assert f'data-sign-off="{record["id"]}"' in page
    own = client.get(f"/r/{record['id']}").get_data(as_text=True)
    assert 'id="manifestation"' in own and "SAP v1" in own
    assert 'id="sign-form"' not in own  # a sign-off is not signed itself


def test_a_wrong_password_signs_nothing_and_counts_as_a_failed_sign_in(
        app, client, signer, site_token):
    signed = _register(client, site_token)
    _refused_once(app, _sign(signer, signed["id"], password="not my password at all"))


def _refused_once(app, answer) -> None:
    """Refused as a wrong password is: nothing signed, one failed sign-in of the signer's."""
    assert answer.status_code == 400
    assert "That e-mail address or password is not yours: nothing was signed." in \
        answer.get_data(as_text=True)
    assert _sign_offs(app) == 0
    assert scalar(engine_of(app), "SELECT count(*) FROM audit_entry WHERE action = "
                  "'submission.sign'") == 0
    assert scalar(engine_of(app), "SELECT count(*) FROM login_attempt WHERE kind = 'failure' "
                  "AND email = 'ada@example.org'") == 1


def test_another_persons_e_mail_with_the_right_password_signs_nothing(
        app, client, signer, site_token):
    """§11.200(a)(1): both components are the signer's own. Another person's address (whose
    password this is too) is refused as a wrong password is: a failure of the signer's,
    throttled alike, and no attempt on the other person's account; the signer's own address
    is compared as sign-in compares it, case aside."""
    from trialnotary.people.signin import FREE_FAILURES

    add_person(engine_of(app), "bob@example.org", "coordinator", sites=[SITE], name="Bob")
    signed = _register(client, site_token)
    _refused_once(app, _sign(signer, signed["id"], email="bob@example.org"))
    assert scalar(engine_of(app), "SELECT count(*) FROM login_attempt WHERE email = "
                  "'bob@example.org'") == 0
    statuses = [_sign(signer, signed["id"], email=email).status_code
                for email in ["bob@example.org"] * (FREE_FAILURES - 1) + [""]]
    assert statuses == [400] * (FREE_FAILURES - 2) + [429, 429]
    assert _sign_offs(app) == 0
    assert scalar(engine_of(app), "SELECT count(*) FROM login_attempt WHERE email = "
                  "'bob@example.org'") == 0


def test_the_signers_own_e_mail_is_compared_case_aside(app, client, signer, site_token):
    signed = _register(client, site_token)
    assert _sign(signer, signed["id"], email=" Ada@Example.ORG").status_code == 302
    assert _sign_offs(app) == 1


def test_wrong_passwords_are_throttled_as_sign_ins(app, client, signer, site_token):
    signed = _register(client, site_token)
    from trialnotary.people.signin import FREE_FAILURES

    statuses = [_sign(signer, signed["id"], password=f"wrong password {n}").status_code
                for n in range(FREE_FAILURES + 1)]
    assert statuses == [400] * (FREE_FAILURES - 1) + [429, 429]
    assert _sign(signer, signed["id"]).status_code == 429  # even the right one, for now
    assert _sign_offs(app) == 0


def test_without_the_csrf_token_nothing_is_signed(app, client, signer, site_token):
    signed = _register(client, site_token)
    answer = signer.post(f"/r/{signed['id']}/sign",
                         data={"meaning": "approved", "email": "ada@example.org",
                               "password": PASSWORD})
    assert answer.status_code == 400
    assert _sign_offs(app) == 0


def test_only_people_who_may_read_it_sign(app, client, site_token):
    signed = _register(client, site_token)
    engine = engine_of(app)
    from tests.utils import add_enrolled_site

    add_enrolled_site(engine, "NCT07654321", "SITE-02")
    add_person(engine, "other@example.org", "coordinator", sites=["SITE-02"], name="Other")
    add_person(engine, "sponsor2@example.org", "sponsor", trials=["NCT07654321"], name="S2")
    add_person(engine, "sponsor@example.org", "sponsor", trials=[TRIAL], name="Sponsor")
    for email in ("other@example.org", "sponsor2@example.org"):
        outsider = app.test_client()
        signed_in(outsider, email)
        assert _sign(outsider, signed["id"], email=email).status_code == 403
        assert 'id="sign-form"' not in outsider.get(f"/r/{signed['id']}").get_data(as_text=True)
    anonymous = app.test_client()
    answer = anonymous.post(f"/r/{signed['id']}/sign", data={
        "meaning": "approved", "email": "other@example.org", "password": PASSWORD,
        "csrf_token": csrf_token(anonymous)})
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    token = anonymous.post(f"/r/{signed['id']}/sign", headers=bearer(site_token),
                           data={"meaning": "approved", "email": "other@example.org",
                                 "password": PASSWORD})
    assert token.status_code in (302, 400)  # a token is nobody here
    sponsor = app.test_client()
    signed_in(sponsor, "sponsor@example.org")
    assert _sign(sponsor, "00000000-0000-4000-8000-000000000000",
                 email="sponsor@example.org").status_code == 404
    assert _sign_offs(app) == 0
    assert _sign(sponsor, signed["id"], "reviewed", email="sponsor@example.org").status_code \
        == 302
    assert _the_sign_off(app, client, signed["id"])["signOff"]["role"] == "sponsor"


def test_one_person_signs_one_registration_with_one_meaning_once(
        app, client, signer, site_token):
    signed = _register(client, site_token)
    assert _sign(signer, signed["id"], "reviewed").status_code == 302
    again = _sign(signer, signed["id"], "reviewed")
    assert again.status_code == 409
    assert "you signed this registration as reviewed already" in again.get_data(as_text=True)
    assert _sign(signer, signed["id"], "approved").status_code == 302
    assert _sign(signer, signed["id"], "meant").status_code == 400
    assert _sign_offs(app) == 2
    sign_off = scalar(engine_of(app), "SELECT id FROM submission WHERE signs = :s LIMIT 1",
                      s=signed["id"])
    answer = _sign(signer, sign_off)
    assert answer.status_code == 400 and "is a sign-off" in answer.get_data(as_text=True)
    assert _sign_offs(app) == 2


def test_a_signer_without_a_printed_name_is_refused(app, client, site_token):
    add_person(engine_of(app), "noname@example.org", "coordinator", sites=[SITE])
    signed_in(client, "noname@example.org")
    answer = _sign(client, _register(client, site_token)["id"], email="noname@example.org")
    assert answer.status_code == 400
    assert "no printed name" in answer.get_data(as_text=True)
    assert _sign_offs(app) == 0


def test_the_api_and_the_cli_never_register_a_sign_off(client, site_token):
    for body in ({**ITEM, "kind": "sign-off"},
                 {**ITEM, "signOff": {"signs": "x"}}):
        answer = client.post("/api/v1/submissions", json=body, headers=bearer(site_token))
        assert answer.status_code == 422
        error = answer.get_json()["error"]
        assert error["field"] in ("kind", "signOff")
        assert "only by signing a registration on its page" in error["message"]
    from trialnotary.validation import ValidationError, validate_registration

    with pytest.raises(ValidationError, match="only by signing"):  # the CLI checks locally
        validate_registration({**ITEM, "kind": "sign-off"})


def test_a_sign_off_is_never_corrected(app, client, signer, site_token):
    signed = _register(client, site_token)
    assert _sign(signer, signed["id"]).status_code == 302
    sign_off = _the_sign_off(app, client, signed["id"])
    answer = client.post("/api/v1/submissions", headers=bearer(site_token), json={
        **ITEM, "dataset": "withdrawn", "sha256": "ef" * 32, "supersedes": sign_off["id"],
        "reason": "withdrawn signature"})
    assert answer.status_code == 422, answer.get_json()
    assert answer.get_json()["error"]["field"] == "supersedes"
    assert "a signature is never corrected" in answer.get_json()["error"]["message"]
    assert scalar(engine_of(app), "SELECT count(*) FROM submission") == 2
    page = signer.get(f"/r/{sign_off['id']}").get_data(as_text=True)
    assert f"/r/{signed['id']}" in page and "Register a corrected version" not in page
    assert "Register a corrected version" in signer.get(f"/r/{signed['id']}").get_data(as_text=True)


def test_a_sign_off_copied_onto_another_registration_fails(app, client, signer, site_token,
                                                           anvil):
    signed = _register(client, site_token)
    other = _register(client, site_token, dataset="SAP v2", sha256="cd" * 32)
    assert _sign(signer, signed["id"]).status_code == 302
    anchor_and_confirm(app, anvil)
    sign_off = _the_sign_off(app, client, signed["id"])
    receipt = client.get(f"/api/v1/submissions/{sign_off['id']}/receipt").get_json()
    assert verify_receipt(receipt, rpc_urls=[anvil.url]).ok

    moved = copy.deepcopy(receipt)
    moved["trialnotary"]["record"]["signOff"]["signs"] = other["id"]
    report = verify_receipt(moved, rpc_urls=[anvil.url])
    failed = {step.name: step.detail for step in report.steps if step.ok is False}
    assert set(failed) == {"leaf", "sign-off"}
    assert "is not the SHA-256 of the canonical signOff" in failed["sign-off"]

    rehashed = copy.deepcopy(moved)
    record = rehashed["trialnotary"]["record"]
    record["sha256"] = sign_off_digest(record["signOff"])
    report = verify_receipt(rehashed, rpc_urls=[anvil.url])
    failed = [step.name for step in report.steps if step.ok is False]
    assert failed == ["leaf"] and report.verdict.state == "failed"
    assert record_leaf(record).hex() != receipt["targetHash"]


def test_a_sign_off_names_a_block_on_the_chain(app, client, signer, site_token, anvil):
    """The notBefore block is checked like any record's; one edited off the chain breaks the
    leaf, and the not-before step names it."""
    signed = _register(client, site_token)
    assert _sign(signer, signed["id"]).status_code == 302
    anchor_and_confirm(app, anvil)
    sign_off = _the_sign_off(app, client, signed["id"])
    receipt = client.get(f"/api/v1/submissions/{sign_off['id']}/receipt").get_json()
    steps = {step.name: step for step in verify_receipt(receipt, rpc_urls=[anvil.url]).steps}
    assert steps["not-before"].ok is True
    assert [name for name in steps][-2:] == ["not-before", "sign-off"]
    forged = copy.deepcopy(receipt)
    forged["trialnotary"]["record"]["notBefore"]["blockHash"] = "0x" + "00" * 32
    steps = {step.name: step for step in verify_receipt(forged, rpc_urls=[anvil.url]).steps}
    assert steps["not-before"].ok is False and steps["leaf"].ok is False


def test_the_registration_page_escapes_the_manifestation(app, client, site_token):
    from tests.utils import assert_shown_escaped, xss

    name = xss("signer")
    add_person(engine_of(app), "x@example.org", "coordinator", sites=[SITE], name=name)
    signed_in(client, "x@example.org")
    signed = _register(client, site_token)
    assert _sign(client, signed["id"], email="x@example.org").status_code == 302
    html = client.get(f"/r/{signed['id']}").get_data(as_text=True)
    assert_shown_escaped(html, name, where="the registration page")
    assert page_of(client.get(f"/r/{signed['id']}")).find("table", id="sign-offs")


def test_the_manifestation_is_on_the_printouts_and_in_the_reports(app, client, signer,
                                                                  site_token, anvil,
                                                                  monkeypatch):
    """§11.50(b): on the printable page and the PDF of the signed registration and of the
    sign-off itself, and in the trial's report (HTML, CSV, JSON)."""
    import csv
    import io

    from tests.web.test_reports import page_count, pdf_strings
    from trialnotary.web.documents import pdf as plumbing

    monkeypatch.setattr(plumbing, "COMPRESS", False)

    signed = _register(client, site_token)
    assert _sign(signer, signed["id"], "reviewed").status_code == 302
    anchor_and_confirm(app, anvil)
    sign_off = _the_sign_off(app, client, signed["id"])
    for registration_id in (signed["id"], sign_off["id"]):
        printed = client.get(f"/r/{registration_id}/print").get_data(as_text=True)
        assert NAME in printed and sign_off["signOff"]["signedAt"] in printed
        pdf = client.get(f"/r/{registration_id}/receipt.pdf")
        assert pdf.status_code == 200
        text = " ".join(pdf_strings(pdf.data))
        assert NAME in text and "reviewed" in text
        assert page_count(pdf.data) == 1
    add_person(engine_of(app), "sponsor@example.org", "sponsor", trials=[TRIAL])
    sponsor = app.test_client()
    signed_in(sponsor, "sponsor@example.org")
    html = sponsor.get(f"/trials/{TRIAL}/report").get_data(as_text=True)
    assert f"reviewed by {NAME} (coordinator)" in html
    rows = list(csv.DictReader(io.StringIO(
        sponsor.get(f"/trials/{TRIAL}/report.csv").get_data(as_text=True))))
    signed_row = next(row for row in rows if row["id"] == sign_off["id"])
    assert json.loads(signed_row["signOff"]) == sign_off["signOff"]
    assert next(row for row in rows if row["id"] == signed["id"])["signOff"] == ""
    report = sponsor.get(f"/trials/{TRIAL}/report.json").get_json()
    by_id = {row["id"]: row for row in report["registrations"]}
    assert by_id[sign_off["id"]]["signOff"] == sign_off["signOff"]
    assert by_id[signed["id"]]["signOff"] is None


def test_the_receipt_pdf_counts_the_sign_offs_it_has_no_room_for(app, client, signer,
                                                                site_token, anvil,
                                                                monkeypatch):
    """One A4 page: four sign-offs listed, the fifth counted, with the registration page
    that lists them all (§11.50(b) is kept there and on the printable page)."""
    from tests.web.test_reports import page_count, pdf_strings
    from trialnotary.web.documents import pdf as plumbing

    monkeypatch.setattr(plumbing, "COMPRESS", False)
    add_person(engine_of(app), "bob@example.org", "coordinator", sites=[SITE],
               name="Dr. Bob Fifth")
    bob = app.test_client()
    signed_in(bob, "bob@example.org")
    signed = _register(client, site_token)
    for meaning in ("authored", "reviewed", "approved", "locked"):
        assert _sign(signer, signed["id"], meaning).status_code == 302
    assert _sign(bob, signed["id"], email="bob@example.org").status_code == 302
    anchor_and_confirm(app, anvil)
    pdf = client.get(f"/r/{signed['id']}/receipt.pdf")
    assert pdf.status_code == 200 and page_count(pdf.data) == 1
    text = " ".join(pdf_strings(pdf.data))
    assert text.count(NAME) == 4 and "Dr. Bob Fifth" not in text
    note = f"and 1 more sign-off: see the registration page http://localhost/r/{signed['id']}"
    assert note in text or note.replace(" ", "") in text.replace(" ", "")
    assert "Dr. Bob Fifth" in client.get(f"/r/{signed['id']}").get_data(as_text=True)
    assert "Dr. Bob Fifth" in client.get(f"/r/{signed['id']}/print").get_data(as_text=True)
