"""Pinning the origin: the notary's identity document (``--notary X``) read, its shape
checked, and the ``notary`` step over it.

X is the notary's base URL (``X/.well-known/trialnotary.json`` is fetched), the document's own
URL, or a saved file. HTTPS is required except for loopback hosts. Only the document's
addresses pin: URLs are never compared, and a receipt's own ``notary.url`` never pins. The
document's shape and the rule are docs/receipt.md ("The notary's identity") and
docs/verification.md (the ``notary`` step).
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from trialnotary.proof.errors import MalformedValue
from trialnotary.proof.facts import IDENTITY_PATH, ORIGIN_STEPS, chain_label

NOTARY, = ORIGIN_STEPS
EVM = "evm"
RFC3161 = "rfc3161"
#: The identity document is small; anything much larger is not one.
MAX_IDENTITY_BYTES = 1024 * 1024
FETCH_TIMEOUT = 10.0

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d{1,9})?Z")


class IdentityError(MalformedValue):
    """The identity document cannot be read, or is not one (the command's exit 2)."""


@dataclass(frozen=True)
class Address:
    """One anchoring address and when it was the notary's, in whole seconds (Unix time)."""

    address: str
    since: int
    until: int | None
    compromised_from: int | None


@dataclass(frozen=True)
class EvmAnchor:
    name: str
    chain_id: int
    addresses: tuple[Address, ...]


@dataclass(frozen=True)
class TsaAnchor:
    """A time-stamp authority the notary uses: the certificates (PEM) its tokens chain to."""

    name: str
    certificates: tuple[str, ...]


@dataclass(frozen=True)
class Identity:
    """What the verifier takes from a notary's identity document."""

    name: str
    version: int | None
    source: str  # where it was read from, for messages
    anchors: tuple[EvmAnchor, ...]
    time_stamps: tuple[TsaAnchor, ...] = ()

    def tsa_certificates(self, name: str) -> tuple[str, ...]:
        """The PEM certificates listed for the ``rfc3161`` anchor ``name`` (none if none)."""
        return next((tsa.certificates for tsa in self.time_stamps if tsa.name == name), ())


# --- reading the document ------------------------------------------------------------

def identity_url(value: str) -> str | None:
    """The document's URL for an http(s) X (a base URL gets the well-known path), or
    ``None`` when X is not a URL (then it is a file). Plain http only to loopback hosts."""
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https"):
        return None
    if not parts.hostname:
        raise IdentityError(f"--notary {value!r} has no host")
    if parts.scheme.lower() == "http" and not _is_loopback(parts.hostname):
        raise IdentityError(f"--notary {value!r}: the notary's identity must come over "
                            "https (plain http only from this machine: localhost, 127.0.0.1, "
                            "::1)")
    if parts.path.endswith(".json"):
        return value
    return value.rstrip("/") + IDENTITY_PATH


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_identity(value: str, *, timeout: float = FETCH_TIMEOUT) -> Identity:
    """The identity document named by ``--notary`` (URL or file), checked for shape.

    Raises :class:`IdentityError` when it cannot be read or is not an identity document.
    """
    url = identity_url(value)
    text = _fetch(url, timeout) if url is not None else _read_file(value)
    return parse_identity(text, source=url or value)


def _fetch(url: str, timeout: float) -> bytes:
    try:
        with requests.get(url, timeout=timeout, stream=True,
                          headers={"Accept": "application/json"}) as reply:
            if reply.status_code != 200:
                raise IdentityError(f"{url} answered HTTP {reply.status_code}")
            body = reply.raw.read(MAX_IDENTITY_BYTES + 1, decode_content=True)
    except requests.RequestException as exc:
        raise IdentityError(f"cannot fetch {url}: {type(exc).__name__}") from None
    if len(body) > MAX_IDENTITY_BYTES:
        raise IdentityError(f"{url} is larger than an identity document")
    return body


def _read_file(path: str) -> bytes:
    try:
        with open(Path(path), "rb") as handle:
            data = handle.read(MAX_IDENTITY_BYTES + 1)
    except OSError as exc:
        raise IdentityError(f"--notary {path!r}: not an http(s) URL, and the file cannot "
                            f"be read: {exc.strerror or exc}") from None
    if len(data) > MAX_IDENTITY_BYTES:
        raise IdentityError(f"{path} is larger than an identity document")
    return data


def parse_identity(data: bytes | str | dict, *, source: str = "the identity document"
                   ) -> Identity:
    """An identity document (bytes, text or parsed JSON) as :class:`Identity`."""
    document = data if isinstance(data, dict) else _json(data, source)
    where = f"{source}: "
    if not isinstance(document, dict):
        raise IdentityError(where + "an identity document is a JSON object")
    name = document.get("name")
    if not isinstance(name, str) or not name:
        raise IdentityError(where + "name must be a non-empty string")
    version = document.get("version")
    anchors = document.get("anchors")
    if not isinstance(anchors, list):
        raise IdentityError(where + "anchors must be a list")
    evm = tuple(_evm_anchor(anchor, f"{where}anchors[{index}].")
                for index, anchor in enumerate(anchors)
                if isinstance(anchor, dict) and anchor.get("kind") == EVM)
    time_stamps = tuple(_tsa_anchor(anchor, f"{where}anchors[{index}].")
                        for index, anchor in enumerate(anchors)
                        if isinstance(anchor, dict) and anchor.get("kind") == RFC3161)
    return Identity(name=name, version=version if isinstance(version, int) else None,
                    source=source, anchors=evm, time_stamps=time_stamps)


def _json(data: bytes | str, source: str) -> Any:
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        raise IdentityError(f"{source}: not an identity document (not JSON: {exc})") from None


def _no_duplicates(pairs: list) -> dict:
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate keys")
    return dict(pairs)


def _evm_anchor(anchor: dict, where: str) -> EvmAnchor:
    chain_id = anchor.get("chainId")
    if not isinstance(chain_id, int) or isinstance(chain_id, bool) or chain_id < 1:
        raise IdentityError(where + "chainId must be a positive integer")
    addresses = anchor.get("addresses")
    if not isinstance(addresses, list):
        raise IdentityError(where + "addresses must be a list")
    return EvmAnchor(name=str(anchor.get("name", "")), chain_id=chain_id,
                     addresses=tuple(_address(entry, f"{where}addresses[{index}].")
                                     for index, entry in enumerate(addresses)))


def _tsa_anchor(anchor: dict, where: str) -> TsaAnchor:
    name, certificates = anchor.get("name"), anchor.get("certificates", [])
    if not isinstance(name, str) or not name:
        raise IdentityError(where + "name must be a non-empty string")
    if not isinstance(certificates, list) or not all(isinstance(pem, str)
                                                     for pem in certificates):
        raise IdentityError(where + "certificates must be a list of PEM certificates")
    return TsaAnchor(name=name, certificates=tuple(certificates))


def _address(entry: Any, where: str) -> Address:
    if not isinstance(entry, dict):
        raise IdentityError(where.rstrip(".") + " must be an object")
    address = entry.get("address")
    if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
        raise IdentityError(where + "address must be 0x and 40 hex digits")
    since = _seconds(entry.get("from"), where + "from")
    if since is None:
        raise IdentityError(where + "from is required")
    return Address(address=address, since=since,
                   until=_seconds(entry.get("until"), where + "until"),
                   compromised_from=_seconds(entry.get("compromisedFrom"),
                                             where + "compromisedFrom"))


def _seconds(value: Any, what: str) -> int | None:
    """An RFC 3339 UTC time as whole seconds (a fraction is cut off), or ``None``."""
    if value is None:
        return None
    match = _TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise IdentityError(f"{what} must be an RFC 3339 UTC time like 2026-12-01T10:00:00Z")
    return int(datetime.strptime(match[1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
               .timestamp())


def time_text(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the step ------------------------------------------------------------------------

@dataclass(frozen=True)
class PinVerdict:
    ok: bool
    detail: str


def pin(identity: Identity, chain_id: int | None, sender: str, block_time: str) -> PinVerdict:
    """Whether ``sender`` was the notary's address on ``chain_id`` at ``block_time``: listed
    for that chain, ``from ≤ blockTime``, ``until`` null or ``≥ blockTime``, and not
    compromised at or before ``blockTime`` (whole seconds)."""
    notary = f'the notary "{identity.name}"'
    on_chain = [anchor for anchor in identity.anchors if anchor.chain_id == chain_id]
    chain = chain_label(chain_id) if chain_id is not None else "the anchor's chain"
    if not on_chain:
        return PinVerdict(False, f"{notary} publishes no anchoring address on {chain}")
    at = _seconds(block_time, "blockTime")
    listed = [(anchor, entry) for anchor in on_chain for entry in anchor.addresses
              if entry.address.lower() == sender.lower()]
    if not listed:
        known = ", ".join(entry.address for anchor in on_chain for entry in anchor.addresses)
        return PinVerdict(False, f"sent by {sender}, which is not an address of {notary} on "
                                 f"{chain} ({known or 'none listed'})")
    reasons = []
    for anchor, entry in listed:
        if entry.compromised_from is not None and entry.compromised_from <= at:
            reasons.append(f"{sender} is compromised from {time_text(entry.compromised_from)}"
                           f", at or before the block's time {block_time}")
        elif entry.since > at or (entry.until is not None and entry.until < at):
            until = time_text(entry.until) if entry.until is not None else "now"
            reasons.append(f"{sender} was the notary's address from {time_text(entry.since)} "
                           f"until {until}, not at the block's time {block_time}")
        else:
            return PinVerdict(True, f"sent by {sender}, the address of {notary} "
                                    f"({anchor.name or chain}) at the block's time {block_time}")
    return PinVerdict(False, "; ".join(reasons))
