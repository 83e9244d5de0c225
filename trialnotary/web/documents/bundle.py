"""The receipts bundle: a zip of receipts, an ``index.csv`` listing every registration of its
scope, a ``HOW-TO-VERIFY.txt`` naming the notary, its identity and its anchoring addresses,
and the self-contained verifier page."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable
from datetime import UTC, datetime

from trialnotary.filenames import MAX_FILENAME, safe_filename
from trialnotary.proof.facts import IDENTITY_PATH
from trialnotary.web.documents.tables import INDEX_COLUMNS, report_csv

#: The self-contained verifier page's name in the zip.
PAGE_NAME = "verify-receipts.html"

HOW_TO_VERIFY = """\
Receipts of {scope}, exported {generated_at} (UTC)

receipts/ holds one receipt (a JSON file) per confirmed registration. index.csv lists every
registration of {scope}: it is a listing, not a proof. Each receipt is the proof.{page}

WHAT A RECEIPT PROVES

- Without trusting anyone: the file whose SHA-256 is in the receipt existed no later than
  the time of the Ethereum block that holds the batch's Merkle root ("blockTime", UTC).
  That block time is the proven time.
- On the notary's word, made tamper-evident: the record in the receipt (trial, site, kind,
  dataset label, file name, submittedAt) is what the notary registered. The account that
  sent the anchoring transaction ("sender") is the notary's: its published identity lists it.

WHAT IT DOES NOT PROVE

- Who made the file, or that its content is correct or complete.
- When the file was made or registered: "submittedAt" is the notary's claim; only the
  block time is proven, and only as a "no later than".
- Anything about a file whose SHA-256 differs in any way.

THE NOTARY

{notary}

{addresses}

HOW TO VERIFY ONE RECEIPT

With the command-line verifier (Python 3.11 or later):

    pip install trialnotary          (or, from a clone of the source: pip install .)
    trialnotary verify receipts/<name>.receipt.json --file <the data file> \\
        --notary {pin}

--notary takes the notary's URL or a saved copy of its identity document: the anchor must
come from an address the identity lists for the block's time. --expect-sender {sender}
pins one address instead. --rpc <URL of an Ethereum node of the receipt's chain> asks that
node (your own or any public one, not the notary) rather than the chain's public default.

index.csv names each registration's receipt file (column receiptFile). The verifier hashes
the file locally, recomputes the leaf and the Merkle path, checks the chain evidence the
receipt carries and asks the node only whether its block is on the chain. Its first line is
the verdict in words. Exit status 0 means every step passed and the origin is pinned; 3 that
every step passed but nothing pinned the origin (no --notary or --expect-sender); 1 that a
step failed; 4 that no node answered; --json prints the steps. A receipt (or this file)
cannot vouch for itself: pin what the notary publishes.

In a browser: open {browser_page}.
Give it the receipt and the data file: the file is hashed in the browser and never
uploaded; the page asks a chain node, not the notary.
"""


def _entry_name(name: str, seen: set[str]) -> str:
    """``name`` made safe to unzip inside ``receipts/`` and unique there, never refused:
    a bundle of any trial always downloads. Names are told apart case-insensitively
    (Windows and macOS unzip ``A`` and ``a`` onto the same file); a repeated one gets a
    number before its extension."""
    safe = candidate = safe_filename(name)
    number = 1
    while candidate.casefold() in seen:
        number += 1
        stem, dot, extension = safe.partition(".")
        candidate = safe_filename(f"{stem[:MAX_FILENAME - 32]}_{number}{dot}{extension}")
    seen.add(candidate.casefold())
    return candidate


def _zip_time(generated_at: str) -> tuple[int, int, int, int, int, int]:
    """The entries' timestamp: ``generated_at`` in UTC (zip stores local time, no zone)."""
    moment = datetime.fromisoformat(generated_at)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return max(tuple(moment.timetuple()[:6]), (1980, 1, 1, 0, 0, 0))


