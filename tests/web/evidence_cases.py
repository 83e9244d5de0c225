"""Receipts whose chain evidence is genuine, broken or forged, made from a real anchor, for
holding the browser's evidence step (static/js/evidence.js) to the Python one.

Two kinds of case:

- *broken*: the real evidence (or the anchor's fields) with bytes changed, removed or added:
  every header field, each proof node, the index, the claimed sender, time, chain, root;
- *forged*: evidence that holds together but says something else: a transaction and a
  receipt of our own making (signed with a throw-away test key) put into tries of our own
  at the anchor's index, their roots written into a copy of the real header, and the
  anchor's ``blockHash`` and ``sourceId`` made to match. The checks past the proofs (the
  transaction's form, signature, chain, recipient, value, data; the receipt's status) are
  reached only this way, as they are by a forger. Hand-made proof nodes reach each refusal
  of the Merkle-Patricia walk.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import coincurve
from trie import HexaryTrie

from trialnotary.proof.evm import keccak256, rlp, transaction_key

#: A throw-away key made for these tests (no funds, no chain): it signs the forged anchors.
TEST_KEY = coincurve.PrivateKey(keccak256(b"trialnotary: browser evidence tests"))
SIGNER = keccak256(TEST_KEY.public_key.format(compressed=False)[1:])[-20:]
SIGNER_HEX = "0x" + SIGNER.hex()
OTHER = bytes.fromhex("3c44cdddb6a900fa2b585dd299e03d12fa4293bc")
CHAIN_ID = 31337
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HASH_SIZE = 32


class Raw(bytes):
    """An item already encoded, spliced into an encoding as it is (for non-canonical RLP)."""


def encode(item) -> bytes:
    """RLP, but a :class:`Raw` item goes in unchanged."""
    if isinstance(item, Raw):
        return bytes(item)
    if isinstance(item, bytes):
        return rlp.encode(item)
    payload = b"".join(encode(child) for child in item)
    return _list_prefix(len(payload)) + payload


def _list_prefix(length: int) -> bytes:
    if length <= 55:
        return bytes([0xC0 + length])
    size = rlp.encode_int(length)
    return bytes([0xF7 + len(size)]) + size


def num(value: int) -> bytes:
    return rlp.encode_int(value)


# --- transactions and receipts of our own ----------------------------------------------

def transaction(root: bytes, *, kind: int = 2, chain_id: int | None = CHAIN_ID,
                to: bytes = SIGNER, value: int = 0, data: bytes | None = None,
                sign: Callable | None = None, edit: Callable | None = None) -> bytes:
    """A signed anchor transaction (type ``kind``; 0 is legacy, EIP-155 unless ``chain_id``
    is ``None``), by default a genuine one: to the signer, value 0, data the root.
    ``sign(parity, r, s)`` may change the signature; ``edit(items)`` the signed list."""
    data = root if data is None else data
    if kind == 0:
        fields = [b"", num(10**9), num(30000), to, num(value), data]
        extra = [num(chain_id), b"", b""] if chain_id is not None else []
        unsigned = encode(fields + extra)
    else:
        fee = [num(10**9)] if kind == 1 else [num(1), num(10**9)]
        fields = [num(chain_id), b"", *fee, num(30000), to, num(value), data, []]
        unsigned = bytes([kind]) + encode(fields)
    signature = TEST_KEY.sign_recoverable(keccak256(unsigned), hasher=None)
    parity, r, s = signature[64], int.from_bytes(signature[:32]), int.from_bytes(signature[32:64])
    if sign is not None:
        parity, r, s = sign(parity, r, s)
    if kind == 0:
        v = parity + (27 if chain_id is None else chain_id * 2 + 35)
    else:
        v = parity
    items = fields + [num(v), num(r), num(s)]
    if edit is not None:
        items = edit(items)
    return (bytes([kind]) if kind else b"") + encode(items)


def receipt(*, kind: int = 2, status: bytes = b"\x01", fields: list | None = None) -> bytes:
    body = fields if fields is not None else [status, num(21000), bytes(256), []]
    return (bytes([kind]) if kind else b"") + encode(body)


# --- tries and headers of our own ---------------------------------------------------------

def trie_proof(value: bytes, index: int) -> tuple[bytes, list[bytes]]:
    """The root and the proof of ``value`` at ``index`` in a trie that holds other values
    at every index up to a few past it (so the proof has branches, as a real block's)."""
    trie = HexaryTrie(db={})
    for other in range(index + 4):
        trie[transaction_key(other)] = value if other == index else num(other + 1) * 40
    nodes = [rlp.encode(node) for node in trie.get_proof(transaction_key(index))]
    return trie.root_hash, [node for depth, node in enumerate(nodes)
                            if depth == 0 or len(node) >= _HASH_SIZE]


def hex_prefix(nibbles: list[int], leaf: bool) -> bytes:
    flag = (2 if leaf else 0) + len(nibbles) % 2
    halves = [flag] + ([] if len(nibbles) % 2 else [0]) + nibbles
    return bytes(halves[i] * 16 + halves[i + 1] for i in range(0, len(halves), 2))


def key_nibbles(index: int) -> list[int]:
    return [half for byte in transaction_key(index) for half in (byte >> 4, byte & 15)]


def evidence_of(receipt: dict) -> dict:
    return receipt["anchors"][0]["evidence"]


def forge(base: dict, *, tx: bytes | None = None, tx_receipt: bytes | None = None,
          tx_proof: list[bytes] | None = None, header: Callable | None = None) -> dict:
    """``base`` (a receipt with evidence) with the transaction ``tx`` and the receipt
    ``tx_receipt`` in tries of our own at its index (or ``tx_proof``: hand-made nodes,
    the first one the root), the roots in its header, ``header(items)`` applied to the
    header's fields, and the anchor's blockHash and sourceId made to match."""
    receipt = copy.deepcopy(base)
    anchor = receipt["anchors"][0]
    evidence = anchor["evidence"]
    index = evidence["transactionIndex"]
    items = rlp.decode(bytes.fromhex(evidence["header"][2:]))
    tx = tx if tx is not None else bytes.fromhex(evidence["transaction"][2:])
    tx_receipt = tx_receipt if tx_receipt is not None else bytes.fromhex(evidence["receipt"][2:])
    if tx_proof is not None:
        items[4], tx_nodes = keccak256(tx_proof[0]), tx_proof
    else:
        items[4], tx_nodes = trie_proof(tx, index)
    items[5], receipt_nodes = trie_proof(tx_receipt, index)
    if header is not None:
        items = header(items)
    raw_header = encode(items)
    evidence.update(transaction="0x" + tx.hex(), receipt="0x" + tx_receipt.hex(),
                    header="0x" + raw_header.hex(),
                    transactionProof=["0x" + node.hex() for node in tx_nodes],
                    receiptProof=["0x" + node.hex() for node in receipt_nodes])
    anchor["blockHash"] = "0x" + keccak256(raw_header).hex()
    anchor["sourceId"] = keccak256(tx).hex()
    anchor["sender"] = SIGNER_HEX
    return receipt


# --- the cases -----------------------------------------------------------------------------

def _flip(hex_value: str, at: int) -> str:
    """``hex_value`` (0x…) with byte ``at`` (negative from the end) xor 1."""
    raw = bytearray(bytes.fromhex(hex_value[2:]))
    raw[at] ^= 1
    return "0x" + raw.hex()


def _edited(base: dict, edit: Callable) -> dict:
    receipt = copy.deepcopy(base)
    edit(receipt["anchors"][0], evidence_of(receipt))
    return receipt


def _field_offsets(raw_header: bytes) -> list[tuple[int, int, int]]:
    """Each header field: (its index, the offset of its first byte, of its last)."""
    body_start = 1 + (raw_header[0] - 0xF7 if raw_header[0] > 0xF7 else 0)
    offsets, at = [], body_start
    for index, item in enumerate(rlp.decode(raw_header)):
        size = len(rlp.encode(item))
        offsets.append((index, at, at + size - 1))
        at += size
    return offsets


def broken_cases(base: dict) -> dict[str, dict]:
    """The real evidence with its bytes, or the anchor's claims, changed."""
    evidence = evidence_of(base)
    header = evidence["header"]
    cases: dict[str, dict] = {"genuine": copy.deepcopy(base)}

    def case(name, edit):
        cases[name] = _edited(base, edit)

    def set_evidence(key, value):
        return lambda anchor, ev: ev.__setitem__(key, value)

    # every byte class of the header: the list prefix, each field's prefix and content
    case("header list prefix", set_evidence("header", _flip(header, 0)))
    for index, first, last in _field_offsets(bytes.fromhex(header[2:])):
        case(f"header field {index} prefix", set_evidence("header", _flip(header, first)))
        case(f"header field {index} last byte", set_evidence("header", _flip(header, last)))
    case("header with a trailing byte", set_evidence("header", header + "00"))
    case("header cut short", set_evidence("header", header[:-2]))
    for key in ("transactionProof", "receiptProof"):
        for at in range(len(evidence[key])):
            nodes = list(evidence[key])
            nodes[at] = _flip(nodes[at], -1)
            case(f"{key} node {at} changed", set_evidence(key, nodes))
        case(f"{key} with a node more", set_evidence(key, [*evidence[key], evidence[key][-1]]))
        case(f"{key} from the root alone", set_evidence(key, evidence[key][:1]))
    case("proofs swapped", lambda a, ev: ev.update(transactionProof=ev["receiptProof"],
                                                   receiptProof=ev["transactionProof"]))
    index = evidence["transactionIndex"]
    for wrong in (index + 1, index - 1, 0, 127, 128, 10_000):
        case(f"index {wrong}", set_evidence("transactionIndex", wrong))
    case("transaction byte changed", set_evidence("transaction", _flip(evidence["transaction"],
                                                                       -1)))
    case("receipt byte changed", set_evidence("receipt", _flip(evidence["receipt"], -1)))
    case("another sender claimed", lambda a, ev: a.update(sender="0x" + OTHER.hex()))
    case("sender in upper case", lambda a, ev: a.update(sender=a["sender"].upper()
                                                        .replace("0X", "0x")))
    case("another block time", lambda a, ev: a.update(blockTime="2020-01-01T00:00:00Z"))
    case("another block number", lambda a, ev: a.update(blockNumber=a["blockNumber"] + 1))
    case("another block hash", lambda a, ev: a.update(blockHash="0x" + "ab" * 32))
    case("another sourceId", lambda a, ev: a.update(sourceId="cd" * 32))
    case("another chain", lambda a, ev: a.update(chainId=1, chain="ethereumMainnet"))
    cases["another merkleRoot"] = copy.deepcopy(base)
    cases["another merkleRoot"]["merkleRoot"] = "ef" * 32
    # evidence of the wrong shape: the receipt is not usable
    case("upper-case hex", set_evidence("header", header.upper().replace("0X", "0x")))
    case("odd hex", set_evidence("receipt", evidence["receipt"] + "0"))
    case("hex without 0x", set_evidence("transaction", evidence["transaction"][2:]))
    case("empty hex", set_evidence("header", "0x"))
    case("empty proof", set_evidence("receiptProof", []))
    case("proof not a list", set_evidence("transactionProof", evidence["transactionProof"][0]))
    case("proof node not hex", set_evidence("receiptProof", [7]))
    case("index as text", set_evidence("transactionIndex", str(index)))
    case("negative index", set_evidence("transactionIndex", -1))
    case("index true", set_evidence("transactionIndex", True))
    case("index null", set_evidence("transactionIndex", None))
    case("evidence a list", lambda a, ev: a.update(evidence=[ev]))
    case("evidence null", lambda a, ev: a.update(evidence=None))
    case("a key missing and one unknown", lambda a, ev: ev.update(zz=ev.pop("header"),
                                                                  aa=1))
    return cases


def _high_s(parity, r, s):
    return 1 - parity, r, N - s


def _curve_x_missing() -> int:
    """The smallest r that is no point's x on secp256k1 (no key recovers from it)."""
    p = 2**256 - 2**32 - 977
    return next(r for r in range(1, 100) if pow((r**3 + 7) % p, (p - 1) // 2, p) != 1)


def forged_cases(base: dict) -> dict[str, dict]:
    """Evidence that holds together, of transactions, receipts, proofs and headers of our
    own making."""
    root = bytes.fromhex(base["merkleRoot"])
    index = evidence_of(base)["transactionIndex"]
    ok_receipt = receipt()
    cases: dict[str, dict] = {}

    def case(name, tx=None, tx_receipt=ok_receipt, **more):
        cases[name] = forge(base, tx=tx if tx is not None else transaction(root),
                            tx_receipt=tx_receipt, **more)

    case("forged: genuine type 2")
    case("forged: genuine type 1", transaction(root, kind=1), receipt(kind=1))
    case("forged: genuine legacy (EIP-155)", transaction(root, kind=0), receipt(kind=0))
    case("forged: legacy without a chain id", transaction(root, kind=0, chain_id=None),
         receipt(kind=0))
    case("forged: to another address", transaction(root, to=OTHER))
    case("forged: a contract creation", transaction(root, to=b""))
    case("forged: value 1 wei", transaction(root, value=1))
    case("forged: value 2^200 wei", transaction(root, value=2**200))
    case("forged: extra calldata", transaction(root, data=root + b"\x00"))
    case("forged: no calldata", transaction(root, data=b""))
    case("forged: another root as data", transaction(root, data=bytes(32)))
    case("forged: chain 1", transaction(root, chain_id=1))
    case("forged: legacy for chain 1", transaction(root, kind=0, chain_id=1), receipt(kind=0))
    case("forged: status 0", tx_receipt=receipt(status=b""))
    case("forged: receipt of another type", tx_receipt=receipt(kind=1))
    case("forged: receipt with a state root", tx_receipt=receipt(status=bytes(32)))
    case("forged: receipt with status 2", tx_receipt=receipt(status=b"\x02"))
    case("forged: receipt of 3 fields", tx_receipt=receipt(fields=[b"\x01", num(1),
                                                                    bytes(256)]))
    case("forged: receipt bloom short", tx_receipt=receipt(fields=[b"\x01", num(1),
                                                                    bytes(255), []]))
    case("forged: receipt logs not a list", tx_receipt=receipt(fields=[b"\x01", num(1),
                                                                        bytes(256), b"x"]))
    case("forged: receipt gas with leading zeros",
         tx_receipt=receipt(fields=[b"\x01", b"\x00\x01", bytes(256), []]))
    case("forged: receipt starting 0x80", tx_receipt=b"\x80" + receipt(kind=0))
    # signatures
    case("forged: another signer (s changed)", transaction(root, sign=lambda p, r, s:
                                                             (p, r, s - 1)))
    case("forged: parity flipped", transaction(root, sign=lambda p, r, s: (1 - p, r, s)))
    case("forged: high s", transaction(root, sign=_high_s))
    case("forged: r zero", transaction(root, sign=lambda p, r, s: (p, 0, s)))
    case("forged: r = n", transaction(root, sign=lambda p, r, s: (p, N, s)))
    case("forged: r no point's x", transaction(root, sign=lambda p, r, s:
                                               (p, _curve_x_missing(), s)))
    case("forged: yParity 2", transaction(root, sign=lambda p, r, s: (2, r, s)))
    case("forged: legacy v 30", transaction(root, kind=0, chain_id=None,
                                            sign=lambda p, r, s: (3, r, s)),
         receipt(kind=0))
    # transactions that are not canonical RLP, or not an anchor's form
    case("forged: a single byte wrapped", transaction(root, edit=lambda items: [
        *items[:1], Raw(b"\x81\x01"), *items[2:]]))
    case("forged: a long form for 32 bytes", transaction(root, edit=lambda items: [
        *items[:7], Raw(b"\xb8\x20" + root), *items[8:]]))
    case("forged: a length with leading zeros", transaction(root, edit=lambda items: [
        *items[:7], Raw(b"\xb9\x00\x20" + root), *items[8:]]))
    case("forged: nonce with leading zeros", transaction(root, edit=lambda items: [
        *items[:1], b"\x00\x01", *items[2:]]))
    case("forged: a field as a list", transaction(root, edit=lambda items: [
        *items[:5], [items[5]], *items[6:]]))
    case("forged: to of 19 bytes", transaction(root, to=SIGNER[1:]))
    case("forged: a field too many", transaction(root, edit=lambda items: [*items, b""]))
    case("forged: nested 17 deep", transaction(root, edit=lambda items: [
        *items[:8], _nested(17), *items[9:]]))
    case("forged: nested 15 deep (decodes)", transaction(root, edit=lambda items: [
        *items[:8], _nested(15), *items[9:]]))
    genuine = transaction(root)
    case("forged: a trailing byte", genuine + b"\x00")
    case("forged: cut short", genuine[:-1])
    case("forged: type 3", b"\x03" + genuine[1:])
    case("forged: type 4", b"\x04" + genuine[1:])
    case("forged: type 0x7f", b"\x7f" + genuine[1:])
    case("forged: starting 0x80", b"\x80" + genuine[1:])
    case("forged: type byte 0 before a legacy one", b"\x00" + transaction(root, kind=0),
         receipt(kind=0))
    case("forged: a transaction that is a string", rlp.encode(b"x" * 40))
    case("forged: a type 2 string", b"\x02" + rlp.encode(b"x" * 40))
    # headers
    case("forged: header of 14 fields", header=lambda items: items[:14])
    case("forged: header number with leading zeros", header=lambda items: [
        *items[:8], b"\x00" + items[8], *items[9:]])
    case("forged: header time a list", header=lambda items: [*items[:11], [items[11]],
                                                              *items[12:]])
    case("forged: header of 100 fields", header=lambda items: items + [b"\x01"] * 79)
    for time in (0, 253402300799, 253402300800, 2**64 - 1):
        case(f"forged: header time {time}", header=lambda items, time=time: [
            *items[:11], num(time), *items[12:]])
    # hand-made Merkle-Patricia proofs
    tx = transaction(root)
    path = key_nibbles(index)
    leaf = rlp.encode([hex_prefix(path, True), tx])

    def proof(name, nodes):
        cases[f"forged proof: {name}"] = forge(base, tx=tx, tx_receipt=ok_receipt,
                                               tx_proof=nodes)

    proof("a lone leaf (fine)", [leaf])
    proof("a leaf of another key", [rlp.encode([hex_prefix(path[:-1] + [(path[-1] + 1) % 16],
                                                           True), tx])])
    proof("a leaf with no value", [rlp.encode([hex_prefix(path, True), b""])])
    proof("path flag 4", [rlp.encode([bytes([0x40]) + hex_prefix(path, True)[1:], tx])])
    proof("an even path with padding", [rlp.encode([bytes([0x25]) + hex_prefix(path, True)[1:],
                                                    tx])])
    proof("an empty path", [rlp.encode([b"", tx])])
    proof("three items", [rlp.encode([hex_prefix(path, True), tx, b""])])
    proof("a node that is not a list", [rlp.encode(tx)])
    proof("nodes left over", [leaf, leaf])
    extension_child = rlp.encode([hex_prefix(path[2:], True), tx])
    extension = rlp.encode([hex_prefix(path[:2], False), keccak256(extension_child)])
    proof("an extension (fine)", [extension, extension_child])
    proof("an extension away", [rlp.encode([hex_prefix([(path[0] + 1) % 16], False),
                                            keccak256(extension_child)]), extension_child])
    proof("an empty extension", [rlp.encode([hex_prefix([], False),
                                             keccak256(extension_child)]), extension_child])
    proof("an extension without its child", [extension])
    proof("a child by 20 bytes", [rlp.encode([hex_prefix(path[:2], False),
                                              keccak256(extension_child)[:20]])])
    proof("a child that does not hash", [extension, extension_child + b"\x00"])
    branch = [b""] * 17
    branch[path[0]] = keccak256(rlp.encode([hex_prefix(path[1:], True), tx]))
    proof("a branch (fine)", [rlp.encode(branch), rlp.encode([hex_prefix(path[1:], True), tx])])
    empty = [b""] * 17
    empty[(path[0] + 1) % 16] = branch[path[0]]
    proof("an empty branch", [rlp.encode(empty)])
    inline = list(branch)
    inline[path[0]] = [hex_prefix(path[1:], True), tx]
    proof("a long child inline", [rlp.encode(inline)])
    short_child = [b""] * 17
    short_child[path[0]] = [hex_prefix(path[1:], True), b"v"]
    proof("a short leaf inline", [rlp.encode(short_child)])
    at_branch = [b""] * 16 + [tx]
    nested = list(branch)
    nested[path[0]] = keccak256(rlp.encode([hex_prefix(path[1:], False),
                                            keccak256(rlp.encode(at_branch))]))
    proof("a value in a branch", [rlp.encode(nested),
                                  rlp.encode([hex_prefix(path[1:], False),
                                              keccak256(rlp.encode(at_branch))]),
                                  rlp.encode(at_branch)])
    proof("a node of bad RLP", [leaf[:-1]])
    return cases


def _nested(depth: int):
    item: list | bytes = b"x"
    for _ in range(depth):
        item = [item]
    return item
