"""The client side of registration: hash files locally, register them, fetch receipts.

Only hashes leave the machine. ``trialnotary submit`` hashes every file first (a read error
registers nothing), then registers in bulk, then optionally waits for the receipts.

Which files a folder contributes: regular files found by walking it recursively, in sorted
order of their relative paths (compared component by component, by code point), so the same
folder always gives the same list. Skipped, with a count on stderr: hidden entries (names
starting with ``.``, such as ``.DS_Store`` or ``.git``), symbolic links (never followed, so no
cycles and nothing from outside the folder), and anything that is not a regular file or a
directory. A path named on the command line is used as given, even if it is a symlink.

Labels: a file's label (``dataset``) defaults to its name and its ``filename`` is its name; a
folder's label defaults to the folder's name and each ``filename`` is the path relative to the
folder with ``/`` separators. ``--dataset`` overrides the label of everything submitted.

``--out DIR`` implies ``--wait``: the receipts can only be saved once they exist.

Only ``requests`` talks to the server: no Flask and no database here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import requests
from tqdm import tqdm

from trialnotary.cli.interrupts import ctrl_c_interrupts
from trialnotary.filenames import receipt_filename, safe_filename
from trialnotary.validation import ValidationError, validate_registration

CHUNK_BYTES = 1024 * 1024
BULK_MAX_ITEMS = 10_000
# Below the server's 16 MiB body limit.
BULK_MAX_BYTES = 15 * 1024 * 1024
ATTEMPTS = 5
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
POLL_MIN_SECONDS = 1.0
POLL_MAX_SECONDS = 60.0
TIMEOUT = (10, 120)

EXIT_OK, EXIT_ERROR, EXIT_NOT_CONFIRMED, EXIT_INTERRUPTED = 0, 1, 3, 130

_INDEXED_FIELD = re.compile(r"submissions\[(\d+)\](.*)")


@dataclass
class Entry:
    """One file to register, and what the server said about it."""

    path: Path
    shown: str
    dataset: str
    filename: str
    size: int
    sha256: str | None = None
    id: str | None = None
    status: str | None = None
    receipt: str | None = None

    def view(self) -> dict:
        return {"path": self.shown, "id": self.id, "sha256": self.sha256,
                "status": self.status, "receipt": self.receipt}


class SubmitError(Exception):
    """A failure to report to the user as one line."""


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
            raise SubmitError(f"cannot read {entry.shown}: {exc.strerror or exc}") from None


def progress_bar(total: int, *, enabled: bool, stream=None) -> tqdm:
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="hashing",
                file=stream or sys.stderr, disable=not enabled, leave=False)


# --- which files ---------------------------------------------------------------------

def walk_folder(folder: Path) -> tuple[list[tuple[Path, str]], int]:
    """Regular files under ``folder`` as (path, relative POSIX path), sorted; and how many
    entries were skipped (hidden, symlinks, special files)."""
    found: list[tuple[Path, str]] = []
    skipped = _walk(folder, (), found)
    return found, skipped


def _walk(folder: Path, parts: tuple[str, ...], found: list) -> int:
    skipped = 0
    with os.scandir(folder) as scan:
        entries = sorted(scan, key=lambda e: e.name)
    for entry in entries:
        if entry.name.startswith(".") or entry.is_symlink():
            skipped += 1
        elif entry.is_dir(follow_symlinks=False):
            skipped += _walk(Path(entry.path), (*parts, entry.name), found)
        elif entry.is_file(follow_symlinks=False):
            found.append((Path(entry.path), "/".join((*parts, entry.name))))
        else:
            skipped += 1
    return skipped


def collect(paths: Iterable[str], dataset: str | None = None) -> tuple[list[Entry], int]:
    """The files to register for the given paths, with their labels and file names; and
    how many entries of folders were skipped."""
    entries: list[Entry] = []
    skipped = 0
    for given in paths:
        try:
            found, skipped_here = _collect_one(given, dataset)
        except OSError as exc:
            raise SubmitError(f"cannot read {exc.filename or given}: "
                              f"{exc.strerror or exc}") from None
        entries += found
        skipped += skipped_here
    return entries, skipped


def _collect_one(given: str, dataset: str | None) -> tuple[list[Entry], int]:
    path = Path(given)
    if path.is_file():
        return [Entry(path=path, shown=given, dataset=dataset or path.name,
                      filename=path.name, size=_size(path))], 0
    if not path.is_dir():
        raise SubmitError(f"{given}: not a regular file or a folder")
    files, skipped = walk_folder(path)
    if not files:
        raise SubmitError(f"{given}: no files to register in this folder")
    label = dataset if dataset is not None else _folder_name(path)
    return [Entry(path=file, shown=os.path.join(given, *relative.split("/")), dataset=label,
                  filename=relative, size=_size(file)) for file, relative in files], skipped


def _folder_name(path: Path) -> str:
    return path.resolve().name or str(path.resolve())


def _size(path: Path) -> int:
    return path.stat().st_size


def check_locally(entries: list[Entry], *, trial: str, site: str, kind: str,
                  supersedes: str | None, reason: str | None = None) -> None:
    """Refuse what the server would refuse, before hashing anything, so a bad label or a
    too-long path never leaves the earlier bulk chunks registered and the later ones not.
    The server remains the judge (unknown trials, enrolment, tokens)."""
    for entry in entries:
        try:
            validate_registration(_item(entry, trial=trial, site=site, kind=kind,
                                      supersedes=supersedes, reason=reason, sha256="0" * 64))
        except ValidationError as exc:
            where = f"{exc.field}: " if exc.field else ""
            raise SubmitError(f"{entry.shown}: {where}{exc.message}") from None


def check_correctable(api: Api, supersedes: str, files: int) -> None:
    """Before hashing: a correction is one file, of a registration not corrected yet (a
    registration is superseded at most once). The server checks it again on registering."""
    if files != 1:
        raise SubmitError(f"--supersedes corrects one registration with one file, not {files}: "
                          "a registration is superseded at most once")
    response = api.request("GET", f"/submissions/{supersedes}")
    if response.status_code == 404:
        raise SubmitError(f"--supersedes: the server has no registration {supersedes}")
    if response.status_code != 200:
        raise ApiError.from_response(response)
    corrected_by = response.json().get("supersededBy")
    if corrected_by:
        raise SubmitError(f"--supersedes: registration {supersedes} is already superseded by "
                          f"{corrected_by}; a registration is superseded at most once: to "
                          f"correct it again, give --supersedes {corrected_by}")


def _item(entry: Entry, *, trial: str, site: str, kind: str, supersedes: str | None,
          reason: str | None = None, sha256: str | None = None) -> dict:
    item = {"trial": trial, "site": site, "kind": kind, "dataset": entry.dataset,
            "sha256": sha256 or entry.sha256, "sizeBytes": entry.size,
            "filename": entry.filename, "supersedes": supersedes}
    return item if reason is None else {**item, "reason": reason}


# --- talking to the server -----------------------------------------------------------

class ApiError(SubmitError):
    """An error answer: ``{"error": {"code", "message", "field"}}``, or something else."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message, self.field = status, code, message, field

    @classmethod
    def from_response(cls, response: requests.Response) -> ApiError:
        try:
            error = response.json()["error"]
            return cls(response.status_code, str(error.get("code")), str(error.get("message")),
                       error.get("field"))
        except (ValueError, KeyError, TypeError, AttributeError):
            text = " ".join(response.text.split())[:200]
            return cls(response.status_code, f"HTTP {response.status_code}",
                       text or response.reason or "no details")


