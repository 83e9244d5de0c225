"""What a verification found, and how it is told: the steps, the nodes asked, the verdict in
a reviewer's words, the JSON answer and the text of ``trialnotary verify``.

The verdict's sentences are the verify page's too (static/js/receipt-verify.js, verdictOf):
a reviewer reads one answer, whichever verifier they use.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from trialnotary.proof.facts import (
    CHAIN_STEPS,
    DEFAULT_RPC_URLS,
    EXIT_FAILED,
    EXIT_NOT_PINNED,
    EXIT_ORDER,
    EXIT_PASS,
    EXIT_UNCHECKED,
    FAILED,
    OFFLINE_STEPS,
    OPTIONAL_STEPS,
    SENTENCES,
    STEPS,
    UNCHECKED,
    VERIFIED,
    VERIFIED_NO_FILE,
    WRONG_FILE,
    chain_label,
    chain_name,
)
from trialnotary.proof.verify.claims import Claims
from trialnotary.proof.verify.notary import Identity

NO_NODE_ANSWERED = "no node answered"

FILE_HASH, LEAF, MERKLE_PATH = OFFLINE_STEPS
CHAIN, ANCHOR_TX, SENDER, BLOCK, CONFIRMATIONS = CHAIN_STEPS
EVIDENCE, = OPTIONAL_STEPS


@dataclass(frozen=True)
class Step:
    name: str
    ok: bool | None  # None: skipped
    detail: str


@dataclass
class NodeNote:
    url: str
    answered: bool
    detail: str
    chain_id: int | None = None
    head: int | None = None


@dataclass(frozen=True)
class Verdict:
    """The answer in words: ``text`` is the report's first line, ``note`` an optional
    second one; ``state`` is one of the verdict states of ``facts.json``."""

    state: str
    text: str
    note: str | None
    exit_code: int


@dataclass
class Report:
    claims: Claims
    confirmations: int | str
    steps: list[Step]
    nodes: list[NodeNote] = field(default_factory=list)
    seen_block_time: str | None = None
    pinned: str | None = None  # the expected sender given
    wrong_file: bool = False  # a file was read and its SHA-256 is not the receipt's
    identity: Identity | None = None  # the notary's identity pinned, if given
    seen_sender: str | None = None
    seen_confirmations: int | None = None

    @property
    def origin_pinned(self) -> bool:
        """Whether the sender was checked against the notary: an identity or an address."""
        return self.pinned is not None or self.identity is not None

    @property
    def sender(self) -> str | None:
        return self.claims.anchor.sender or self.seen_sender

    @property
    def chain_checked(self) -> bool:
        """Whether any node answered: without one, the chain steps say nothing either way."""
        return any(note.answered for note in self.nodes)

    @property
    def ok(self) -> bool:
        return self.chain_checked and all(step.ok is not False for step in self.steps)

    @property
    def block_time(self) -> str | None:
        return self.claims.anchor.block_time or self.seen_block_time

    @property
    def proven_time(self) -> str | None:
        return self.block_time if self.ok else None

    @property
    def transaction(self) -> str:
        return "0x" + self.claims.anchor.tx_hash

    @property
    def chain_label(self) -> str:
        anchor = self.claims.anchor
        if anchor.chain_id is None:
            return anchor.chain or "an unnamed chain"
        return chain_label(anchor.chain_id, anchor.chain or None)

    def step(self, name: str) -> Step:
        return next(step for step in self.steps if step.name == name)

    @property
    def verdict(self) -> Verdict:
        return verdict_of(self)

    def to_json(self) -> dict:
        anchor = self.claims.anchor
        verdict = self.verdict
        return {
            "ok": self.ok,
            "verdict": {"state": verdict.state, "text": verdict.text, "note": verdict.note},
            "exitCode": verdict.exit_code,
            "pinned": self.origin_pinned,
            "notary": None if self.identity is None else {
                "name": self.identity.name, "version": self.identity.version,
                "source": self.identity.source},
            "steps": [{"name": s.name, "ok": s.ok, "detail": s.detail} for s in self.steps],
            "nodes": [{"url": n.url, "answered": n.answered, "detail": n.detail,
                       "chainId": n.chain_id, "head": n.head} for n in self.nodes],
            "provenTime": self.proven_time,
            "blockTime": self.block_time,
            "transaction": self.transaction,
            "chain": anchor.chain or (chain_name(anchor.chain_id) if anchor.chain_id else None),
            "chainId": anchor.chain_id,
            "blockNumber": anchor.block_number,
            "targetHash": self.claims.target.hex(),
            "merkleRoot": self.claims.root.hex(),
            "confirmations": {"required": self.confirmations,
                              "actual": self.seen_confirmations},
        }


def short(hex_value: str) -> str:
    """``0x1234abcd…``: the first 8 hex digits, enough to tell values apart in a message."""
    prefix = "0x" if hex_value.startswith("0x") else ""
    return prefix + hex_value[len(prefix):][:8] + "…"


# --- the verdict in words ------------------------------------------------------------

def verdict_of(report: Report) -> Verdict:
    """What the report answers, in a journal reviewer's words."""
    failed = [step for step in report.steps if step.ok is False]
    if report.wrong_file:
        return Verdict(WRONG_FILE, "This is NOT the file this receipt was issued for: its "
                       "SHA-256 is not the one in the receipt.", None, EXIT_FAILED)
    if failed:
        also = f" (also failed: {', '.join(s.name for s in failed[1:])})" if failed[1:] else ""
        return Verdict(FAILED, f"This receipt does NOT verify: {failed[0].name} failed — "
                               f"{failed[0].detail}{also}", None, EXIT_FAILED)
    if not report.chain_checked:
        return Verdict(UNCHECKED, _unchecked_text(report), "Nothing was checked on chain: the "
                       "receipt is neither confirmed nor refuted. Try another node.",
                       EXIT_UNCHECKED)
    record, when = report.claims.record, _when(report.proven_time)
    state, text = _what_is_proven(report, record, when)
    if report.origin_pinned:
        return Verdict(state, text, None, EXIT_PASS)
    return Verdict(state, _not_pinned(report.sender), f"{text} {PIN_HINT}", EXIT_NOT_PINNED)


