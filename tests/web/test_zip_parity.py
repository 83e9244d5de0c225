"""Hostile receipts zips read alike by ``trialnotary timeline`` (proof/verify/bundle.py) and the
verifier page (static/js/receipts-zip.js, run in Node): the same entries, or the same refusal
in the same words, never a traceback; a zip two readers could read two ways is refused by
both (docs/verification.md, "Was it pre-specified?"). Each zip is built here, byte by byte
where zipfile would not write it."""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from tests.web.test_timeline_parity import in_both, in_node
from tests.web.test_verifier_parity import FACTS
from trialnotary.proof.verify import bundle as bundle_module
from trialnotary.proof.verify.bundle import BundleError, read_bundle

NOWHERE = "http://127.0.0.1:9"


def receipt(note: str) -> bytes:
    """Bytes both read as JSON (not a usable receipt: the words of that are compared too)."""
    return json.dumps({"type": "ChainpointSHA256v2", "note": note}).encode()


def plain(entries: list[tuple[str, bytes]], method=zipfile.ZIP_DEFLATED) -> bytearray:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return bytearray(out.getvalue())


def end_at(data: bytearray) -> int:
    return data.rfind(b"PK\x05\x06")


def count_lies() -> bytes:
    """The end record counts 1 entry; the central directory holds 2."""
    data = plain([("a.receipt.json", receipt("a")), ("b.receipt.json", receipt("b"))])
    struct.pack_into("<HH", data, end_at(data) + 8, 1, 1)
    return bytes(data)


def nul_name() -> bytes:
    """Python's zipfile cuts a name at NUL; the browser did not."""
    data = plain([("a.receipt.json", receipt("a")), ("hidden.txt_.receipt.json", receipt("h"))])
    return bytes(data.replace(b"hidden.txt_", b"hidden.txt\0"))


def two_directories() -> bytes:
    """A zip64 locator and record the end record does not call for, each naming a central
    directory of its own: zipfile followed the locator, the browser the end record."""
    data = plain([("a-browser.receipt.json", receipt("A")), ("b-cli.receipt.json", receipt("B"))])
    end = end_at(data)
    size, offset = struct.unpack_from("<II", data, end + 12)
    directory = bytes(data[offset:offset + size])
    first = 46 + sum(struct.unpack_from("<HHH", directory, 28))
    one, two = directory[:first], directory[first:]
    at_one, at_two = offset, offset + len(one)
    record = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, 1, 1, len(two), at_two)
    locator = struct.pack("<IIQI", 0x07064B50, 0, at_two + len(two), 1)
    end_record = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(directory) + 76,
                             at_one, 0)
    return bytes(data[:offset]) + one + two + record + locator + end_record


def size_lies() -> bytes:
    """A stored entry whose header states fewer bytes (and their CRC) than it holds."""
    good = receipt("prefix")
    data = plain([("s.receipt.json", good + b"   ")], zipfile.ZIP_STORED)
    central = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 16, zlib.crc32(good))
    struct.pack_into("<I", data, central + 24, len(good))
    return bytes(data)


def local_name() -> bytes:
    """The local header names y.receipt.json, the central directory x.receipt.json."""
    data = plain([("x.receipt.json", receipt("x"))])
    data[30:30 + 14] = b"y.receipt.json"
    return bytes(data)


def cp437_names() -> bytes:
    """Names not marked UTF-8 and not ASCII: cp437 to zipfile, something else elsewhere."""
    data = plain([("A.receipt.json", receipt("0x80")), ("B.receipt.json", receipt("0xe9"))])
    return bytes(data.replace(b"A.receipt.json", b"\x80.receipt.json")
                 .replace(b"B.receipt.json", b"\xe9.receipt.json"))


def bad_utf8() -> bytes:
    """A name marked UTF-8 that is not."""
    data = plain([("\u00e9.receipt.json", receipt("u"))])
    return bytes(data.replace("\u00e9".encode(), b"\xff\xfe"))


def version_64() -> bytes:
    """A version needed to extract zipfile does not know (it raised NotImplementedError)."""
    data = plain([("a.receipt.json", receipt("a"))])
    struct.pack_into("<H", data, data.rfind(b"PK\x01\x02") + 6, 64)
    return bytes(data)


