"""The verification steps as checks over data they are given: the receipt's claims, the
file's digest, and a chain as a node sees it. Nothing here opens a file or a connection.

A chain is anything with the read methods of :class:`ChainView` (the JSON-RPC client of
:mod:`trialnotary.proof.verify.rpc` is one); what each step proves is docs/verification.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from trialnotary.proof.errors import NodeUnreachable, RpcError
from trialnotary.proof.facts import CHAIN_STEPS, chain_label, chain_name
from trialnotary.proof.receipt import block_time, fold_proof, proof_sides, record_leaf
from trialnotary.proof.signoff import sign_off_problem, signed_at_problem
from trialnotary.proof.verify.claims import FINALIZED, Claims, is_int, quantity
from trialnotary.proof.verify.report import (
    ANCHOR_TX,
    BLOCK,
    CHAIN,
    CONFIRMATIONS,
    FILE_HASH,
    LEAF,
    MERKLE_PATH,
    NOT_BEFORE,
    SENDER,
    SIGN_OFF,
    Step,
    short,
)


class ChainView(Protocol):
    """What the chain steps read from one node. Each method may raise :class:`RpcError`
    (the node answered with an error) or ``NodeUnreachable`` (it did not answer)."""

    def chain_id(self) -> int: ...

    def head(self) -> int: ...

    def transaction(self, tx_hash: str) -> dict | None: ...

    def tx_receipt(self, tx_hash: str) -> dict | None: ...

    def block(self, number: int | str) -> dict | None: ...


@dataclass(frozen=True)
class FileDigest:
    """A file given to compare: its name, and its SHA-256 (hex) and size, or why it could
    not be read."""

    name: str
    sha256: str | None = None
    size: int | None = None
    error: str | None = None


# --- steps without a node ------------------------------------------------------------

def check_file(claims: Claims, file: FileDigest | None) -> tuple[Step, bool]:
    """The file-hash step, and whether the file is another one than the receipt's.

    The record's ``sizeBytes``, when it holds a number, must be the file's size too.
    """
    if file is None:
        return Step(FILE_HASH, None, "no file given"), False
    if claims.record is not None:
        expected, against = claims.record["sha256"], "record.sha256"
    else:
        expected, against = claims.target.hex(), "targetHash"
    name = file.name
    if file.error is not None:
        return Step(FILE_HASH, False, f"cannot read {name}: {file.error}"), False
    actual, size = file.sha256, file.size
    expected_size = claims.record.get("sizeBytes") if claims.record is not None else None
    sized = is_int(expected_size)
    wrong_size = (f"{name} is {size} bytes, not record.sizeBytes {expected_size}"
                  if sized and size != expected_size else None)
    if actual != expected:
        detail = f"the SHA-256 of {name} is {short(actual)}, not {against} {short(expected)}"
        return Step(FILE_HASH, False, detail + (f"; {wrong_size}" if wrong_size else "")), True
    matched = f"the SHA-256 of {name} is {against} {short(expected)}"
    if wrong_size:
        return Step(FILE_HASH, False, f"{matched}, but {wrong_size}"), False
    return Step(FILE_HASH, True, matched + (f"; its {size} bytes match record.sizeBytes"
                                            if sized else "")), False


def check_leaf(claims: Claims) -> Step:
    if claims.record is None:
        return Step(LEAF, None, "no trialnotary record: a plain Chainpoint receipt")
    try:
        leaf = record_leaf(claims.record)
    except ValueError as exc:  # e.g. an integer beyond 2^53, a lone surrogate
        return Step(LEAF, False, f"the record has no canonical form: {exc}")
    if leaf != claims.target:
        return Step(LEAF, False, f"the canonical record hashes to {short(leaf.hex())}, "
                                 f"not targetHash {short(claims.target.hex())}")
    return Step(LEAF, True, f"the canonical record hashes to targetHash "
                            f"{short(claims.target.hex())}")


def check_merkle_path(claims: Claims) -> Step:
    """The proof folds to the root, and (where the receipt says where its leaf is) its sides
    are those of leaf ``leafIndex`` in a tree of ``leafCount`` leaves: a path that starts at
    an inner node, or that belongs to another leaf, has another shape."""
    folded = fold_proof(claims.target, claims.proof)
    problems = []
    if folded != claims.root:
        problems.append(f"folding the proof gives {short(folded.hex())}, not the merkleRoot "
                        f"{short(claims.root.hex())}")
    position, fits = claims.position, ""
    if position is not None:
        sides = [side for step in claims.proof for side in step]
        expected = proof_sides(position.index, position.count)
        leaf = f"leaf {position.index} of {position.count}"
        if sides != expected:
            problems.append(f"the proof's sides ({_sides(sides)}) are not those of {leaf} "
                            f"({_sides(expected)})")
        fits = f"; its sides fit {leaf}"
    if problems:
        return Step(MERKLE_PATH, False, "; ".join(problems))
    return Step(MERKLE_PATH, True, f"folding {len(claims.proof)} proof step(s) from "
                                   f"targetHash gives merkleRoot {short(claims.root.hex())}"
                                   + fits)


def _sides(sides: list[str]) -> str:
    return ", ".join(sides) or "none"


# --- steps on one node ---------------------------------------------------------------

def check_chain(chain: ChainView, claims: Claims) -> tuple[bool, str]:
    actual, expected = chain.chain_id(), claims.anchor.chain_id
    if expected is None:
        return True, f"the node is on chain {actual} (the receipt names no chain id)"
    if actual != expected:
        return False, f"the node is on chain {actual}, not the anchor's chain {expected}"
    return True, f"the node is on chain {actual} ({claims.anchor.chain or chain_name(actual)})"


def _check_anchor_tx(chain: ChainView, claims: Claims) -> tuple[bool, str]:
    tx_hash = claims.anchor.tx_hash
    tx = chain.transaction(tx_hash)
    label = f"transaction {short('0x' + tx_hash)}"
    if tx is None:
        return False, f"{label} is not known to the node"
    problems = []
    receipt = chain.tx_receipt(tx_hash)
    if receipt is None:
        problems.append("it is not mined yet")
    elif receipt.get("status") is None or quantity(receipt["status"]) != 1:
        problems.append(f"it failed (receipt status {receipt.get('status')})")
    data = str(tx.get("input", "")).lower()
    if data != "0x" + claims.root.hex():
        problems.append(f"its input is {_describe_data(data)}, not 0x + {claims.root_name} "
                        f"{short(claims.root.hex())}")
    if claims.record is not None:
        problems += _self_send_problems(tx)
    if problems:
        return False, f"{label}: " + "; ".join(problems)
    to_itself = ", sent to its sender with value 0" if claims.record is not None else ""
    return True, f"{label} succeeded with input 0x + {claims.root_name}{to_itself}"


def _self_send_problems(tx: dict) -> list[str]:
    """A trialnotary anchor goes from the notary's account to itself, with value 0
    (docs/receipt.md); a plain Chainpoint anchor may go elsewhere (Blockcerts used a burn
    address)."""
    problems = []
    to, sender = tx.get("to"), tx.get("from")
    if not to or str(to).lower() != str(sender).lower():
        problems.append(f"it is sent to {to or 'no address'}, not to its sender")
    value = quantity(tx.get("value", "0x0"))
    if value:
        problems.append(f"it carries {value} wei, not 0")
    return problems


def _describe_data(data: str) -> str:
    size = max(len(data) - 2, 0) // 2
    if size == 0:
        return "empty"
    return f"{size} bytes {short(data)}" if size != 32 else short(data)


def _check_sender(chain: ChainView, claims: Claims, pinned: str | None) -> tuple[bool, str]:
    return sender_verdict(chain.transaction(claims.anchor.tx_hash)["from"], claims, pinned)


def sender_verdict(sender: str, claims: Claims, pinned: str | None) -> tuple[bool, str]:
    """The sender step over the address that sent the anchor transaction."""
    problems = []
    if claims.anchor.sender and claims.anchor.sender.lower() != sender.lower():
        problems.append(f"the receipt's sender is {claims.anchor.sender}")
    if pinned and pinned.lower() != sender.lower():
        problems.append(f"the expected sender is {pinned}")
    if problems:
        return False, f"sent by {sender}, but " + " and ".join(problems)
    shown = claims.anchor.sender or sender
    return True, f"sent by {shown}" + (" (the expected sender)" if pinned else "")


def _anchor_block(chain: ChainView, claims: Claims) -> tuple[int, int]:
    """The transaction's block number on the node, and the block the receipt names."""
    tx_block = quantity(chain.transaction(claims.anchor.tx_hash)["blockNumber"])
    named = claims.anchor.block_number
    return tx_block, tx_block if named is None else named


