"""The facts of the receipt format, read from ``facts.json`` beside this module.

That file is the one place where record keys, kinds, chain names and ids, default nodes,
step names, verdict states, exit codes and size limits are written down: the Python code
reads them here, the OpenAPI document builds its enums from them, and the verify page embeds
the same file for the browser verifier (static/js/receipt-verify.js). See docs/receipt.md
and docs/verification.md.
"""

from __future__ import annotations

import json
from importlib.resources import files
from types import MappingProxyType

FACTS_FILE = "facts.json"


_TEXT = files(__package__).joinpath(FACTS_FILE).read_text(encoding="utf-8")


def document() -> dict:
    """The whole file as JSON data (a fresh copy, read once per process), as the browser
    verifier receives it."""
    return json.loads(_TEXT)


_FACTS = document()

#: The version new receipts are written in, and every version a verifier reads.
RECEIPT_VERSION: int = _FACTS["receiptVersion"]
RECEIPT_VERSIONS: tuple[int, ...] = tuple(_FACTS["receiptVersions"])
#: Where a notary serves its identity document (docs/receipt.md, "The notary's identity").
IDENTITY_PATH: str = _FACTS["identityPath"]
CHAINPOINT_CONTEXT: str = _FACTS["chainpoint"]["context"]
CHAINPOINT_TYPE: str = _FACTS["chainpoint"]["type"]
ANCHOR_TYPE: str = _FACTS["chainpoint"]["anchorType"]
#: The anchor type of an RFC 3161 time-stamp (docs/receipt.md, "Several anchors").
TIMESTAMP_TYPE: str = _FACTS["chainpoint"]["timeStampType"]

#: The receipt record's keys, in the order the record is written.
RECORD_KEYS: tuple[str, ...] = tuple(_FACTS["recordKeys"])
#: The record's keys that may be ``null``; the integer ones (0 … 2^53−1); every other
#: record key holds a string (docs/receipt.md).
NULLABLE_RECORD_KEYS: tuple[str, ...] = tuple(_FACTS["nullableRecordKeys"])
INTEGER_RECORD_KEYS: tuple[str, ...] = tuple(_FACTS["integerRecordKeys"])
#: Keys a record holds only when given, after those (never as ``null``, so that records
#: without them keep their leaves): ``notBefore``, a block the record was made after;
#: ``signOff``, the manifestation of a sign-off (see ``SIGN_OFF_KIND``).
OPTIONAL_RECORD_KEYS: tuple[str, ...] = tuple(_FACTS["optionalRecordKeys"])
#: The keys of ``notBefore``, each required, no other allowed.
NOT_BEFORE_KEYS: tuple[str, ...] = tuple(_FACTS["notBeforeKeys"])
KINDS: tuple[str, ...] = tuple(_FACTS["kinds"])
#: The kinds a trial's order is judged by (a database lock, an unblinding, …): registered
#: like files (the hash of the locked export, of the unblinding log), kept apart on timelines.
MILESTONE_KINDS: tuple[str, ...] = tuple(_FACTS["milestoneKinds"])

#: The pre-specification rules a timeline judges, in order (docs/verification.md, "Was it
#: pre-specified?"): each ``name``, ``earlier`` and ``later`` kinds, ``finalOnly``,
#: ``perSite``, and its words (``statement``, ``proves``, ``cannotProve``).
TIMELINE_RULES: tuple[MappingProxyType, ...] = tuple(
    MappingProxyType(rule) for rule in _FACTS["timelineRules"]["rules"])
#: The words of the check each sign-off given gets (``name``, ``statement``, ``proves``,
#: ``cannotProve``).
TIMELINE_SIGN_OFF_RULE = MappingProxyType(_FACTS["timelineRules"]["signOffRule"])
#: A timeline entry's state when its receipt cannot be used (no verdict was reached).
TIMELINE_UNUSABLE: str = _FACTS["timelineRules"]["unusableState"]

_SIGN_OFF = _FACTS["signOff"]
#: The kind of a sign-off (21 CFR Part 11 §11.50, §11.70): a registration whose record's
#: ``signOff`` names the registration it signs, and whose ``sha256`` is ``signOff``'s digest
#: (proof/signoff.py). Made only by signing on the registration page, never registered.
SIGN_OFF_KIND: str = _SIGN_OFF["kind"]
#: The keys of ``signOff``, each required, no other allowed.
SIGN_OFF_KEYS: tuple[str, ...] = tuple(_SIGN_OFF["keys"])
#: What a signature means (§11.50(a)(3)), and the roles a signer may hold.
SIGN_OFF_MEANINGS: tuple[str, ...] = tuple(_SIGN_OFF["meanings"])
SIGN_OFF_ROLES: tuple[str, ...] = tuple(_SIGN_OFF["roles"])
#: The kinds the API, the CLI and the register form offer: every kind but a sign-off.
REGISTRABLE_KINDS: tuple[str, ...] = tuple(kind for kind in KINDS if kind != SIGN_OFF_KIND)

#: The receipt's ``chain`` name of each public chain id; any other chain is the local one.
CHAIN_NAMES = MappingProxyType({chain_id: name for name, chain_id in _FACTS["chains"].items()})
CHAIN_IDS_BY_NAME = MappingProxyType(dict(_FACTS["chains"]))
LOCAL_CHAIN_NAME: str = _FACTS["localChainName"]
_CHAIN_LABEL: str = _FACTS["chainLabel"]

