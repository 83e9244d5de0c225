"""A block header from its RLP: the fields a receipt's evidence needs, and its hash.

The header is the list ``[parentHash, ommersHash, beneficiary, stateRoot, transactionsRoot,
receiptsRoot, logsBloom, difficulty, number, gasLimit, gasUsed, timestamp, extraData,
mixHash, nonce, …]``, later forks appending fields (baseFeePerGas, withdrawalsRoot,
blobGasUsed, excessBlobGas, parentBeaconBlockRoot, requestsHash). Its hash, the block hash,
is Keccak-256 over the whole encoding, so every field is bound whatever its fork; only the
first fifteen are read here.
"""

from __future__ import annotations

from dataclasses import dataclass

from trialnotary.proof.errors import EvidenceError
from trialnotary.proof.evm import rlp
from trialnotary.proof.evm.keccak import keccak256
from trialnotary.proof.receipt import LAST_BLOCK_TIME

#: Header fields in fork order, as JSON-RPC names them (``eth_getBlockByNumber``).
FIELDS = ("parentHash", "sha3Uncles", "miner", "stateRoot", "transactionsRoot",
          "receiptsRoot", "logsBloom", "difficulty", "number", "gasLimit", "gasUsed",
          "timestamp", "extraData", "mixHash", "nonce", "baseFeePerGas", "withdrawalsRoot",
          "blobGasUsed", "excessBlobGas", "parentBeaconBlockRoot", "requestsHash")
#: The fields that hold numbers (RLP writes them without leading zeros).
NUMBERS = frozenset({"difficulty", "number", "gasLimit", "gasUsed", "timestamp",
                     "baseFeePerGas", "blobGasUsed", "excessBlobGas"})
_FIRST_FORK_FIELDS = 15
_INDEX = {name: index for index, name in enumerate(FIELDS)}


@dataclass(frozen=True)
class Header:
    hash: bytes
    number: int
    timestamp: int
    transactions_root: bytes
    receipts_root: bytes


def decode_header(raw: bytes) -> Header:
    items = rlp.as_list(rlp.decode(raw, what="the header"), "the header")
    if len(items) < _FIRST_FORK_FIELDS:
        raise EvidenceError(f"a header has at least {_FIRST_FORK_FIELDS} fields, not "
                            f"{len(items)}")

    def read(name, convert, *size):
        return convert(items[_INDEX[name]], f"the header's {name}", *size)

    header = Header(
        hash=keccak256(raw),
        number=read("number", rlp.as_int),
        timestamp=read("timestamp", rlp.as_int),
        transactions_root=read("transactionsRoot", rlp.as_bytes, 32),
        receipts_root=read("receiptsRoot", rlp.as_bytes, 32),
    )
    if header.timestamp > LAST_BLOCK_TIME:  # refused here, with the header named
        raise EvidenceError(f"the header's timestamp {header.timestamp} is past the year 9999")
    return header


def encode_header(block: dict) -> bytes:
    """The RLP header of a block as JSON-RPC gives it: every field it has, in fork order
    (a field a fork added is present from that fork on)."""
    present = [name for name in FIELDS if block.get(name) is not None]
    if present != list(FIELDS[:len(present)]):
        missing = next(name for name in FIELDS[:len(present)] if name not in present)
        raise EvidenceError(f"the block has later header fields but not {missing}")
    return rlp.encode([_field(name, block[name]) for name in present])


def _field(name: str, value: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise EvidenceError(f"the block's {name} is not hex")
    if name in NUMBERS:
        return rlp.encode_int(int(value, 16))
    return bytes.fromhex(value[2:])
