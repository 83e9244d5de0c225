"""The verifier's entry points: every step on a receipt, the file read and the nodes asked
here, the checks themselves in :mod:`.checks`."""

from __future__ import annotations

import hashlib
from pathlib import Path

from trialnotary.proof.facts import DEFAULT_RPC_URLS, default_confirmations
from trialnotary.proof.verify.checks import (
    FileDigest,
    Seen,
    check_file,
    check_leaf,
    check_merkle_path,
)
from trialnotary.proof.verify.claims import (
    Claims,
    parse_address,
    parse_confirmations,
    parse_receipt,
)
from trialnotary.proof.verify.evidence import check_evidence
from trialnotary.proof.verify.notary import NOTARY, Identity, pin
from trialnotary.proof.verify.report import BLOCK, SENDER, NodeNote, Report, Step
from trialnotary.proof.verify.rpc import chain_steps

CHUNK = 1024 * 1024


def default_rpc_urls(chain_id: int | None) -> list[str]:
    return [DEFAULT_RPC_URLS[chain_id]] if chain_id in DEFAULT_RPC_URLS else []


def digest_file(path: str | Path) -> FileDigest:
    """The file's SHA-256 and size, or why it cannot be read."""
    name = Path(path).name
    digest, size = hashlib.sha256(), 0
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        return FileDigest(name, error=str(exc.strerror or exc))
    return FileDigest(name, digest.hexdigest(), size)


#: What was found of one anchor: its chain steps, the notes on the nodes asked, what the
#: nodes showed of it, and its evidence step (if it has evidence).
AnchorSteps = tuple[list[Step], list[NodeNote], Seen, list[Step]]


def check(claims: Claims, *, file_path: str | Path | None = None,
          rpc_urls: list[str] | None = None, confirmations: int | str | None = None,
          expect_sender: str | None = None, notary: Identity | None = None,
          anchors: dict[tuple, AnchorSteps] | None = None) -> Report:
    """Run every step on validated claims. ``rpc_urls=None`` asks the chain's default node;
    an empty list asks none (nothing is then checked on chain). ``confirmations=None``
    requires what the receipt's chain calls for (``default_confirmations``); ``notary``
    pins the origin with the notary's identity (the ``notary`` step).

    ``anchors``: a dict kept across calls (one command run) so that receipts of one batch
    have their anchor checked once, on the nodes and from its evidence.
    """
    need = parse_confirmations(confirmations if confirmations is not None
                               else default_confirmations(claims.anchor.chain_id))
    pinned = parse_address(expect_sender) if expect_sender else None
    urls = default_rpc_urls(claims.anchor.chain_id) if rpc_urls is None else list(rpc_urls)
    file = digest_file(file_path) if file_path is not None else None
    file_step, wrong_file = check_file(claims, file)
    offline = [file_step, check_leaf(claims), check_merkle_path(claims)]
    key = (claims.anchor, claims.root, need, pinned, tuple(urls))
    found = anchors.get(key) if anchors is not None else None
    if found is None:
        found = _anchor_steps(claims, urls, need, pinned)
        if anchors is not None:
            anchors[key] = found
    chain, notes, seen, evidence = found
    origin = [] if notary is None else [notary_step(notary, claims, chain, seen)]
    return Report(claims=claims, confirmations=need, steps=offline + chain + origin + evidence,
                  nodes=notes, seen_block_time=seen.block_time, pinned=pinned,
                  wrong_file=wrong_file, identity=notary, seen_sender=seen.sender,
                  seen_confirmations=seen.confirmations)


def _anchor_steps(claims: Claims, urls: list[str], need: int | str,
                  pinned: str | None) -> AnchorSteps:
    """The steps that depend only on the anchor and the root it must carry."""
    if claims.anchor.evidence is None:
        return (*chain_steps(urls, claims, need, pinned), [])
    evidence, proven = check_evidence(claims)
    return (*chain_steps(urls, claims, need, pinned, proven), [evidence])


def notary_step(identity: Identity, claims: Claims, chain: list[Step], seen: Seen) -> Step:
    """The ``notary`` step, over the sender and block time the chain steps checked."""
    passed = {step.name for step in chain if step.ok is True}
    if not {SENDER, BLOCK} <= passed:
        return Step(NOTARY, None, "not checked: the sender and the block must be checked on "
                                  "chain first")
    sender = claims.anchor.sender or seen.sender
    block_time = claims.anchor.block_time or seen.block_time
    verdict = pin(identity, claims.anchor.chain_id, sender, block_time)
    return Step(NOTARY, verdict.ok, verdict.detail)


def verify_receipt(receipt: dict, *, file_path: str | Path | None = None,
                   rpc_urls: list[str] | None = None, confirmations: int | str | None = None,
                   expect_sender: str | None = None, notary: Identity | None = None,
                   anchors: dict[tuple, AnchorSteps] | None = None) -> Report:
    """Verify a receipt (already parsed from JSON); ``anchors`` as for :func:`check`.

    Raises :class:`ReceiptError` for a malformed receipt and ``ValueError`` for a bad
    ``confirmations`` or ``expect_sender``; every other problem is a failed step.
    """
    return check(parse_receipt(receipt), file_path=file_path, rpc_urls=rpc_urls,
                 confirmations=confirmations, expect_sender=expect_sender, notary=notary,
                 anchors=anchors)
