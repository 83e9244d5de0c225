"""A receipts bundle (the zip the notary serves: ``GET /trials/T/receipts.zip``) read in
memory, never extracted, exactly as the verifier page reads it (static/js/receipts-zip.js:
the same steps in the same order, the same words), so that the CLI and the browser read the
same entries or refuse the same zip. Not :mod:`zipfile`: it reads some zips another way than
a hand-written reader would (a name cut at NUL, a zip64 locator followed or not, an entry
count trusted), so a zip two readers could read two ways is refused here
(docs/verification.md, "Was it pre-specified?").

Each ``*.receipt.json`` entry is read at most one byte past a receipt's size limit whatever
its header says, at most :data:`~trialnotary.proof.facts.MAX_BUNDLE_ENTRIES` entries and
:data:`~trialnotary.proof.facts.MAX_BUNDLE_INFLATED` bytes inflated in all."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from trialnotary.proof.errors import ProofError, ReceiptError
from trialnotary.proof.facts import (
    BUNDLE_RECEIPT_SUFFIX,
    MAX_BUNDLE_ENTRIES,
    MAX_BUNDLE_INFLATED,
    MAX_RECEIPT_BYTES,
)
from trialnotary.proof.verify.claims import read_receipt

END, END64, END64_LOCATOR = 0x06054B50, 0x06064B50, 0x07064B50
CENTRAL, LOCAL = 0x02014B50, 0x04034B50
STORED, DEFLATED = 0, 8
MASK16, MASK32 = 0xFFFF, 0xFFFFFFFF
_CHUNK = 1 << 16


class BundleError(ProofError, ValueError):
    """The bundle as a whole cannot be used (a usage error, exit 2)."""


@dataclass
class _Entry:
    name: str
    name_bytes: bytes
    flags: int
    method: int
    crc: int
    compressed_size: int
    size: int
    offset: int
    start: int = 0


def read_bundle(path: str) -> list[tuple[str, dict | ReceiptError]]:
    """The receipts of the zip at ``path``, in the order of their names: ``(name, receipt)``,
    or ``(name, ReceiptError)`` for an entry that cannot be read as a receipt.
    :class:`BundleError` when it is not a zip, an ambiguous one, holds too many entries,
    inflates past the budget or holds no receipt."""
    def not_zip(why: str) -> BundleError:
        return BundleError(f"{path}: not a readable zip ({why})")

    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise BundleError(f"{path}: not a readable zip ({exc})") from None
    with handle:
        count, size, start, shift = _directory_end(handle, not_zip)
        if count > MAX_BUNDLE_ENTRIES:
            raise BundleError(f"{path}: more than {MAX_BUNDLE_ENTRIES} entries")
        entries = _central_directory(_bytes_at(handle, start, size), count, shift, not_zip)
        receipts = [entry for entry in entries if not entry.name.endswith("/")
                    and entry.name.endswith(BUNDLE_RECEIPT_SUFFIX)]
        if not receipts:
            raise BundleError(f"{path}: holds no {BUNDLE_RECEIPT_SUFFIX} entry")
        _locate(handle, receipts, start, not_zip)
        budget = [MAX_BUNDLE_INFLATED]
        read: list[tuple[str, dict | ReceiptError]] = []
        for entry in sorted(receipts, key=lambda entry: entry.name_bytes):
            try:
                read.append((entry.name, read_receipt(_entry_bytes(handle, entry, budget,
                                                                   path))))
            except ReceiptError as exc:
                read.append((entry.name, exc))
        return read


def _bytes_at(handle: BinaryIO, offset: int, length: int) -> bytes:
    handle.seek(offset)
    return handle.read(length)


def _u64(data: bytes, at: int, not_zip) -> int:
    """A u64 of a zip64 record, refused beyond what the browser's numbers hold exactly."""
    value = struct.unpack_from("<Q", data, at)[0]
    if value > 2**53 - 1:
        raise not_zip("a zip64 size is too large")
    return value


