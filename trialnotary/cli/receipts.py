"""Receipts from the server: wait for them, name them, save them exactly as served
(``trialnotary receipt``, and ``submit --wait``/``--out``)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from email.message import Message
from pathlib import Path

import requests

from trialnotary.cli.api import POLL_MIN_SECONDS, Api, retry_after
from trialnotary.cli.errors import (
    EXIT_ERROR,
    EXIT_NOT_CONFIRMED,
    EXIT_OK,
    CliError,
    ServerRefused,
)
from trialnotary.cli.files import Entry
from trialnotary.filenames import receipt_filename, safe_filename
from trialnotary.notary.states import RegistrationStatus


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
        raise CliError(f"the server's receipt is not a trialnotary receipt ({exc})") from None


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
        pending = [entry for entry in pending if entry.status != RegistrationStatus.CONFIRMED]
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
            raise CliError(f"{entry.shown} ({entry.id}): receipt: "
                           f"{ServerRefused.from_response(response)}")
        entry.status = RegistrationStatus.CONFIRMED
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
        raise ServerRefused.from_response(response)
    except (CliError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        api.close()
