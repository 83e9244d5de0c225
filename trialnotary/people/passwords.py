"""Passwords: the policy, generated ones, and their memory-hard hash (Argon2id).

Every check costs one Argon2 verification, whether or not a user has the address, so that
no answer is faster for an unknown or disabled user.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from trialnotary.people.errors import InvalidInput

MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024

_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so that a miss takes as long as a hit.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def check_password(password, email: str) -> str:
    """The password policy: long enough, not absurdly long, not the e-mail address."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_CHARS:
        raise InvalidInput("password", f"must have at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise InvalidInput("password", f"must have at most {MAX_PASSWORD_CHARS} characters")
    if password.strip().lower() == email:
        raise InvalidInput("password", "must not be the e-mail address")
    return password


def generated_password() -> str:
    return secrets.token_urlsafe(15)


def hashed(password: str) -> str:
    return _hasher.hash(password)


def matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def miss(password) -> bool:
    """``False``, after as long as checking a real password takes."""
    try:
        _hasher.verify(_DUMMY_HASH, password if isinstance(password, str) else "")
    except VerificationError:
        pass
    return False


def needs_rehash(password_hash: str) -> bool:
    """Whether a stored hash was made with other parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)
