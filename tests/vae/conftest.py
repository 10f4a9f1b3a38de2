"""Shared problems for the VAE tests: PPCA data and standardized digits with a fixed split."""

import numpy as np
import torch
import pytest
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import lvm


@pytest.fixture(scope="session")
def ppca_data():
    return lvm.datasets.make_ppca(3000, 20, 2, noise=0.1, random_state=0)


@pytest.fixture(scope="session")
def digits_split():
    """Standardized digits (scaler fitted on the training part), 80/20 split, float32."""
    d = lvm.datasets.load_digits()
    Y_tr, Y_te, l_tr, l_te = train_test_split(d.Y, d.labels, test_size=0.2, random_state=0,
                                              stratify=d.labels)
    scaler = StandardScaler().fit(Y_tr)
    return (scaler.transform(Y_tr).astype(np.float32), scaler.transform(Y_te).astype(np.float32),
            l_tr, l_te)


@pytest.fixture(autouse=True, scope="module")
def _one_intra_op_thread():
    """CI-sized networks gain nothing from intra-op threads, and on a loaded machine their
    synchronization makes each step many times slower; run the VAE tests on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
