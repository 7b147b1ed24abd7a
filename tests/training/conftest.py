"""One torch thread for the training tests: the networks are tiny, and on a shared 2-core
machine two OpenMP threads spin against other processes and run 5-10x slower."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
