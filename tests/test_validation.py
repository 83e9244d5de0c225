"""The input rules of docs/receipt.md, "Validation": pure functions, no database."""

from __future__ import annotations

import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from trialnotary.validation import (
    CONTROL_OR_SURROGATE,
    MAX_SIZE_BYTES,
    ValidationError,
    normalize_trial_id,
    validate_registration,
    validate_sha256,
    validate_site_id,
    validate_size,
    validate_text,
    validate_uuid,
)

REGISTRY_IDS = {
    "NCT": "NCT01234567",
    "EudraCT": "2004-123456-12",
    "EU CT": "2022-500014-26-00",
    "ISRCTN": "ISRCTN12345678",
    "ACTRN": "ACTRN12611000123456",
    "DRKS": "DRKS00012345",
    "jRCT": "JRCT1234567890",
    "ChiCTR": "CHICTR2000029308",
    "ChiCTR with letters": "CHICTR2000029308-ABC",
    "CTRI": "CTRI/2020/01/123456",
}


@pytest.mark.parametrize("trial", REGISTRY_IDS.values(), ids=REGISTRY_IDS.keys())
def test_every_registry_format_is_accepted(trial):
    assert normalize_trial_id(trial) == trial


@pytest.mark.parametrize("raw, normalized", [
    ("nct 0123 4567", "NCT01234567"),
    (" NCT01234567 ", "NCT01234567"),
    ("isrctn\t12345678", "ISRCTN12345678"),
    ("actrn 12611000123456", "ACTRN12611000123456"),
    ("drks00012345", "DRKS00012345"),
    ("jRCT1234567890", "JRCT1234567890"),
    ("ChiCTR2000029308-abc", "CHICTR2000029308-ABC"),
    ("ctri/2020/01/123456", "CTRI/2020/01/123456"),
    ("2022 - 500014 - 26 - 00", "2022-500014-26-00"),
])
def test_trial_ids_are_upper_cased_without_spaces(raw, normalized):
    assert normalize_trial_id(raw) == normalized


@pytest.mark.parametrize("trial", [
    "", "   ", "NCT", "NCT1234567", "NCT012345678", "NCTABCDEFGH", "ISRCTN1234567",
    "ACTRN1261100012345", "DRKS0001234", "JRCT123456789", "CHICTR", "CHICTR123-",
    "CHICTR123-4", "CTRI/2020/1/123456", "CTRI/2020/01/12345", "CTRI-2020-01-123456",
    "2004-12345-12", "04-123456-12", "2022-500014-26-0", "ABC123", "NCT01234567X",
])
def test_malformed_registry_ids_are_refused(trial):
    with pytest.raises(ValidationError) as refused:
        normalize_trial_id(trial)
    assert refused.value.field == "trial"


@pytest.mark.parametrize("value", [None, 12345678, ["NCT01234567"], {"id": "NCT01234567"}])
def test_a_trial_id_must_be_a_string(value):
    with pytest.raises(ValidationError, match="string"):
        normalize_trial_id(value)


def test_sponsor_protocol_ids_only_when_asked():
    assert normalize_trial_id("abc-123/v2.1", protocol_id=True) == "ABC-123/V2.1"
    with pytest.raises(ValidationError):
        normalize_trial_id("abc-123/v2.1")
    for bad in ("-ABC", ".ABC", "A" * 65, "ABC#1", "ABC:1", "ÄBC"):
        with pytest.raises(ValidationError):
            normalize_trial_id(bad, protocol_id=True)
    assert normalize_trial_id("A" * 64, protocol_id=True) == "A" * 64


@pytest.mark.parametrize("site", ["SITE-01", "a", "x" * 64, "chu.lyon_2", "0"])
def test_site_ids(site):
    assert validate_site_id(site) == site


@pytest.mark.parametrize("site", ["", "x" * 65, "SITE 01", "SITE/01", "SITÉ", "SITE\n", None, 1])
def test_bad_site_ids(site):
    with pytest.raises(ValidationError) as refused:
        validate_site_id(site)
    assert refused.value.field == "site"


@pytest.mark.parametrize("text", ["ADSL", "Données — vague 2", "😀 emoji", 'quote " back \\',
                                  "x" * 200, "line\u2028separator"])
def test_text_that_can_be_sealed(text):
    assert validate_text(text, "dataset", 200, required=True) == text


