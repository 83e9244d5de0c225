"""The steps of each anchor: one ``ETHData`` anchor's chain steps, ``notary`` and
``evidence`` (every receipt), and, for a receipt of several anchors, each anchor's own steps
in turn: ``rollup``, ``tsa`` (an RFC 3161 time-stamp) and ``renewal`` (an anchor of a
retired chain, renewed by others), with the nodes given routed to the anchors of their
chain. The contract is docs/receipt.md ("Several anchors, roll-ups, time-stamps and
renewals") and docs/verification.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from trialnotary.proof.facts import (
    DEFAULT_RPC_URLS,
    FAILED,
    TIMESTAMP_TYPE,
    UNCHECKED,
    VERIFIED,
    chain_label,
    chain_name,
    default_confirmations,
)
from trialnotary.proof.receipt import evidence_digest as receipt_evidence_digest
from trialnotary.proof.receipt import fold_proof
from trialnotary.proof.verify.checks import Seen
from trialnotary.proof.verify.claims import (
    Anchor,
    Claims,
    Rollup,
    TimeStamp,
    parse_confirmations,
    proof_steps,
)
from trialnotary.proof.verify.evidence import check_evidence
from trialnotary.proof.verify.notary import NOTARY, Identity, pin
from trialnotary.proof.verify.report import (
    BLOCK,
    EVIDENCE,
    RENEWAL,
    ROLLUP,
    SENDER,
    TSA,
    AnchorResult,
    NodeNote,
    Step,
    short,
)
from trialnotary.proof.verify.rpc import NodePool, answered_note, chain_steps

#: What was found of one ``ETHData`` anchor: its chain steps, the notes on the nodes asked,
#: what the nodes showed of it, and its evidence step (if it has evidence).
AnchorSteps = tuple[list[Step], list[NodeNote], Seen, list[Step]]


def anchor_key(claims: Claims) -> tuple:
    """Everything of ``claims`` the steps of :func:`eth_steps` depend on: the anchor, the
    root it must carry and its name, and whether there is a record (a trialnotary anchor
    must be sent to itself with value 0, a plain Chainpoint one need not). A cache of those
    steps is keyed by it, so a plain copy of an anchor never answers for a record's."""
    return claims.anchor, claims.root, claims.root_name, claims.record is not None


def eth_steps(claims: Claims, urls: list[str], need: int | str, pinned: str | None,
              pool: NodePool | None = None, no_node: str | None = None) -> AnchorSteps:
    """The steps that depend only on ``claims.anchor`` and the root it must carry."""
    if claims.anchor.evidence is None:
        return (*chain_steps(urls, claims, need, pinned, pool=pool, no_node=no_node), [])
    evidence, proven = check_evidence(claims)
    return (*chain_steps(urls, claims, need, pinned, proven, pool=pool, no_node=no_node),
            [evidence])


def notary_step(identity: Identity, claims: Claims, chain: list[Step], seen: Seen,
                evidence: list[Step] = ()) -> Step:
    """The ``notary`` step, over the sender and block time the chain steps checked (or, for
    an anchor renewed on other chains, that its ``evidence`` proves: pass it then)."""
    passed = {step.name for step in [*chain, *evidence] if step.ok is True}
    if not ({SENDER, BLOCK} <= passed or EVIDENCE in passed):
        return Step(NOTARY, None, "not checked: the sender and the block must be checked on "
                                  "chain first")
    sender = claims.anchor.sender or seen.sender
    block_time = claims.anchor.block_time or seen.block_time
    verdict = pin(identity, claims.anchor.chain_id, sender, block_time)
    return Step(NOTARY, verdict.ok, verdict.detail)


# --- several anchors ------------------------------------------------------------------

class Routing:
    """Which nodes check which anchors. Without ``--rpc`` (``urls`` is ``None``) each
    chain's default node; with it, only the nodes given, each asked its chain id once and
    used for the anchors of that chain alone (never a default node)."""

    def __init__(self, urls: list[str] | None, pool: NodePool):
        self.given = urls is not None
        self.pool = pool
        self.by_chain: dict[int, list[str]] = {}
        self.silent: list[NodeNote] = []
        for url in urls or ():
            chain_id, note = pool.chain_of(url)
            if chain_id is None:
                self.silent.append(note)
            else:
                self.by_chain.setdefault(chain_id, []).append(url)

    def urls_for(self, chain_id: int | None) -> tuple[list[str], str | None]:
        """The nodes for a chain, and why there is none when there is none."""
        if not self.given:
            urls = [DEFAULT_RPC_URLS[chain_id]] if chain_id in DEFAULT_RPC_URLS else []
            return urls, None
        urls = self.by_chain.get(chain_id, [])
        silent = f" ({len(self.silent)} did not answer)" if self.silent else ""
        return urls, f"no node given is on {chain_label(chain_id)}{silent}"

    def unused_notes(self, used: set[int]) -> list[NodeNote]:
        """Notes on the nodes no anchor was checked on: silent, or of another chain."""
        return self.silent + [
            answered_note(self.pool, url, f"no anchor of this receipt is on chain {chain_id}")
            for chain_id, urls in self.by_chain.items() if chain_id not in used
            for url in urls]


