"""``trialnotary submit``, the client side of registration: hash files locally, register
them, and optionally wait for their receipts.

Only hashes leave the machine. It hashes every file first (a read error registers nothing),
then registers in bulk, then optionally waits for the receipts. Which files and labels:
``trialnotary.cli.files``. ``--out DIR`` implies ``--wait``: the receipts can only be saved
once they exist. Options and exit codes: docs/cli.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

from trialnotary.cli.api import Api, bulk_chunks
from trialnotary.cli.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, CliError, ServerRefused
from trialnotary.cli.files import Entry, collect
from trialnotary.cli.interrupts import ctrl_c_interrupts
from trialnotary.cli.receipts import wait_for_receipts
from trialnotary.notary.states import RegistrationStatus
from trialnotary.validation import ValidationError, validate_registration

CHUNK_BYTES = 1024 * 1024

_INDEXED_FIELD = re.compile(r"submissions\[(\d+)\](.*)")


# --- hashing -------------------------------------------------------------------------

def new_buffer(size: int = CHUNK_BYTES) -> memoryview:
    return memoryview(bytearray(size))


def hash_file(path: str | os.PathLike, *, buffer: memoryview | None = None,
              progress: tqdm | None = None) -> tuple[str, int]:
    """The SHA-256 (hex) of a file and the number of bytes hashed.

    Reads straight into ``buffer`` (no copies, no allocation per chunk) through an
    unbuffered file; ``update`` releases the GIL, so a progress bar costs one cheap call
    per chunk.
    """
    buffer = new_buffer() if buffer is None else buffer
    digest = hashlib.sha256()
    total = 0
    with open(path, "rb", buffering=0) as file:
        while read := file.readinto(buffer):
            digest.update(buffer[:read])
            total += read
            if progress is not None:
                progress.update(read)
    return digest.hexdigest(), total


def hash_entries(entries: list[Entry], progress: tqdm) -> None:
    buffer = new_buffer()
    for entry in entries:
        try:
            entry.sha256, entry.size = hash_file(entry.path, buffer=buffer, progress=progress)
        except OSError as exc:
            raise CliError(f"cannot read {entry.shown}: {exc.strerror or exc}") from None


def progress_bar(total: int, *, enabled: bool, stream=None) -> tqdm:
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="hashing",
                file=stream or sys.stderr, disable=not enabled, leave=False)


# --- what the server would refuse ----------------------------------------------------

def check_locally(entries: list[Entry], *, trial: str, site: str, kind: str,
                  supersedes: str | None, reason: str | None = None,
                  not_before: dict | None = None) -> None:
    """Refuse what the server would refuse, before hashing anything, so a bad label or a
    too-long path never leaves the earlier bulk chunks registered and the later ones not.
    The server remains the judge (unknown trials, enrolment, tokens)."""
    for entry in entries:
        try:
            validate_registration(_item(entry, trial=trial, site=site, kind=kind,
                                        supersedes=supersedes, reason=reason,
                                        not_before=not_before, sha256="0" * 64))
        except ValidationError as exc:
            where = f"{exc.field}: " if exc.field else ""
            raise CliError(f"{entry.shown}: {where}{exc.message}") from None


def check_correctable(api: Api, supersedes: str, files: int) -> None:
    """Before hashing: a correction is one file, of a registration not corrected yet (a
    registration is superseded at most once). The server checks it again on registering."""
    if files != 1:
        raise CliError(f"--supersedes corrects one registration with one file, not {files}: "
                       "a registration is superseded at most once")
    response = api.request("GET", f"/submissions/{supersedes}")
    if response.status_code == 404:
        raise CliError(f"--supersedes: the server has no registration {supersedes}")
    if response.status_code != 200:
        raise ServerRefused.from_response(response)
    corrected_by = response.json().get("supersededBy")
    if corrected_by:
        raise CliError(f"--supersedes: registration {supersedes} is already superseded by "
                       f"{corrected_by}; a registration is superseded at most once: to "
                       f"correct it again, give --supersedes {corrected_by}")


def _item(entry: Entry, *, trial: str, site: str, kind: str, supersedes: str | None,
          reason: str | None = None, not_before: dict | None = None,
          sha256: str | None = None) -> dict:
    item = {"trial": trial, "site": site, "kind": kind, "dataset": entry.dataset,
            "sha256": sha256 or entry.sha256, "sizeBytes": entry.size,
            "filename": entry.filename, "supersedes": supersedes}
    if not_before is not None:
        item["notBefore"] = not_before
    return item if reason is None else {**item, "reason": reason}


def parse_not_before(text: str | None) -> dict | None:
    """``--not-before``: the JSON of a block (``trialnotary beacon``'s ``notBefore``)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise CliError("--not-before must be JSON: {\"chainId\": …, \"blockNumber\": …, "
                       "\"blockHash\": \"0x…\"} (trialnotary beacon prints it)") from None


# --- registering ---------------------------------------------------------------------

def register(api: Api, entries: list[Entry], items: list[dict]) -> None:
    """Register every entry, chunk by chunk, filling in ids and statuses."""
    for offset, chunk in bulk_chunks(items):
        try:
            answers = api.post_bulk(chunk, str(uuid.uuid4()))
        except ServerRefused as exc:
            raise _located(exc, entries, offset) from None
        for entry, answer in zip(entries[offset:offset + len(chunk)], answers, strict=True):
            entry.id, entry.status = answer["id"], answer.get("status")


