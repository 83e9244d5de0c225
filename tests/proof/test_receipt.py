"""The receipt format against the test vectors (docs/vectors): every implementation must
match them."""


import pytest

from tests.proof.vectors import load_vectors
from trialnotary.proof import receipt


@pytest.fixture(scope="module")
def vectors():
    return load_vectors()


def test_records_canonicalise_to_the_vector_bytes_and_leaves(vectors):
    for case in vectors["records"]:
        assert receipt.canonical_json(case["record"]).decode() == case["canonical"]
        assert receipt.record_leaf(case["record"]).hex() == case["leaf"]


def test_audit_head_leaf_matches_the_vector(vectors):
    head = vectors["auditHead"]
    value = head["value"]
    assert receipt.audit_head_leaf(value["seq"], value["head"]).hex() == head["leaf"]


def test_every_vector_proof_folds_to_its_root(vectors):
    for tree in vectors["trees"]:
        for leaf, proof in zip(tree["leaves"], tree["proofs"], strict=True):
            assert receipt.fold_proof(bytes.fromhex(leaf), proof).hex() == tree["root"]


def test_a_swapped_proof_step_does_not_fold_to_the_root(vectors):
    tree = vectors["trees"][3]
    proof = [{"left" if "right" in s else "right": next(iter(s.values()))}
             for s in tree["proofs"][0]]
    assert receipt.fold_proof(bytes.fromhex(tree["leaves"][0]), proof).hex() != tree["root"]


@pytest.mark.parametrize("step", [{"up": "00" * 32}, {"left": "zz" * 32}, {"left": "AB" * 32},
                                  {"left": "00" * 31}, {}, "left"])
def test_malformed_proof_steps_are_refused(step):
    with pytest.raises(ValueError):
        receipt.fold_proof(b"\0" * 32, [step])


def test_chain_names_follow_the_chain_id():
    assert receipt.chain_name(11155111) == "ethereumSepolia"
    assert receipt.chain_name(560048) == "ethereumHoodi"
    assert receipt.chain_name(1) == "ethereumMainnet"
    assert receipt.chain_name(31337) == "ethereumLocal"


@pytest.mark.parametrize("timestamp", [-1, receipt.LAST_BLOCK_TIME + 1, 2**63])
def test_a_block_time_a_receipt_cannot_write_is_an_odd_answer_not_a_crash(timestamp):
    """A node's block time before 1970 or past the year 9999: the chain step that reads it
    fails ("unexpected answer from the node"), as the browser's does (test_browser_evidence)."""
    with pytest.raises(ValueError, match=f"block time {timestamp} is not between 1970 and "
                                         "the year 9999"):
        receipt.block_time(timestamp)
    assert receipt.block_time(receipt.LAST_BLOCK_TIME) == "9999-12-31T23:59:59Z"
