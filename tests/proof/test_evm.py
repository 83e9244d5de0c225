"""The verifier's own Ethereum formats, without a node: strict RLP, Keccak-256,
Merkle-Patricia proofs (against py-trie, the reference trie the notary builds with),
signed transactions of each type (against eth-account's signatures), receipts and
headers. What they prove together on a real chain is test_evidence.py's."""

from __future__ import annotations

import os
import random
import re

import pytest
from eth_account import Account
from trie import HexaryTrie

from trialnotary.proof.errors import EvidenceError
from trialnotary.proof.evm import (
    decode_header,
    decode_receipt,
    decode_transaction,
    encode_header,
    keccak256,
    rlp,
    transaction_key,
    verify_proof,
)

# --- RLP --------------------------------------------------------------------------------

LOREM = b"Lorem ipsum dolor sit amet, consectetur adipisicing elit"

# The examples of Ethereum's RLP specification.
RLP_VECTORS = [
    (b"dog", "83646f67"),
    ([b"cat", b"dog"], "c88363617483646f67"),
    (b"", "80"),
    ([], "c0"),
    (rlp.encode_int(0), "80"),
    (b"\x00", "00"),
    (rlp.encode_int(15), "0f"),
    (rlp.encode_int(1024), "820400"),
    ([[], [[]], [[], [[]]]], "c7c0c1c0c3c0c1c0"),
    (LOREM, "b838" + LOREM.hex()),
    ([b"a" * 60], "f83eb83c" + "61" * 60),
]


@pytest.mark.parametrize(("item", "encoded"), RLP_VECTORS)
def test_rlp_encodes_and_decodes_the_specifications_examples(item, encoded):
    assert rlp.encode(item).hex() == encoded
    assert rlp.decode(bytes.fromhex(encoded)) == item


@pytest.mark.parametrize(("encoded", "why"), [
    ("8105", "a single byte below 0x80 must stand for itself"),
    ("b80548656c6c6f", "a long form for a payload of 5 bytes"),
    ("f803c0c0c0", "a long form for a payload of 3 bytes"),
    ("b90040" + "61" * 64, "a length with leading zeros"),
    ("8261", "runs past the end"),
    ("83646f6700", "1 byte(s) after the item"),
    ("c4836f67", "runs past the end"),
    ("", "ends before its item"),
    ("b8", "ends inside a length"),
])
def test_rlp_refuses_every_non_canonical_encoding(encoded, why):
    with pytest.raises(EvidenceError, match=re.escape(why)):
        rlp.decode(bytes.fromhex(encoded))


def test_rlp_refuses_lists_nested_deeper_than_ethereum_writes():
    item: list = []
    for _ in range(rlp.MAX_DEPTH):
        item = [item]
    assert rlp.decode(rlp.encode(item)) == item
    with pytest.raises(EvidenceError, match="nested deeper than 16"):
        rlp.decode(rlp.encode([item]))


def test_rlp_numbers_have_no_leading_zeros():
    assert rlp.as_int(b"\x01\x00", "n") == 256 and rlp.as_int(b"", "n") == 0
    with pytest.raises(EvidenceError, match="leading zeros"):
        rlp.as_int(b"\x00\x01", "n")


def test_keccak256_is_keccak_not_nist_sha3():
    assert keccak256(b"").hex() == \
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"


# --- Merkle-Patricia proofs ---------------------------------------------------------------

def proof_of(trie: HexaryTrie, key: bytes) -> list[bytes]:
    """The proof as a receipt carries it: only the nodes referred to by hash."""
    nodes = [rlp.encode(node) for node in trie.get_proof(key)]
    return [node for depth, node in enumerate(nodes) if depth == 0 or len(node) >= 32]


@pytest.fixture(scope="module")
def index_trie():
    """A block's worth of transactions by index, some values short enough to be inlined."""
    rng = random.Random(7)
    trie, values = HexaryTrie(db={}), {}
    for index in range(300):
        values[index] = os.urandom(rng.choice([1, 3, 40, 120]))
        trie[transaction_key(index)] = values[index]
    return trie, values


@pytest.mark.parametrize("index", [0, 1, 15, 16, 127, 128, 129, 200, 255, 256, 299])
def test_every_index_proves_its_value(index_trie, index):
    trie, values = index_trie
    key = transaction_key(index)
    assert verify_proof(trie.root_hash, key, proof_of(trie, key)) == values[index]


def test_a_proof_proves_nothing_for_another_key_or_root(index_trie):
    trie, _ = index_trie
    proof = proof_of(trie, transaction_key(130))
    with pytest.raises(EvidenceError, match="not in the trie|another key|before the key's"):
        verify_proof(trie.root_hash, transaction_key(131), proof)
    with pytest.raises(EvidenceError, match="node 1 does not hash to the root"):
        verify_proof(keccak256(b"another root"), transaction_key(130), proof)


