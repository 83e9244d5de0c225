"""The blocks records name as ``notBefore`` (docs/api.md, "Beacon"), checked before anything
is stored: a block of a chain the notary anchors on, with the hash its node has at that
number. A record naming any other block would be a claim the verifier's ``not-before``
step fails, so it is refused (422) rather than stored and shown as proven.

The node is asked before the write transaction opens (the SQLite write lock is never held
during a network call), each block once per request.
"""

from __future__ import annotations

from collections.abc import Iterable

from trialnotary.notary.chain import ChainClient
from trialnotary.notary.errors import BlockUnchecked, ChainError
from trialnotary.validation import ValidationError


def names_blocks(items: list[dict]) -> bool:
    return any(item.get("notBefore") for item in items)


def check_not_before(chains: Iterable[ChainClient], items: list[dict], *,
                     bulk: bool) -> None:
    """Refuse (``ValidationError``, naming the field) a ``notBefore`` of a chain none of
    ``chains`` (the notary's EVM anchors) is on, or whose block the node of that chain does
    not have at that number with that hash; ``BlockUnchecked`` when that node does not
    answer."""
    by_id = {chain.settings.chain_id: chain for chain in chains}
    hashes: dict[tuple[int, int], str | None] = {}
    for index, item in enumerate(items):
        named = item.get("notBefore")
        if not named:
            continue
        field = f"submissions[{index}].notBefore" if bulk else "notBefore"
        chain = by_id.get(named["chainId"])
        if chain is None:
            anchored = ", ".join(map(str, sorted(by_id))) or "none"
            raise ValidationError(f"{field}.chainId",
                                  f"names chain {named['chainId']}, not one this notary "
                                  f"anchors on ({anchored})")
        key = (named["chainId"], named["blockNumber"])
        if key not in hashes:
            hashes[key] = _hash_at(chain, named["blockNumber"])
        if hashes[key] != named["blockHash"]:
            found = ("has no block of that number yet" if hashes[key] is None
                     else "has another block at that number")
            raise ValidationError(field, f"block {named['blockNumber']} {named['blockHash']} "
                                         f"is not on chain {named['chainId']}: the notary's "
                                         f"node {found} (name the beacon's block)")


def _hash_at(chain: ChainClient, number: int) -> str | None:
    try:
        chain.ensure_chain()
        block = chain.block_if_any(number)
    except ChainError as exc:
        raise BlockUnchecked("notBefore", f"the notary's node of chain "
                                          f"{chain.settings.chain_id} does not answer, so "
                                          f"the block named cannot be checked: {exc}") from None
    if not isinstance(block, dict) or not block.get("hash"):
        return None
    return block["hash"].lower()
