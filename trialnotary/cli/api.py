"""The notary's JSON API as the client commands talk to it: one keep-alive session, retries
of what is safe to retry, bulk bodies cut to the server's limits.

Only ``requests`` talks to the server: no Flask and no database here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import requests

from trialnotary.cli.errors import CliError, ServerRefused

BULK_MAX_ITEMS = 10_000
# Below the server's 16 MiB body limit.
BULK_MAX_BYTES = 15 * 1024 * 1024
ATTEMPTS = 5
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
POLL_MIN_SECONDS = 1.0
POLL_MAX_SECONDS = 60.0
TIMEOUT = (10, 120)


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
            raise ServerRefused.from_response(response)
        try:
            answers = response.json()["submissions"]
        except (ValueError, KeyError, TypeError):
            answers = None
        if not isinstance(answers, list) or len(answers) != len(items):
            raise CliError("the server's answer does not list every registration")
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
                    raise CliError(f"cannot reach {self.base}: {_reason(exc)}") from None
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