def shared_data(count: int = 3) -> bytes:
    """Several central entries pointing at one local entry: one stream inflated many times."""
    raw = b" " * 100_000
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = deflate.compress(raw) + deflate.flush()
    name = b"x.receipt.json"
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, zlib.crc32(raw),
                        len(packed), len(raw), len(name), 0) + name + packed
    central = b"".join(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0,
                                   zlib.crc32(raw), len(packed), len(raw), len(name), 0, 0, 0,
                                   0, 0, 0) + name for _ in range(count))
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), len(local), 0)
    return local + central + end


def _deflated_entry(change) -> bytes:
    """One deflated receipt whose compressed bytes ``change(bytes)`` rewrites (sizes in both
    headers follow)."""
    good = receipt("deflated") * 20
    data = plain([("d.receipt.json", good)])
    central = data.rfind(b"PK\x01\x02")
    packed_size = struct.unpack_from("<I", data, central + 20)[0]
    start = 30 + 14
    packed = change(bytes(data[start:start + packed_size]))
    head, tail = bytearray(data[:start]), bytearray(data[start + packed_size:])
    struct.pack_into("<I", head, 18, len(packed))
    at = tail.find(b"PK\x01\x02")
    struct.pack_into("<I", tail, at + 20, len(packed))
    end = tail.rfind(b"PK\x05\x06")
    struct.pack_into("<I", tail, end + 16, len(head) + len(packed))
    return bytes(head) + packed + bytes(tail)


def comment_cut() -> bytes:
    """An end record whose comment length runs past the end of the file."""
    data = plain([("a.receipt.json", receipt("a"))])
    struct.pack_into("<H", data, end_at(data) + 20, 5)
    return bytes(data)


ZIPS = {
    "count-lies": count_lies,
    "nul-name": nul_name,
    "two-directories": two_directories,
    "size-lies": size_lies,
    "local-name": local_name,
    "cp437-names": cp437_names,
    "bad-utf8": bad_utf8,
    "version-64": version_64,
    "shared-data": shared_data,
    "deflate-cut": lambda: _deflated_entry(lambda packed: packed[:-3]),
    "deflate-junk-after": lambda: _deflated_entry(lambda packed: packed + b"junk"),
    "deflate-corrupt": lambda: _deflated_entry(lambda packed: b"\xff" * 8 + packed[8:]),
    "comment-cut": comment_cut,
    "utf-8-names": lambda: bytes(plain([("\U0001F600.receipt.json", receipt("smile")),
                                        ("\uff5e.receipt.json", receipt("tilde")),
                                        ("b.receipt.json", receipt("b"))])),
}
REFUSED = {
    "count-lies": "its central directory does not hold exactly the 1 entries its end record "
                  "counts",
    "nul-name": "an entry's name holds a NUL byte",
    "two-directories": "a zip64 locator its end record does not call for",
    "local-name": "an entry's local header names another file than the central directory",
    "cp437-names": "an entry's name is neither ASCII nor marked UTF-8",
    "bad-utf8": "an entry's name is marked UTF-8 but is not",
    "shared-data": "two entries' data overlap",
    "comment-cut": "File is not a zip file",
}
UNREADABLE = {
    "size-lies": f"it holds {len(receipt('prefix')) + 3} bytes, not the "
                 f"{len(receipt('prefix'))} its header states",
    "deflate-cut": "its data do not inflate",
    "deflate-junk-after": "its data do not inflate",
    "deflate-corrupt": "its data do not inflate",
}


#: Node 20's DecompressionStream ignores data after the end of a deflate stream; browsers and
#: the CLI refuse them (test_the_page_in_chromium_reads_every_zip_as_the_cli_does).
NOT_IN_NODE = {"deflate-junk-after"}


@pytest.mark.parametrize("name", sorted(set(ZIPS) - NOT_IN_NODE))
def test_a_hostile_zip_is_read_alike_or_refused_alike(tmp_path, name):
    path = tmp_path / f"{name}.zip"
    path.write_bytes(ZIPS[name]())
    cli, node = in_both(path, NOWHERE)
    if name in REFUSED:
        assert cli == {"ok": False, "error": f"{path.name}: not a readable zip ({REFUSED[name]})"}
        assert node == {"error": cli["error"]}
        return
    assert node["json"] == cli and cli["exitCode"] == 2
    whys = {entry["receipt"].split(":", 1)[1]: entry["why"] for entry in cli["entries"]}
    if name in UNREADABLE:
        assert list(whys.values()) == [
            f"not a usable receipt: cannot read it from the zip: {UNREADABLE[name]}"]
    else:
        assert all("cannot read it" not in why for why in whys.values()), whys


