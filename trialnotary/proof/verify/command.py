"""``trialnotary verify RECEIPT...``: options checked, each receipt verified, the reports
printed, one exit code (the contract is docs/verification.md, "Exit codes")."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from trialnotary.proof.errors import ReceiptError
from trialnotary.proof.facts import (
    EXIT_FAILED,
    EXIT_NOT_PINNED,
    EXIT_ORDER,
    EXIT_PASS,
    EXIT_UNCHECKED,
    EXIT_UNUSABLE,
)
from trialnotary.proof.verify.claims import (
    load_receipt,
    parse_address,
    parse_confirmations,
    parse_receipt,
    parse_rpc_url,
)
from trialnotary.proof.verify.notary import load_identity
from trialnotary.proof.verify.report import Report, exit_code_of, render_text
from trialnotary.proof.verify.verifier import check

#: How the command's summary of several receipts names each exit code.
_OUTCOMES = {EXIT_PASS: "passed", EXIT_NOT_PINNED: "passed but not pinned",
             EXIT_UNCHECKED: "not checked on chain", EXIT_FAILED: "failed",
             EXIT_UNUSABLE: "unusable"}


@dataclass
class _Outcome:
    """One receipt given to the command: its report, or why it cannot be used."""

    path: str
    report: Report | None = None
    error: str | None = None

    @property
    def exit_code(self) -> int:
        return self.report.verdict.exit_code if self.report is not None else EXIT_UNUSABLE

    def to_json(self) -> dict:
        if self.report is None:
            return {"receipt": self.path, "ok": False, "error": self.error,
                    "exitCode": EXIT_UNUSABLE}
        return {"receipt": self.path, **self.report.to_json()}

    def text(self) -> str:
        if self.report is None:
            return f"Not a usable receipt: {self.error}"
        return render_text(self.report)


def main(receipt_paths: str | Path | Iterable[str | Path], *,
         file_path: str | Path | None = None, rpc_urls: list[str],
         confirmations: str | None = None, expect_sender: str | None = None,
         notary: str | None = None, as_json: bool = False,
         tsa_ca: Iterable[str | Path] = (), require: Iterable[str] = ()) -> int:
    """``trialnotary verify RECEIPT...``; the exit code is the contract of the README:
    0 every check passed and the origin is pinned (``--notary`` or ``--expect-sender``),
    1 a check failed, 2 unusable input (a notary identity that cannot be read included),
    3 every check passed but the origin is not pinned, 4 no node answered. With several
    receipts the worst wins; ``--json`` then prints a list. Without ``confirmations``,
    each receipt's chain decides (``facts.default_confirmations``). ``tsa_ca``: PEM files
    of the certificates a time-stamp authority must chain to; ``require``: anchor names
    that must be checked (``all``: every anchor of each receipt)."""
    paths = ([receipt_paths] if isinstance(receipt_paths, str | Path)
             else list(receipt_paths))
    try:
        if not paths:
            raise ValueError("give at least one receipt")
        if file_path is not None and len(paths) > 1:
            raise ValueError(f"--file goes with one receipt, not {len(paths)}: verify "
                             "each file with its own receipt")
        options = check_options(rpc_urls=rpc_urls, confirmations=confirmations,
                                expect_sender=expect_sender, notary=notary, tsa_ca=tsa_ca,
                                require=require)
    except ValueError as exc:
        return usage_error(str(exc), as_json)
    options["file_path"] = file_path
    outcomes = [_verify_path(str(path), options) for path in paths]
    for outcome in outcomes:
        if outcome.error is not None:
            print(f"error: {outcome.path}: not a usable receipt: {outcome.error}",
                  file=sys.stderr)
    if len(outcomes) == 1:
        _print_one(outcomes[0], as_json)
    else:
        _print_several(outcomes, as_json)
    return exit_code_of(outcome.exit_code for outcome in outcomes)


def check_options(*, rpc_urls: list[str], confirmations: str | None = None,
                  expect_sender: str | None = None, notary: str | None = None,
                  tsa_ca: Iterable[str | Path] = (), require: Iterable[str] = ()) -> dict:
    """The keyword arguments of :func:`~trialnotary.proof.verify.verifier.check` for the
    options of one run, the notary's identity read; ``ValueError`` names a bad option. Its
    ``anchors`` dict is shared by every receipt of the run, so each anchor is checked once
    however many receipts share it."""
    need = parse_confirmations(confirmations) if confirmations is not None else None
    pinned = parse_address(expect_sender) if expect_sender else None
    urls = _parse_rpc_options(rpc_urls)
    identity = load_identity(notary) if notary is not None else None
    return {"rpc_urls": urls or None, "confirmations": need, "expect_sender": pinned,
            "notary": identity, "anchors": {}, "tsa_ca": _load_tsa_ca(tsa_ca),
            "require": _parse_require(require)}


def _parse_rpc_options(rpc_urls: list[str]) -> list[str]:
    try:
        return [parse_rpc_url(url) for url in rpc_urls]
    except ValueError as exc:
        raise ValueError(f"--rpc: {exc}") from None


def _load_tsa_ca(paths: Iterable[str | Path]) -> tuple:
    """The certificates of every ``--tsa-ca`` file (PEM, one or several in a file)."""
    paths = list(paths)
    if not paths:
        return ()
    from trialnotary.proof import tsa

    certificates = []
    for path in paths:
        try:
            pem = Path(path).read_bytes()
        except OSError as exc:
            raise ValueError(f"--tsa-ca {path}: cannot read it: {exc.strerror or exc}") from None
        try:
            found = tsa.load_certificates(pem)
        except ValueError as exc:
            raise ValueError(f"--tsa-ca {path}: {exc}") from None
        if not found:
            raise ValueError(f"--tsa-ca {path}: holds no PEM certificate")
        certificates += found
    return tuple(certificates)


def _parse_require(names: Iterable[str]) -> tuple[str, ...]:
    required = tuple(name.strip() for name in names)
    if any(not name for name in required):
        raise ValueError("--require names an anchor (or 'all'), not an empty name")
    return required


def _verify_path(path: str, options: dict) -> _Outcome:
    try:
        claims = parse_receipt(load_receipt(path))
    except ReceiptError as exc:
        return _Outcome(path, error=str(exc))
    return _Outcome(path, check(claims, **options))


def _print_one(outcome: _Outcome, as_json: bool) -> None:
    if as_json:
        answer = (outcome.to_json() if outcome.report is not None
                  else {"ok": False, "error": f"{outcome.path}: not a usable receipt: "
                                             f"{outcome.error}"})
        print(json.dumps(answer, indent=2))
    elif outcome.report is not None:
        print(outcome.text())


def _print_several(outcomes: list[_Outcome], as_json: bool) -> None:
    if as_json:
        print(json.dumps([outcome.to_json() for outcome in outcomes], indent=2))
        return
    for outcome in outcomes:
        print(f"== {outcome.path}")
        print(outcome.text())
        print()
    counts = {code: sum(o.exit_code == code for o in outcomes) for code in EXIT_ORDER}
    print(f"{len(outcomes)} receipts: " + ", ".join(
        f"{count} {_OUTCOMES[code]}" for code, count in counts.items() if count))


def usage_error(message: str, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"ok": False, "error": message}))
    print(f"error: {message}", file=sys.stderr)
    return EXIT_UNUSABLE