def _check_block(chain: ChainView, claims: Claims) -> tuple[bool, str]:
    anchor = claims.anchor
    tx_block, number = _anchor_block(chain, claims)
    problems = []
    if tx_block != number:
        problems.append(f"the transaction is in block {tx_block}, not {number}")
    block = chain.block(number)
    if block is None:
        return False, "; ".join([*problems, f"the node has no block {number}"])
    block_hash, seen_time = block["hash"].lower(), block_time(quantity(block["timestamp"]))
    if anchor.block_hash and block_hash != anchor.block_hash:
        problems.append(f"block {number} on the node's canonical chain is "
                        f"{short(block_hash)}, not the receipt's blockHash "
                        f"{short(anchor.block_hash)}")
    if anchor.block_time and seen_time != anchor.block_time:
        problems.append(f"block {number}'s time is {seen_time}, not the receipt's blockTime "
                        f"{anchor.block_time}")
    if problems:
        return False, "; ".join(problems)
    return True, f"block {number} {short(block_hash)} at {seen_time} is on the canonical chain"


@dataclass(frozen=True)
class Seen:
    """What a node showed of the anchor: the time of the block that passed the block step,
    the transaction's sender, and the confirmations its block has (``None``: not seen)."""

    block_time: str | None = None
    sender: str | None = None
    confirmations: int | None = None

    def merged(self, other: Seen) -> Seen:
        """This node's view, completed by another's where it saw nothing."""
        return Seen(self.block_time or other.block_time, self.sender or other.sender,
                    self.confirmations if self.confirmations is not None
                    else other.confirmations)


