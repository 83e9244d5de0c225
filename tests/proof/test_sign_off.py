"""The sign-off step's rules on records alone (proof/signoff.py, checks.check_sign_off;
docs/verification.md, "Sign-offs"); on real receipts: tests/web/test_sign_offs.py and the
corpus."""

from __future__ import annotations

import pytest

from trialnotary.proof.signoff import sign_off_digest
from trialnotary.proof.verify.checks import check_sign_off

SIGN_OFF = {"signs": "4f1c2d3e-0000-4000-8000-000000000001", "signsLeaf": "ab" * 32,
            "name": "Dr. Ada Lovelace", "role": "sponsor", "meaning": "approved",
            "signedAt": "2026-12-01T10:15:02.345Z"}
NOT_BEFORE = {"chainId": 31337, "blockNumber": 7, "blockHash": "0x" + "cd" * 32}


def record(**changes) -> dict:
    sign_off = {**SIGN_OFF, **changes}
    return {"kind": "sign-off", "sha256": sign_off_digest(sign_off), "signOff": sign_off,
            "notBefore": NOT_BEFORE}


def test_a_sign_off_within_its_interval_passes():
    step = check_sign_off(record(), "2026-12-01T10:15:02Z", "2026-12-01T10:14:50Z")
    assert step.ok is True
    assert step.detail == ("Dr. Ada Lovelace (sponsor) signed registration "
                           f"{SIGN_OFF['signs']} (leaf abababab…) as approved at "
                           "2026-12-01T10:15:02.345Z, no later than the proven time "
                           "2026-12-01T10:15:02Z")


def test_a_sign_off_before_its_not_before_block_or_after_its_proof_fails():
    early = check_sign_off(record(), "2026-12-01T10:20:00Z", "2026-12-01T10:16:00Z")
    assert early.ok is False and "before block 7 at 2026-12-01T10:16:00Z" in early.detail
    late = check_sign_off(record(), "2026-12-01T10:15:01Z", None)
    assert late.ok is False and "later than the proven time" in late.detail
    assert check_sign_off(record(), None, None).ok is None


@pytest.mark.parametrize(("changed", "words"), [
    ({"kind": "dataset"}, "its kind is 'dataset', not sign-off"),
    ({"signOff": None}, "signOff must be an object of exactly meaning, name, role"),
    ({"sha256": "00" * 32}, "is not the SHA-256 of the canonical signOff"),
])
def test_a_record_that_is_not_a_sound_sign_off_fails(changed, words):
    assert words in check_sign_off({**record(), **changed}, "2026-12-01T10:16:00Z", None).detail


@pytest.mark.parametrize(("key", "value"), [
    ("signs", "4F1C2D3E-0000-4000-8000-000000000001"), ("signsLeaf", "AB" * 32),
    ("name", ""), ("name", "x" * 201), ("role", "auditor"), ("meaning", "read"),
    ("signedAt", "2026-12-01T10:15:02Z"), ("signedAt", "٢٠٢٦-12-01T10:15:02.345Z"),
])
def test_each_field_of_the_manifestation_is_checked(key, value):
    step = check_sign_off(record(**{key: value}), "2026-12-01T10:16:00Z", None)
    assert step.ok is False and step.detail.startswith(f"signOff.{key} must be")


def test_a_record_of_kind_sign_off_without_its_manifestation_fails():
    step = check_sign_off({"kind": "sign-off", "sha256": "00" * 32}, None, None)
    assert step.ok is False and step.detail == ("the record is of kind sign-off but holds "
                                                "no signOff")