def _directory_end(handle: BinaryIO, not_zip) -> tuple[int, int, int, int]:
    """The end of central directory record, its comment running to the end of the file (and
    its zip64 form when its fields call for one): how many entries, where the central
    directory starts and its size, and how far data put before the zip moved every offset.
    A zip64 locator the record does not call for is refused: readers differ on whether to
    follow it."""
    file_size = handle.seek(0, 2)
    tail_length = min(file_size, 22 + MASK16)
    tail = _bytes_at(handle, file_size - tail_length, tail_length)
    at = len(tail) - 22
    while at >= 0 and not (struct.unpack_from("<I", tail, at)[0] == END and
                           at + 22 + struct.unpack_from("<H", tail, at + 20)[0] == len(tail)):
        at -= 1
    if at < 0:
        raise not_zip("File is not a zip file")
    end = file_size - tail_length + at
    disk, directory_disk, on_disk, count, size, offset = struct.unpack_from("<HHHHII", tail,
                                                                            at + 4)
    if disk != 0 or directory_disk != 0 or on_disk != count:
        raise not_zip("it spans several disks")
    located = end >= 20 and struct.unpack("<I", _bytes_at(handle, end - 20, 4))[0] \
        == END64_LOCATOR
    called = count == MASK16 or size == MASK32 or offset == MASK32
    if located and not called:
        raise not_zip("a zip64 locator its end record does not call for")
    if located:
        if end - 20 < 56:
            raise not_zip("Corrupt zip64 end of central directory locator")
        end64 = _bytes_at(handle, end - 20 - 56, 56)
        if struct.unpack_from("<I", end64)[0] != END64:
            raise not_zip("Zip64 end of central directory record not found")
        count, size, offset = (_u64(end64, 32, not_zip), _u64(end64, 40, not_zip),
                               _u64(end64, 48, not_zip))
        if _u64(end64, 24, not_zip) != count:
            raise not_zip("it spans several disks")
        end -= 20 + 56
    start = end - size
    if start < 0 or start < offset:
        raise not_zip("Bad offset for central directory")
    return count, size, start, start - offset


def _central_directory(data: bytes, count: int, shift: int, not_zip) -> list[_Entry]:
    """Every entry of the central directory, walked over its whole size, which must hold
    exactly the entries its end record counts."""
    entries: list[_Entry] = []
    at = 0
    while at < len(data) and len(entries) <= count:
        if at + 46 > len(data) or struct.unpack_from("<I", data, at)[0] != CENTRAL:
            raise not_zip("Bad magic number for central directory")
        (flags, method, crc, compressed_size, size, name_length, extra_length,
         comment_length) = struct.unpack_from("<HH4xIIIHHH", data, at + 8)
        offset = struct.unpack_from("<I", data, at + 42)[0]
        following = at + 46 + name_length + extra_length + comment_length
        if following > len(data):
            raise not_zip("Bad magic number for central directory")
        name_bytes = data[at + 46:at + 46 + name_length]
        entry = _Entry(_entry_name(name_bytes, flags, not_zip), name_bytes, flags, method, crc,
                       compressed_size, size, offset)
        _zip64_extra(entry, data[at + 46 + name_length:at + 46 + name_length + extra_length],
                     not_zip)
        entry.offset += shift
        entries.append(entry)
        at = following
    if len(entries) != count or at != len(data):
        raise not_zip(f"its central directory does not hold exactly the {count} entries its "
                      f"end record counts")
    return entries


def _entry_name(name_bytes: bytes, flags: int, not_zip) -> str:
    """UTF-8 when its flag (0x800) says so, else ASCII; no NUL (readers cut the name there,
    or not)."""
    if b"\0" in name_bytes:
        raise not_zip("an entry's name holds a NUL byte")
    if flags & 0x800:
        try:
            return name_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise not_zip("an entry's name is marked UTF-8 but is not") from None
    if not name_bytes.isascii():
        raise not_zip("an entry's name is neither ASCII nor marked UTF-8")
    return name_bytes.decode("ascii")


