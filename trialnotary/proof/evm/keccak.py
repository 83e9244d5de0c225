"""Keccak-256, Ethereum's hash (the original Keccak padding, not NIST's SHA3-256)."""

from __future__ import annotations

from Crypto.Hash import keccak


def keccak256(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()