def _seen(chain: ChainView, claims: Claims, tx: dict, block_passed: bool) -> Seen:
    try:
        number = quantity(tx["blockNumber"])
        have = chain.head() - number + 1
        time = (block_time(quantity(chain.block(_anchor_block(chain, claims)[1])["timestamp"]))
                if block_passed else None)
    except (RpcError, KeyError, TypeError, ValueError, AttributeError):
        return Seen(sender=tx.get("from"))
    return Seen(time, tx.get("from"), have)


def _check_confirmations(chain: ChainView, claims: Claims, need: int | str) -> tuple[bool, str]:
    number = quantity(chain.transaction(claims.anchor.tx_hash)["blockNumber"])
    return confirmations_verdict(chain, number, need)


def confirmations_verdict(chain: ChainView, number: int, need: int | str) -> tuple[bool, str]:
    """The confirmations step for block ``number``: the node's head, or its finalized block."""
    head = chain.head()
    if need == FINALIZED:
        finalized = quantity(chain.block(FINALIZED)["number"])
        if number > finalized:
            return False, (f"block {number} is not finalized yet (the node's finalized block "
                           f"is {finalized}, head {head})")
        return True, f"block {number} is finalized (the node's finalized block is {finalized})"
    have = head - number + 1
    if have < need:
        return False, f"{have} confirmation(s), {need} required (head {head})"
    return True, f"{have} confirmations, {need} required"


def run(name: str, check, *args) -> Step:
    """One chain step on one node; node errors and odd answers fail the step.

    :class:`NodeUnreachable` passes through: an unreachable node fails no step by itself.
    """
    try:
        ok, detail = check(*args)
    except RpcError as exc:
        return Step(name, False, f"the node answered with an error: {exc}")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return Step(name, False, f"unexpected answer from the node ({type(exc).__name__}: "
                                 f"{exc})")
    return Step(name, ok, detail)


def skipped(names: tuple[str, ...], reason: str) -> list[Step]:
    return [Step(name, None, reason) for name in names]


def node_steps(chain: ChainView, claims: Claims, need: int | str,
               pinned: str | None) -> tuple[list[Step], Seen]:
    """The chain steps on one node, later ones skipped where an earlier one makes them moot,
    and what the node showed of the anchor (:class:`Seen`). (An anchor with evidence has
    its own: :func:`trialnotary.proof.verify.evidence.node_steps`.)

    Raises ``NodeUnreachable`` when the node stops answering.
    """
    steps = [run(CHAIN, check_chain, chain, claims)]
    if steps[0].ok is not True:
        return steps + skipped(CHAIN_STEPS[1:], "not checked: the node is not on the "
                                                "anchor's chain"), Seen()
    steps.append(run(ANCHOR_TX, _check_anchor_tx, chain, claims))
    try:
        tx = chain.transaction(claims.anchor.tx_hash)
    except RpcError:
        tx = None
    if not isinstance(tx, dict):
        return steps + skipped(CHAIN_STEPS[2:], "not checked: no transaction to check"), Seen()
    steps.append(run(SENDER, _check_sender, chain, claims, pinned))
    if tx.get("blockNumber") is None:
        return steps + skipped(CHAIN_STEPS[3:], "not checked: the transaction is not mined"), \
            Seen(sender=tx.get("from"))
    steps.append(run(BLOCK, _check_block, chain, claims))
    seen = _seen(chain, claims, tx, block_passed=steps[-1].ok is True)
    steps.append(run(CONFIRMATIONS, _check_confirmations, chain, claims, need))
    return steps, seen


