"""Receipts anchored once per test module on the session's anvil, and a private node."""

from __future__ import annotations

import pytest

from tests.conftest import Anvil
from tests.proof.anchored import Batch, make_batch, plain_receipts


@pytest.fixture(scope="module")
def batch(anvil, tmp_path_factory) -> Batch:
    return make_batch(anvil, tmp_path_factory.mktemp("batch"))


@pytest.fixture(scope="module")
def plain_batch(anvil, tmp_path_factory):
    return plain_receipts(anvil, tmp_path_factory.mktemp("plain"))


@pytest.fixture
def private_anvil():
    """A node of our own, mining only when told, for tests that rewrite the chain."""
    node = Anvil(block_time=None)
    yield node
    node.stop()


@pytest.fixture(scope="module")
def misreported(anvil, tmp_path_factory) -> Batch:
    """Genuine receipts whose records claim one byte more than their files hold."""
    def one_byte_more(record):
        record["sizeBytes"] += 1
    return make_batch(anvil, tmp_path_factory.mktemp("misreported"), count=2,
                      edit=one_byte_more)
