"""Registrations: registering them (``registering``), answering a retried request as the
first time (``idempotency``), correcting them (``corrections``) and looking them up
(``lookups``).

The names the web, the CLI and the benchmarks use are gathered here, so that a caller says
``registrations.submit`` or ``registrations.status_of`` without knowing which module holds
it.
"""

from trialnotary.notary.errors import Forbidden, IdempotencyMismatch, Unauthorized
from trialnotary.notary.registrations.corrections import (
    already_corrected,
    corrections_by_target,
    first_corrections,
)
from trialnotary.notary.registrations.idempotency import (
    IDEMPOTENCY_TTL,
    MAX_IDEMPOTENCY_KEY,
    Answer,
    IdempotentRequest,
    check_idempotency_key,
    purge_expired_keys,
    remember,
    request_digest,
    stored_answer,
)
from trialnotary.notary.registrations.lookups import (
    MAX_LOOKUP,
    RETRY_AFTER_PENDING_MAX,
    RETRY_AFTER_SEALED,
    ReceiptLookup,
    batch_of,
    corrections_of,
    download,
    find_by_sha256,
    reason_of,
    receipt_of,
    registered_in_trials,
    retry_after,
    sign_offs_of,
    status_of,
)
from trialnotary.notary.registrations.registering import (
    MAX_BULK,
    Registrant,
    UserRegistrant,
    check_items,
    leaf_of,
    new_records,
    register,
    register_as_user,
    store,
    submit,
    validated_items,
)

__all__ = [
    "IDEMPOTENCY_TTL", "MAX_BULK", "MAX_IDEMPOTENCY_KEY", "MAX_LOOKUP",
    "RETRY_AFTER_PENDING_MAX", "RETRY_AFTER_SEALED", "Answer", "Forbidden",
    "IdempotencyMismatch", "IdempotentRequest", "ReceiptLookup", "Registrant", "Unauthorized",
    "UserRegistrant", "already_corrected", "batch_of", "check_idempotency_key", "check_items",
    "corrections_by_target", "corrections_of", "download", "find_by_sha256",
    "first_corrections", "leaf_of", "new_records", "purge_expired_keys", "reason_of",
    "receipt_of", "register", "register_as_user", "registered_in_trials", "remember",
    "request_digest", "retry_after", "sign_offs_of", "status_of", "store", "stored_answer",
    "submit",
    "validated_items",
]
