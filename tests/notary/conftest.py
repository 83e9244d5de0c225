"""The notary tests' own node."""

from __future__ import annotations

import pytest

from tests.conftest import Anvil


@pytest.fixture
def node():
    """A private anvil that mines only when a transaction arrives (or when told)."""
    node = Anvil(block_time=None)
    node.mine(8)  # some history to reorganise
    yield node
    node.stop()
