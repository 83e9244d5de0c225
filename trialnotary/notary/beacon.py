"""The beacon: the newest confirmed block of the notary's first EVM anchor
(``GET /api/v1/beacon``, docs/api.md). A record that names it as ``notBefore`` was made
after that block; a seed derived from it (``trialnotary beacon --derive``) could not have
been known before the block."""

from __future__ import annotations

from datetime import datetime

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


def beacon(chain: ChainClient, *, not_after: datetime | None = None) -> dict:
    """``{"chainId", "blockNumber", "blockHash", "blockTime"}`` of the newest confirmed
    block; with ``not_after``, of the newest confirmed block no later than that (whole
    seconds): what a sign-off made at ``not_after`` may name, when the chain's clock runs
    ahead of ours. Raises ``ChainError`` when no node answers, one of another chain does,
    or every block is later than ``not_after``."""
    chain.ensure_chain()
    number = confirmed_block_number(chain)
    block = _block(chain, number)
    if not_after is not None and _seconds(block) > int(not_after.timestamp()):
        number, block = _newest_not_after(chain, number, int(not_after.timestamp()))
    return {"chainId": chain.settings.chain_id, "blockNumber": number,
            "blockHash": block["hash"].lower(), "blockTime": block_time(_seconds(block))}


def _block(chain: ChainClient, number: int) -> dict:
    block = chain.raw_block(number)
    if not isinstance(block, dict) or not block.get("hash"):
        raise ChainError(f"the node has no block {number}")
    return block


def _seconds(block: dict) -> int:
    return int(block["timestamp"], 16)


def _newest_not_after(chain: ChainClient, later: int, limit: int) -> tuple[int, dict]:
    """The newest block before block ``later`` (whose time is after ``limit``) with a time
    no later than ``limit``: block times never decrease, so a binary search, about
    log2(``later``) calls."""
    low, found = 0, _block(chain, 0)
    if _seconds(found) > limit:
        raise ChainError("every block of the chain is later than this server's clock")
    while later - low > 1:
        middle = (low + later) // 2
        block = _block(chain, middle)
        if _seconds(block) <= limit:
            low, found = middle, block
        else:
            later = middle
    return low, found
