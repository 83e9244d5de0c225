"""The ``evidence`` step, and the chain steps of an anchor that carries its evidence.

The evidence (docs/receipt.md) is checked offline: the header hashes to ``blockHash`` and
has its number and time, both Merkle-Patricia proofs hold under the header's roots, the
receipt's status is 1, and the signed transaction is the anchor's: its hash ``sourceId``,
signed by ``sender`` on the anchor's chain, to itself, value 0, data exactly the root.

The old steps are then answered from what the evidence proves, and a node is asked only
``eth_chainId``, ``eth_blockNumber`` and ``eth_getBlockByNumber(n, false)``: whether the
block is the canonical one at its height, with enough confirmations
(docs/verification.md). A node that has expired old transactions and receipts can still
check such a receipt.
"""

from __future__ import annotations

from trialnotary.proof.errors import EvidenceError, RpcError
from trialnotary.proof.evm import Proven, prove
from trialnotary.proof.facts import CHAIN_STEPS
from trialnotary.proof.receipt import block_time
from trialnotary.proof.verify.checks import (
    ChainView,
    Seen,
    check_chain,
    confirmations_verdict,
    run,
    sender_verdict,
    skipped,
)
from trialnotary.proof.verify.claims import Claims
from trialnotary.proof.verify.report import (
    ANCHOR_TX,
    BLOCK,
    CHAIN,
    CONFIRMATIONS,
    EVIDENCE,
    SENDER,
    Step,
    short,
)


def check_evidence(claims: Claims) -> tuple[Step, Proven | None]:
    """The evidence step, and what the evidence proves when it holds (else ``None``)."""
    evidence = claims.anchor.evidence
    try:
        proven = prove(evidence)
    except EvidenceError as exc:
        return Step(EVIDENCE, False, str(exc)), None
    problems = _header_problems(claims, proven) + _transaction_problems(claims, proven)
    if proven.receipt.status != 1:
        problems.append("the transaction reverted (its receipt's status is 0)")
    if problems:
        return Step(EVIDENCE, False, "; ".join(problems)), None
    return Step(EVIDENCE, True, _proven_detail(claims, proven)), proven


def _header_problems(claims: Claims, proven: Proven) -> list[str]:
    anchor, header = claims.anchor, proven.header
    problems = []
    if "0x" + header.hash.hex() != anchor.block_hash:
        problems.append(f"the header hashes to {short('0x' + header.hash.hex())}, not "
                        f"blockHash {short(anchor.block_hash)}")
    if header.number != anchor.block_number:
        problems.append(f"the header is of block {header.number}, not blockNumber "
                        f"{anchor.block_number}")
    if block_time(header.timestamp) != anchor.block_time:
        problems.append(f"the header's time is {block_time(header.timestamp)}, not "
                        f"blockTime {anchor.block_time}")
    return problems


def _transaction_problems(claims: Claims, proven: Proven) -> list[str]:
    anchor, tx = claims.anchor, proven.transaction
    signer = _address(tx.sender)
    problems = []
    if tx.hash.hex() != anchor.tx_hash:
        problems.append(f"the transaction's hash is {short('0x' + tx.hash.hex())}, not "
                        f"sourceId {short('0x' + anchor.tx_hash)}")
    if tx.chain_id != anchor.chain_id:
        problems.append(f"the transaction is signed for chain {tx.chain_id}, not the "
                        f"anchor's chain {anchor.chain_id}" if tx.chain_id is not None else
                        "the transaction is signed without a chain id (before EIP-155)")
    if signer.lower() != anchor.sender.lower():
        problems.append(f"the transaction is signed by {signer}, not sender {anchor.sender}")
    if tx.to != tx.sender:
        to = _address(tx.to) if tx.to is not None else "no address (a contract creation)"
        problems.append(f"the transaction is sent to {to}, not to its sender itself")
    if tx.value != 0:
        problems.append(f"the transaction sends value {tx.value} wei, not 0")
    if tx.data != claims.root:
        problems.append(f"its data is {_describe(tx.data)}, not exactly {claims.root_name} "
                        f"{short(claims.root.hex())}")
    return problems


def _describe(data: bytes) -> str:
    if not data:
        return "empty"
    return f"{len(data)} bytes {short(data.hex())}"


def _address(raw: bytes) -> str:
    return "0x" + raw.hex()


def _proven_detail(claims: Claims, proven: Proven) -> str:
    header = proven.header
    return (f"the header hashes to blockHash {short(claims.anchor.block_hash)} (block "
            f"{header.number}, {block_time(header.timestamp)}); transaction "
            f"{short('0x' + claims.anchor.tx_hash)} at index {proven.index} is proven under "
            f"its transactionsRoot and its receipt (status 1) under its receiptsRoot; "
            f"signed by the sender, to itself, value 0, data exactly {claims.root_name}")


# --- the chain steps from the evidence -------------------------------------------------

def node_steps(chain: ChainView, claims: Claims, need: int | str, pinned: str | None,
               proven: Proven | None) -> tuple[list[Step], Seen]:
    """The chain steps of an anchor with evidence, on one node: only its chain id, its head
    and the header at the block's height are asked. Without proven evidence (``None``)
    nothing past ``chain`` can be told: those steps are skipped, and the evidence step
    fails. Also returns what the node showed of the anchor (:class:`Seen`)."""
    steps = [run(CHAIN, check_chain, chain, claims)]
    if steps[0].ok is not True:
        return steps + skipped(CHAIN_STEPS[1:], "not checked: the node is not on the "
                                                "anchor's chain"), Seen()
    if proven is None:
        return steps + skipped(CHAIN_STEPS[1:], "not checked: the receipt's evidence does "
                                                "not hold (see evidence)"), Seen()
    number = proven.header.number
    steps.append(Step(ANCHOR_TX, True, f"transaction {short('0x' + claims.anchor.tx_hash)} "
                                       f"succeeded with input 0x + {claims.root_name}, sent "
                                       f"to its sender with value 0 (proven by the receipt's "
                                       f"evidence, index {proven.index} of block {number})"))
    steps.append(Step(SENDER, *_sender_from_signature(proven, claims, pinned)))
    steps.append(run(BLOCK, _check_canonical, chain, claims))
    seen = Seen(block_time(proven.header.timestamp) if steps[-1].ok else None,
                _address(proven.transaction.sender), _confirmations_of(chain, number))
    steps.append(run(CONFIRMATIONS, confirmations_verdict, chain, number, need))
    return steps, seen


def _confirmations_of(chain: ChainView, number: int) -> int | None:
    """The confirmations block ``number`` has on the node (``None``: the node did not say)."""
    try:
        return chain.head() - number + 1
    except (RpcError, KeyError, TypeError, ValueError):
        return None


def _sender_from_signature(proven: Proven, claims: Claims,
                           pinned: str | None) -> tuple[bool, str]:
    ok, detail = sender_verdict(_address(proven.transaction.sender), claims, pinned)
    return ok, detail + " (recovered from the signature in the receipt's evidence)"


def _check_canonical(chain: ChainView, claims: Claims) -> tuple[bool, str]:
    anchor = claims.anchor
    block = chain.block(anchor.block_number)
    if block is None:
        return False, f"the node has no block {anchor.block_number}"
    seen = block["hash"].lower()
    if seen != anchor.block_hash:
        return False, (f"block {anchor.block_number} on the node's canonical chain is "
                       f"{short(seen)}, not the receipt's blockHash {short(anchor.block_hash)}")
    return True, (f"block {anchor.block_number} {short(seen)} at {anchor.block_time} is on "
                  f"the canonical chain (its header is in the receipt's evidence)")