@pytest.mark.parametrize("text, message", [
    ("a\x00b", "control"), ("a\nb", "control"), ("tab\t", "control"), ("del\x7f", "control"),
    ("c1\x85", "control"), ("lone \ud800 surrogate", "surrogate"), ("\udfff", "surrogate"),
    ("x" * 201, "at most 200"), ("", "empty"), ("   ", "empty"),
])
def test_text_that_could_break_sealing_is_refused(text, message):
    with pytest.raises(ValidationError, match=message) as refused:
        validate_text(text, "dataset", 200, required=True)
    assert refused.value.field == "dataset"


def test_exactly_the_control_and_surrogate_code_points_are_refused():
    refused = [c for c in map(chr, range(sys.maxunicode + 1))
               if CONTROL_OR_SURROGATE.search(c)]
    assert refused == [c for c in map(chr, range(sys.maxunicode + 1))
                       if unicodedata.category(c) in ("Cc", "Cs")]


def test_optional_text():
    assert validate_text(None, "filename", 255, required=False) is None
    assert validate_text("a/b.xpt", "filename", 255, required=False) == "a/b.xpt"
    with pytest.raises(ValidationError):
        validate_text(3, "filename", 255, required=False)
    with pytest.raises(ValidationError):
        validate_text("x" * 256, "filename", 255, required=False)


def test_sha256_is_normalised_to_lower_case():
    assert validate_sha256("AB" * 32) == "ab" * 32
    assert validate_sha256("0f" * 32) == "0f" * 32


@pytest.mark.parametrize("value", ["a" * 63, "a" * 65, "g" * 64, " " + "a" * 63, "a" * 64 + "\n",
                                   "", None, 0, "٠" * 64])
def test_bad_sha256(value):
    with pytest.raises(ValidationError) as refused:
        validate_sha256(value)
    assert refused.value.field == "sha256"


@pytest.mark.parametrize("size", [0, 1, MAX_SIZE_BYTES, None])
def test_sizes_in_range(size):
    assert validate_size(size) == size


@pytest.mark.parametrize("size", [-1, MAX_SIZE_BYTES + 1, 2**53, True, False, 1.5, 1.0, "12",
                                  float("nan")])
def test_sizes_out_of_range(size):
    with pytest.raises(ValidationError) as refused:
        validate_size(size)
    assert refused.value.field == "sizeBytes"


def test_uuid_any_case_is_lower_cased():
    assert validate_uuid("3F1C2A9E-5B7D-4C1E-9A2B-6D8E0F1A2B3C", "supersedes") == \
        "3f1c2a9e-5b7d-4c1e-9a2b-6d8e0f1a2b3c"
    for bad in ("3f1c2a9e-5b7d-1c1e-9a2b-6d8e0f1a2b3c", "not-a-uuid", "", None):
        with pytest.raises(ValidationError):
            validate_uuid(bad, "supersedes")


GOOD = {"trial": "nct0123 4567", "site": "SITE-01", "dataset": "ADSL", "sha256": "AB" * 32}


def test_a_registration_is_normalised_with_defaults():
    assert validate_registration(GOOD) == {
        "trial": "NCT01234567", "site": "SITE-01", "kind": "dataset", "dataset": "ADSL",
        "sha256": "ab" * 32, "sizeBytes": None, "filename": None, "supersedes": None,
    }


def test_registrations_accept_protocol_ids():
    assert validate_registration({**GOOD, "trial": "proto-7"})["trial"] == "PROTO-7"


@pytest.mark.parametrize("change, field", [
    ({"sha265": "x"}, "sha265"),
    ({"kind": "data"}, "kind"),
    ({"kind": None}, "kind"),
    ({"sizeBytes": -1}, "sizeBytes"),
    ({"filename": "a\x1fb"}, "filename"),
    ({"supersedes": "nope"}, "supersedes"),
    ({"trial": "-x"}, "trial"),
])
def test_registration_errors_name_the_field(change, field):
    with pytest.raises(ValidationError) as refused:
        validate_registration({**GOOD, **change}, "submissions[25].")
    assert refused.value.field == f"submissions[25].{field}"


@pytest.mark.parametrize("missing", ["trial", "site", "dataset", "sha256"])
def test_required_fields(missing):
    body = {k: v for k, v in GOOD.items() if k != missing}
    with pytest.raises(ValidationError, match="required") as refused:
        validate_registration(body)
    assert refused.value.field == missing


