"""The notary's errors, under one base: a caller tells the notary's refusals and failures
apart from anything else by ``NotaryError``.

They say what went wrong, never how to answer it: the web layer maps the refusals of a
registration to HTTP statuses (``web/api.py``). Invalid input raises
``trialnotary.validation.ValidationError``, shared with the layers the notary builds on.
Those that were ``RuntimeError``s stay ``RuntimeError``s, for callers that catch that.
"""

from __future__ import annotations

from trialnotary.config import ConfigError
from trialnotary.errors import TrialnotaryError


class NotaryError(TrialnotaryError):
    """Anything the notary refuses to do or cannot do."""


# --- refusals of a registration --------------------------------------------------------

class RegistrationRefused(NotaryError):
    """A registration request refused before anything was stored: ``field`` names the part
    of the request at fault (or ``None``), ``message`` says why."""

    field: str | None = None
    message: str = ""

    def __init__(self, field: str | None = None, message: str | None = None):
        if field is not None:
            self.field = field
        if message is not None:
            self.message = message
        super().__init__(self.message)


class Unauthorized(RegistrationRefused):
    """No live site token: unknown, expired or revoked."""


class Forbidden(RegistrationRefused):
    """The registrant may not register this (another site's registration)."""

    def __init__(self, field: str | None, message: str):
        super().__init__(field, message)


class IdempotencyMismatch(RegistrationRefused):
    """An ``Idempotency-Key`` reused with another request."""

    field = "Idempotency-Key"
    message = "this Idempotency-Key was used with another request in the last 24 hours"


class BlockUnchecked(RegistrationRefused):
    """A ``notBefore`` block could not be checked: the notary's node of its chain does not
    answer. Nothing is stored; the request may be retried after ``retry_after`` seconds."""

    retry_after = 10


# --- sealing -------------------------------------------------------------------------

class SealingRaced(NotaryError):
    """The rows given leaf indexes were not exactly the rows hashed into the tree."""


class SealingFailed(NotaryError, RuntimeError):
    """Sealing kept racing with registrations committing out of order."""


class TreeBroken(NotaryError, RuntimeError):
    """A batch's stored leaves no longer give its root: its tree cannot be rebuilt."""


# --- the chain -----------------------------------------------------------------------

class ChainError(NotaryError, RuntimeError):
    """The chain cannot be used right now (unreachable, wrong chain, fees over the cap)."""


class ChainUnreachable(ChainError):
    """No configured node answers."""


class FeeAboveCap(ChainError):
    """The fees the node asks (or a replacement needs) are above TRIALNOTARY_MAX_FEE_GWEI."""


class InsufficientFunds(ChainError):
    """The anchoring account cannot pay for the transaction."""


class EvidenceUnavailable(ChainError):
    """A confirmed anchor's chain evidence cannot be taken from the node: its answers do not
    rebuild the block's header or roots, or it lacks a method the evidence needs."""


class BlockMoved(EvidenceUnavailable):
    """The anchor's block is no longer the one at its height: the evidence waits for the
    next round (where a reorg is followed first)."""


# --- the scheduler -------------------------------------------------------------------

class SchedulerAlreadyRunning(NotaryError, RuntimeError):
    """Another process already runs the scheduler on this SQLite database."""


class IdentityRefused(NotaryError, ValueError):
    """A change to the notary's identity that cannot be made: an unknown anchor or address,
    a key file that holds no key, a key used before, a time that is no time."""


class RetireRefused(NotaryError, ValueError):
    """``anchor retire`` cannot go on: an unknown anchor, none left to renew it, or
    anchors of it whose chain evidence cannot be had (without ``--force``)."""


# --- RFC 3161 time-stamp authorities --------------------------------------------------

class TsaUnreachable(ChainUnreachable):
    """The time-stamp authority does not answer (refused, timed out, HTTP 429 or 5xx): an
    anchor that cannot be used right now, tried again later, as a silent chain node is."""


class TsaRefused(ChainError):
    """The TSA answered but did not grant the time-stamp (its PKIStatus and text say why)."""


class TsaMisconfigured(NotaryError, ConfigError):
    """The configured TSA cannot be used as it is: its replies are not time-stamp replies
    the library reads, or its tokens do not verify against the configured certificate
    authority. The message names the URL and says what is wrong."""


# --- refusals of a sign-off ------------------------------------------------------------

class UnknownRegistration(RegistrationRefused):
    """No registration has the id to sign."""

    field = "id"
    message = "no registration has this id"


class WrongPassword(RegistrationRefused):
    """The e-mail address or the password re-entered at signing is not the signer's (21 CFR
    Part 11 §11.200): nothing is signed, and the failure counts as a failed sign-in."""

    field = "password"
    message = "the e-mail address or the password is not yours: nothing was signed"


class SigningThrottled(RegistrationRefused):
    """Too many failed passwords from this client: it must wait until ``retry_at``."""

    field = "password"
    message = "too many wrong passwords: nothing was signed; try again later"

    def __init__(self, retry_at):
        super().__init__()
        self.retry_at = retry_at


class AlreadySigned(RegistrationRefused):
    """The signer signed this registration with this meaning before."""

    field = "meaning"
