"""Keccak-256, Ethereum's hash (the original Keccak padding, not NIST's SHA3-256)."""

from __future__ import annotations

from functools import cache


@cache
def _keccak():
    """pycryptodome's Keccak, imported on first use: loading it (its C library, through
    cffi's declaration parser) costs a start-up that a receipt without evidence need not
    pay."""
    from Crypto.Hash import keccak

    return keccak


def keccak256(data: bytes) -> bytes:
    return _keccak().new(digest_bits=256, data=data).digest()
