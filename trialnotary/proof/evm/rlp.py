"""Recursive Length Prefix, Ethereum's serialisation: strict decoding and encoding.

An item is ``bytes`` or a list of items. Decoding refuses every encoding that is not the one
canonical form (a single byte below 0x80 wrapped in a length prefix, a long form for a short
payload, a length with leading zeros, trailing bytes), so each value has exactly one
encoding and a hash over it means one thing.
"""

from __future__ import annotations

from trialnotary.proof.errors import EvidenceError

Item = bytes | list

_SHORT = 55  # payloads up to this length carry their length in the prefix byte
#: Deeper than anything Ethereum writes (a receipt's log topics are four lists down), and
#: far from Python's recursion limit: a hostile receipt cannot exhaust the stack.
MAX_DEPTH = 16


def encode(item: Item) -> bytes:
    if isinstance(item, bytes | bytearray):
        payload = bytes(item)
        if len(payload) == 1 and payload[0] < 0x80:
            return payload
        return _prefix(len(payload), 0x80) + payload
    if isinstance(item, list | tuple):
        payload = b"".join(encode(child) for child in item)
        return _prefix(len(payload), 0xC0) + payload
    raise TypeError(f"cannot RLP-encode {type(item).__name__}")


def encode_int(value: int) -> bytes:
    """The big-endian bytes of a non-negative integer, without leading zeros (0 is empty):
    the form in which RLP carries numbers."""
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def _prefix(length: int, offset: int) -> bytes:
    if length <= _SHORT:
        return bytes([offset + length])
    size = encode_int(length)
    return bytes([offset + _SHORT + len(size)]) + size


def decode(data: bytes, *, what: str = "RLP") -> Item:
    """The one item ``data`` encodes; :class:`EvidenceError` on any non-canonical form."""
    data = bytes(data)
    item, end = _item(data, 0, len(data), what, 0)
    if end != len(data):
        raise EvidenceError(f"{what}: {len(data) - end} byte(s) after the item")
    return item


def _item(data: bytes, start: int, limit: int, what: str, depth: int) -> tuple[Item, int]:
    """The item at ``start``, which must end by ``limit`` (its enclosing list's end)."""
    if depth > MAX_DEPTH:
        raise EvidenceError(f"{what}: lists nested deeper than {MAX_DEPTH}")
    if start >= limit:
        raise EvidenceError(f"{what}: ends before its item")
    first = data[start]
    if first < 0x80:
        return data[start:start + 1], start + 1
    is_list = first >= 0xC0
    kind = first - (0xC0 if is_list else 0x80)
    if kind <= _SHORT:
        length, body = kind, start + 1
    else:
        length, body = _long_length(data, start + 1, limit, kind - _SHORT, what)
    end = body + length
    if end > limit:
        raise EvidenceError(f"{what}: an item of {length} bytes runs past the end")
    if not is_list:
        if length == 1 and data[body] < 0x80:
            raise EvidenceError(f"{what}: a single byte below 0x80 must stand for itself")
        return data[body:end], end
    children, at = [], body
    while at < end:
        child, at = _item(data, at, end, what, depth + 1)
        children.append(child)
    return children, end


def _long_length(data: bytes, start: int, limit: int, size: int,
                 what: str) -> tuple[int, int]:
    digits = data[start:min(start + size, limit)]
    if len(digits) != size:
        raise EvidenceError(f"{what}: ends inside a length")
    if digits[0] == 0:
        raise EvidenceError(f"{what}: a length with leading zeros")
    length = int.from_bytes(digits, "big")
    if length <= _SHORT:
        raise EvidenceError(f"{what}: a long form for a payload of {length} bytes")
    return length, start + size


def as_int(item: Item, what: str) -> int:
    """An RLP number: bytes without leading zeros."""
    if not isinstance(item, bytes):
        raise EvidenceError(f"{what} must be a number, not a list")
    if item[:1] == b"\x00":
        raise EvidenceError(f"{what} has leading zeros")
    return int.from_bytes(item, "big")


def as_bytes(item: Item, what: str, size: int | None = None) -> bytes:
    if not isinstance(item, bytes):
        raise EvidenceError(f"{what} must be a string of bytes, not a list")
    if size is not None and len(item) != size:
        raise EvidenceError(f"{what} must be {size} bytes, not {len(item)}")
    return item


def as_list(item: Item, what: str) -> list:
    if not isinstance(item, list):
        raise EvidenceError(f"{what} must be a list")
    return item
