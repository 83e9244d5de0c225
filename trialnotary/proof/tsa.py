"""RFC 3161 time-stamp tokens, checked offline (docs/receipt.md, "Several anchors, roll-ups,
time-stamps and renewals"; docs/verification.md, the ``tsa`` step).

A token is an anchor's evidence: its message imprint is SHA-256 over the 32 raw bytes of
the attested root, and it must be signed by a TSA whose certificate chains to an authority
the reviewer trusts. ``rfc3161-client`` parses the token and verifies its signature and
chain (at the token's time) and the TSA certificate's critical extendedKeyUsage; this module
adds what it leaves out: the imprint's algorithm, that timeStamping is the certificate's
only extended key usage (RFC 3161, 2.3) and that its key usage, when given, allows
signing, and it words every failure for a reviewer.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from rfc3161_client import (
    TimeStampResponse,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from trialnotary.proof.errors import MalformedValue

SHA256 = x509.ObjectIdentifier("2.16.840.1.101.3.4.2.1")
#: DER of the ``PKIStatusInfo`` ``SEQUENCE { INTEGER 0 }``: status granted.
GRANTED_STATUS = bytes.fromhex("3003020100")
NO_AUTHORITY = ("no TSA certificate authority was given: the time-stamp's signature and "
                "certificate were not checked")


@dataclass(frozen=True)
class TokenCheck:
    """What checking a token found: ``ok`` is True (passed), False (failed, ``detail`` says
    why in one line) or None (not checked). ``gen_time`` (RFC 3339, whole seconds, ``Z``)
    and ``tsa`` (the TSA's name) are given whenever the token parses."""

    ok: bool | None
    detail: str
    gen_time: str | None = None
    tsa: str | None = None


def wrap_token(token: bytes) -> bytes:
    """The granted ``TimeStampResp`` around a DER ``TimeStampToken``, for the library, which
    reads responses only: ``SEQUENCE { SEQUENCE { INTEGER 0 }, token }``."""
    content = GRANTED_STATUS + token
    return b"\x30" + der_length(len(content)) + content


def der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def load_certificates(pem: bytes) -> list[x509.Certificate]:
    """The certificates of a PEM text (one or several); a ValueError when it holds none."""
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise MalformedValue("not PEM certificates: expected one or more "
                             "'-----BEGIN CERTIFICATE-----' blocks") from None
    return certificates


def check_token(token: bytes, root: bytes, trusted: list[x509.Certificate]) -> TokenCheck:
    """Check ``token`` (DER ``TimeStampToken``) as a time-stamp of ``root`` (32 raw bytes) by
    a TSA certified by one of ``trusted`` (root certificates). Never raises for the token's
    bytes: what is wrong with them is a failed check."""
    if len(root) != 32:
        raise MalformedValue(f"an attested root is 32 bytes, not {len(root)}")
    try:
        response = decode_timestamp_response(wrap_token(bytes(token)))
        gen_time, tsa = rfc3339(response.tst_info.gen_time), tsa_name(response)
    except Exception as exc:  # noqa: BLE001 (the library's parser on untrusted bytes)
        return TokenCheck(False, "the token is not a valid RFC 3161 time-stamp token: "
                          + one_line(str(exc)))
    failure = imprint_failure(response, root)
    if failure is None and not trusted:
        return TokenCheck(None, NO_AUTHORITY, gen_time, tsa)
    if failure is None:
        failure = verification_failure(response, root, trusted)
    if failure is not None:
        return TokenCheck(False, failure, gen_time, tsa)
    return TokenCheck(True, f"signed by {tsa} at {gen_time}", gen_time, tsa)


def rfc3339(moment: datetime.datetime) -> str:
    utc = moment.astimezone(datetime.UTC).replace(microsecond=0, tzinfo=None)
    return utc.isoformat() + "Z"


def one_line(text: str, limit: int = 200) -> str:
    first = (text.splitlines() or [""])[0]
    return first if len(first) <= limit else first[:limit] + "…"


def imprint_failure(response: TimeStampResponse, root: bytes) -> str | None:
    imprint = response.tst_info.message_imprint
    if imprint.hash_algorithm != SHA256:
        return (f"the time-stamp's imprint is made with {imprint.hash_algorithm.dotted_string},"
                " not SHA-256")
    if imprint.message != hashlib.sha256(root).digest():
        return (f"the time-stamp is over {short(imprint.message)}, not the attested root "
                f"{short(root)} (its SHA-256 {short(hashlib.sha256(root).digest())})")
    return None


def short(value: bytes) -> str:
    return value.hex()[:8] + "…"


def verification_failure(response: TimeStampResponse, root: bytes,
                         trusted: list[x509.Certificate]) -> str | None:
    """Why the signature, the chain or the TSA certificate fails, or None."""
    verifier = VerifierBuilder(roots=list(trusted)).build()
    try:
        verifier.verify(response, hashlib.sha256(root).digest())
        return certificate_failure(signer_certificate(response))
    except VerificationError as exc:
        return library_failure(str(exc))
    except ValueError as exc:
        return f"the time-stamp does not verify: {one_line(str(exc))}"


def library_failure(message: str) -> str:
    """The library's reason, in a reviewer's words where it is a known one (OpenSSL's
    PKCS7_verify reasons, which it passes on)."""
    if "certificate verify error" in message:
        reason = message.partition('Verify error: ')[2].partition('"')[0]
        return ("the TSA certificate does not chain to a trusted authority"
                + (f" ({reason})" if reason else ""))
    if "signature failure" in message or "digest failure" in message:
        return "the time-stamp's signature does not verify: the token is not as its TSA signed it"
    if "EKU" in message:
        return ("the TSA certificate is not for time-stamping (a critical extendedKeyUsage "
                "timeStamping)")
    if "Certificates neither found" in message or "signer certificate not found" in message:
        return "the token does not carry the TSA's certificate"
    return f"the time-stamp does not verify: {one_line(message)}"


def certificate_failure(certificate: x509.Certificate | None) -> str | None:
    """What the library does not check of the TSA's certificate: timeStamping as its only
    extended key usage, and a key usage (if any) that allows signing."""
    if certificate is None:
        return "the token does not carry the TSA's certificate"
    purposes = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    if list(purposes) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        return "the TSA certificate is not for time-stamping only (RFC 3161, 2.3)"
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    if not (usage.digital_signature or usage.content_commitment):
        return "the TSA certificate's key usage does not allow signing"
    return None


def signer_certificate(response: TimeStampResponse) -> x509.Certificate | None:
    """The certificate the token carries for its signer (issuer and serial number)."""
    signers = list(response.signed_data.signer_infos)
    if len(signers) != 1:
        return None
    for der in response.signed_data.certificates:
        try:
            certificate = x509.load_der_x509_certificate(der)
        except ValueError:
            continue
        if (certificate.issuer, certificate.serial_number) == (signers[0].issuer,
                                                               signers[0].serial_number):
            return certificate
    return None


def tsa_name(response: TimeStampResponse) -> str | None:
    """The TSA's name: its certificate's common name, else the token's ``tsa`` field."""
    certificate = signer_certificate(response)
    if certificate is not None:
        names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if names:
            return str(names[0].value)
    name = response.tst_info.name
    if name is None:
        return None
    value = name.value
    return value.rfc4514_string() if isinstance(value, x509.Name) else str(value)
