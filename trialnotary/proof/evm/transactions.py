"""Signed transactions and their receipts, from their raw bytes (as a block's tries hold
them): legacy (EIP-155), EIP-2930 (type 1) and EIP-1559 (type 2) transactions, the signing
hash of each, the sender recovered from the signature, and a receipt's status.

Other transaction types (blobs, set-code) are refused: an anchor is none of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from trialnotary.proof.errors import EvidenceError
from trialnotary.proof.evm import rlp
from trialnotary.proof.evm.keccak import keccak256

LEGACY, ACCESS_LIST, DYNAMIC_FEE = 0, 1, 2
_FIELDS = {  # the fields before the signature (v/yParity, r, s), by type
    LEGACY: ("nonce", "gasPrice", "gas", "to", "value", "data"),
    ACCESS_LIST: ("chainId", "nonce", "gasPrice", "gas", "to", "value", "data", "accessList"),
    DYNAMIC_FEE: ("chainId", "nonce", "maxPriorityFeePerGas", "maxFeePerGas", "gas", "to",
                  "value", "data", "accessList"),
}
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@dataclass(frozen=True)
class Transaction:
    """What a signed transaction says, and who signed it. ``chain_id`` is ``None`` for a
    legacy transaction signed without one (before EIP-155: valid on every chain)."""

    type: int
    hash: bytes
    chain_id: int | None
    nonce: int
    to: bytes | None  # None: contract creation
    value: int
    data: bytes
    sender: bytes  # 20 bytes, recovered from the signature


@dataclass(frozen=True)
class Receipt:
    type: int
    status: int  # 1 succeeded, 0 reverted
    cumulative_gas_used: int


def decode_transaction(raw: bytes) -> Transaction:
    """The transaction ``raw`` encodes (its type byte first, unless legacy); raises
    :class:`EvidenceError` on anything malformed, unknown or wrongly signed."""
    if not raw:
        raise EvidenceError("the transaction is empty")
    tx_type, body = _split_type(raw, "transaction")
    if tx_type not in _FIELDS:
        raise EvidenceError(f"transaction type {tx_type} is not one an anchor is sent as "
                            "(legacy, 1 or 2)")
    items = rlp.as_list(rlp.decode(body, what="the transaction"), "the transaction")
    names = _FIELDS[tx_type]
    if len(items) != len(names) + 3:
        raise EvidenceError(f"a type {tx_type} transaction has {len(names) + 3} fields, "
                            f"not {len(items)}")
    fields = dict(zip(names, items[:len(names)], strict=True))
    v, r, s = (rlp.as_int(item, name) for item, name in zip(items[len(names):],
                                                             ("v", "r", "s"), strict=True))
    if tx_type == LEGACY:
        chain_id, parity, unsigned = _legacy_signing(items[:len(names)], v)
    else:
        chain_id = rlp.as_int(fields["chainId"], "chainId")
        if v not in (0, 1):
            raise EvidenceError(f"yParity must be 0 or 1, not {v}")
        parity, unsigned = v, bytes([tx_type]) + rlp.encode(items[:len(names)])
    to = rlp.as_bytes(fields["to"], "to")
    if len(to) not in (0, 20):
        raise EvidenceError(f"to must be 20 bytes or empty, not {len(to)}")
    return Transaction(
        type=tx_type, hash=keccak256(raw), chain_id=chain_id,
        nonce=rlp.as_int(fields["nonce"], "nonce"), to=to or None,
        value=rlp.as_int(fields["value"], "value"), data=rlp.as_bytes(fields["data"], "data"),
        sender=recover_sender(keccak256(unsigned), r, s, parity))


def _split_type(raw: bytes, what: str) -> tuple[int, bytes]:
    """EIP-2718: a first byte up to 0x7f is the type; a list prefix (0xc0 up) is legacy."""
    if raw[0] >= 0xC0:
        return LEGACY, raw
    if raw[0] > 0x7F:
        raise EvidenceError(f"the {what} starts with byte {raw[0]:#x}: neither a type nor "
                            "a list")
    return raw[0], raw[1:]


def _legacy_signing(fields: list, v: int) -> tuple[int | None, int, bytes]:
    """Chain id, y parity and signed bytes of a legacy transaction: EIP-155's
    ``v = chainId * 2 + 35 + parity``, or 27/28 without a chain id."""
    if v in (27, 28):
        return None, v - 27, rlp.encode(fields)
    if v < 35:
        raise EvidenceError(f"legacy v {v} is neither 27/28 nor EIP-155's")
    chain_id, parity = (v - 35) // 2, (v - 35) % 2
    return chain_id, parity, rlp.encode([*fields, rlp.encode_int(chain_id), b"", b""])


def recover_sender(signing_hash: bytes, r: int, s: int, parity: int) -> bytes:
    """The 20-byte address whose key made the signature (r, s, parity) over the hash.

    Refuses what no block can hold: r or s out of range, and a high s (EIP-2)."""
    if not (0 < r < _SECP256K1_N and 0 < s <= _SECP256K1_N // 2):
        raise EvidenceError("the signature's r or s is out of range (or s is high)")
    import coincurve  # on first use: a receipt without evidence needs no secp256k1

    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([parity])
    try:
        key = coincurve.PublicKey.from_signature_and_message(signature, signing_hash,
                                                             hasher=None)
    except Exception as exc:  # coincurve raises plain Exception/ValueError on a bad signature
        raise EvidenceError(f"no key recovers from the signature ({exc})") from None
    return keccak256(key.format(compressed=False)[1:])[-20:]


def decode_receipt(raw: bytes) -> Receipt:
    """A transaction receipt, as the receipts trie holds it: ``type || rlp([status,
    cumulativeGasUsed, logsBloom, logs])`` (no type byte for a legacy transaction's).
    A receipt from before Byzantium (a state root, no status) is refused."""
    if not raw:
        raise EvidenceError("the transaction receipt is empty")
    receipt_type, body = _split_type(raw, "transaction receipt")
    items = rlp.as_list(rlp.decode(body, what="the transaction receipt"),
                        "the transaction receipt")
    if len(items) != 4:
        raise EvidenceError(f"a transaction receipt has 4 fields, not {len(items)}")
    status = rlp.as_bytes(items[0], "the receipt's status")
    if status not in (b"", b"\x01"):
        raise EvidenceError("the transaction receipt has no status (a pre-Byzantium state "
                            "root?)")
    rlp.as_bytes(items[2], "the receipt's logsBloom", 256)
    rlp.as_list(items[3], "the receipt's logs")
    return Receipt(type=receipt_type, status=1 if status else 0,
                   cumulative_gas_used=rlp.as_int(items[1], "cumulativeGasUsed"))