def _located(exc: ServerRefused, entries: list[Entry], offset: int) -> CliError:
    """The error with ``submissions[i].x`` of a chunk turned into the file it is about."""
    where = ""
    match = _INDEXED_FIELD.fullmatch(exc.field or "")
    if match and offset + int(match[1]) < len(entries):
        entry = entries[offset + int(match[1])]
        where = f"{entry.shown}: {match[2].lstrip('.') or 'item'}: "
    elif exc.field:
        where = f"{exc.field}: "
    return CliError(f"server refused the registration ({exc.code}): {where}{exc.message}")


# --- output --------------------------------------------------------------------------

def print_table(entries: list[Entry]) -> None:
    print(f"{'status':<10} {'id':<36} {'sha256':<64} path")
    for entry in entries:
        print(f"{entry.status or '-':<10} {entry.id or '-':<36} {entry.sha256 or '-':<64} "
              f"{entry.shown}")


def print_json(entries: list[Entry]) -> None:
    print(json.dumps([entry.view() for entry in entries], indent=2, ensure_ascii=False))


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _report_pending(entries: list[Entry]) -> None:
    pending = [entry for entry in entries if entry.status != RegistrationStatus.CONFIRMED]
    _say(f"interrupted: {len(pending)} registration(s) not confirmed yet:")
    for entry in pending:
        _say(f"  {entry.id}  {entry.status or RegistrationStatus.PENDING}  {entry.shown}")
    _say("fetch their receipts later with `trialnotary receipt ID -o DIR/`")


# --- the command ---------------------------------------------------------------------

def run(*, paths: Iterable[str], trial: str, site: str, kind: str = "dataset",
        dataset: str | None = None, supersedes: str | None = None, reason: str | None = None,
        not_before: str | None = None, wait: bool = False, out: str | None = None,
        as_json: bool = False, server: str, token: str) -> int:
    """``trialnotary submit``: hash, register, and with ``--wait``/``--out`` fetch receipts.
    Returns the exit code: 0 done, 1 error, 130 interrupted while waiting."""
    api = Api(server, token)
    try:
        return _run(api, list(paths), trial=trial, site=site, kind=kind, dataset=dataset,
                    supersedes=supersedes, reason=reason,
                    not_before=parse_not_before(not_before), wait=wait or out is not None,
                    out=Path(out) if out else None, as_json=as_json)
    except (CliError, OSError) as exc:
        _say(f"error: {exc}")
        return EXIT_ERROR
    finally:
        api.close()


def _run(api: Api, paths: list[str], *, trial: str, site: str, kind: str,
         dataset: str | None, supersedes: str | None, reason: str | None,
         not_before: dict | None, wait: bool, out: Path | None, as_json: bool) -> int:
    if reason is not None and supersedes is None:
        raise CliError("--reason is for a correction: give --supersedes ID too")
    entries, skipped = collect(paths, dataset)
    check_locally(entries, trial=trial, site=site, kind=kind, supersedes=supersedes,
                  reason=reason, not_before=not_before)
    if supersedes is not None:
        check_correctable(api, supersedes, len(entries))
    if out is not None:
        _make_dir(out)
    if skipped and not as_json:
        _say(f"skipped {skipped} item(s) in folders: hidden names, symlinks, special files")
    total = sum(entry.size for entry in entries)
    with progress_bar(total, enabled=sys.stderr.isatty() and not as_json) as bar:
        hash_entries(entries, bar)
    items = [_item(entry, trial=trial, site=site, kind=kind, supersedes=supersedes,
                   reason=reason, not_before=not_before) for entry in entries]
    try:
        register(api, entries, items)
    except CliError:
        _show_registered([entry for entry in entries if entry.id], as_json)
        raise
    if not as_json:
        print_table(entries)
    if wait:
        try:
            code = _wait(api, entries, out, as_json)
        except (CliError, OSError):
            if as_json:
                print_json(entries)
            raise
        if code != EXIT_OK:
            return code
    if as_json:
        print_json(entries)
    return EXIT_OK


def _make_dir(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create {out}: {exc.strerror or exc}") from None


def _show_registered(registered: list[Entry], as_json: bool) -> None:
    """Before a failure is reported, the registrations that did go through (earlier
    chunks), so their ids are not lost."""
    if not registered:
        return
    _say(f"{len(registered)} file(s) were registered before the failure:")
    if as_json:
        print_json(registered)
    else:
        print_table(registered)


def _wait(api: Api, entries: list[Entry], out: Path | None, as_json: bool) -> int:
    last_status: list[str | None] = [None]

    def confirmed(entry: Entry) -> None:
        if not as_json:
            saved = f" -> {entry.receipt}" if entry.receipt else ""
            print(f"confirmed  {entry.id}  {entry.shown}{saved}", flush=True)

    def waiting(count: int, status: str | None) -> None:
        if not as_json and status != last_status[0]:
            _say(f"waiting for {count} receipt(s), next one is "
                 f"{status or RegistrationStatus.PENDING} (Ctrl-C to stop)")
            last_status[0] = status

    try:
        with ctrl_c_interrupts():
            wait_for_receipts(api, entries, out, confirmed, waiting)
    except KeyboardInterrupt:
        _report_pending(entries)
        if as_json:
            print_json(entries)
        return EXIT_INTERRUPTED
    return EXIT_OK