def how_to_verify_text(*, scope: str, generated_at: str, senders: list[str],
                       anchoring_address: str | None = None, notary: dict | None = None,
                       with_page: bool = False) -> str:
    """The bundle's HOW-TO-VERIFY.txt for the receipts of ``scope`` ("trial NCT01234567"),
    naming the notary (``{"name", "url"}``) and its identity, the addresses that sent their
    anchors (without any receipt yet, the notary's present ``anchoring_address``), and the
    verifier page beside it when ``with_page``."""
    if senders:
        intro = "The anchoring transactions of these receipts were sent from:"
    elif anchoring_address:
        intro = "No receipt is confirmed yet. The notary anchors from:"
        senders = [anchoring_address]
    else:
        intro = "No receipt is confirmed yet."
    listed = "".join(f"\n    {address}" for address in senders)
    addresses = intro + (f"\n{listed}\n\nThat account is the notary's identity on chain."
                         if senders else "")
    sender = senders[0] if len(senders) == 1 else \
        "<the receipt's address above>" if senders else \
        "<the notary's published anchoring address>"
    url = (notary or {}).get("url")
    if url:
        identity_url = url.rstrip("/") + IDENTITY_PATH
        about = (f"These receipts were issued by {notary.get('name')}, {url}.\n"
                 f"Its identity document, {identity_url},\n"
                 "lists every address it anchors from, per chain, with the time each was in\n"
                 "use: pin it, and a receipt anchored by anyone else fails.")
    else:
        about = f"The notary publishes its identity document at <its URL>{IDENTITY_PATH}."
    page = (f"\n{PAGE_NAME} verifies them in a browser, opened from disk: it needs no server."
            if with_page else "")
    browser_page = (f"{PAGE_NAME} from this zip (every script is in it, and the\n"
                    "notary's identity as it was at the export), or the notary's /verify page"
                    if with_page else "the notary's /verify page")
    return HOW_TO_VERIFY.format(scope=scope, generated_at=generated_at, addresses=addresses,
                                sender=sender, notary=about, page=page,
                                pin=url or "<the notary's URL or saved identity document>",
                                browser_page=browser_page)


def write_bundle(fileobj, *, trial: str | None, generated_at: str,
                 receipts: Iterable[tuple[str, dict]], rows: Iterable[dict],
                 how_to_verify: str | None = None, anchoring_address: str | None = None,
                 scope: str | None = None, notary: dict | None = None,
                 verifier_page: str | None = None) -> int:
    """Write a zip of the trial's receipts to ``fileobj``; the number of receipts written.
    ``scope`` says what the zip holds when it is not one whole trial ("site SITE-01");
    ``verifier_page``, the self-contained verifier page's HTML, goes in beside the how-to.

    ``receipts`` is read once, so it may be a generator. Each name is made safe and unique
    as it is written (see ``_entry_name``); the index (with each row's ``receiptFile``) and
    the how-to (with the anchors' senders, else ``anchoring_address``) follow the receipts,
    written from what was actually put in.
    """
    stamp = _zip_time(generated_at)
    seen: set[str] = set()
    files: dict[str, str] = {}
    senders: list[str] = []
    with zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name, receipt in receipts:
            path = f"receipts/{_entry_name(name, seen)}"
            _add(bundle, path, json.dumps(receipt, indent=2, ensure_ascii=False) + "\n", stamp)
            files[receipt["trialnotary"]["record"]["id"]] = path
            for anchor in receipt.get("anchors", []):
                if anchor.get("sender") and anchor["sender"] not in senders:
                    senders.append(anchor["sender"])
        _add(bundle, "index.csv", report_csv(
            ({**row, "receiptFile": files.get(row["id"])} for row in rows),
            columns=INDEX_COLUMNS), stamp)
        if how_to_verify is None:
            how_to_verify = how_to_verify_text(scope=scope or f"trial {trial}",
                                               generated_at=generated_at,
                                               senders=senders,
                                               anchoring_address=anchoring_address,
                                               notary=notary,
                                               with_page=verifier_page is not None)
        _add(bundle, "HOW-TO-VERIFY.txt", how_to_verify, stamp)
        if verifier_page is not None:
            _add(bundle, PAGE_NAME, verifier_page, stamp)
    return len(files)


def _add(bundle: zipfile.ZipFile, name: str, text: str, stamp) -> None:
    info = zipfile.ZipInfo(name, date_time=stamp)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    bundle.writestr(info, text.encode("utf-8"))
