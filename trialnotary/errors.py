"""The root of every error the service raises on purpose: ``TrialnotaryError``.

Each layer has its own base under it (``notary.errors.NotaryError``,
``people.errors.PeopleError``, ``cli.errors.CliError``, ``web.responses.ApiError``), and
the shared modules' errors (``ConfigError``, ``ValidationError``, ``WriterBusy``) derive
from it directly. ``proof`` keeps its own root, ``proof.errors.ProofError``: it installs
and runs alone, so it imports nothing of ours.
"""

from __future__ import annotations


class TrialnotaryError(Exception):
    """Anything trialnotary refuses or cannot do, as opposed to a bug."""
