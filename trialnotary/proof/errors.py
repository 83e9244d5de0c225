"""The one error hierarchy of :mod:`trialnotary.proof`: every error it raises on purpose is a
:class:`ProofError`, so a caller can catch the verifier's refusals apart from its own bugs.

Errors about a value also derive from ``ValueError``, as they always did, so code that
catches ``ValueError`` keeps working.
"""

from __future__ import annotations


class ProofError(Exception):
    """Base of every error the receipt format and the verifier raise."""


class MalformedValue(ProofError, ValueError):
    """A hash, a proof step, an option or another value is not of the form required."""


class ReceiptError(MalformedValue):
    """The receipt cannot be read as a receipt at all (as opposed to failing a step)."""


class NodeUnreachable(ProofError):
    """A node gave no JSON-RPC answer: connection refused, timeout, not JSON."""


class RpcError(ProofError):
    """A node answered with a JSON-RPC error object."""


class HistoryPruned(NodeUnreachable):
    """The node has expired the history asked for (EIP-4444: JSON-RPC error 4444, "pruned
    history unavailable"). It cannot answer, which refutes nothing: it is reported like a
    node that did not answer, and a receipt with chain evidence does not need it."""


class EvidenceError(ProofError, ValueError):
    """Chain evidence does not hold: bytes that are not canonical RLP, a transaction, receipt
    or header that does not decode, a Merkle-Patricia proof that does not lead to its
    value."""