#: The JSON-RPC error code of a node that has expired the history asked for (EIP-4444).
PRUNED_HISTORY_ERROR: int = _FACTS["prunedHistoryError"]

#: Nodes asked when none is given, by chain id. Public endpoints need no key.
DEFAULT_RPC_URLS = MappingProxyType({int(chain_id): url
                                     for chain_id, url in _FACTS["defaultNodes"].items()})

OFFLINE_STEPS: tuple[str, ...] = tuple(_FACTS["steps"]["offline"])
CHAIN_STEPS: tuple[str, ...] = tuple(_FACTS["steps"]["chain"])
#: Steps after the chain's, shown only where they apply, in this order: ``notary`` (with a
#: pinned identity), ``evidence`` (an anchor that carries its evidence).
ORIGIN_STEPS: tuple[str, ...] = tuple(_FACTS["steps"]["origin"])
OPTIONAL_STEPS: tuple[str, ...] = tuple(_FACTS["steps"]["optional"])
#: Steps of an anchor's own, after those, where they apply: ``rollup`` (an anchor of a
#: roll-up), ``tsa`` (an RFC 3161 time-stamp), ``renewal`` (an anchor of a retired chain).
ANCHOR_STEPS: tuple[str, ...] = tuple(_FACTS["steps"]["anchor"])
#: Steps on the record's own claims, after every anchor's, where they apply: ``not-before``
#: (a record that names a block it was made after), ``sign-off`` (a sign-off's record).
RECORD_STEPS: tuple[str, ...] = tuple(_FACTS["steps"]["record"])
STEPS = OFFLINE_STEPS + CHAIN_STEPS + ORIGIN_STEPS + OPTIONAL_STEPS + ANCHOR_STEPS + RECORD_STEPS

FINALIZED_CHAINS: frozenset[int] = frozenset(_FACTS["confirmations"]["finalizedChains"])
_OTHER_CONFIRMATIONS: int = _FACTS["confirmations"]["otherwise"]

_VERDICTS = _FACTS["verdicts"]
VERIFIED: str = _VERDICTS["verified"]  # the file given is the receipt's, and the anchor holds
VERIFIED_NO_FILE: str = _VERDICTS["verifiedNoFile"]  # the receipt holds, no file compared
WRONG_FILE: str = _VERDICTS["wrongFile"]  # the file given is not the receipt's
FAILED: str = _VERDICTS["failed"]  # the receipt itself fails a step
UNCHECKED: str = _VERDICTS["unchecked"]  # nothing could be checked on chain

#: Verdict sentences both verifiers write word for word, as ``str.format`` templates.
SENTENCES = MappingProxyType({key: text for key, text in _FACTS["sentences"].items()
                              if key != "about"})

_EXITS = _FACTS["exitCodes"]
EXIT_PASS: int = _EXITS["pass"]
EXIT_FAILED: int = _EXITS["failed"]
EXIT_UNUSABLE: int = _EXITS["unusable"]
EXIT_NOT_PINNED: int = _EXITS["notPinned"]
EXIT_UNCHECKED: int = _EXITS["unchecked"]
#: Best first. With several receipts the worst one's code is the command's.
EXIT_ORDER: tuple[int, ...] = tuple(_EXITS[name] for name in _FACTS["exitOrder"])

_LIMITS = _FACTS["limits"]
MAX_RECEIPT_BYTES: int = _LIMITS["receiptBytes"]
#: The most entries a receipts bundle (zip) may hold, and the ending of the names of those
#: read as receipts: ``trialnotary timeline BUNDLE.zip`` and the verifier page (a trial's zip
#: of 100,000 registrations fits).
MAX_BUNDLE_ENTRIES: int = _LIMITS["bundleEntries"]
#: The most bytes a bundle's receipt entries may inflate to in all (each at most a receipt's
#: limit): a zip of many small entries that each inflate far is refused while inflating.
MAX_BUNDLE_INFLATED: int = _LIMITS["bundleInflatedBytes"]
BUNDLE_RECEIPT_SUFFIX: str = _FACTS["bundleReceiptSuffix"]
#: How deep a receipt's JSON may nest (a receipt needs a handful of levels; Python's json
#: recurses per level, and ten thousand levels break the C stack before its recursion limit).
MAX_JSON_DEPTH: int = _LIMITS["jsonDepth"]
MAX_SIZE_BYTES: int = _LIMITS["sizeBytes"]
MAX_TRIAL_CHARS: int = _LIMITS["trialChars"]
MAX_DATASET_CHARS: int = _LIMITS["datasetChars"]
MAX_FILENAME_CHARS: int = _LIMITS["filenameChars"]
MAX_REASON_CHARS: int = _LIMITS["reasonChars"]
MAX_SIGNER_NAME_CHARS: int = _LIMITS["signerNameChars"]


def chain_name(chain_id: int) -> str:
    """The receipt's ``chain`` name for a chain id."""
    return CHAIN_NAMES.get(chain_id, LOCAL_CHAIN_NAME)


def chain_label(chain_id: int, name: str | None = None) -> str:
    """How people are shown a chain: ``ethereumSepolia (chain 11155111)``."""
    return _CHAIN_LABEL.format(name=chain_name(chain_id) if name is None else name, id=chain_id)


def default_confirmations(chain_id: int | None) -> int | str:
    """What a verifier requires unless told: ``finalized`` on the public chains, else 1."""
    return "finalized" if chain_id in FINALIZED_CHAINS else _OTHER_CONFIRMATIONS
