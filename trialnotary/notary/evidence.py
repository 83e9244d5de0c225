"""The chain evidence of a confirmed anchor (docs/receipt.md, ``evidence``): its signed
transaction and receipt with their Merkle-Patricia proofs, and the block's header, so that
a receipt verifies with nothing but a node that serves block headers.

Taken when the anchor reaches its confirmations, from that block, and taken again when a
reorg moves the anchor to another block. The header is rebuilt from the node's block
fields and must hash to the block's hash; the tries are rebuilt from all the block's
transactions and receipts and must give the header's roots; the proofs must pass the
verifier's own check (:mod:`trialnotary.proof.evm`) before they are stored.
"""

from __future__ import annotations

import json

from trie import HexaryTrie

from trialnotary.notary.chain import ChainClient, Inclusion
from trialnotary.notary.errors import BlockMoved, EvidenceUnavailable
from trialnotary.proof.errors import EvidenceError
from trialnotary.proof.evm import (
    Evidence,
    encode_header,
    keccak256,
    prove,
    rlp,
    transaction_key,
)

_HASH_SIZE = 32


def take_evidence(chain: ChainClient, tx_hash: str, inclusion: Inclusion) -> dict:
    """The evidence of transaction ``tx_hash`` (hex, no 0x) in the block of ``inclusion``,
    as the receipt carries it. Raises :class:`BlockMoved` when that block is no longer the
    canonical one at its height, :class:`EvidenceUnavailable` when the node's answers do not
    hold together."""
    number = inclusion.block_number
    block = chain.raw_block(number)
    if block["hash"].lower() != inclusion.block_hash:
        raise BlockMoved(f"block {number} is now {block['hash']}, not {inclusion.block_hash}")
    header = _header(block)
    hashes = [value.lower() for value in block["transactions"]]
    if "0x" + tx_hash not in hashes:
        raise BlockMoved(f"block {number} does not hold 0x{tx_hash}")
    index = hashes.index("0x" + tx_hash)
    transactions = chain.raw_transactions(number, len(hashes))
    receipts = _receipts(chain, number, block, len(hashes))
    if [keccak256(raw) for raw in transactions] != [bytes.fromhex(h[2:]) for h in hashes]:
        raise EvidenceUnavailable(f"the raw transactions of block {number} do not hash to "
                                  "the block's transaction hashes")
    key = transaction_key(index)
    evidence = Evidence(
        transaction=transactions[index], transaction_index=index,
        transaction_proof=_proof(transactions, key, block["transactionsRoot"], "transactions"),
        receipt=receipts[index],
        receipt_proof=_proof(receipts, key, block["receiptsRoot"], "receipts"),
        header=header)
    _check(evidence, inclusion)
    return as_json(evidence)


def _header(block: dict) -> bytes:
    try:
        header = encode_header(block)
    except EvidenceError as exc:
        raise EvidenceUnavailable(str(exc)) from None
    if "0x" + keccak256(header).hex() != block["hash"].lower():
        raise EvidenceUnavailable(f"the header fields of block {int(block['number'], 16)} do "
                                  "not hash to its hash (a header field this notary does "
                                  "not know?)")
    return header


def _receipts(chain: ChainClient, number: int, block: dict, count: int) -> list[bytes]:
    receipts = chain.block_receipts(number)
    if not isinstance(receipts, list) or len(receipts) != count:
        raise EvidenceUnavailable(f"the node gave {len(receipts or [])} receipts for block "
                                  f"{number}, which holds {count} transactions")
    if any(r.get("blockHash", "").lower() != block["hash"].lower() for r in receipts):
        raise BlockMoved(f"the receipts of block {number} are of another block")
    ordered = sorted(receipts, key=lambda receipt: int(receipt["transactionIndex"], 16))
    return [encode_receipt(receipt) for receipt in ordered]


def encode_receipt(receipt: dict) -> bytes:
    """A receipt as the receipts trie holds it (EIP-2718: type byte, then the RLP list),
    from the node's JSON."""
    status = int(receipt["status"], 16)
    logs = [[bytes.fromhex(log["address"][2:]),
             [bytes.fromhex(topic[2:]) for topic in log["topics"]],
             bytes.fromhex(log["data"][2:])] for log in receipt["logs"]]
    body = rlp.encode([rlp.encode_int(status), rlp.encode_int(int(receipt["cumulativeGasUsed"],
                                                                   16)),
                       bytes.fromhex(receipt["logsBloom"][2:]), logs])
    receipt_type = int(receipt.get("type", "0x0"), 16)
    return (bytes([receipt_type]) if receipt_type else b"") + body


def _proof(values: list[bytes], key: bytes, root_hex: str, name: str) -> tuple[bytes, ...]:
    """The proof of ``key`` in the trie of ``values`` keyed by index: the nodes on its path
    referred to by hash (shorter nodes sit inside their parents)."""
    trie = HexaryTrie(db={})
    for index, value in enumerate(values):
        trie[transaction_key(index)] = value
    if "0x" + trie.root_hash.hex() != root_hex.lower():
        raise EvidenceUnavailable(f"the block's {name} do not give its {name}Root")
    nodes = [rlp.encode(node) for node in trie.get_proof(key)]
    return tuple(node for depth, node in enumerate(nodes)
                 if depth == 0 or len(node) >= _HASH_SIZE)


def _check(evidence: Evidence, inclusion: Inclusion) -> None:
    """The evidence passes the verifier's own checks before it is stored."""
    try:
        proven = prove(evidence)
    except EvidenceError as exc:
        raise EvidenceUnavailable(f"the evidence does not hold: {exc}") from None
    if "0x" + proven.header.hash.hex() != inclusion.block_hash or \
            proven.header.number != inclusion.block_number:
        raise EvidenceUnavailable("the evidence's header is not the anchor's block")


def as_json(evidence: Evidence) -> dict:
    """The receipt's ``evidence`` object (docs/receipt.md)."""
    return {
        "transaction": _hex(evidence.transaction),
        "transactionIndex": evidence.transaction_index,
        "transactionProof": [_hex(node) for node in evidence.transaction_proof],
        "receipt": _hex(evidence.receipt),
        "receiptProof": [_hex(node) for node in evidence.receipt_proof],
        "header": _hex(evidence.header),
    }


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def stored(evidence: dict | None) -> str | None:
    """The evidence as the ``anchor.evidence`` column keeps it (compact JSON)."""
    return None if evidence is None else json.dumps(evidence, separators=(",", ":"))
