"""Shared fixtures for the diffusion tests."""

import pytest

from .problems import gaussian_problem


@pytest.fixture(scope="module")
def gauss():
    return gaussian_problem()