class Api:
    """The JSON API over one keep-alive session, retrying what is safe to retry."""

    def __init__(self, server: str, token: str | None = None):
        self.base = server.rstrip("/") + "/api/v1"
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "trialnotary-cli"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self.session.close()

    def post_bulk(self, items: list[dict], key: str) -> list[dict]:
        """Register one chunk under Idempotency-Key ``key``. Every retry sends the same
        key, so a retry after a lost answer gets the first answer instead of registering
        the chunk twice."""
        response = self.request("POST", "/submissions/bulk", data=_body(items), headers={
            "Content-Type": "application/json; charset=utf-8", "Idempotency-Key": key})
        if response.status_code != 201:
            raise ApiError.from_response(response)
        try:
            answers = response.json()["submissions"]
        except (ValueError, KeyError, TypeError):
            answers = None
        if not isinstance(answers, list) or len(answers) != len(items):
            raise SubmitError("the server's answer does not list every registration")
        return answers

    def get_receipt(self, registration_id: str) -> requests.Response:
        return self.request("GET", f"/submissions/{registration_id}/receipt")

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        """Send, retrying connection errors, 5xx and 429 with backoff (or Retry-After)."""
        url = self.base + path
        for attempt in range(ATTEMPTS):
            last = attempt == ATTEMPTS - 1
            try:
                response = self.session.request(method, url, timeout=TIMEOUT, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if last:
                    raise SubmitError(f"cannot reach {self.base}: {_reason(exc)}") from None
                delay = _backoff(attempt)
            else:
                if last or response.status_code not in RETRY_STATUSES:
                    return response
                delay = retry_after(response, _backoff(attempt))
            time.sleep(delay)
        raise AssertionError("unreachable")


def _backoff(attempt: int) -> float:
    return 0.5 * 2**attempt


def _reason(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 300 else type(exc).__name__


def retry_after(response: requests.Response, default: float) -> float:
    """Seconds from a numeric Retry-After header, kept within [1 s, 60 s]."""
    try:
        seconds = float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        seconds = default
    return min(max(seconds, POLL_MIN_SECONDS), POLL_MAX_SECONDS)


def bulk_chunks(items: list[dict]) -> Iterator[tuple[int, list[dict]]]:
    """(offset, chunk) with at most BULK_MAX_ITEMS items and BULK_MAX_BYTES of JSON each."""
    envelope = len(_body([]))
    start, size = 0, envelope
    for index, item in enumerate(items):
        item_bytes = len(json.dumps(item, ensure_ascii=False).encode()) + len(", ")
        if index > start and (index - start >= BULK_MAX_ITEMS
                              or size + item_bytes > BULK_MAX_BYTES):
            yield start, items[start:index]
            start, size = index, envelope
        size += item_bytes
    if start < len(items):
        yield start, items[start:]


def _body(items: list[dict]) -> bytes:
    return json.dumps({"submissions": items}, ensure_ascii=False).encode()


def register(api: Api, entries: list[Entry], items: list[dict]) -> None:
    """Register every entry, chunk by chunk, filling in ids and statuses."""
    for offset, chunk in bulk_chunks(items):
        try:
            answers = api.post_bulk(chunk, str(uuid.uuid4()))
        except ApiError as exc:
            raise _located(exc, entries, offset) from None
        for entry, answer in zip(entries[offset:offset + len(chunk)], answers, strict=True):
            entry.id, entry.status = answer["id"], answer.get("status")


def _located(exc: ApiError, entries: list[Entry], offset: int) -> SubmitError:
    """The error with ``submissions[i].x`` of a chunk turned into the file it is about."""
    where = ""
    match = _INDEXED_FIELD.fullmatch(exc.field or "")
    if match and offset + int(match[1]) < len(entries):
        entry = entries[offset + int(match[1])]
        where = f"{entry.shown}: {match[2].lstrip('.') or 'item'}: "
    elif exc.field:
        where = f"{exc.field}: "
    return SubmitError(f"server refused the registration ({exc.code}): {where}{exc.message}")


# --- receipts ------------------------------------------------------------------------

def download_name(response: requests.Response) -> str:
    """The receipt's file name from Content-Disposition, or rebuilt from its record when the
    header is missing or names anything but a safe file name (see ``safe_filename``)."""
    header = Message()
    header["Content-Disposition"] = response.headers.get("Content-Disposition", "")
    name = header.get_filename()
    if name and safe_filename(name) == name:
        return name
    try:
        record = response.json()["trialnotary"]["record"]
        return receipt_filename(record["trial"], record["dataset"], record["id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise SubmitError(f"the server's receipt is not a trialnotary receipt ({exc})") from None


def save_receipt(response: requests.Response, target: Path) -> Path:
    """Write the receipt's bytes exactly as served, atomically: a reader never sees half."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".receipt-")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(response.content)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def receipt_target(output: str, response: requests.Response) -> Path:
    """``-o``'s path: a folder (one that exists, or a name ending with a slash) gets the
    receipt under its download name, as ``submit --out`` does; anything else is the file."""
    if output.endswith(("/", os.sep)) or Path(output).is_dir():
        return Path(output) / download_name(response)
    return Path(output)


def _status_of(response: requests.Response) -> str | None:
    try:
        return response.json().get("status")
    except (ValueError, AttributeError):
        return None


def wait_for_receipts(api: Api, entries: list[Entry], out: Path | None,
                      on_confirmed: Callable[[Entry], None],
                      on_waiting: Callable[[int, str | None], None]) -> None:
    """Poll until every receipt is served, saving each into ``out`` as soon as it is.

    Registrations are sealed in the order they were made, so a round stops at the first
    one not confirmed yet: each round costs one request plus one per new receipt, not one
    per file.
    """
    pending = list(entries)
    while pending:
        delay, status = _poll_round(api, pending, out, on_confirmed)
        pending = [entry for entry in pending if entry.status != "confirmed"]
        if pending:
            on_waiting(len(pending), status)
            time.sleep(delay)


def _poll_round(api: Api, pending: list[Entry], out: Path | None,
                on_confirmed: Callable[[Entry], None]) -> tuple[float, str | None]:
    for entry in pending:
        response = api.get_receipt(entry.id)
        if response.status_code == 202:
            entry.status = _status_of(response) or entry.status
            return retry_after(response, POLL_MIN_SECONDS), entry.status
        if response.status_code != 200:
            raise SubmitError(f"{entry.shown} ({entry.id}): receipt: "
                              f"{ApiError.from_response(response)}")
        entry.status = "confirmed"
        if out is not None:
            entry.receipt = str(save_receipt(response, out / download_name(response)))
        on_confirmed(entry)
    return POLL_MIN_SECONDS, None


def fetch_receipt(server: str, registration_id: str, output: str | None) -> int:
    """``trialnotary receipt ID [-o FILE|DIR]``: the receipt's bytes on stdout, or saved
    (and the path printed). 0 done, 3 not confirmed yet, 1 otherwise."""
    api = Api(server)
    try:
        response = api.get_receipt(registration_id)
        if response.status_code == 200:
            if output is None:
                sys.stdout.buffer.write(response.content)
                sys.stdout.flush()
            else:
                print(save_receipt(response, receipt_target(output, response)))
            return EXIT_OK
        if response.status_code == 202:
            status = _status_of(response) or "not confirmed"
            print(f"registration {registration_id} is {status}: not confirmed yet, "
                  "try again later", file=sys.stderr)
            return EXIT_NOT_CONFIRMED
        if response.status_code == 404:
            print(f"error: no registration {registration_id} on {server}", file=sys.stderr)
            return EXIT_ERROR
        raise ApiError.from_response(response)
    except (SubmitError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        api.close()


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
    pending = [entry for entry in entries if entry.status != "confirmed"]
    _say(f"interrupted: {len(pending)} registration(s) not confirmed yet:")
    for entry in pending:
        _say(f"  {entry.id}  {entry.status or 'pending'}  {entry.shown}")
    _say("fetch their receipts later with `trialnotary receipt ID -o DIR/`")


# --- the command ---------------------------------------------------------------------

def run(*, paths: Iterable[str], trial: str, site: str, kind: str = "dataset",
        dataset: str | None = None, supersedes: str | None = None, reason: str | None = None,
        wait: bool = False, out: str | None = None, as_json: bool = False, server: str,
        token: str) -> int:
    """``trialnotary submit``: hash, register, and with ``--wait``/``--out`` fetch receipts.
    Returns the exit code: 0 done, 1 error, 130 interrupted while waiting."""
    api = Api(server, token)
    try:
        return _run(api, list(paths), trial=trial, site=site, kind=kind, dataset=dataset,
                    supersedes=supersedes, reason=reason, wait=wait or out is not None,
                    out=Path(out) if out else None, as_json=as_json)
    except (SubmitError, OSError) as exc:
        _say(f"error: {exc}")
        return EXIT_ERROR
    finally:
        api.close()


def _run(api: Api, paths: list[str], *, trial: str, site: str, kind: str,
         dataset: str | None, supersedes: str | None, reason: str | None, wait: bool,
         out: Path | None, as_json: bool) -> int:
    if reason is not None and supersedes is None:
        raise SubmitError("--reason is for a correction: give --supersedes ID too")
    entries, skipped = collect(paths, dataset)
    check_locally(entries, trial=trial, site=site, kind=kind, supersedes=supersedes,
                  reason=reason)
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
                   reason=reason) for entry in entries]
    try:
        register(api, entries, items)
    except SubmitError:
        _show_registered([entry for entry in entries if entry.id], as_json)
        raise
    if not as_json:
        print_table(entries)
    if wait:
        try:
            code = _wait(api, entries, out, as_json)
        except (SubmitError, OSError):
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
        raise SubmitError(f"cannot create {out}: {exc.strerror or exc}") from None


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
            _say(f"waiting for {count} receipt(s), next one is {status or 'pending'} "
                 "(Ctrl-C to stop)")
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
