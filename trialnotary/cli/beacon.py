"""``trialnotary beacon``: the notary's newest confirmed block, and a seed derived from it.

A randomisation seed or an unblinding key derived from the beacon could not have been known
before that block was made: the block's hash is unpredictable until then. The seed is
SHA-256 of the RFC 8785 JSON of ``{"beacon": {"chainId", "blockNumber", "blockHash"},
"label": LABEL}``, the beacon as a record's ``notBefore`` names it, so anyone holding the
record's receipt (and the label) derives it again (docs/cli.md, "beacon").
"""

from __future__ import annotations

import hashlib
import json
import sys

from trialnotary.cli.api import Api
from trialnotary.cli.errors import EXIT_ERROR, EXIT_OK, CliError, ServerRefused
from trialnotary.proof.facts import NOT_BEFORE_KEYS
from trialnotary.proof.receipt import canonical_json
from trialnotary.validation import ValidationError, validate_not_before


def derive_seed(block: dict, label: str) -> str:
    """The seed (64 hex) of ``label`` from a block (``chainId``, ``blockNumber``,
    ``blockHash``: a record's ``notBefore``)."""
    beacon = {key: block[key] for key in NOT_BEFORE_KEYS}
    return hashlib.sha256(canonical_json({"beacon": beacon, "label": label})).hexdigest()


def fetch_beacon(api: Api) -> dict:
    """``GET /api/v1/beacon``, its block checked as a ``notBefore`` would be."""
    response = api.request("GET", "/beacon")
    if response.status_code != 200:
        raise ServerRefused.from_response(response)
    try:
        found = response.json()
        validate_not_before({key: found[key] for key in NOT_BEFORE_KEYS})
        if not isinstance(found["blockTime"], str):
            raise ValueError("blockTime is not a string")
    except (ValueError, KeyError, TypeError, ValidationError) as exc:
        raise CliError(f"the server's beacon is not one: {exc}") from None
    return {key: found[key] for key in (*NOT_BEFORE_KEYS, "blockTime")}


def run(server: str, label: str | None) -> int:
    """Print the beacon as JSON; with ``label``, also the seed derived from it. Returns the
    exit code: 0, or 1 when the server or its chain does not answer."""
    api = Api(server)
    try:
        beacon = fetch_beacon(api)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        api.close()
    answer = beacon if label is None else {
        "beacon": beacon, "label": label, "seed": derive_seed(beacon, label),
        "notBefore": {key: beacon[key] for key in NOT_BEFORE_KEYS}}
    print(json.dumps(answer, indent=2, ensure_ascii=False))
    return EXIT_OK
