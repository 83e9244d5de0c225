"""Tree levels and proofs: stored level by level, identical to merkletools' own proofs."""

import hashlib

import pytest
from blockcerts_merkletools import MerkleTools

from trialnotary.notary import merkle
from trialnotary.proof.receipt import fold_proof, level_sizes, proof_sides


def leaves_of(count: int) -> list[bytes]:
    return [hashlib.sha256(str(i).encode()).digest() for i in range(count)]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33, 100])
def test_proofs_from_levels_equal_merkletools_proofs(count):
    leaves = leaves_of(count)
    levels = merkle.build_levels(leaves)
    tools = MerkleTools()
    tools.add_leaf([leaf.hex() for leaf in leaves])
    tools.make_tree()
    assert merkle.root_of(levels).hex() == tools.get_merkle_root()
    for index, leaf in enumerate(leaves):
        proof = merkle.proof_from_levels(levels, index)
        assert proof == tools.get_proof(index)
        assert fold_proof(leaf, proof) == merkle.root_of(levels)


def test_the_sides_of_a_proof_follow_from_the_leafs_place():
    """proof_sides, which the verifier checks a proof against, is merkletools' shape."""
    for count in range(1, 40):
        levels = merkle.build_levels(leaves_of(count))
        for index in range(count):
            proof = merkle.proof_from_levels(levels, index)
            assert [side for step in proof for side in step] == proof_sides(index, count)
    assert proof_sides(4, 5) == ["left"]  # carried up twice, then the left sibling
    assert proof_sides(0, 1) == []


def test_level_sizes_carry_the_odd_node_up():
    assert level_sizes(1) == [1]
    assert level_sizes(5) == [5, 3, 2, 1]
    assert [len(level) // 32 for level in merkle.build_levels(leaves_of(5))] == [5, 3, 2, 1]


def test_a_tree_needs_a_leaf():
    with pytest.raises(ValueError):
        merkle.build_levels([])


def test_pages_cut_each_level_and_page_of_finds_every_node():
    levels = merkle.build_levels(leaves_of(merkle.PAGE_NODES * 2 + 3))
    stored = {(level, page): nodes for level, page, nodes in merkle.pages(levels)}
    assert (0, 2) in stored and (0, 3) not in stored
    for level, nodes in enumerate(levels):
        for index in range(len(nodes) // merkle.NODE):
            page, offset = merkle.page_of(index)
            node = stored[(level, page)][offset:offset + merkle.NODE]
            assert node == nodes[index * merkle.NODE:(index + 1) * merkle.NODE]
