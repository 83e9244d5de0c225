"""The instance's anchors: the ``[[anchors]]`` tables of ``<instance>/config.toml``, or,
without them, the single chain of the ``TRIALNOTARY_CHAIN*`` settings
(docs/configuration.md, "Anchors").

Each anchor runs on its own: an EVM chain (``kind = "evm"``) or an RFC 3161 time-stamp
authority (``kind = "rfc3161"``), for each batch or, with a period, for a roll-up of the
batches sealed in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from trialnotary.errors import TrialnotaryError

EVM, RFC3161 = "evm", "rfc3161"
KINDS = (EVM, RFC3161)
EACH_BATCH = "batch"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_PERIOD = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(s|m|h|d)")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_KEYS = {"name", "kind", "chain", "rpc", "key_file", "confirmations", "url", "ca_file",
         "every", "retire_on", "max_fee_gwei"}
_WHERE = "config.toml [[anchors]]"


class AnchorConfigError(TrialnotaryError, ValueError):
    """An ``[[anchors]]`` table that cannot be used; the message names it."""


@dataclass(frozen=True)
class AnchorSpec:
    """One configured anchor. ``chain`` is a known chain's name (``local``, ``sepolia``, …)
    or ``None`` for another chain id; ``every_seconds`` is ``None`` for each batch, else
    the roll-up period."""

    name: str
    kind: str
    chain: str | None = None
    chain_id: int | None = None
    rpc_urls: tuple[str, ...] = ()
    key_file: Path | None = None
    confirmations: int | str | None = None
    max_fee_gwei: float | None = None
    url: str | None = None
    ca_file: Path | None = None
    every_seconds: float | None = None
    every: str = EACH_BATCH  # as configured: ``batch`` or the period (``24h``)
    retire_on: date | None = None


def parse_anchor_tables(tables, chains: dict) -> tuple[AnchorSpec, ...]:
    """The ``[[anchors]]`` tables as specs, or a clear ``AnchorConfigError``. ``chains``
    maps known chain names to their presets (``config.CHAINS``)."""
    if not isinstance(tables, list) or not tables:
        raise AnchorConfigError(f"{_WHERE}: anchors must be a list of tables ([[anchors]])")
    specs = [_spec(index, table, chains) for index, table in enumerate(tables)]
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise AnchorConfigError(f"{_WHERE}: the name {spec.name!r} is used twice")
        seen.add(spec.name)
    evm_chains = [spec.chain_id for spec in specs if spec.kind == EVM]
    if len(set(evm_chains)) != len(evm_chains):
        raise AnchorConfigError(f"{_WHERE}: each chain may be anchored on by one anchor only")
    return tuple(specs)


def _spec(index: int, table, chains: dict) -> AnchorSpec:
    where = f"{_WHERE} #{index + 1}"
    if not isinstance(table, dict):
        raise AnchorConfigError(f"{where} is not a table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise AnchorConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    name = str(table.get("name", ""))
    if not _NAME.fullmatch(name):
        raise AnchorConfigError(f"{where}: name must be 1–64 of a–z, 0–9, - and _, "
                                f"starting with a letter or digit, not {name!r}")
    where = f"{_WHERE} {name!r}"
    kind = table.get("kind")
    if kind not in KINDS:
        raise AnchorConfigError(f"{where}: kind must be evm or rfc3161, not {kind!r}")
    every = _every(where, table.get("every"))
    common = {"name": name, "kind": kind, "every_seconds": every,
              "every": EACH_BATCH if every is None else str(table["every"]).strip(),
              "retire_on": _date(where, table.get("retire_on"))}
    if kind == EVM:
        return AnchorSpec(**common, **_evm(where, table, chains))
    return AnchorSpec(**common, **_rfc3161(where, table))


def _evm(where: str, table: dict, chains: dict) -> dict:
    for key in ("url", "ca_file"):
        if key in table:
            raise AnchorConfigError(f"{where}: {key} is for rfc3161 anchors")
    chain, chain_id = _chain(where, table.get("chain"), chains)
    rpc = table.get("rpc", [])
    rpc = [rpc] if isinstance(rpc, str) else rpc
    if not isinstance(rpc, list) or not all(isinstance(url, str) and
                                            url.startswith(("http://", "https://"))
                                            for url in rpc):
        raise AnchorConfigError(f"{where}: rpc must be a list of http(s) URLs")
    preset = chains.get(chain)
    urls = tuple(rpc) or (preset.rpc_urls if preset else ())
    if not urls:
        raise AnchorConfigError(f"{where}: rpc is required on this chain")
    key_file = table.get("key_file")
    if key_file is None and chain != "local":
        raise AnchorConfigError(f"{where}: key_file is required (only the local chain may "
                                f"use anvil's public development key)")
    max_fee = table.get("max_fee_gwei")
    if max_fee is not None and (isinstance(max_fee, bool) or
                                not isinstance(max_fee, int | float) or max_fee < 0):
        raise AnchorConfigError(f"{where}: max_fee_gwei must be a number ≥ 0")
    return {"chain": chain, "chain_id": chain_id, "rpc_urls": urls,
            "key_file": Path(key_file) if key_file else None,
            "confirmations": _confirmations(where, table.get("confirmations")),
            "max_fee_gwei": max_fee}


def _rfc3161(where: str, table: dict) -> dict:
    for key in ("chain", "rpc", "key_file", "confirmations", "max_fee_gwei"):
        if key in table:
            raise AnchorConfigError(f"{where}: {key} is for evm anchors")
    url, ca_file = table.get("url"), table.get("ca_file")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise AnchorConfigError(f"{where}: url must be the time-stamp authority's http(s) URL")
    if not isinstance(ca_file, str) or not ca_file:
        raise AnchorConfigError(f"{where}: ca_file (the TSA's CA certificates, PEM) is required")
    return {"url": url, "ca_file": Path(ca_file)}


def _chain(where: str, raw, chains: dict) -> tuple[str | None, int]:
    """A known chain's name, or an integer chain id (its name, if known)."""
    if isinstance(raw, str) and raw.lower() in chains:
        return raw.lower(), chains[raw.lower()].chain_id
    if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0:
        known = next((name for name, preset in chains.items() if preset.chain_id == raw), None)
        return known, raw
    raise AnchorConfigError(f"{where}: chain must be one of {', '.join(chains)} or a chain id, "
                            f"not {raw!r}")


def _confirmations(where: str, raw) -> int | str | None:
    if raw is None or raw == "finalized":
        return raw
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 1:
        return raw
    raise AnchorConfigError(f"{where}: confirmations must be a number ≥ 1 or 'finalized'")


def _every(where: str, raw) -> float | None:
    if raw is None or raw == EACH_BATCH:
        return None
    match = _PERIOD.fullmatch(str(raw).strip())
    seconds = float(match[1]) * _UNIT_SECONDS[match[2]] if match else 0
    if seconds <= 0:
        raise AnchorConfigError(f"{where}: every must be 'batch' or a period like '1h' or "
                                f"'24h', not {raw!r}")
    return seconds


def _date(where: str, raw) -> date | None:
    if raw is None or isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(str(raw))
    except ValueError:
        raise AnchorConfigError(f"{where}: retire_on must be a date like 2027-09-30, "
                                f"not {raw!r}") from None
