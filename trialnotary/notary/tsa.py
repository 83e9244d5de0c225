"""Asking an RFC 3161 time-stamp authority to sign a root (docs/receipt.md, "Several anchors,
roll-ups, time-stamps and renewals").

The request is SHA-256 over the 32 raw bytes of the root, with ``certReq`` and a random
nonce. A reply is kept only once it verifies as a reviewer's verifier checks it
(:func:`trialnotary.proof.tsa.check_token`, against the configured certificate authority),
so the notary never writes a token into a receipt that would fail there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from cryptography import x509
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    TimeStampResponse,
    decode_timestamp_response,
)

from trialnotary.notary.errors import TsaMisconfigured, TsaRefused, TsaUnreachable
from trialnotary.proof.tsa import check_token

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
#: What ``probe`` asks the TSA to stamp: a fixed root, never one of a batch.
PROBE_ROOT = hashlib.sha256(b"trialnotary: TSA probe").digest()
#: Statuses that carry a token (RFC 3161, 2.4.2); the token is checked either way.
GRANTED = (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS)


@dataclass(frozen=True)
class Stamp:
    """A verified time-stamp: the DER ``TimeStampToken`` (not the whole response), its
    ``genTime`` (RFC 3339, whole seconds, ``Z``) and the TSA's name."""

    token: bytes
    gen_time: str
    tsa: str


class TsaClient:
    """One configured TSA: its URL and the certificate authorities its certificate must
    chain to (at least one)."""

    def __init__(self, url: str, ca_certificates: Sequence[x509.Certificate],
                 timeout: float = 10, session: requests.Session | None = None):
        self.url = url
        self.ca_certificates = list(ca_certificates)
        self.timeout = timeout
        self.session = session or requests.Session()
        if not self.ca_certificates:
            raise self._misconfigured("no certificate authority is configured to check "
                                      "its time-stamps against")

    def stamp(self, root: bytes) -> Stamp:
        """A time-stamp of ``root`` (32 raw bytes), verified.

        Raises ``TsaUnreachable`` (try later), ``TsaRefused`` (it answered, not granted) or
        ``TsaMisconfigured`` (its reply is no time-stamp reply, or does not verify)."""
        request = (TimestampRequestBuilder().data(root).hash_algorithm(HashAlgorithm.SHA256)
                   .cert_request(cert_request=True).nonce(nonce=True).build())
        response = self._parsed(self._post(request.as_bytes()))
        if response.status not in GRANTED:
            text = "; ".join(response.status_string) or "no reason given"
            raise TsaRefused(f"the TSA at {shown(self.url)} refused the time-stamp "
                             f"(status {response.status}: {text})")
        token = self._token(response, request.nonce)
        check = check_token(token, root, self.ca_certificates)
        if not check.ok:
            raise self._misconfigured(f"its time-stamp does not verify: {check.detail}")
        return Stamp(token, check.gen_time, check.tsa or shown(self.url))

    def probe(self) -> Stamp:
        """Stamp a fixed root once: at start, a TSA whose replies cannot be read or do not
        verify is a configuration error, not a retry loop."""
        return self.stamp(PROBE_ROOT)

    def _post(self, query: bytes) -> bytes:
        try:
            reply = self.session.post(self.url, data=query, timeout=self.timeout,
                                      headers={"Content-Type": QUERY_TYPE})
        except requests.RequestException as exc:
            raise TsaUnreachable(f"the TSA at {shown(self.url)} does not answer "
                                 f"({type(exc).__name__})") from None
        if reply.status_code == 429 or reply.status_code >= 500:
            raise TsaUnreachable(f"the TSA at {shown(self.url)} answers HTTP "
                                 f"{reply.status_code}")
        if reply.status_code != 200:
            raise self._misconfigured(f"it answers HTTP {reply.status_code}, not a time-stamp")
        content_type = reply.headers.get("Content-Type", "").partition(";")[0].strip()
        if content_type != REPLY_TYPE:
            raise self._misconfigured(f"it answers {content_type or 'no content type'}, "
                                      f"not {REPLY_TYPE}")
        return reply.content

    def _parsed(self, reply: bytes) -> TimeStampResponse:
        try:
            return decode_timestamp_response(reply)
        except ValueError as exc:
            raise self._unreadable(exc) from None

    def _token(self, response: TimeStampResponse, nonce: int) -> bytes:
        """The token of a granted reply, answering the request of ``nonce``."""
        try:
            answered, token = response.tst_info.nonce, response.time_stamp_token()
        except ValueError as exc:
            raise self._unreadable(exc) from None
        if answered != nonce:
            raise self._misconfigured("its reply does not carry the request's nonce")
        return token

    def _unreadable(self, exc: ValueError) -> TsaMisconfigured:
        return self._misconfigured(f"its reply is not an RFC 3161 time-stamp reply the "
                                   f"verifier can read ({exc})")

    def _misconfigured(self, what: str) -> TsaMisconfigured:
        return TsaMisconfigured(f"the TSA at {shown(self.url)} cannot be used: {what}")


def shown(url: str) -> str:
    """The TSA's URL without credentials or query (which may carry a key): scheme, host,
    port and path, enough to see a wrong one."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or '?'}{port}{parts.path}"
