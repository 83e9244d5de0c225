"""The pages' one blueprint, ``web``, and what several page modules share.

Every module of ``pages`` adds its views to this blueprint, so the endpoint names that
templates pass to ``url_for`` (``web.registration``, ``web.trial_dashboard``, ...) name no
module and stay put when a view moves.
"""

from __future__ import annotations

from flask import Blueprint

from trialnotary.notary import overview
from trialnotary.notary.states import RegistrationStatus
from trialnotary.proof.facts import MILESTONE_KINDS, SIGN_OFF_KIND
from trialnotary.web import query
from trialnotary.web.context import db_session, services

bp = Blueprint("web", __name__)

KIND_LABELS = {"dataset": "Dataset", "protocol": "Protocol", "sap": "Statistical analysis plan",
               "consent-form": "Consent form", "report": "Report", "other": "Other",
               "database-lock": "Database lock", "unblinding": "Unblinding",
               "randomisation-list": "Randomisation list",
               "analysis-results": "Analysis results", "csr": "Clinical study report",
               SIGN_OFF_KIND: "Sign-off"}
#: The register form's choice of kinds: documents and data, then milestones (never a
#: sign-off: those are made by signing a registration on its page).
KIND_GROUPS = (
    ("Documents and data", {k: v for k, v in KIND_LABELS.items()
                            if k not in MILESTONE_KINDS and k != SIGN_OFF_KIND}),
    ("Milestones", {k: KIND_LABELS[k] for k in MILESTONE_KINDS}),
)
#: The statuses a list can be filtered by, in lifecycle order.
STATUSES = tuple(RegistrationStatus)


def page_number() -> int:
    """The list page asked for (``?page=``), the first by default."""
    return query.integer("page", low=1, high=query.DB_INT_MAX) or 1


def expected_wait() -> overview.Wait:
    """What registrations made now wait for, as the waiting notices show it."""
    settings = services().settings
    return overview.expected_wait(db_session(),
                                  seal_interval_seconds=settings.seal_interval_seconds,
                                  confirmations=settings.confirmations,
                                  chain_id=settings.chain_id)
