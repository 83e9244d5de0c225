"""Asking a real TSA (``openssl ts -reply`` over loopback HTTP, tests/tsa.py) for time-stamps:
trialnotary/notary/tsa.py. A token is kept only when it verifies; a TSA that does not answer
is tried later, one that answers wrong is a configuration error."""

from __future__ import annotations

import datetime
import hashlib

import pytest
from rfc3161_client import HashAlgorithm, TimestampRequestBuilder

from tests.tsa import LocalTsa, answering_with
from tests.utils import serving_http
from trialnotary.config import ConfigError
from trialnotary.notary.errors import (
    ChainUnreachable,
    TsaMisconfigured,
    TsaRefused,
    TsaUnreachable,
)
from trialnotary.notary.tsa import PROBE_ROOT, TsaClient
from trialnotary.proof.tsa import check_token, load_certificates

ROOT = hashlib.sha256(b"a batch root").digest()


def client_of(authority, ca_pem: bytes | None = None, **options) -> TsaClient:
    return TsaClient(authority.url, load_certificates(ca_pem or authority.ca_pem),
                     timeout=2, **options)


def test_a_stamp_is_a_verified_token_of_the_root(tsa):
    stamp = client_of(tsa).stamp(ROOT)
    assert stamp.tsa == "Test TSA"
    check = check_token(stamp.token, ROOT, load_certificates(tsa.ca_pem))
    assert check.ok is True
    assert check.gen_time == stamp.gen_time
    stamped = datetime.datetime.strptime(stamp.gen_time, "%Y-%m-%dT%H:%M:%S%z")
    assert abs(datetime.datetime.now(datetime.UTC) - stamped) < datetime.timedelta(seconds=5)


def test_the_probe_stamps_its_fixed_root(tsa):
    stamp = client_of(tsa).probe()
    assert check_token(stamp.token, PROBE_ROOT, load_certificates(tsa.ca_pem)).ok is True


def test_a_stopped_tsa_is_unreachable_and_tried_later(tmp_path):
    authority = LocalTsa(tmp_path)
    client = client_of(authority)
    authority.stop()
    with pytest.raises(TsaUnreachable, match=r"the TSA at http://127\.0\.0\.1:\d+/tsr does "
                                             r"not answer \(ConnectionError\)"):
        client.stamp(ROOT)
    assert issubclass(TsaUnreachable, ChainUnreachable)
    authority.start()
    assert client.stamp(ROOT).tsa == "Test TSA"


def test_a_tsa_of_another_authority_is_misconfigured(tsa, other_tsa):
    client = client_of(other_tsa, tsa.ca_pem)
    with pytest.raises(TsaMisconfigured) as raised:
        client.probe()
    assert str(raised.value).startswith(
        f"the TSA at {other_tsa.url} cannot be used: its time-stamp does not verify: the TSA "
        "certificate does not chain to a trusted authority")
    assert isinstance(raised.value, ConfigError)


def answering(status: int, content_type: str, body: bytes):
    """A loopback HTTP server answering every POST so; yields its URL."""
    return serving_http(answering_with(lambda query, query_type: (status, content_type, body)))


@pytest.mark.parametrize(("status", "content_type", "body", "why"), [
    (200, "application/timestamp-reply", b"\x30\x03garbage",
     "its reply is not an RFC 3161 time-stamp reply the verifier can read (ASN.1 parse error"),
    (200, "text/html", b"<html></html>",
     "it answers text/html, not application/timestamp-reply"),
    (404, "text/html", b"not found", "it answers HTTP 404, not a time-stamp"),
])
def test_a_tsa_answering_garbage_is_misconfigured(tsa, status, content_type, body, why):
    with answering(status, content_type, body) as url:
        client = TsaClient(url + "/tsr?key=secret", load_certificates(tsa.ca_pem), timeout=2)
        with pytest.raises(TsaMisconfigured) as raised:
            client.probe()
    assert str(raised.value).startswith(f"the TSA at {url}/tsr cannot be used: {why}")


def test_a_busy_tsa_is_tried_later(tsa):
    with answering(503, "text/plain", b"busy") as url:
        with pytest.raises(TsaUnreachable, match="answers HTTP 503"):
            TsaClient(url, load_certificates(tsa.ca_pem), timeout=2).stamp(ROOT)


def test_a_rejection_is_a_refusal(tsa):
    rejection = bytes.fromhex("3013" "3011" "020102" "300c" "0c0a") + b"not today!"
    with answering(200, "application/timestamp-reply", rejection) as url:
        with pytest.raises(TsaRefused, match=r"refused the time-stamp \(status 2: not today!\)"):
            TsaClient(url, load_certificates(tsa.ca_pem), timeout=2).stamp(ROOT)


def test_a_reply_to_another_request_is_misconfigured(tsa):
    another = TimestampRequestBuilder().data(ROOT).hash_algorithm(HashAlgorithm.SHA256).build()
    replayed = tsa.reply(another.as_bytes())
    with answering(200, "application/timestamp-reply", replayed) as url:
        with pytest.raises(TsaMisconfigured, match="does not carry the request's nonce"):
            TsaClient(url, load_certificates(tsa.ca_pem), timeout=2).stamp(ROOT)


def test_a_client_needs_an_authority(tsa):
    with pytest.raises(TsaMisconfigured, match="no certificate authority is configured"):
        TsaClient(tsa.url, [])