def _what_is_proven(report: Report, record: dict | None, when: str) -> tuple[str, str]:
    with_file = bool(report.step(FILE_HASH).ok)
    state = VERIFIED if with_file else VERIFIED_NO_FILE
    if record is None:
        text = _plain_text(with_file, when, report.claims.target.hex())
    elif with_file:
        text = (f"This file is the one registered as {_registered_as(record)}, and it existed "
                f"no later than {when}.")
    else:
        text = ("The receipt is genuine, but no file was checked: the file registered as "
                f"{_registered_as(record)} existed no later than {when}.")
    return state, text


def _plain_text(with_file: bool, when: str, target: str) -> str:
    """What a plain Chainpoint receipt proves (its targetHash existed), and what it does not."""
    proves = SENTENCES["plainWithFile" if with_file else "plainNoFile"]
    return (proves.format(when=when, target=short(target)) + " "
            + SENTENCES["plainUnbound"])


def _unchecked_text(report: Report) -> str:
    if report.nodes:
        return f"Could not check the anchor: {NO_NODE_ANSWERED}."
    chain = report.claims.anchor.chain_id
    return ("Could not check the anchor: no chain node was given"
            + (f" and there is no default node for chain {chain}."
               if chain and chain not in DEFAULT_RPC_URLS else "."))


#: The second line of an unpinned verdict ends with how to pin the origin.
PIN_HINT = ("Pin the notary's identity (--notary URL or file) or its address "
            "(--expect-sender) to check that the notary sent the anchor.")


def _not_pinned(sender: str | None) -> str:
    """The first line when every check passed but nothing said whose the sender is."""
    by = f"it was sent by {sender}, " if sender else ""
    return (f"The anchor is genuine, but its origin is not pinned: {by}and nothing checked "
            "that this address is the notary's.")


def _registered_as(record: dict) -> str:
    """``"Label" (file name) in trial T, site S``: the record's own words."""
    label, filename = _as_text(record["dataset"]), _as_text(record["filename"])
    named = f'"{label}"' + ("" if filename == label else f" ({filename})")
    return f"{named} in trial {_as_text(record['trial'])}, site {_as_text(record['site'])}"


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _when(time: str | None) -> str:
    """A block time as people read it: ``2026-11-23 19:00:12 UTC``."""
    return (time or "an unknown time").replace("T", " ").removesuffix("Z") + " UTC"


def exit_code_of(codes: Iterable[int]) -> int:
    """Several receipts' codes as one: the worst wins (2 > 1 > 4 > 3 > 0)."""
    return max(codes, key=EXIT_ORDER.index, default=EXIT_PASS)


# --- the report as text --------------------------------------------------------------

def _marks() -> dict:
    """✓ ✗ – where the terminal can print them, ASCII otherwise."""
    try:
        "✓✗–…—".encode(sys.stdout.encoding or "ascii")
        return {True: "✓", False: "✗", None: "–"}
    except (UnicodeEncodeError, LookupError):
        return {True: "+", False: "x", None: "-"}


def render_text(report: Report) -> str:
    """The verdict first, then each step, the nodes asked and a one-line summary."""
    marks = _marks()
    verdict = report.verdict
    width = max(len(name) for name in STEPS)
    lines = [verdict.text] + ([verdict.note] if verdict.note else [])
    lines += [f"{marks[s.ok]} {s.name:<{width}}  {s.detail}" for s in report.steps]
    lines += [f"  node {n.url}: {n.detail}" for n in report.nodes]
    where = f"transaction {report.transaction} on {report.chain_label}"
    claimed = f"claimed time {report.block_time or 'unknown'} (not proven)"
    if report.ok:
        lines.append(f"PASS  proven time {report.block_time}  {where}"
                     + ("" if report.origin_pinned else "  (origin not pinned)"))
    elif verdict.state == UNCHECKED:
        lines.append(f"NOT CHECKED  {claimed}  {where}")
    else:
        failed = ", ".join(s.name for s in report.steps if s.ok is False)
        lines.append(f"FAIL  failed: {failed}  {claimed}  {where}")
    return _printable("\n".join(lines), marks)


def _printable(text: str, marks: dict) -> str:
    if marks[True] != "✓":
        text = text.replace("…", "...").replace("—", "-")
    return text