def test_a_changed_missing_or_extra_node_is_refused(index_trie):
    trie, _ = index_trie
    key = transaction_key(130)
    proof = proof_of(trie, key)
    changed = bytearray(proof[1])
    changed[-1] ^= 1
    with pytest.raises(EvidenceError, match="node 2 does not hash to its reference"):
        verify_proof(trie.root_hash, key, [proof[0], bytes(changed), *proof[2:]])
    with pytest.raises(EvidenceError, match="before the key's value"):
        verify_proof(trie.root_hash, key, proof[:-1])
    with pytest.raises(EvidenceError, match="left over"):
        verify_proof(trie.root_hash, key, [*proof, proof[-1]])
    with pytest.raises(EvidenceError, match="empty"):
        verify_proof(trie.root_hash, key, [])


# --- transactions and receipts ------------------------------------------------------------

KEY = Account.from_key("0x" + "42" * 32)
ROOT = bytes(range(32))


def signed(**fields) -> bytes:
    tx = {"nonce": 7, "gas": 30_000, "to": KEY.address, "value": 0, "data": ROOT, **fields}
    return bytes(KEY.sign_transaction(tx).raw_transaction)


@pytest.mark.parametrize(("fields", "tx_type", "chain_id"), [
    ({"gasPrice": 10**9, "chainId": 11155111}, 0, 11155111),
    ({"gasPrice": 10**9}, 0, None),
    ({"type": 1, "chainId": 31337, "gasPrice": 10**9, "accessList": []}, 1, 31337),
    ({"type": 2, "chainId": 1, "maxFeePerGas": 3 * 10**9, "maxPriorityFeePerGas": 10**9},
     2, 1),
])
def test_each_transaction_type_decodes_and_recovers_its_signer(fields, tx_type, chain_id):
    raw = signed(**fields)
    tx = decode_transaction(raw)
    assert (tx.type, tx.chain_id, tx.nonce, tx.value, tx.data) == (tx_type, chain_id, 7, 0, ROOT)
    assert "0x" + tx.sender.hex() == KEY.address.lower() == "0x" + tx.to.hex()
    assert tx.hash == keccak256(raw)


def test_unknown_types_and_high_s_signatures_are_refused():
    with pytest.raises(EvidenceError, match="transaction type 3 is not one"):
        decode_transaction(b"\x03" + rlp.encode([]))
    raw = signed(type=2, chainId=1, maxFeePerGas=3, maxPriorityFeePerGas=1)
    items = rlp.decode(raw[1:])
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    high_s = n - rlp.as_int(items[11], "s")
    flipped = [*items[:9], rlp.encode_int(1 - rlp.as_int(items[9], "v")), items[10],
               rlp.encode_int(high_s)]
    with pytest.raises(EvidenceError, match="s is high"):
        decode_transaction(b"\x02" + rlp.encode(flipped))


def test_a_changed_signed_byte_recovers_another_signer():
    raw = bytearray(signed(type=2, chainId=1, maxFeePerGas=3, maxPriorityFeePerGas=1))
    raw[-70] ^= 1  # inside the data, before the signature
    assert "0x" + decode_transaction(bytes(raw)).sender.hex() != KEY.address.lower()


def receipt_bytes(status: bytes, tx_type: int = 2, first: bytes | None = None) -> bytes:
    body = rlp.encode([first if first is not None else status, rlp.encode_int(21_000),
                       b"\x00" * 256, []])
    return (bytes([tx_type]) if tx_type else b"") + body


def test_receipts_give_their_status_and_type():
    assert decode_receipt(receipt_bytes(b"\x01")).status == 1
    assert decode_receipt(receipt_bytes(b"", tx_type=0)).status == 0
    assert decode_receipt(receipt_bytes(b"\x01", tx_type=1)).type == 1
    with pytest.raises(EvidenceError, match="no status"):
        decode_receipt(receipt_bytes(b"", first=b"\x11" * 32))


# --- headers ------------------------------------------------------------------------------

BLOCK = {"parentHash": "0x" + "11" * 32, "sha3Uncles": "0x" + "22" * 32,
         "miner": "0x" + "00" * 20, "stateRoot": "0x" + "33" * 32,
         "transactionsRoot": "0x" + "44" * 32, "receiptsRoot": "0x" + "55" * 32,
         "logsBloom": "0x" + "00" * 256, "difficulty": "0x0", "number": "0x1b4",
         "gasLimit": "0x1c9c380", "gasUsed": "0x5208", "timestamp": "0x6b0da6ce",
         "extraData": "0x", "mixHash": "0x" + "66" * 32, "nonce": "0x0000000000000000",
         "baseFeePerGas": "0x7"}


def test_a_header_is_written_in_fork_order_and_read_back():
    header = decode_header(encode_header(BLOCK))
    assert (header.number, header.timestamp) == (0x1B4, 0x6B0DA6CE)
    assert header.transactions_root == b"\x44" * 32 and header.receipts_root == b"\x55" * 32
    assert header.hash == keccak256(encode_header(BLOCK))
    with pytest.raises(EvidenceError, match="not baseFeePerGas"):
        encode_header({**BLOCK, "baseFeePerGas": None, "withdrawalsRoot": "0x" + "77" * 32})
    with pytest.raises(EvidenceError, match="at least 15 fields"):
        decode_header(rlp.encode([b""] * 14))
