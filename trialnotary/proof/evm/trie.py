"""Checking a Merkle-Patricia proof: that a trie with a given root holds a value at a key.

A proof is the list of RLP-encoded nodes on the path from the root, each one referred to by
its Keccak-256 hash from the one before it (the first is the root). A node whose encoding is
shorter than 32 bytes is not referred to by hash: it sits inside its parent, and is not a
separate entry of the proof. This is the Ethereum yellow paper's trie (appendix D), the one
under a block header's ``transactionsRoot`` and ``receiptsRoot``.
"""

from __future__ import annotations

from trialnotary.proof.errors import EvidenceError
from trialnotary.proof.evm import rlp
from trialnotary.proof.evm.keccak import keccak256

_BRANCH_WIDTH = 17
_HASH_SIZE = 32


def nibbles(key: bytes) -> list[int]:
    return [half for byte in key for half in (byte >> 4, byte & 0x0F)]


def verify_proof(root: bytes, key: bytes, proof: list[bytes], *, what: str = "proof") -> bytes:
    """The value stored at ``key`` in the trie of ``root``, by ``proof``; raises
    :class:`EvidenceError` saying where the proof does not hold (a node that does not hash
    to its reference, a path that leads elsewhere, the key absent, nodes left over)."""
    if not proof:
        raise EvidenceError(f"{what} is empty")
    path, remaining = nibbles(key), list(proof)
    node = _hashed_node(root, remaining, what, depth=0)
    depth = 0
    while True:
        depth += 1
        step, value = _step(node, path, what, depth)
        if value is not None:
            if remaining:
                raise EvidenceError(f"{what}: {len(remaining)} node(s) left over after the "
                                    f"value")
            return value
        path, reference = step
        node = _follow(reference, remaining, what, depth)


def _hashed_node(reference: bytes, remaining: list[bytes], what: str, depth: int) -> list:
    if not remaining:
        raise EvidenceError(f"{what}: ends after {depth} node(s), before the key's value")
    encoded = remaining.pop(0)
    if keccak256(encoded) != reference:
        target = "the root" if depth == 0 else f"its reference in node {depth}"
        raise EvidenceError(f"{what}: node {depth + 1} does not hash to {target}")
    return rlp.as_list(rlp.decode(encoded, what=f"{what} node {depth + 1}"),
                       f"{what} node {depth + 1}")


def _follow(reference: rlp.Item, remaining: list[bytes], what: str, depth: int) -> list:
    """The child a node refers to: by hash (the next node of the proof) or inline."""
    if isinstance(reference, list):
        if len(rlp.encode(reference)) >= _HASH_SIZE:
            raise EvidenceError(f"{what}: node {depth} holds a child of 32 bytes or more "
                                "inline")
        return reference
    if len(reference) != _HASH_SIZE:
        raise EvidenceError(f"{what}: node {depth} refers to a child by {len(reference)} "
                            "bytes, not a 32-byte hash")
    return _hashed_node(reference, remaining, what, depth)


def _step(node: list, path: list[int], what: str, depth: int):
    """One node down: ``((path left, child reference), None)`` or ``(None, value)``."""
    where = f"{what} node {depth}"
    if len(node) == _BRANCH_WIDTH:
        if not path:
            return None, _present(rlp.as_bytes(node[16], f"{where} value"), where)
        child = node[path[0]]
        if child == b"":
            raise EvidenceError(f"{where}: the key is not in the trie (empty branch "
                                f"{path[0]:x})")
        return (path[1:], child), None
    if len(node) != 2:
        raise EvidenceError(f"{where} has {len(node)} items: neither a branch (17) nor a "
                            "leaf or extension (2)")
    is_leaf, partial = _hex_prefix(rlp.as_bytes(node[0], f"{where} path"), where)
    if is_leaf:
        if partial != path:
            raise EvidenceError(f"{where}: a leaf of another key (the key is not in the trie)")
        return None, _present(rlp.as_bytes(node[1], f"{where} value"), where)
    if not partial or path[:len(partial)] != partial:
        raise EvidenceError(f"{where}: an extension that leads away from the key")
    return (path[len(partial):], node[1]), None


def _present(value: bytes, where: str) -> bytes:
    if value == b"":
        raise EvidenceError(f"{where}: the key is not in the trie (no value)")
    return value


def _hex_prefix(encoded: bytes, where: str) -> tuple[bool, list[int]]:
    """Hex-prefix decoding (yellow paper, appendix C): (is a leaf, the path's nibbles)."""
    if not encoded:
        raise EvidenceError(f"{where}: an empty path")
    flag, halves = encoded[0] >> 4, nibbles(encoded)
    if flag > 3:
        raise EvidenceError(f"{where}: path flag {flag} is not a hex-prefix flag")
    odd = flag & 1
    if not odd and halves[1] != 0:
        raise EvidenceError(f"{where}: an even path with a non-zero padding nibble")
    return bool(flag & 2), halves[1:] if odd else halves[2:]
