"""Shared fixtures for the diffusion tests."""

import pytest
import torch

from .problems import gaussian_problem


@pytest.fixture(autouse=True, scope="module")
def _one_intra_op_thread():
    """Small tensors gain nothing from intra-op threads; the test machine is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def gauss():
    return gaussian_problem()