@dataclass
class Run:
    """What one verification run checks the anchors with, kept across the receipts of a
    command (each anchor is checked once): the options, the nodes, the results so far."""

    routing: Routing
    confirmations: int | str | None
    pinned: str | None
    identity: Identity | None
    trusted: tuple = ()  # the certificates --tsa-ca gives
    found: dict | None = None

    def __post_init__(self):
        self.found = {} if self.found is None else self.found
        self.chains_used: set[int] = set()


def check_anchors(claims: Claims, run: Run) -> tuple[list[AnchorResult], list[NodeNote]]:
    """Each anchor of the receipt checked with its own steps, and the notes on every node."""
    notes: dict[str, NodeNote] = {}
    results = [check_entry(entry, claims, claims.root, "merkleRoot", run, notes)
               for entry in claims.anchors]
    unused = run.routing.unused_notes(run.chains_used)
    return results, list(notes.values()) + [n for n in unused if n.url not in notes]


def check_entry(entry: Anchor | TimeStamp, claims: Claims, root: bytes, root_name: str,
                run: Run, notes: dict) -> AnchorResult:
    """One entry attesting ``root`` (called ``root_name`` in messages)."""
    rollup, root, root_name = _rollup(entry.rollup, root, root_name)
    if isinstance(entry, TimeStamp):
        return _time_stamp(entry, root, rollup, run)
    return _eth_data(entry, replace(claims, anchor=entry, root=root, root_name=root_name),
                     rollup, run, notes)


def _rollup(rollup: Rollup | None, root: bytes, root_name: str
            ) -> tuple[list[Step], bytes, str]:
    """The ``rollup`` step, and the root the anchor attests (``rollup.root``, or ``root``)."""
    if rollup is None:
        return [], root, root_name
    folded = fold_proof(root, proof_steps(rollup.proof))
    count = f"{len(rollup.proof)} step(s) of rollup.proof"
    if folded != rollup.root:
        step = Step(ROLLUP, False, f"folding {root_name} {short(root.hex())} through {count} "
                                   f"gives {short(folded.hex())}, not rollup.root "
                                   f"{short(rollup.root.hex())}")
    else:
        step = Step(ROLLUP, True, f"folding {root_name} {short(root.hex())} through {count} "
                                  f"gives rollup.root {short(rollup.root.hex())}, which the "
                                  f"anchor attests")
    return [step], rollup.root, "rollup.root"


def _eth_data(entry: Anchor, claims: Claims, rollup: list[Step], run: Run,
              notes: dict) -> AnchorResult:
    need = parse_confirmations(run.confirmations if run.confirmations is not None
                               else default_confirmations(entry.chain_id))
    urls, no_node = run.routing.urls_for(entry.chain_id)
    if urls:
        run.chains_used.add(entry.chain_id)
    key = (*anchor_key(claims), need, run.pinned, tuple(urls))
    if key not in run.found:
        run.found[key] = eth_steps(claims, urls, need, run.pinned, run.routing.pool, no_node)
    chain, node_notes, seen, evidence = run.found[key]
    for note in node_notes:
        notes.setdefault(note.url, note)
    renewal, renewals, renewed = ([], [], None) if entry.renewal is None else \
        _renewal(entry, claims, evidence, run, notes)
    origin = [] if run.identity is None else [
        notary_step(run.identity, claims, chain, seen, evidence if renewal else [])]
    steps = chain + origin + evidence + rollup + renewal
    block_time = entry.block_time or seen.block_time
    on_chain = all(step.ok is True for step in chain)
    state = (FAILED if any(step.ok is False for step in steps)
             else VERIFIED if on_chain or renewed is not None else UNCHECKED)
    where = f"{entry.name} block {entry.block_number}"
    summary, proven = None, None
    if state == VERIFIED:
        summary, proven = f"anchored on {where} at {block_time}", block_time
        if not on_chain:
            summary += (f" (chain retired); that evidence existed no later than "
                        f"{renewed.proven_time} ({renewed.where})")
            proven = renewed.proven_time
    pinned = state == VERIFIED and (run.pinned is not None or run.identity is not None) \
        and (on_chain or _proven_sender_is(entry, run.pinned))
    return AnchorResult(entry.name, entry.type, _heading(entry), steps, state, proven,
                        pinned, summary, where, renewals)


def _proven_sender_is(entry: Anchor, expected: str | None) -> bool:
    """Off its chain, the sender the evidence proved (``entry.sender``: the evidence step
    recovers it from the signature) is the expected one, when one is expected. The
    signature, not the renewal, is what pins a renewed anchor's origin (the ``notary`` step
    checks it against an identity): a renewal proves a time, whoever anchored it."""
    return expected is None or (entry.sender or "").lower() == expected.lower()


