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
    ANCHOR_STEPS,
    ANCHOR_TYPE,
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
    RECORD_STEPS,
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
#: ``--require all``: every anchor of the receipt.
REQUIRE_ALL = "all"

FILE_HASH, LEAF, MERKLE_PATH = OFFLINE_STEPS
CHAIN, ANCHOR_TX, SENDER, BLOCK, CONFIRMATIONS = CHAIN_STEPS
EVIDENCE, = OPTIONAL_STEPS
ROLLUP, TSA, RENEWAL = ANCHOR_STEPS
NOT_BEFORE, SIGN_OFF = RECORD_STEPS


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


@dataclass
class AnchorResult:
    """One anchor of a receipt of several (docs/verification.md, "Several anchors"): its own
    steps, its state (``verified``, ``failed``, ``unchecked``), the time it proves when it
    verified, whether its origin is pinned, and, for a renewed anchor, its renewal's
    anchors. ``heading`` names it (``anchor sepolia (ETHData, ethereumSepolia chain
    11155111)``); ``summary`` says what it proves, ``where`` in a few words
    (``hoodi block 12``)."""

    name: str | None
    type: str
    heading: str
    steps: list[Step]
    state: str
    proven_time: str | None = None
    pinned: bool = False
    summary: str | None = None
    where: str | None = None
    renewal: list[AnchorResult] = field(default_factory=list)

    def to_json(self) -> dict:
        answer = {"name": self.name, "type": self.type, "state": self.state,
                  "provenTime": self.proven_time, "pinned": self.pinned,
                  "summary": self.summary, "steps": [_step_json(s) for s in self.steps]}
        if self.renewal:
            answer["renewal"] = [anchor.to_json() for anchor in self.renewal]
        return answer


def _step_json(step: Step) -> dict:
    return {"name": step.name, "ok": step.ok, "detail": step.detail}


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
    #: The anchors of a receipt of several (``claims.several``); ``None``: the one anchor of
    #: ``steps``, told as it always was.
    anchors: list[AnchorResult] | None = None
    #: The anchors ``--require`` names (``all``: every anchor of the receipt).
    required: tuple[str, ...] = ()
    #: The block a record's ``notBefore`` names, with its ``blockTime``, once ``not-before``
    #: passed: the start of the interval the file was made in.
    made_after: dict | None = None

    @property
    def missing_required(self) -> list[str]:
        """The names ``--require`` gives that no anchor of the receipt has."""
        names = {result.name for result in self.anchors} if self.anchors is not None \
            else {self.claims.anchor.name}
        return [name for name in self.required if name != REQUIRE_ALL and name not in names]

    @property
    def origin_pinned(self) -> bool:
        """Whether the sender was checked against the notary: an identity or an address;
        with several anchors, whether every anchor that verified is pinned."""
        if self.anchors is not None:
            return origin_pinned(self.anchors)
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
        if self.anchors is not None:
            return self.verdict.exit_code in (EXIT_PASS, EXIT_NOT_PINNED)
        return self.chain_checked and all(step.ok is not False for step in self.steps) \
            and not self.missing_required

    @property
    def block_time(self) -> str | None:
        if self.anchors is not None:
            proving = self.proving_anchor
            return proving.proven_time if proving is not None else None
        return self.claims.anchor.block_time or self.seen_block_time

    @property
    def proving_anchor(self) -> AnchorResult | None:
        """Of several anchors, the one that verified with the earliest time."""
        verified = [result for result in self.anchors or () if result.state == VERIFIED]
        return min(verified, key=lambda result: result.proven_time, default=None)

    @property
    def proven_time(self) -> str | None:
        return self.block_time if self.ok else None

    @property
    def transaction(self) -> str | None:
        return "0x" + self.claims.anchor.tx_hash if self.claims.anchor is not None else None

    @property
    def chain_label(self) -> str:
        anchor = self.claims.anchor
        if anchor is None:
            return "no chain"
        if anchor.chain_id is None:
            return anchor.chain or "an unnamed chain"
        return chain_label(anchor.chain_id, anchor.chain or None)

    @property
    def record_steps(self) -> list[Step]:
        """The steps on the record's own claims (``not-before``, ``sign-off``), after every
        anchor's."""
        return [step for step in self.steps if step.name in RECORD_STEPS]

    def step(self, name: str) -> Step:
        return next(step for step in self.steps if step.name == name)

    @property
    def verdict(self) -> Verdict:
        return verdict_of(self)

    def anchor_results(self) -> list[AnchorResult]:
        """Every anchor's result; a receipt of one anchor has one, its steps those after
        the offline ones but the record's own (``not-before``)."""
        if self.anchors is not None:
            return self.anchors
        anchor = self.claims.anchor
        steps = [step for step in self.steps[len(OFFLINE_STEPS):]
                 if step.name not in RECORD_STEPS]
        state = (FAILED if any(step.ok is False for step in steps)
                 else VERIFIED if self.chain_checked else UNCHECKED)
        verified = state == VERIFIED
        return [AnchorResult(
            anchor.name, ANCHOR_TYPE, "", steps, state,
            proven_time=self.block_time if verified else None,
            pinned=verified and self.origin_pinned,
            summary=(f"anchored on {self.chain_label} block "
                     f"{anchor.block_number if anchor.block_number is not None else '?'} "
                     f"at {self.block_time}") if verified else None)]

    def to_json(self) -> dict:
        anchor = self.claims.anchor
        verdict = self.verdict
        several = self.anchors is not None
        return {
            "ok": self.ok,
            "verdict": {"state": verdict.state, "text": verdict.text, "note": verdict.note},
            "exitCode": verdict.exit_code,
            "pinned": self.origin_pinned,
            "notary": None if self.identity is None else {
                "name": self.identity.name, "version": self.identity.version,
                "source": self.identity.source},
            "steps": self._steps_json(),
            "nodes": [{"url": n.url, "answered": n.answered, "detail": n.detail,
                       "chainId": n.chain_id, "head": n.head} for n in self.nodes],
            "provenTime": self.proven_time,
            "blockTime": self.block_time,
            "transaction": self.transaction,
            "chain": None if anchor is None else
            anchor.chain or (chain_name(anchor.chain_id) if anchor.chain_id else None),
            "chainId": None if anchor is None else anchor.chain_id,
            "blockNumber": None if anchor is None else anchor.block_number,
            "targetHash": self.claims.target.hex(),
            "merkleRoot": self.claims.root.hex(),
            "confirmations": {"required": self.confirmations,
                              "actual": self.seen_confirmations},
            **({"provenBy": getattr(self.proving_anchor, "name", None)} if several else {}),
            "anchors": [result.to_json() for result in self.anchor_results()],
            **({"madeAfter": self.made_after}
               if "notBefore" in (self.claims.record or {}) else {}),
        }

    def _steps_json(self) -> list[dict]:
        """The steps; with several anchors, each anchor's after the offline ones, each
        naming its ``anchor``."""
        if self.anchors is None:
            return [_step_json(step) for step in self.steps]
        return [_step_json(step) for step in self.steps[:len(OFFLINE_STEPS)]] + [
            {**_step_json(step), "anchor": result.name}
            for result in self.anchors for step in result.steps] + [
            _step_json(step) for step in self.record_steps]


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
    if report.missing_required:
        return Verdict(FAILED, f"This receipt does NOT verify: it holds no anchor named "
                               f"{_names(report.missing_required)}, which --require asks for.",
                       None, EXIT_FAILED)
    if report.anchors is not None:
        return _several_verdict(report)
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


