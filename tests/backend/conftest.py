"""Fixtures shared by the backend tests."""

import pytest
import torch


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's tests (many small tensor ops: threads cost more than they
    give), then the count as it was: set at import instead, it held for every module after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
