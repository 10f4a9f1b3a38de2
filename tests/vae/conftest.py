"""Shared problems for the VAE tests: standardized digits with a fixed split (the PPCA data,
``ppca_3000x20``, are in tests/conftest.py)."""

import numpy as np
import pytest
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import lvm


@pytest.fixture(scope="session")
def digits_split():
    """Standardized digits (scaler fitted on the training part), 80/20 split, float32."""
    d = lvm.datasets.load_digits()
    Y_tr, Y_te, l_tr, l_te = train_test_split(d.Y, d.labels, test_size=0.2, random_state=0,
                                              stratify=d.labels)
    scaler = StandardScaler().fit(Y_tr)
    return (scaler.transform(Y_tr).astype(np.float32), scaler.transform(Y_te).astype(np.float32),
            l_tr, l_te)