def _several_verdict(report: Report) -> Verdict:
    """The verdict over several anchors: any failed step fails the receipt; the earliest
    anchor that verified gives the proven time; an anchor not checked refutes nothing,
    unless ``--require`` names it (exit 4)."""
    offline = [step for step in report.steps[:len(OFFLINE_STEPS)] if step.ok is False]
    if offline:
        return Verdict(FAILED, f"This receipt does NOT verify: {offline[0].name} failed — "
                               f"{offline[0].detail}", None, EXIT_FAILED)
    for result in report.anchors:
        failed = [step for step in result.steps if step.ok is False]
        if failed:
            also = (f" (also failed: {', '.join(s.name for s in failed[1:])})"
                    if failed[1:] else "")
            return Verdict(FAILED, f"This receipt does NOT verify: anchor {result.name}: "
                                   f"{failed[0].name} failed — {failed[0].detail}{also}",
                           None, EXIT_FAILED)
    record_failed = [step for step in report.record_steps if step.ok is False]
    if record_failed:
        return Verdict(FAILED, f"This receipt does NOT verify: {record_failed[0].name} "
                               f"failed — {record_failed[0].detail}", None, EXIT_FAILED)
    proving = report.proving_anchor
    if proving is None:
        return Verdict(UNCHECKED, "Could not check any anchor of the receipt: "
                                  f"{_unchecked_why(report.anchors)}.",
                       "Nothing was checked on chain: the receipt is neither confirmed nor "
                       "refuted. Try another node.", EXIT_UNCHECKED)
    state, text = _what_is_proven(report, report.claims.record,
                                  f"{_when(proving.proven_time)} (anchor {proving.name})")
    required = [result for result in report.anchors if result.state == UNCHECKED
                and (result.name in report.required or REQUIRE_ALL in report.required)]
    if required:
        return Verdict(UNCHECKED, f"Could not check the required anchor(s) "
                                  f"{_unchecked_why(required)}.", text, EXIT_UNCHECKED)
    if report.origin_pinned:
        return Verdict(state, text, None, EXIT_PASS)
    unpinned = [result.name for result in _sent(report.anchors) if not result.pinned]
    why = (f"the origin of {_names(unpinned)} is not pinned: nothing checked that the notary "
           "made it." if unpinned else "its origin is not pinned: a time-stamp proves when, "
           "not who, and no anchor sent by the notary verified.")
    return Verdict(state, f"The anchors are genuine, but {why}",
                   f"{text} {PIN_HINT} {TSA_HINT}", EXIT_NOT_PINNED)