def _heading(entry: Anchor) -> str:
    chain = (f"{entry.chain or chain_name(entry.chain_id)} chain {entry.chain_id}"
             if entry.chain_id is not None else "an unnamed chain")
    return f"anchor {entry.name} ({entry.type}, {chain})"


def evidence_digest(entry: Anchor, root: bytes) -> bytes:
    """What a renewal attests of the retired anchor ``entry``, attesting ``root``
    (``proof.receipt.evidence_digest``)."""
    return receipt_evidence_digest(chain_id=entry.chain_id, block_number=entry.block_number,
                                   block_hash=entry.block_hash, source_id=entry.tx_hash,
                                   root=root)


def _renewal(entry: Anchor, claims: Claims, evidence: list[Step], run: Run, notes: dict
             ) -> tuple[list[Step], list[AnchorResult], AnchorResult | None]:
    """The ``renewal`` step, its anchors' results, and the earliest of them that verified
    when the renewal holds (``None`` otherwise)."""
    renewal = entry.renewal
    problems = []
    digest = evidence_digest(entry, claims.root)
    if digest != renewal.evidence_digest:
        problems.append(f"evidenceDigest {short(renewal.evidence_digest.hex())} is not the "
                        f"digest of the anchor's chainId, blockNumber, blockHash, sourceId and "
                        f"{claims.root_name} ({short(digest.hex())})")
    folded = fold_proof(renewal.evidence_digest, proof_steps(renewal.proof))
    if folded != renewal.root:
        problems.append(f"folding evidenceDigest through {len(renewal.proof)} step(s) of "
                        f"renewal.proof gives {short(folded.hex())}, not renewal.root "
                        f"{short(renewal.root.hex())}")
    results = [check_entry(sub, claims, renewal.root, "renewal.root", run, notes)
               for sub in renewal.anchors]
    failed = [result for result in results if result.state == FAILED]
    if failed:
        problems.append(f"its anchor {failed[0].name} does not verify: "
                        + next(f"{s.name} failed — {s.detail}" for s in failed[0].steps
                               if s.ok is False))
    if problems:
        return [Step(RENEWAL, False, "; ".join(problems))], results, None
    verified = [result for result in results if result.state == VERIFIED]
    if not verified:
        return [Step(RENEWAL, None, "not checked: no anchor of the renewal could be "
                                    "checked")], results, None
    if not any(step.ok is True for step in evidence):
        return [Step(RENEWAL, None, "not checked: a renewal vouches for the anchor's "
                                    "evidence, and the anchor has none that holds")], \
            results, None
    first = min(verified, key=lambda result: result.proven_time)
    return [Step(RENEWAL, True, f"evidenceDigest is the digest of the anchor's chainId, "
                                f"blockNumber, blockHash, sourceId and {claims.root_name}; "
                                f"folding it through {len(renewal.proof)} step(s) gives "
                                f"renewal.root {short(renewal.root.hex())}, attested no later "
                                f"than {first.proven_time} ({first.where})")], results, first


# --- RFC 3161 time-stamps ----------------------------------------------------------------

_WHOLE_SECONDS = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(?:Z|\+00:?00)")


def _time_stamp(entry: TimeStamp, root: bytes, rollup: list[Step], run: Run) -> AnchorResult:
    step, tsa = _tsa_step(entry, root, run)
    steps = rollup + [step]
    state = (FAILED if any(s.ok is False for s in steps)
             else VERIFIED if step.ok else UNCHECKED)
    verified = state == VERIFIED
    return AnchorResult(
        entry.name, TIMESTAMP_TYPE, f"anchor {entry.name} ({TIMESTAMP_TYPE} time-stamp)",
        steps, state, entry.gen_time if verified else None, False,
        f"time-stamped by {tsa or 'its authority'} at {entry.gen_time}" if verified else None,
        f"{entry.name} time-stamp")


def _tsa_step(entry: TimeStamp, root: bytes, run: Run) -> tuple[Step, str | None]:
    """The ``tsa`` step (the token over the attested root, its genTime the receipt's, its
    certificate chaining to one trusted), and the authority's name."""
    try:
        from trialnotary.proof import tsa
    except ImportError:
        return Step(TSA, None, "not checked: this verifier cannot check RFC 3161 "
                               "time-stamps"), None
    trusted = list(run.trusted)
    if run.identity is not None:
        for pem in run.identity.tsa_certificates(entry.name):
            trusted += tsa.load_certificates(pem.encode())
    found = tsa.check_token(entry.token, root, trusted)
    if found.ok is True and found.gen_time is not None \
            and _whole_seconds(found.gen_time) != entry.gen_time:
        return Step(TSA, False, f"the token's genTime is {found.gen_time}, not the "
                                f"receipt's genTime {entry.gen_time}"), found.tsa
    return Step(TSA, found.ok, found.detail), found.tsa


def _whole_seconds(time: str) -> str:
    match = _WHOLE_SECONDS.fullmatch(time)
    return f"{match[1]}Z" if match else time