def test_a_registration_must_be_an_object():
    with pytest.raises(ValidationError) as refused:
        validate_registration([GOOD], "submissions[3].")
    assert refused.value.field == "submissions[3]"
    with pytest.raises(ValidationError) as refused:
        validate_registration("x")
    assert refused.value.field is None


# Trial ids are ASCII before upper-casing and fit the 64-character column.
def test_trial_digits_are_ascii_only():
    with pytest.raises(ValidationError):
        normalize_trial_id("NCT\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667")


def test_trial_letters_are_ascii_only():
    with pytest.raises(ValidationError):
        normalize_trial_id("ChiCTR1-\u00df")  # ß upper-cases to SS


def test_trial_ids_fit_their_column():
    with pytest.raises(ValidationError):
        normalize_trial_id("ChiCTR" + "1" * 100)


# --- the OpenAPI request schema says exactly what validation accepts -----------------

def _schema_validator():
    import jsonschema_rs

    from trialnotary.web import openapi

    return jsonschema_rs.validator_for(openapi.document()["components"]["schemas"]
                                       ["SubmissionRequest"])


def _accepted(body) -> bool:
    try:
        validate_registration(body)
        return True
    except ValidationError:
        return False


_awkward = st.characters(codec="utf-8") | st.sampled_from(
    " \t\n\x0b\x1c\x85\xa0\u1680\u2000\u2028\u3000\ufeff\x00\x7f\x9f/._-ßı١Kz9")
_VALID = {"trial": "NCT01234567", "site": "SITE-01", "dataset": "ADSL", "sha256": "ab" * 32}
_MISSING = object()
_FIELD_VALUES = {
    "trial": st.sampled_from([" nct 0123\u3000 4567 ", "ctri/2020/01/123456", "P-1",
                              "x" * 64, "x" * 65, _MISSING]) | st.text(_awkward, max_size=70),
    "site": st.sampled_from(["s" * 64, "s" * 65, _MISSING]) | st.text(_awkward, max_size=66),
    "dataset": st.sampled_from(["x" * 200, "x" * 201, _MISSING]) |
    st.text(_awkward, max_size=202),
    "sha256": st.sampled_from(["AB" * 32, _MISSING]) |
    st.text("0123456789abcdefABCDEFg\n", min_size=63, max_size=65),
    "kind": st.sampled_from(["dataset", "sap", "consent-form", "other", "Dataset", "", None]),
    "sizeBytes": st.none() | st.integers(-2, 2**53 + 1) | st.booleans() | st.just("1"),
    "filename": st.none() | st.text(_awkward, max_size=257),
    "supersedes": st.none() | st.uuids().map(str) | st.uuids(version=4).map(str).map(str.upper),
    "sha265": st.just("x"),
    "notBefore": st.none() | st.fixed_dictionaries(
        {"chainId": st.integers(-1, 2) | st.booleans() | st.just(1.5),
         "blockNumber": st.integers(-1, 2) | st.just("1"),
         "blockHash": st.sampled_from(["0x" + "ab" * 32, "0x" + "AB" * 32, "ab" * 33,
                                       "0x" + "a" * 63])},
        optional={"other": st.just(1)}),
    "reason": st.sampled_from([None, "x" * 1000, "x" * 1001, " ", 7]) |
    st.text(_awkward, max_size=12),
}
_CORRECTION = {**_VALID, "supersedes": "3f1c2a9e-5b7d-4c1e-9a2b-6d8e0f1a2b3c"}
_bodies = st.sampled_from(sorted(_FIELD_VALUES)).flatmap(
    lambda name: st.sampled_from([_VALID, _CORRECTION]).flatmap(
        lambda base: _FIELD_VALUES[name].map(
            lambda value: {k: v for k, v in {**base, name: value}.items()
                           if v is not _MISSING})))


@hypothesis_settings(max_examples=1500, deadline=None)
@given(_bodies)
def test_openapi_request_schema_matches_validation(body):
    """Both ways: what the document allows is accepted, what it forbids is refused. (Only
    integers written as ``1.0`` differ: JSON Schema calls them integers, validation not.)"""
    assert VALIDATOR.is_valid(body) == _accepted(body), body


VALIDATOR = _schema_validator()
