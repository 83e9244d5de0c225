"""The beacon: the newest confirmed block of the notary's first EVM anchor
(``GET /api/v1/beacon``, docs/api.md). A record that names it as ``notBefore`` was made
after that block; a seed derived from it (``trialnotary beacon --derive``) could not have
been known before the block."""

from __future__ import annotations

from trialnotary.notary.chain import ChainClient
from trialnotary.notary.errors import ChainError
from trialnotary.proof.receipt import block_time


def confirmed_block_number(chain: ChainClient) -> int:
    """The newest block with the anchor's confirmations: the finalized block, or for N
    confirmations the head's N−1th ancestor (the genesis block at least)."""
    confirmations = chain.settings.confirmations
    if confirmations == "finalized":
        return chain.finalized()
    return max(0, chain.head() - int(confirmations) + 1)


def beacon(chain: ChainClient) -> dict:
    """``{"chainId", "blockNumber", "blockHash", "blockTime"}`` of the newest confirmed
    block. Raises ``ChainError`` when no node answers, or one of another chain does."""
    chain.ensure_chain()
    number = confirmed_block_number(chain)
    block = chain.raw_block(number)
    if not isinstance(block, dict) or not block.get("hash"):
        raise ChainError(f"the node has no block {number}")
    return {"chainId": chain.settings.chain_id, "blockNumber": number,
            "blockHash": block["hash"].lower(),
            "blockTime": block_time(int(block["timestamp"], 16))}