#: What a time-stamp proves, and how it is checked.
TSA_HINT = ("A time-stamp proves the time, never the origin; it is checked against its "
            "authority's certificate (--tsa-ca FILE).")


def _sent(results: list[AnchorResult]) -> list[AnchorResult]:
    """The ``ETHData`` anchors among ``results`` that verified: what can pin an origin."""
    return [result for result in results
            if result.state == VERIFIED and result.type == ANCHOR_TYPE]


def origin_pinned(results: list[AnchorResult]) -> bool:
    """Whether anchors of several pin the origin: at least one ``ETHData`` anchor verified,
    and every one that did was the pinned notary's. Time-stamps never pin (an authority signs
    any hash for anyone)."""
    sent = _sent(results)
    return bool(sent) and all(result.pinned for result in sent)


def _unchecked_why(results: list[AnchorResult]) -> str:
    """``sepolia (no node answered), tsa (…)``: each anchor not checked, and why."""
    return ", ".join(f"{result.name} ({_first_unchecked(result)})" for result in results
                     if result.state == UNCHECKED)


def _first_unchecked(result: AnchorResult) -> str:
    reason = next((step.detail for step in result.steps if step.ok is None), "not checked")
    return reason.removeprefix("not checked: ")


def _names(names: list[str]) -> str:
    return ", ".join(repr(name) for name in names)


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

def status_marks() -> dict:
    """✓ ✗ – where the terminal can print them, ASCII otherwise."""
    try:
        "✓✗–…—".encode(sys.stdout.encoding or "ascii")
        return {True: "✓", False: "✗", None: "–"}
    except (UnicodeEncodeError, LookupError):
        return {True: "+", False: "x", None: "-"}


def render_text(report: Report) -> str:
    """The verdict first, then each step, the nodes asked and a one-line summary."""
    if report.anchors is not None:
        return _render_several(report)
    marks = status_marks()
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
        failed = ", ".join(s.name for s in report.steps if s.ok is False) or ", ".join(
            f"missing anchor {name}" for name in report.missing_required)
        lines.append(f"FAIL  failed: {failed}  {claimed}  {where}")
    return _printable("\n".join(lines), marks)


def _render_several(report: Report) -> str:
    """The verdict, the offline steps, then each anchor under its heading with its own
    steps (a renewal's anchors below it), the nodes asked and a one-line summary."""
    marks = status_marks()
    verdict = report.verdict
    width = max(len(name) for name in STEPS)
    lines = [verdict.text] + ([verdict.note] if verdict.note else [])
    lines += [f"{marks[s.ok]} {s.name:<{width}}  {s.detail}"
              for s in report.steps[:len(OFFLINE_STEPS)]]
    for result in report.anchors:
        lines += _anchor_lines(result, marks, width, "")
    lines += [f"{marks[s.ok]} {s.name:<{width}}  {s.detail}" for s in report.record_steps]
    lines += [f"  node {n.url}: {n.detail}" for n in report.nodes]
    proving = report.proving_anchor
    if verdict.exit_code in (EXIT_PASS, EXIT_NOT_PINNED):
        lines.append(f"PASS  proven time {proving.proven_time}  anchor {proving.name}: "
                     f"{proving.summary}"
                     + ("" if report.origin_pinned else "  (origin not pinned)"))
    elif verdict.state == UNCHECKED:
        lines.append("NOT CHECKED  " + ", ".join(
            f"anchor {r.name}: {r.state}" for r in report.anchors))
    else:
        failed = [f"{r.name}: {', '.join(s.name for s in r.steps if s.ok is False)}"
                  for r in report.anchors if r.state == FAILED]
        offline = [s.name for s in report.steps[:len(OFFLINE_STEPS)] if s.ok is False]
        own = [s.name for s in report.record_steps if s.ok is False]
        lines.append("FAIL  failed: " + "; ".join(
            offline + [f"anchor {item}" for item in failed] + own
            + [f"missing anchor {name}" for name in report.missing_required]))
    return _printable("\n".join(lines), marks)


def _anchor_lines(result: AnchorResult, marks: dict, width: int, indent: str) -> list[str]:
    state = result.state + (f" — {result.summary}" if result.summary else "")
    lines = [f"{indent}{result.heading}: {state}"]
    lines += [f"{indent}  {marks[s.ok]} {s.name:<{width}}  {s.detail}" for s in result.steps]
    for renewal in result.renewal:
        lines += _anchor_lines(renewal, marks, width, indent + "    ")
    return lines


def _printable(text: str, marks: dict) -> str:
    if marks[True] != "✓":
        text = text.replace("…", "...").replace("—", "-")
    return text
