"""Check a receipt step by step: file, leaf, Merkle path, and the anchor on chain nodes and
from its chain evidence.

A verifier people must be able to trust and read on their own: it imports only the standard
library, ``requests`` and the rest of :mod:`trialnotary.proof` (whose :mod:`.evm` brings
pycryptodome and coincurve), never the server's configuration, database or web3. It talks
plain JSON-RPC to whichever nodes it is given, so ``trialnotary verify`` starts fast and asks
nothing of the notary.

- :mod:`.claims` reads a receipt and says what it claims;
- :mod:`.checks` runs the steps over the claims, a file's digest and what a node answers;
- :mod:`.evidence` checks an anchor's chain evidence, and answers the chain steps from it;
- :mod:`.rpc` asks the nodes (the JSON-RPC client) and combines their answers;
- :mod:`.notary` reads the notary's identity document and pins the origin with it;
- :mod:`.report` holds the result, the verdict in words and its text;
- :mod:`.verifier` and :mod:`.command` are the entry points, for code and for the CLI.

The step names and their meaning are a contract: docs/verification.md. The names, verdict
states and exit codes themselves are :mod:`trialnotary.proof.facts`.
"""

from trialnotary.proof.errors import NodeUnreachable, ProofError, ReceiptError, RpcError
from trialnotary.proof.facts import UNCHECKED
from trialnotary.proof.verify.checks import ChainView, FileDigest
from trialnotary.proof.verify.claims import (
    FINALIZED,
    Anchor,
    Claims,
    load_receipt,
    parse_address,
    parse_confirmations,
    parse_receipt,
    parse_rpc_url,
)
from trialnotary.proof.verify.command import main
from trialnotary.proof.verify.notary import Identity, IdentityError, load_identity, parse_identity
from trialnotary.proof.verify.report import (
    NO_NODE_ANSWERED,
    NodeNote,
    Report,
    Step,
    Verdict,
    exit_code_of,
    render_text,
    verdict_of,
)
from trialnotary.proof.verify.rpc import RPC_TIMEOUT, Node
from trialnotary.proof.verify.verifier import (
    check,
    default_rpc_urls,
    digest_file,
    verify_receipt,
)

__all__ = [
    "FINALIZED", "NO_NODE_ANSWERED", "RPC_TIMEOUT", "UNCHECKED",
    "Anchor", "ChainView", "Claims", "FileDigest", "Identity", "IdentityError", "Node",
    "NodeNote", "NodeUnreachable",
    "ProofError", "ReceiptError", "Report", "RpcError", "Step", "Verdict",
    "check", "default_rpc_urls", "digest_file", "exit_code_of", "load_identity",
    "load_receipt", "main", "parse_identity",
    "parse_address", "parse_confirmations", "parse_receipt", "parse_rpc_url", "render_text",
    "verdict_of", "verify_receipt",
]
