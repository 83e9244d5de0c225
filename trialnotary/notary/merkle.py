"""Merkle trees of a batch, built with merkletools and kept as pages of nodes per level.

A tree is stored level by level (level 0 = the leaves) as concatenated 32-byte nodes, cut
into pages, so a proof reads one small page per level and never the whole tree. The levels
are derived data: they can always be rebuilt from the leaves in their order.
"""

from __future__ import annotations

from blockcerts_merkletools import MerkleTools

from trialnotary.proof.errors import MalformedValue
from trialnotary.proof.receipt import sibling_positions

NODE = 32
PAGE_NODES = 256


def build_levels(leaves: list[bytes]) -> list[bytes]:
    """All levels of the tree over ``leaves``, leaves first, root last, each as one blob."""
    if not leaves:
        raise MalformedValue("a tree needs at least one leaf")
    tools = MerkleTools(hash_type="sha256")
    # add_leaf takes hex and decodes it again; the leaves are already bytes, so they go
    # into its (public) leaf list directly, and make_tree builds the levels as usual.
    tools.leaves = list(leaves)
    tools.make_tree()
    # merkletools keeps the root level first; we keep the leaves first.
    return [b"".join(level) for level in reversed(tools.levels)]


def pages(levels: list[bytes]):
    """``(level, page, nodes)`` for every page of ``PAGE_NODES`` nodes of every level."""
    size = PAGE_NODES * NODE
    for level, nodes in enumerate(levels):
        for page, start in enumerate(range(0, len(nodes), size)):
            yield level, page, nodes[start:start + size]


def page_of(index: int) -> tuple[int, int]:
    """The page holding node ``index`` of a level, and the node's byte offset in it."""
    page, slot = divmod(index, PAGE_NODES)
    return page, slot * NODE


def root_of(levels: list[bytes]) -> bytes:
    return levels[-1]


def proof_from_nodes(positions: list[tuple[int, int, str]], nodes: list[bytes]) -> list[dict]:
    """Chainpoint proof steps from sibling positions and their node values, in order."""
    return [{side: node.hex()} for (_, _, side), node in zip(positions, nodes, strict=True)]


def proof_from_levels(levels: list[bytes], leaf_index: int) -> list[dict]:
    leaf_count = len(levels[0]) // NODE
    positions = sibling_positions(leaf_index, leaf_count)
    nodes = [levels[lvl][i * NODE:(i + 1) * NODE] for lvl, i, _ in positions]
    return proof_from_nodes(positions, nodes)