def test_names_are_taken_in_code_point_order_in_both(tmp_path):
    """U+1F600 is after U+FF5E by code point, before it by UTF-16 unit."""
    path = tmp_path / "names.zip"
    path.write_bytes(ZIPS["utf-8-names"]())
    cli, node = in_both(path, NOWHERE)
    assert [entry["receipt"] for entry in cli["entries"]] == [
        f"names.zip:{name}.receipt.json" for name in ("b", "\uff5e", "\U0001F600")]
    assert node["json"]["entries"] == cli["entries"]


def test_the_inflated_budget_refuses_the_zip_while_inflating(tmp_path, monkeypatch):
    """Lowered to 100 bytes (facts.json limits.bundleInflatedBytes, 1 GiB): two entries of
    60 bytes each are refused at the second, as soon as it passes the budget."""
    path = tmp_path / "budget.zip"
    path.write_bytes(bytes(plain([("a.receipt.json", b" " * 60), ("b.receipt.json", b" " * 60)])))
    message = f"{path}: its receipts inflate to more than 100 bytes in all"
    facts = json.loads(FACTS)
    facts["limits"]["bundleInflatedBytes"] = 100
    node = in_node(path, NOWHERE, facts=json.dumps(facts))
    assert node == {"error": message.replace(str(path), path.name)}
    monkeypatch.setattr(bundle_module, "MAX_BUNDLE_INFLATED", 100)
    with pytest.raises(BundleError) as refused:
        read_bundle(str(path))
    assert str(refused.value) == message


def test_a_directory_named_like_a_zip_is_a_usage_error(tmp_path):
    folder = tmp_path / "folder.zip"
    folder.mkdir()
    with pytest.raises(BundleError, match="folder.zip: not a readable zip"):
        read_bundle(str(folder))


def test_the_entry_count_is_checked_before_the_directory_is_read(tmp_path, monkeypatch):
    """The end record's count over the limit: refused without walking the directory."""
    path = tmp_path / "many.zip"
    path.write_bytes(bytes(plain([(f"r{n}.receipt.json", b"{}") for n in range(4)])))
    monkeypatch.setattr(bundle_module, "MAX_BUNDLE_ENTRIES", 3)
    monkeypatch.setattr(bundle_module, "_central_directory", None)  # never called
    with pytest.raises(BundleError, match="more than 3 entries"):
        read_bundle(str(path))



def python_reading(path: Path) -> object:
    try:
        return [[name, None if isinstance(read, dict) else str(read)]
                for name, read in read_bundle(str(path))]
    except BundleError as exc:
        return str(exc)


def test_the_page_in_chromium_reads_every_zip_as_the_cli_does(live_server, page, tmp_path):
    page.goto(f"{live_server}/verify")
    page.wait_for_selector("#verify-form[data-ready]")
    for name, make in ZIPS.items():
        path = tmp_path / f"{name}.zip"
        path.write_bytes(make())
        got = page.evaluate("""async ([bytes, label]) => {
          const zip = await import("/static/js/receipts-zip.js");
          try {
            const read = await zip.readBundle(new Blob([Uint8Array.from(bytes)]), label);
            return read.map((e) => [e.name, e.error ? e.error.message : null]);
          } catch (error) {
            return error.name === "BundleError" ? error.message : `${error.name}: ${error.message}`;
          }
        }""", [list(path.read_bytes()), str(path)])
        assert got == python_reading(path), name


def test_a_zip64_end_record_is_followed_alike(tmp_path):
    """65,536 entries: zipfile writes the zip64 end record and locator the end record calls
    for (its count 0xFFFF); both readers follow them to the same receipt."""
    path = tmp_path / "zip64.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("r.receipt.json", receipt("zip64"))
        for number in range(65535):
            archive.writestr(str(number), b"")
    data = path.read_bytes()
    assert struct.unpack_from("<H", data, end_at(bytearray(data)) + 10)[0] == 0xFFFF
    cli, node = in_both(path, NOWHERE)
    assert node["json"] == cli
    assert [entry["receipt"] for entry in cli["entries"]] == ["zip64.zip:r.receipt.json"]
