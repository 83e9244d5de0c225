"""RFC 3161 tokens checked offline (trialnotary/proof/tsa.py), on tokens of a real TSA
(``openssl ts -reply``, tests/tsa.py): docs/verification.md, the ``tsa`` step."""

from __future__ import annotations

import datetime
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from rfc3161_client import HashAlgorithm, decode_timestamp_response

from tests.tsa import certificate, key_usage
from trialnotary.proof.errors import ProofError
from trialnotary.proof.tsa import (
    TokenCheck,
    certificate_failure,
    check_token,
    load_certificates,
    wrap_token,
)

ROOT = hashlib.sha256(b"a batch root").digest()
TIME_STAMPING = ExtendedKeyUsageOID.TIME_STAMPING


@pytest.fixture(scope="module")
def token(tsa) -> bytes:
    return tsa.token(ROOT)


def test_a_good_token_passes_with_its_time_and_tsa(tsa, token):
    check = check_token(token, ROOT, load_certificates(tsa.ca_pem))
    assert check.ok is True, check.detail
    assert check.tsa == "Test TSA"
    stamped = datetime.datetime.strptime(check.gen_time, "%Y-%m-%dT%H:%M:%S%z")
    assert abs(datetime.datetime.now(datetime.UTC) - stamped) < datetime.timedelta(minutes=2)
    assert check.detail == f"signed by Test TSA at {check.gen_time}"


def test_a_fresh_token_is_stamped_now(tsa):
    check = check_token(tsa.token(ROOT), ROOT, load_certificates(tsa.ca_pem))
    stamped = datetime.datetime.strptime(check.gen_time, "%Y-%m-%dT%H:%M:%S%z")
    assert abs(datetime.datetime.now(datetime.UTC) - stamped) < datetime.timedelta(seconds=5)


def test_a_token_of_another_authority_does_not_chain(tsa, other_tsa):
    check = check_token(other_tsa.token(ROOT), ROOT, load_certificates(tsa.ca_pem))
    assert check.ok is False
    assert check.detail.startswith("the TSA certificate does not chain to a trusted authority")
    assert (check.tsa, check.gen_time is not None) == ("Other TSA", True)


def test_either_of_several_authorities_may_certify(tsa, other_tsa, token):
    trusted = load_certificates(other_tsa.ca_pem + tsa.ca_pem)
    assert len(trusted) == 2
    assert check_token(token, ROOT, trusted).ok is True


def test_a_token_over_another_root_fails_naming_both(tsa, token):
    other = hashlib.sha256(b"another root").digest()
    check = check_token(token, other, load_certificates(tsa.ca_pem))
    assert check.ok is False
    assert check.detail == (
        f"the time-stamp is over {hashlib.sha256(ROOT).hexdigest()[:8]}…, not the attested "
        f"root {other.hex()[:8]}… (its SHA-256 {hashlib.sha256(other).hexdigest()[:8]}…)")
    assert check.gen_time is not None


def test_an_altered_token_fails_its_signature(tsa, token):
    response = decode_timestamp_response(wrap_token(token))
    written = response.tst_info.gen_time.strftime("%Y%m%d%H%M%S").encode()
    at = token.index(written) + len(written) - 1
    altered = token[:at] + (b"0" if token[at:at + 1] != b"0" else b"1") + token[at + 1:]
    check = check_token(altered, ROOT, load_certificates(tsa.ca_pem))
    assert check.ok is False
    assert check.detail == ("the time-stamp's signature does not verify: the token is not as "
                            "its TSA signed it")


def test_an_imprint_of_another_algorithm_fails(tsa):
    check = check_token(tsa.token(ROOT, algorithm=HashAlgorithm.SHA512), ROOT,
                        load_certificates(tsa.ca_pem))
    assert (check.ok, check.detail) == (
        False, "the time-stamp's imprint is made with 2.16.840.1.101.3.4.2.3, not SHA-256")


def test_a_token_without_the_tsa_certificate_fails(tsa):
    check = check_token(tsa.token(ROOT, cert_request=False), ROOT,
                        load_certificates(tsa.ca_pem))
    assert (check.ok, check.detail) == (False, "the token does not carry the TSA's certificate")
    assert check.tsa == "CN=Test TSA"


def tsa_certificate(purposes, usage: x509.KeyUsage) -> x509.Certificate:
    """A self-signed certificate with these extended key usages and key usage: what the
    library leaves to :func:`certificate_failure` (openssl ts will not sign with it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Loose TSA")])
    return (certificate(name, name, key.public_key(), key)
            .add_extension(x509.ExtendedKeyUsage(purposes), critical=True)
            .add_extension(usage, critical=True)
            .sign(key, hashes.SHA256()))


def test_a_tsa_certificate_for_time_stamping_only_that_may_sign_passes():
    assert certificate_failure(tsa_certificate([TIME_STAMPING], key_usage(cert_sign=False))) \
        is None


def test_a_tsa_certificate_for_more_than_time_stamping_fails():
    loose = tsa_certificate([TIME_STAMPING, ExtendedKeyUsageOID.CODE_SIGNING],
                            key_usage(cert_sign=False))
    assert certificate_failure(loose) == (
        "the TSA certificate is not for time-stamping only (RFC 3161, 2.3)")


def test_a_tsa_certificate_whose_key_may_not_sign_fails():
    assert certificate_failure(tsa_certificate([TIME_STAMPING], key_usage(cert_sign=True))) \
        == "the TSA certificate's key usage does not allow signing"


@pytest.mark.parametrize("garbage", [b"", b"garbage", b"\x30\x03\x02\x01\x00", b"\x30" * 300])
def test_bytes_that_are_no_token_fail_cleanly(tsa, garbage):
    check = check_token(garbage, ROOT, load_certificates(tsa.ca_pem))
    assert check == TokenCheck(False, check.detail, None, None)
    assert check.detail.startswith("the token is not a valid RFC 3161 time-stamp token: ")
    assert "\n" not in check.detail


def test_a_token_with_bytes_after_it_fails(tsa, token):
    check = check_token(token + b"\x00", ROOT, load_certificates(tsa.ca_pem))
    assert check.ok is False
    assert check.detail.startswith("the token is not a valid RFC 3161 time-stamp token: ")


def test_without_an_authority_the_token_is_not_checked(token):
    check = check_token(token, ROOT, [])
    assert check.ok is None
    assert check.detail.startswith("no TSA certificate authority was given")
    assert check.tsa == "Test TSA"


def test_without_an_authority_a_wrong_imprint_still_fails(token):
    assert check_token(token, b"\x00" * 32, []).ok is False


def test_a_root_is_32_bytes(token):
    with pytest.raises(ProofError, match="32 bytes, not 64"):
        check_token(token, ROOT.hex().encode(), [])


def test_the_wrapped_token_is_the_token_again(token):
    assert len(token) > 255
    assert decode_timestamp_response(wrap_token(token)).time_stamp_token() == token


def test_certificates_are_read_from_pem(tsa):
    assert [c.subject.rfc4514_string() for c in load_certificates(tsa.tsa_cert_pem)] == [
        "CN=Test TSA"]
    with pytest.raises(ValueError, match="not PEM certificates"):
        load_certificates(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ValueError, match="not PEM certificates"):
        load_certificates(tsa.ca_file.read_bytes()[:-40])
