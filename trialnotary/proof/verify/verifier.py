"""The verifier's entry points: every step on a receipt, the file read and the nodes asked
here, the checks themselves in :mod:`.checks`."""

from __future__ import annotations

import hashlib
from pathlib import Path

from trialnotary.proof import signoff
from trialnotary.proof.facts import DEFAULT_RPC_URLS, chain_label, default_confirmations
from trialnotary.proof.verify.anchors import (
    Routing,
    Run,
    anchor_key,
    check_anchors,
    eth_steps,
    notary_step,
)
from trialnotary.proof.verify.checks import (
    FileDigest,
    check_file,
    check_leaf,
    check_merkle_path,
    check_not_before,
    check_sign_off,
)
from trialnotary.proof.verify.claims import (
    Claims,
    parse_address,
    parse_confirmations,
    parse_receipt,
)
from trialnotary.proof.verify.notary import Identity
from trialnotary.proof.verify.report import Report, Step
from trialnotary.proof.verify.rpc import NodePool

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


def check(claims: Claims, *, file_path: str | Path | None = None,
          rpc_urls: list[str] | None = None, confirmations: int | str | None = None,
          expect_sender: str | None = None, notary: Identity | None = None,
          anchors: dict | None = None, tsa_ca: tuple = (),
          require: tuple[str, ...] = ()) -> Report:
    """Run every step on validated claims. ``rpc_urls=None`` asks the chain's default node;
    an empty list asks none (nothing is then checked on chain). ``confirmations=None``
    requires what the receipt's chain calls for (``default_confirmations``); ``notary``
    pins the origin with the notary's identity (the ``notary`` step); ``tsa_ca``: the
    certificates a time-stamp authority must chain to (``--tsa-ca``); ``require``: the
    anchors that must be checked (``--require``; ``all``: every one).

    ``anchors``: a dict kept across calls (one command run) so that receipts of one batch
    have their anchor checked once, on the nodes and from its evidence (and each
    ``notBefore`` block once). The record's own steps (``not-before``, ``sign-off``) are
    judged against the proven time of the other steps.
    """
    report = _check_anchors(claims, file_path, rpc_urls, confirmations, expect_sender, notary,
                            anchors, tsa_ca, require)
    record = claims.record or {}
    proven_time = report.proven_time
    block_time = _add_not_before(report, record, rpc_urls, anchors, proven_time)
    if signoff.applies(record):
        report.steps.append(check_sign_off(record, proven_time, block_time))
    return report


def _add_not_before(report: Report, record: dict, rpc_urls: list[str] | None,
                    anchors: dict | None, proven_time: str | None) -> str | None:
    """The ``not-before`` step of a record with ``notBefore`` (each block checked once per
    run), appended to the report; the named block's time when it was found."""
    not_before = record.get("notBefore")
    if not_before is None:
        return None
    key = ("not-before", tuple(sorted(not_before.items())),
           None if rpc_urls is None else tuple(rpc_urls), proven_time)
    found = anchors.get(key) if anchors is not None else None
    if found is None:
        found = _not_before_step(not_before, rpc_urls, proven_time)
        if anchors is not None:
            anchors[key] = found
    step, block_time = found
    report.steps.append(step)
    report.made_after = {**not_before, "blockTime": block_time} if step.ok else None
    return block_time


def _not_before_step(not_before: dict, rpc_urls: list[str] | None,
                     proven_time: str | None) -> tuple[Step, str | None]:
    """The ``not-before`` step, on the nodes given that are on the block's chain (else its
    default node), once every other step has decided the proven time."""
    pool = NodePool()
    try:
        routing = Routing(None if rpc_urls is None else list(rpc_urls), pool)
        urls, why = routing.urls_for(not_before["chainId"])
        nodes = [pool.node(url) for url in urls]
        no_node = (why if not urls and why else "no node answered" if urls
                   else f"no node is known for {chain_label(not_before['chainId'])}")
        return check_not_before(not_before, nodes, proven_time, no_node)
    finally:
        pool.close()


def _check_anchors(claims: Claims, file_path: str | Path | None, rpc_urls: list[str] | None,
                   confirmations: int | str | None, expect_sender: str | None,
                   notary: Identity | None, anchors: dict | None, tsa_ca: tuple,
                   require: tuple[str, ...]) -> Report:
    pinned = parse_address(expect_sender) if expect_sender else None
    file = digest_file(file_path) if file_path is not None else None
    file_step, wrong_file = check_file(claims, file)
    offline = [file_step, check_leaf(claims), check_merkle_path(claims)]
    if claims.several:
        return _check_several(claims, offline, wrong_file, rpc_urls, confirmations, pinned,
                              notary, {} if anchors is None else anchors, tsa_ca, require)
    need = parse_confirmations(confirmations if confirmations is not None
                               else default_confirmations(claims.anchor.chain_id))
    urls = default_rpc_urls(claims.anchor.chain_id) if rpc_urls is None else list(rpc_urls)
    key = (*anchor_key(claims), need, pinned, tuple(urls))
    found = anchors.get(key) if anchors is not None else None
    if found is None:
        found = eth_steps(claims, urls, need, pinned)
        if anchors is not None:
            anchors[key] = found
    chain, notes, seen, evidence = found
    origin = [] if notary is None else [notary_step(notary, claims, chain, seen)]
    return Report(claims=claims, confirmations=need, steps=offline + chain + origin + evidence,
                  nodes=notes, seen_block_time=seen.block_time, pinned=pinned,
                  wrong_file=wrong_file, identity=notary, seen_sender=seen.sender,
                  seen_confirmations=seen.confirmations, required=tuple(require))


def _check_several(claims: Claims, offline: list[Step], wrong_file: bool,
                   rpc_urls: list[str] | None, confirmations: int | str | None,
                   pinned: str | None, notary: Identity | None, anchors: dict,
                   tsa_ca: tuple, require: tuple[str, ...]) -> Report:
    """A receipt of several anchors (``claims.several``): each anchor with its own steps."""
    urls = None if rpc_urls is None else tuple(rpc_urls)
    if ("routing", urls) not in anchors:
        anchors[("routing", urls)] = Routing(None if urls is None else list(urls), NodePool())
    run = Run(anchors[("routing", urls)], confirmations, pinned, notary, tuple(tsa_ca),
              anchors)
    results, notes = check_anchors(claims, run)
    first = claims.anchor
    need = (parse_confirmations(confirmations) if confirmations is not None
            else default_confirmations(first.chain_id if first is not None else None))
    return Report(claims=claims, confirmations=need,
                  steps=offline + [step for result in results for step in result.steps],
                  nodes=notes, pinned=pinned, wrong_file=wrong_file, identity=notary,
                  anchors=results, required=tuple(require))


def verify_receipt(receipt: dict, *, file_path: str | Path | None = None,
                   rpc_urls: list[str] | None = None, confirmations: int | str | None = None,
                   expect_sender: str | None = None, notary: Identity | None = None,
                   anchors: dict | None = None, tsa_ca: tuple = (),
                   require: tuple[str, ...] = ()) -> Report:
    """Verify a receipt (already parsed from JSON); ``anchors`` as for :func:`check`.

    Raises :class:`ReceiptError` for a malformed receipt and ``ValueError`` for a bad
    ``confirmations`` or ``expect_sender``; every other problem is a failed step.
    """
    return check(parse_receipt(receipt), file_path=file_path, rpc_urls=rpc_urls,
                 confirmations=confirmations, expect_sender=expect_sender, notary=notary,
                 anchors=anchors, tsa_ca=tsa_ca, require=require)
