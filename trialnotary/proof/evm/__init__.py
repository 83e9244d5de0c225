"""Ethereum's own formats, enough to check a transaction's inclusion in a block from bytes:
strict RLP (:mod:`.rlp`), Keccak-256 (:mod:`.keccak`), Merkle-Patricia proofs
(:mod:`.trie`), signed transactions and their receipts (:mod:`.transactions`), block
headers (:mod:`.header`), and the evidence that ties them together (:mod:`.evidence`).

Built on pycryptodome (Keccak) and coincurve (secp256k1 key recovery) only: no web3, no
eth-* packages, so the verifier installs alone. The evidence's format is docs/receipt.md.
"""

from trialnotary.proof.evm.evidence import Evidence, Proven, prove, transaction_key
from trialnotary.proof.evm.header import Header, decode_header, encode_header
from trialnotary.proof.evm.keccak import keccak256
from trialnotary.proof.evm.transactions import (
    Receipt,
    Transaction,
    decode_receipt,
    decode_transaction,
)
from trialnotary.proof.evm.trie import verify_proof

__all__ = [
    "Evidence", "Header", "Proven", "Receipt", "Transaction", "decode_header",
    "decode_receipt", "decode_transaction", "encode_header", "keccak256", "prove",
    "transaction_key", "verify_proof",
]
