"""A transaction's inclusion in a block, proven from bytes alone: the raw signed
transaction and its receipt, each with its Merkle-Patricia proof under the block header's
``transactionsRoot`` and ``receiptsRoot``, at the key ``rlp(transactionIndex)``.

What the proven transaction must be for a receipt's anchor is :mod:`trialnotary.proof.verify`'s
business; here it is only opened and proven.
"""

from __future__ import annotations

from dataclasses import dataclass

from trialnotary.proof.errors import EvidenceError
from trialnotary.proof.evm import rlp
from trialnotary.proof.evm.header import Header, decode_header
from trialnotary.proof.evm.transactions import (
    Receipt,
    Transaction,
    decode_receipt,
    decode_transaction,
)
from trialnotary.proof.evm.trie import verify_proof


@dataclass(frozen=True)
class Evidence:
    """A receipt anchor's ``evidence``, as bytes."""

    transaction: bytes
    transaction_index: int
    transaction_proof: tuple[bytes, ...]
    receipt: bytes
    receipt_proof: tuple[bytes, ...]
    header: bytes


@dataclass(frozen=True)
class Proven:
    """What the evidence proves: this header, and in its block at the evidence's index
    this transaction with this receipt."""

    header: Header
    transaction: Transaction
    receipt: Receipt
    index: int


def transaction_key(index: int) -> bytes:
    """The key of a block's ``index``-th transaction (and receipt) in its tries."""
    return rlp.encode(rlp.encode_int(index))


def prove(evidence: Evidence) -> Proven:
    """Decode the header, check both proofs against its roots and decode what they hold;
    :class:`EvidenceError` says what does not hold."""
    header = decode_header(evidence.header)
    at = f"index {evidence.transaction_index}"
    if _held(header.transactions_root, evidence.transaction_index,
             evidence.transaction_proof, "transaction") != evidence.transaction:
        raise EvidenceError(f"the transaction proof holds another transaction at {at}")
    if _held(header.receipts_root, evidence.transaction_index, evidence.receipt_proof,
             "receipt") != evidence.receipt:
        raise EvidenceError(f"the receipt proof holds another receipt at {at}")
    transaction = decode_transaction(evidence.transaction)
    receipt = decode_receipt(evidence.receipt)
    if receipt.type != transaction.type:
        raise EvidenceError(f"the receipt is of type {receipt.type}, the transaction of "
                            f"type {transaction.type}")
    return Proven(header, transaction, receipt, evidence.transaction_index)


def _held(root: bytes, index: int, proof: tuple[bytes, ...], name: str) -> bytes:
    """The value the proof shows at ``index`` under the header's root of ``name``s."""
    try:
        return verify_proof(root, transaction_key(index), list(proof),
                            what=f"the {name} proof")
    except EvidenceError as exc:
        raise EvidenceError(f"the {name} proof does not prove index {index} under the "
                            f"header's {name}sRoot: {exc}") from None
