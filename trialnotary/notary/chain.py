"""The anchoring account's view of an EVM chain, through web3.py.

One place for everything the anchorer asks a node: fees, nonces, signing, sending kept
bytes, receipts, blocks and confirmations. Several RPC URLs fail over in order.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import urlsplit

import requests
from eth_account import Account
from web3 import Web3
from web3.exceptions import TransactionNotFound, Web3Exception

from trialnotary.anchor_config import EVM, AnchorSpec
from trialnotary.config import Settings
from trialnotary.notary.errors import (  # noqa: F401  (importable from here too)
    ChainError,
    ChainUnreachable,
    EvidenceUnavailable,
    FeeAboveCap,
    InsufficientFunds,
)
from trialnotary.proof.receipt import block_time

log = logging.getLogger(__name__)

GWEI = 10**9
TX_BASE_GAS = 21_000
# Requests per JSON-RPC batch: public nodes refuse larger batches.
RPC_BATCH = 100


# A replacement must raise both fees by at least 10% (geth's rule; others follow it).
REPLACEMENT_BUMP_PERCENT = 12.5


def anchor_gas(data: bytes) -> int:
    """Gas for a plain transaction carrying ``data``: the intrinsic cost, or EIP-7623's
    calldata floor when higher (22,280 for 32 non-zero bytes)."""
    zeros = data.count(0)
    nonzeros = len(data) - zeros
    standard = TX_BASE_GAS + 16 * nonzeros + 4 * zeros
    floor = TX_BASE_GAS + 10 * (4 * nonzeros + zeros)
    return max(standard, floor)


def _bumped(fee: int) -> int:
    return fee + max(1, math.ceil(fee * REPLACEMENT_BUMP_PERCENT / 100))


@dataclass(frozen=True)
class SignedAnchor:
    raw: bytes
    tx_hash: str  # 64 hex, no 0x
    nonce: int
    gas: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    sender: str = ""  # the signing account (checksummed)


@dataclass(frozen=True)
class SentTransaction:
    """What a transaction carries, as the node reports it."""

    sender: str
    to: str | None
    data: bytes


@dataclass(frozen=True)
class Inclusion:
    """Where a transaction was mined, and whether that is settled enough to issue receipts."""

    block_number: int
    block_hash: str
    block_time: str
    succeeded: bool
    confirmed: bool


class ChainClient:
    """One EVM anchor's chain (``anchor``; by default the first EVM anchor configured):
    ``settings`` are the instance's with that anchor's chain, nodes and key."""

    def __init__(self, settings: Settings, timeout: float = 10.0,
                 anchor: AnchorSpec | None = None):
        anchor = anchor or next(spec for spec in settings.anchors if spec.kind == EVM)
        self.name = anchor.name
        self.spec = anchor
        # The lock of its rounds: a notary of one chain keeps the lock it always had, so an
        # older process still running during an upgrade takes turns with this one.
        self.lock_name = anchor.name if settings.anchor_tables else ""
        self.settings = settings = settings.for_anchor(anchor)
        self._providers = [
            Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))
            for url in settings.rpc_urls
        ]
        self._chain_checked = False
        self._current = None
        self._keys: dict[str, object] = {}

    @cached_property
    def configured_account(self):
        """The account of the configured key (``TRIALNOTARY_ANCHOR_KEY_FILE``)."""
        return Account.from_key(self.settings.anchor_key())

    @property
    def account(self):
        """The account anchors are signed with now: the configured key's, unless
        ``use_key`` chose another (after ``chain rotate-key``)."""
        return self._current or self.configured_account

    @property
    def address(self) -> str:
        return self.account.address

    def use_key(self, key: str) -> str:
        """Sign new anchors with ``key`` from now on; the keys used before stay at hand to
        sign replacements of their own anchors still in flight. Returns its address."""
        account = Account.from_key(key)
        self._keys[account.address.lower()] = account
        self._current = account
        return account.address

    def _signer(self, sender: str | None):
        if sender is None or sender.lower() == self.address.lower():
            return self.account
        if sender.lower() == self.configured_account.address.lower():
            return self.configured_account
        return self._keys.get(sender.lower())

    def can_sign_as(self, sender: str) -> bool:
        return self._signer(sender) is not None

    def _call(self, fn):
        """Run ``fn(w3)`` on the first node that answers, in the configured order.

        Every failure becomes a ``ChainError`` (``ChainUnreachable`` when no node answers);
        messages name nodes by scheme and host only, since provider URLs often carry keys.
        """
        errors = []
        for w3 in self._providers:
            try:
                return fn(w3)
            except requests.RequestException as exc:
                errors.append(f"{redact(w3.provider.endpoint_uri)}: {type(exc).__name__}")
            except Web3Exception as exc:
                raise ChainError(f"{redact(w3.provider.endpoint_uri)} answered: "
                                 f"{_short(exc)}") from None
        raise ChainUnreachable("no chain node answers (" + "; ".join(errors) + ")")

    def chain_id(self) -> int:
        return self._call(lambda w3: w3.eth.chain_id)

    def ensure_chain(self) -> None:
        """Refuse to anchor on a node of another chain than configured."""
        if self._chain_checked:
            return
        actual = self.chain_id()
        if actual != self.settings.chain_id:
            raise ChainError(f"the node is on chain {actual}, but TRIALNOTARY_CHAIN_ID is "
                             f"{self.settings.chain_id}: anchoring stopped")
        self._chain_checked = True

    def head(self) -> int:
        return self._call(lambda w3: w3.eth.block_number)

    def finalized(self) -> int:
        return self._call(lambda w3: w3.eth.get_block("finalized")["number"])

    def balance(self) -> int:
        return self._call(lambda w3: w3.eth.get_balance(self.address))

    def pending_nonce(self) -> int:
        return self._call(lambda w3: w3.eth.get_transaction_count(self.address, "pending"))

    def mined_nonce(self, address: str | None = None) -> int:
        """How many of the account's (or ``address``'s) transactions are mined (the next
        nonce to be mined)."""
        return self._call(lambda w3: w3.eth.get_transaction_count(address or self.address,
                                                                  "latest"))

    def fees(self) -> tuple[int, int]:
        """``(max_fee_per_gas, max_priority_fee_per_gas)`` from the node, under the cap."""
        cap = int(self.settings.max_fee_gwei * GWEI)

        def ask(w3):
            history = w3.eth.fee_history(1, "latest", [])
            return history["baseFeePerGas"][-1], w3.eth.max_priority_fee

        base_fee, priority = self._call(ask)
        if base_fee + priority > cap:
            raise FeeAboveCap(f"fees are {(base_fee + priority) / GWEI:.3f} gwei, above "
                              f"TRIALNOTARY_MAX_FEE_GWEI={self.settings.max_fee_gwei}")
        return min(2 * base_fee + priority, cap), priority

    def replacement_fees(self, max_fee: int, priority: int) -> tuple[int, int]:
        """Fees for a transaction replacing one with these fees (same nonce): both raised
        by at least ``REPLACEMENT_BUMP_PERCENT``, and at least what the node asks now."""
        cap = int(self.settings.max_fee_gwei * GWEI)
        try:
            now_max, now_priority = self.fees()
        except FeeAboveCap:
            now_max, now_priority = cap, 0
        new_priority = max(_bumped(priority), now_priority)
        new_max = max(_bumped(max_fee), now_max)
        if new_max > cap:
            raise FeeAboveCap(f"replacing a stuck anchor needs {new_max / GWEI:.3f} gwei, above "
                              f"TRIALNOTARY_MAX_FEE_GWEI={self.settings.max_fee_gwei}")
        return new_max, min(new_priority, new_max)

    def sign_anchor(self, root: bytes, nonce: int, fees: tuple[int, int] | None = None,
                    sender: str | None = None) -> SignedAnchor:
        """An EIP-1559 transaction to ourselves, value 0, carrying the 32-byte root, with
        the node's fees (or ``fees``: ``(max_fee_per_gas, max_priority_fee_per_gas)``),
        signed by the current key (or by ``sender``'s, to replace one of its anchors)."""
        self.ensure_chain()
        account = self._signer(sender)
        if account is None:
            raise ChainError(f"the key of {sender} is not at hand: its anchor is sent again "
                             "as it is, not replaced")
        max_fee, priority = fees or self.fees()
        tx = {
            "type": 2,
            "chainId": self.settings.chain_id,
            "nonce": nonce,
            "to": account.address,
            "value": 0,
            "data": "0x" + root.hex(),
            "gas": anchor_gas(root),
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": priority,
        }
        signed = account.sign_transaction(tx)
        return SignedAnchor(
            raw=bytes(signed.raw_transaction), tx_hash=bytes(signed.hash).hex(), nonce=nonce,
            gas=tx["gas"], max_fee_per_gas=max_fee, max_priority_fee_per_gas=priority,
            sender=account.address,
        )

    def send_raw(self, raw: bytes) -> None:
        """Broadcast kept bytes. Sending them again is harmless: a node that already has
        the transaction, or has mined it, says so and we carry on."""
        try:
            self._call(lambda w3: w3.eth.send_raw_transaction(raw))
        except ChainUnreachable:
            raise
        except ChainError as exc:
            message = str(exc).lower()
            if "already known" in message or "nonce too low" in message \
                    or "already imported" in message:
                return
            if "insufficient funds" in message:
                raise InsufficientFunds(f"the anchoring account {self.address} cannot pay "
                                        f"for the anchor: fund it ({exc})") from None
            raise ChainError(f"the node refused the anchor transaction: {exc}") from None


    def is_known(self, tx_hash: str) -> bool:
        def ask(w3):
            try:
                w3.eth.get_transaction("0x" + tx_hash)
                return True
            except TransactionNotFound:
                return False
        return self._call(ask)

    def transaction(self, tx_hash: str) -> SentTransaction | None:
        """The transaction's sender, recipient and data, or ``None`` if the node does not
        know it."""
        def ask(w3):
            try:
                tx = w3.eth.get_transaction("0x" + tx_hash)
            except TransactionNotFound:
                return None
            return SentTransaction(sender=tx["from"], to=tx["to"], data=bytes(tx["input"]))
        return self._call(ask)

    def inclusion(self, tx_hash: str) -> Inclusion | None:
        """The transaction's block on the node's canonical chain, or ``None`` if not mined."""
        confirmations = self.settings.confirmations

        def ask(w3):
            try:
                receipt = w3.eth.get_transaction_receipt("0x" + tx_hash)
            except TransactionNotFound:
                return None
            block = w3.eth.get_block(receipt["blockNumber"])
            if block["hash"] != receipt["blockHash"]:
                return None  # the receipt's block was reorganised away
            number = receipt["blockNumber"]
            if confirmations == "finalized":
                confirmed = number <= w3.eth.get_block("finalized")["number"]
            else:
                confirmed = w3.eth.block_number - number + 1 >= confirmations
            return Inclusion(
                block_number=number,
                block_hash="0x" + bytes(block["hash"]).hex(),
                block_time=block_time(block["timestamp"]),
                succeeded=receipt["status"] == 1,
                confirmed=confirmed,
            )

        return self._call(ask)

    # --- raw JSON-RPC, for the chain evidence (notary.evidence) ---------------------------

    def raw_block(self, number: int) -> dict:
        """``eth_getBlockByNumber(number, false)`` as the node writes it (hex strings)."""
        return self._raw("eth_getBlockByNumber", hex(number), False)

    def block_if_any(self, number: int) -> dict | None:
        """:meth:`raw_block`, or ``None`` when the node has no block of that number yet
        (beyond its head); ``ChainError`` when it does not answer."""
        try:
            return self.raw_block(number)
        except EvidenceUnavailable:
            if number > self.head():
                return None
            raise

    def block_receipts(self, number: int) -> list[dict]:
        return self._raw("eth_getBlockReceipts", hex(number))

    def raw_transactions(self, number: int, count: int) -> list[bytes]:
        """The signed bytes of a block's first ``count`` transactions, in order, asked in
        batches of ``RPC_BATCH``."""
        method = "eth_getRawTransactionByBlockNumberAndIndex"
        found = []
        for start in range(0, count, RPC_BATCH):
            calls = [(method, [hex(number), hex(index)])
                     for index in range(start, min(count, start + RPC_BATCH))]
            answers = self._call(lambda w3, calls=calls: w3.provider.make_batch_request(calls))
            if not isinstance(answers, list) or len(answers) != len(calls):
                raise EvidenceUnavailable(f"the node did not answer {method} for block "
                                          f"{number} (a batch of {len(calls)})")
            found += [bytes.fromhex(_result(method, answer)[2:]) for answer in answers]
        return found

    def _raw(self, method: str, *params):
        return self._call(lambda w3: _result(method, w3.provider.make_request(method,
                                                                              list(params))))

    def health(self) -> dict:
        """Chain state for ``/readyz`` and ``chain status``; never raises."""
        started = time.monotonic()
        try:
            chain_id, head = self.chain_id(), self.head()
        except ChainError as exc:
            return {"reachable": False, "error": str(exc)}
        return {
            "reachable": True,
            "chainId": chain_id,
            "expectedChainId": self.settings.chain_id,
            "head": head,
            "latencyMs": round((time.monotonic() - started) * 1000, 1),
        }

    def funding(self, anchors: int = 100) -> dict:
        """The anchoring account's balance against the cost of the next ``anchors``
        anchors at the node's current fees; never raises."""
        try:
            balance = self.balance()
            history = self._call(lambda w3: w3.eth.fee_history(1, "latest", []))
            priority = self._call(lambda w3: w3.eth.max_priority_fee)
        except ChainError as exc:
            return {"reachable": False, "error": str(exc)}
        fee = history["baseFeePerGas"][-1] + priority
        needed = anchors * anchor_gas(b"\xff" * 32) * fee
        return {"reachable": True, "address": self.address, "balanceWei": balance,
                "feePerGasWei": fee, "anchors": anchors, "neededWei": needed,
                "enough": balance >= needed,
                "anchorsPayable": balance // max(1, anchor_gas(b"\xff" * 32) * fee)}


def _result(method: str, answer: dict):
    """A JSON-RPC answer's result; ``EvidenceUnavailable`` for an error (a method the node
    lacks) or a missing result."""
    if not isinstance(answer, dict) or answer.get("error") is not None \
            or answer.get("result") is None:
        error = answer.get("error") if isinstance(answer, dict) else answer
        raise EvidenceUnavailable(f"the node gives no {method}: {_short(repr(error))}")
    return answer["result"]


def redact(url: str) -> str:
    """``scheme://host[:port]`` of a node URL: no path, query or credentials (API keys)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def _short(exc: Exception, limit: int = 200) -> str:
    text = str(exc)
    return text if len(text) <= limit else text[:limit] + "…"