def _zip64_extra(entry: _Entry, extra: bytes, not_zip) -> None:
    """The zip64 extra field (0x0001): the sizes and offset a u32 could not hold, in order."""
    at = 0
    while at + 4 <= len(extra):
        kind, length = struct.unpack_from("<HH", extra, at)
        if kind == 1:
            field = at + 4
            for key in ("size", "compressed_size", "offset"):
                if getattr(entry, key) == MASK32 and field + 8 <= min(at + 4 + length,
                                                                      len(extra)):
                    setattr(entry, key, _u64(extra, field, not_zip))
                    field += 8
        at += 4 + length


def _locate(handle: BinaryIO, receipts: list[_Entry], directory_start: int, not_zip) -> None:
    """Where each receipt entry's data are, from its local header (whose name must be the
    directory's): before the central directory, no two overlapping (a zip whose entries
    share their data inflates one stream many times)."""
    end = 0
    for entry in sorted(receipts, key=lambda entry: entry.offset):
        header = _bytes_at(handle, entry.offset, 30 + len(entry.name_bytes))
        if len(header) < 30 or struct.unpack_from("<I", header)[0] != LOCAL:
            raise not_zip("Bad magic number for file header")
        name_length, extra_length = struct.unpack_from("<HH", header, 26)
        if name_length != len(entry.name_bytes) or header[30:] != entry.name_bytes:
            raise not_zip("an entry's local header names another file than the central "
                          "directory")
        if entry.offset < end:
            raise not_zip("two entries' data overlap")
        entry.start = entry.offset + 30 + name_length + extra_length
        end = entry.start + entry.compressed_size
        if end > directory_start:
            raise not_zip("an entry's data run into the central directory")


def _entry_bytes(handle: BinaryIO, entry: _Entry, budget: list[int], path: str) -> bytes:
    """An entry's bytes, at most one byte past a receipt's limit (a zip may lie about sizes)
    and within what is left of the bundle's budget (``budget[0]``, :class:`BundleError`
    past it); :class:`ReceiptError` when it cannot be read."""
    def cannot(why: str) -> ReceiptError:
        return ReceiptError(f"cannot read it from the zip: {why}")

    if entry.flags & 1:
        raise cannot("it is encrypted")
    if entry.method not in (STORED, DEFLATED):
        raise cannot(f"compression method {entry.method} is not supported")
    limit = min(MAX_RECEIPT_BYTES, budget[0]) + 1
    if entry.method == STORED:
        data = _bytes_at(handle, entry.start, min(entry.compressed_size, limit))
    else:
        data = _inflated(handle, entry, limit, cannot)
    if len(data) > budget[0]:
        raise BundleError(f"{path}: its receipts inflate to more than {MAX_BUNDLE_INFLATED} "
                          f"bytes in all")
    budget[0] -= len(data)
    if len(data) > MAX_RECEIPT_BYTES:
        return data
    if len(data) != entry.size:
        raise cannot(f"it holds {len(data)} bytes, not the {entry.size} its header states")
    if zlib.crc32(data) != entry.crc:
        raise cannot(f"Bad CRC-32 for file '{entry.name}'")
    return data


def _inflated(handle: BinaryIO, entry: _Entry, limit: int, cannot) -> bytes:
    """Raw deflate inflated, stopping at ``limit`` bytes; the stream must end with the data
    (as the browser's DecompressionStream requires)."""
    stream = zlib.decompressobj(-15)
    out = bytearray()
    handle.seek(entry.start)
    left = entry.compressed_size
    try:
        while len(out) < limit:
            chunk = stream.unconsumed_tail or handle.read(min(_CHUNK, left))
            if not stream.unconsumed_tail:
                left -= len(chunk)
            if not chunk:
                break
            out += stream.decompress(chunk, limit - len(out))
            if stream.eof:
                break
    except zlib.error:
        raise cannot("its data do not inflate") from None
    if len(out) < limit and (not stream.eof or stream.unused_data or left):
        raise cannot("its data do not inflate")
    return bytes(out)
