"""Asking chain nodes: a plain JSON-RPC client over ``requests`` (no web3), and the chain
steps run on every node given, combined into one answer per step.

Transport only: what each answer must be is decided in :mod:`.checks`.
"""

from __future__ import annotations

import re
from typing import Any

import requests

from trialnotary.proof.errors import HistoryPruned, NodeUnreachable, RpcError
from trialnotary.proof.evm import Proven
from trialnotary.proof.facts import CHAIN_STEPS, PRUNED_HISTORY_ERROR
from trialnotary.proof.verify.checks import Seen, combine, node_steps, skipped
from trialnotary.proof.verify.claims import Claims, quantity
from trialnotary.proof.verify.evidence import node_steps as evidence_node_steps
from trialnotary.proof.verify.report import NO_NODE_ANSWERED, NodeNote

RPC_TIMEOUT = 5.0


class Node:
    """One JSON-RPC endpoint; each answer is asked for once."""

    def __init__(self, url: str, session: requests.Session, timeout: float = RPC_TIMEOUT):
        self.url = url
        self.session = session
        self.timeout = timeout
        self._answers: dict = {}
        self._next_id = 0

    def call(self, method: str, *params) -> Any:
        key = (method, params)
        if key not in self._answers:
            self._answers[key] = self._post(method, list(params))
        return self._answers[key]

    def _post(self, method: str, params: list) -> Any:
        self._next_id += 1
        request = {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params}
        try:
            reply = self.session.post(self.url, json=request, timeout=self.timeout)
        except requests.RequestException as exc:
            raise NodeUnreachable(_why_unreachable(exc, self.timeout)) from None
        try:
            body = reply.json()
        except ValueError:
            raise NodeUnreachable(f"HTTP {reply.status_code}, not a JSON-RPC answer") from None
        if not isinstance(body, dict) or ("result" not in body and "error" not in body):
            raise NodeUnreachable(f"HTTP {reply.status_code}, not a JSON-RPC answer")
        error = body.get("error")
        if error is not None:
            if isinstance(error, dict) and error.get("code") == PRUNED_HISTORY_ERROR:
                raise HistoryPruned(f"it has expired the history {method} asks for "
                                    f"(error {PRUNED_HISTORY_ERROR}: {error.get('message')})")
            raise RpcError(_describe_rpc_error(method, error))
        return body["result"]

    def chain_id(self) -> int:
        return quantity(self.call("eth_chainId"))

    def head(self) -> int:
        return quantity(self.call("eth_blockNumber"))

    def transaction(self, tx_hash: str) -> dict | None:
        return self.call("eth_getTransactionByHash", "0x" + tx_hash)

    def tx_receipt(self, tx_hash: str) -> dict | None:
        return self.call("eth_getTransactionReceipt", "0x" + tx_hash)

    def block(self, number: int | str) -> dict | None:
        tag = hex(number) if isinstance(number, int) else number
        return self.call("eth_getBlockByNumber", tag, False)


def _why_unreachable(exc: requests.RequestException, timeout: float) -> str:
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout:g} s"
    reason = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(exc))
    return reason.group(1).strip() if reason else f"{type(exc).__name__}: {exc}"


def _describe_rpc_error(method: str, error: Any) -> str:
    if isinstance(error, dict):
        return f"{method}: {error.get('message', 'error')} (code {error.get('code')})"
    return f"{method}: {error}"


def _note(node: Node, error: NodeUnreachable | None) -> NodeNote:
    if isinstance(error, HistoryPruned):
        return NodeNote(node.url, False, f"cannot answer: {error}")
    if error is not None:
        return NodeNote(node.url, False, f"unreachable: {error}")
    try:
        chain_id, head = node.chain_id(), node.head()
    except (RpcError, NodeUnreachable, ValueError):
        return NodeNote(node.url, True, "answered")
    return NodeNote(node.url, True, f"answered (chain {chain_id}, head {head})", chain_id, head)


class NodePool:
    """The nodes of one verification run, each made once, so that each answer (its chain id
    first of all) is asked for once however many anchors and receipts need it."""

    def __init__(self):
        self.session = requests.Session()
        self._nodes: dict[str, Node] = {}

    def node(self, url: str) -> Node:
        if url not in self._nodes:
            self._nodes[url] = Node(url, self.session)
        return self._nodes[url]

    def chain_of(self, url: str) -> tuple[int | None, NodeNote | None]:
        """The node's chain id, or ``None`` and the note on why it did not say."""
        node = self.node(url)
        try:
            return node.chain_id(), None
        except NodeUnreachable as exc:
            return None, _note(node, exc)
        except (RpcError, ValueError) as exc:
            return None, NodeNote(url, False, f"cannot answer eth_chainId: {exc}")

    def close(self) -> None:
        self.session.close()


def answered_note(pool: NodePool, url: str, why: str) -> NodeNote:
    """The note on a node that answered but was asked nothing more, and why."""
    note = _note(pool.node(url), None)
    return NodeNote(url, True, f"{note.detail}; {why}", note.chain_id, note.head)


def _ask_nodes(urls: list[str], claims: Claims, need: int | str, pinned: str | None,
               proven: Proven | None, pool: NodePool):
    """Chain steps per answering node, notes on every node, and what they showed."""
    answers, notes, seen = [], [], Seen()
    for url in urls:
        node = pool.node(url)
        try:
            if claims.anchor.evidence is not None:
                steps, node_seen = evidence_node_steps(node, claims, need, pinned, proven)
            else:
                steps, node_seen = node_steps(node, claims, need, pinned)
        except NodeUnreachable as exc:
            notes.append(_note(node, exc))
            continue
        answers.append((url, steps))
        notes.append(_note(node, None))
        seen = seen.merged(node_seen)
    return answers, notes, seen


def chain_steps(urls: list[str], claims: Claims, need: int | str, pinned: str | None,
                proven: Proven | None = None, pool: NodePool | None = None,
                no_node: str | None = None):
    """The chain steps over every node; skipped (not failed) when no node answers.
    ``proven``: what the anchor's evidence proves, if it carries evidence that holds.
    ``pool``: the run's nodes (a pool of its own otherwise); ``no_node``: why there is no
    node to ask, when ``urls`` is empty.

    Returns the steps, a note on each node asked, and what the nodes showed (:class:`Seen`).
    """
    if not urls:
        chain = claims.anchor.chain_id
        reason = no_node or ("no chain node to ask: give one with --rpc"
                             + (f" (there is no default node for chain {chain})"
                                if chain else ""))
        return skipped(CHAIN_STEPS, reason), [], Seen()
    own = pool is None
    pool = NodePool() if own else pool
    try:
        answers, notes, seen = _ask_nodes(urls, claims, need, pinned, proven, pool)
    finally:
        if own:
            pool.close()
    if not answers:
        return skipped(CHAIN_STEPS, NO_NODE_ANSWERED), notes, seen
    steps = [combine(name, [(url, steps[i]) for url, steps in answers])
             for i, name in enumerate(CHAIN_STEPS)]
    return steps, notes, seen
