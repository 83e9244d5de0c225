"""The states of batches, anchors and registrations, named once.

They are ``StrEnum``s: each member equals its string, so the stored column values, the API's
JSON and the templates keep the same words.
"""

from __future__ import annotations

from enum import StrEnum


class BatchState(StrEnum):
    """A sealed tree: sealed → sent → confirmed."""

    SEALED = "sealed"
    SENT = "sent"
    CONFIRMED = "confirmed"


class AnchorState(StrEnum):
    """One anchoring transaction; see ``notary.models.Anchor`` for what each end state means."""

    SIGNED = "signed"
    SENT = "sent"
    CONFIRMED = "confirmed"
    REPLACED = "replaced"
    DROPPED = "dropped"
    FAILED = "failed"


LIVE_ANCHOR_STATES = (AnchorState.SIGNED, AnchorState.SENT)


class RegistrationStatus(StrEnum):
    """What a registration's owner sees: waiting, in a sealed batch, anchor sent, confirmed."""

    PENDING = "pending"
    SEALED = "sealed"
    SENT = "sent"
    CONFIRMED = "confirmed"
