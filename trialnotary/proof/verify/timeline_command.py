"""``trialnotary timeline RECEIPT…|BUNDLE.zip``: every receipt verified (each anchor once),
the trial's proven timeline and its pre-specification checks printed, one exit code
(docs/cli.md; the rules: :mod:`trialnotary.proof.timeline`).

A bundle is the receipts zip the notary serves: its ``*.receipt.json`` entries are read in
memory, never extracted, as the verifier page reads them (:mod:`.bundle`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from trialnotary.proof.errors import ReceiptError
from trialnotary.proof.facts import EXIT_FAILED, EXIT_NOT_PINNED, EXIT_PASS, EXIT_UNUSABLE
from trialnotary.proof.timeline import UNUSABLE, Check, Entry, Timeline, Verified, build
from trialnotary.proof.verify.bundle import read_bundle
from trialnotary.proof.verify.claims import load_receipt, parse_receipt
from trialnotary.proof.verify.command import check_options, usage_error
from trialnotary.proof.verify.report import exit_code_of, status_marks
from trialnotary.proof.verify.verifier import check


def main(paths: Iterable[str | Path], *, rpc_urls: list[str],
         confirmations: str | None = None, expect_sender: str | None = None,
         notary: str | None = None, tsa_ca: Iterable[str | Path] = (),
         as_json: bool = False) -> int:
    """Verify every receipt of ``paths`` (files, or bundles ending in ``.zip``) with the
    options of ``verify``, print the timeline and the checks, and answer ``verify``'s exit
    codes: the worst receipt's, and 1 when a rule fails."""
    try:
        options = check_options(rpc_urls=rpc_urls, confirmations=confirmations,
                                expect_sender=expect_sender, notary=notary, tsa_ca=tsa_ca)
        receipts = list(_receipts_of([str(path) for path in paths]))
        if not receipts:
            raise ValueError("give at least one receipt")
    except ValueError as exc:
        return usage_error(str(exc), as_json)
    results = [_verified(source, loaded, options) for source, loaded in receipts]
    timeline = build(verified for verified, _ in results)
    code = exit_code_of([*(code for _, code in results),
                         EXIT_PASS if timeline.rules_hold else EXIT_FAILED])
    if as_json:
        print(json.dumps(to_json(timeline, code), indent=2, ensure_ascii=False))
    else:
        print(render_text(timeline, code))
    return code


def _receipts_of(paths: list[str]) -> Iterator[tuple[str, dict | ReceiptError]]:
    """Each receipt given, as its source name and its JSON (or why it cannot be read)."""
    for path in paths:
        if path.lower().endswith(".zip"):
            yield from _bundle_receipts(path)
            continue
        try:
            yield path, load_receipt(path)
        except ReceiptError as exc:
            yield path, exc


def _bundle_receipts(path: str) -> Iterator[tuple[str, dict | ReceiptError]]:
    """The ``*.receipt.json`` entries of a zip (:func:`read_bundle`), named ``ZIP:ENTRY``;
    ``ValueError`` when the zip cannot be used."""
    for name, read in read_bundle(path):
        yield f"{path}:{name}", read


def _verified(source: str, loaded: dict | ReceiptError, options: dict) -> tuple[Verified, int]:
    """The receipt verified, as the timeline needs it, and its exit code."""
    try:
        if isinstance(loaded, ReceiptError):
            raise loaded
        claims = parse_receipt(loaded)
    except ReceiptError as exc:
        return Verified(source, None, None, UNUSABLE, f"not a usable receipt: {exc}"), \
            EXIT_UNUSABLE
    report = check(claims, **options)
    verdict = report.verdict
    proven = report.proven_time if verdict.exit_code in (EXIT_PASS, EXIT_NOT_PINNED) else None
    why = None if proven is not None else verdict.text
    made_after = report.made_after if proven is not None else None
    return Verified(source, claims.record, proven, verdict.state, why, made_after), \
        verdict.exit_code


def to_json(timeline: Timeline, code: int) -> dict:
    return {"ok": code == EXIT_PASS, "exitCode": code,
            "entries": [entry.to_json() for entry in timeline.entries],
            "checks": [check.to_json() for check in timeline.checks]}


def render_text(timeline: Timeline, code: int) -> str:
    lines = ["Proven timeline (proven time: no later than; claimed: submittedAt)"]
    lines += [_entry_line(entry) for entry in timeline.entries]
    lines += ["", "Pre-specification checks"]
    lines += [_check_line(check) for check in timeline.checks]
    failed = sum(check.ok is False for check in timeline.checks)
    unproven = sum(entry.proven_time is None for entry in timeline.entries)
    summary = "PASS" if code == EXIT_PASS else "FAIL" if code in (EXIT_FAILED, EXIT_UNUSABLE) \
        else "NOT PROVEN"
    lines += ["", f"{summary}  {len(timeline.entries)} receipts, {unproven} not verified; "
                  f"{len(timeline.checks)} checks, {failed} failed (exit {code})"]
    return "\n".join(lines)


def _entry_line(entry: Entry) -> str:
    proven = entry.proven_time or f"NOT PROVEN ({entry.verified.state})"
    version = ""
    if entry.versions > 1 or entry.predecessor_missing:
        version = f"  v{entry.version}/{entry.versions}" + (
            f" supersedes {entry.field('supersedes')}" if entry.field("supersedes") else "") + (
            " (final)" if entry.final else "")
    why = f"\n    {entry.verified.why}" if entry.verified.why else ""
    return (f"{proven:<21} {entry.kind or '-':<18} {entry.field('site') or '-':<10} "
            f"{entry.field('dataset') or entry.verified.source}  id {entry.id or '-'}  "
            f"claimed {entry.field('submittedAt') or '-'}{version}{_interval(entry)}{why}")


def _interval(entry: Entry) -> str:
    """The interval a record with a checked ``notBefore`` was made in, on a line of its own."""
    made_after = entry.verified.made_after
    if made_after is None:
        return ""
    return (f"\n    made after block {made_after['blockNumber']} at {made_after['blockTime']}; "
            f"existed no later than {entry.proven_time}")


def _check_line(check: Check) -> str:
    mark = status_marks()[check.ok]
    site = f" (site {check.site})" if check.site is not None else ""
    return f"{mark} {check.rule.statement}{site}: {check.detail}"