def combine(name: str, results: list[tuple[str, Step]]) -> Step:
    """One verdict for a step from every node that answered.

    Nodes that skipped the step do not count towards it (their ``chain`` step already
    fails); a pass on one node and a failure on another is a disagreement, which fails.
    """
    decided = [(url, step) for url, step in results if step.ok is not None]
    skipped_on = [url for url, step in results if step.ok is None]
    if not decided:
        return Step(name, None, results[0][1].detail)
    passing = [url for url, step in decided if step.ok]
    failing = [(url, step.detail) for url, step in decided if not step.ok]
    if failing and passing:
        return Step(name, False, f"nodes disagree: passes on {', '.join(passing)}; fails on "
                                 + "; ".join(f"{url} ({detail})" for url, detail in failing))
    if failing:
        if len(failing) == 1:
            return Step(name, False, failing[0][1])
        return Step(name, False, "; ".join(f"{url}: {detail}" for url, detail in failing))
    detail = decided[0][1].detail
    if len(decided) > 1:
        detail += f" ({len(decided)} nodes agree)"
    if skipped_on:
        detail += f"; not checked on {', '.join(skipped_on)}"
    return Step(name, True, detail)



# --- the record's own claims -----------------------------------------------------------

def check_not_before(not_before: dict, nodes: list[ChainView], proven_time: str | None,
                     no_node: str) -> tuple[Step, str | None]:
    """The ``not-before`` step (docs/verification.md): block ``blockNumber`` of chain
    ``chainId`` is ``blockHash`` on the first node that answers (a node answers the
    canonical block at a height), and its time is no later than the receipt's proven time.
    ``no_node`` says why it is not checked when no node answers. With the step, the block's
    time when the block is the one named (else ``None``)."""
    for node in nodes:
        try:
            block = node.block(not_before["blockNumber"])
        except (NodeUnreachable, RpcError):
            continue
        try:
            return _not_before_on(not_before, block, proven_time)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            return Step(NOT_BEFORE, False, f"unexpected answer from the node "
                                           f"({type(exc).__name__}: {exc})"), None
    return Step(NOT_BEFORE, None, f"not checked: {no_node}"), None


def _not_before_on(not_before: dict, block: dict | None,
                   proven_time: str | None) -> tuple[Step, str | None]:
    number, expected = not_before["blockNumber"], not_before["blockHash"]
    where = chain_label(not_before["chainId"])
    if block is None:
        return Step(NOT_BEFORE, False, f"{where} has no block {number}: the record names a "
                                       "block not on the chain"), None
    actual = block["hash"].lower()
    if actual != expected:
        return Step(NOT_BEFORE, False, f"block {number} of {where} is {actual}, not "
                                       f"notBefore.blockHash {expected}: the record names a "
                                       "block not on the chain"), None
    time = block_time(quantity(block["timestamp"]))
    made_after = f"made after block {number} at {time}"
    if proven_time is None:
        return Step(NOT_BEFORE, None, f"not checked: {made_after}, but the receipt's time "
                                      "is not proven"), time
    if time > proven_time:
        return Step(NOT_BEFORE, False, f"{made_after}, later than the proven time "
                                       f"{proven_time}"), time
    return Step(NOT_BEFORE, True, f"{made_after}; existed no later than {proven_time}"), time


def check_sign_off(record: dict, proven_time: str | None, block_time: str | None) -> Step:
    """The ``sign-off`` step (docs/verification.md): a sign-off's record is of kind
    ``sign-off`` with a well-formed ``signOff`` whose digest is its ``sha256``, signed no
    later than the proven time and, with ``notBefore``, no earlier than that block's time
    (``block_time``, once the ``not-before`` step found the block)."""
    problem = sign_off_problem(record)
    if problem is not None:
        return Step(SIGN_OFF, False, problem)
    sign_off = record["signOff"]
    signed = (f"{sign_off['name']} ({sign_off['role']}) signed registration "
              f"{sign_off['signs']} (leaf {short(sign_off['signsLeaf'])}) as "
              f"{sign_off['meaning']} at {sign_off['signedAt']}")
    problem = signed_at_problem(sign_off, proven_time, record.get("notBefore"), block_time)
    if problem is not None:
        return Step(SIGN_OFF, False, problem)
    if proven_time is None:
        return Step(SIGN_OFF, None, f"not checked: {signed}, but the receipt's time is not "
                                    "proven")
    return Step(SIGN_OFF, True, f"{signed}, no later than the proven time {proven_time}")
