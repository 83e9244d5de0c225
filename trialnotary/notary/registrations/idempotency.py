"""Idempotency keys: a retried registration request gets its first answer back and
stores nothing.

The answer is kept with the registrations, in the same transaction, for 24 hours per token
and key; the key's request is known by a digest of its path and canonical body.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from trialnotary.db import utcnow
from trialnotary.notary.errors import IdempotencyMismatch
from trialnotary.notary.models import IdempotencyKey
from trialnotary.validation import ValidationError

IDEMPOTENCY_TTL = timedelta(hours=24)
MAX_IDEMPOTENCY_KEY = 255
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")
IDEMPOTENCY_FIELD = IdempotencyMismatch.field


@dataclass(frozen=True)
class Answer:
    """A response to a registration request, as it is sent and as it is replayed: its
    status code is the caller's (the web layer's), kept as it was given."""

    status: int
    body: str
    replayed: bool = False


@dataclass(frozen=True)
class IdempotentRequest:
    token_id: int
    key: str
    digest: str


def check_idempotency_key(key: str) -> str:
    if len(key) > MAX_IDEMPOTENCY_KEY or not IDEMPOTENCY_KEY.fullmatch(key):
        raise ValidationError(IDEMPOTENCY_FIELD, f"must be 1 to {MAX_IDEMPOTENCY_KEY} printable "
                                                 "ASCII characters, not starting or ending "
                                                 "with a space")
    return key


def request_digest(path: str, payload: Any) -> str:
    """SHA-256 of the path and the canonical body, so a re-serialised retry still matches."""
    body = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{path}\n{body}".encode()).hexdigest()


def stored_answer(session: Session, request: IdempotentRequest) -> Answer | None:
    """The kept answer for this token and key (expired ones ignored), or ``None``.

    Raises ``IdempotencyMismatch`` when the key was used with another request.
    """
    row = session.execute(
        select(IdempotencyKey.request_digest, IdempotencyKey.status_code,
               IdempotencyKey.response_body)
        .where(IdempotencyKey.token_id == request.token_id, IdempotencyKey.key == request.key,
               IdempotencyKey.created_at > utcnow() - IDEMPOTENCY_TTL)
    ).first()
    if row is None:
        return None
    if row.request_digest != request.digest:
        raise IdempotencyMismatch()
    return Answer(row.status_code, row.response_body, replayed=True)


def remember(session: Session, request: IdempotentRequest, answer: Answer) -> None:
    """Keep the answer; the token's expired keys go now, so a reused key can be stored."""
    now = utcnow()
    session.execute(sa.delete(IdempotencyKey).where(
        IdempotencyKey.token_id == request.token_id,
        IdempotencyKey.created_at <= now - IDEMPOTENCY_TTL))
    session.execute(sa.insert(IdempotencyKey).values(
        token_id=request.token_id, key=request.key, request_digest=request.digest,
        status_code=answer.status, response_body=answer.body, created_at=now))


def purge_expired_keys(session: Session) -> int:
    """Delete every expired idempotency record (for a periodic job); returns how many."""
    return session.execute(sa.delete(IdempotencyKey).where(
        IdempotencyKey.created_at <= utcnow() - IDEMPOTENCY_TTL)).rowcount
