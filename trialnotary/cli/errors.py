"""The client commands' failures and exit codes (``submit``, ``receipt``): a failure is
told as one line, ``error: …`` on stderr, with exit code 1 (see docs/cli.md).

The other commands refuse through ``click.ClickException`` (``Error: …``), as click does.
"""

from __future__ import annotations

from trialnotary.errors import TrialnotaryError

EXIT_OK, EXIT_ERROR, EXIT_NOT_CONFIRMED, EXIT_INTERRUPTED = 0, 1, 3, 130


class CliError(TrialnotaryError):
    """A failure to report to the user as one line."""


class ServerRefused(CliError):
    """The server's error answer: ``{"error": {"code", "message", "field"}}``, or whatever
    else it sent with an error status."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message, self.field = status, code, message, field

    @classmethod
    def from_response(cls, response) -> ServerRefused:
        """From a ``requests.Response`` with an error status."""
        try:
            error = response.json()["error"]
            return cls(response.status_code, str(error.get("code")), str(error.get("message")),
                       error.get("field"))
        except (ValueError, KeyError, TypeError, AttributeError):
            text = " ".join(response.text.split())[:200]
            return cls(response.status_code, f"HTTP {response.status_code}",
                       text or response.reason or "no details")
