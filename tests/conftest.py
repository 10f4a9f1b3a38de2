import pytest
import torch

import lvm


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="CUDA is not available")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def ppca_data():
    """Seeded PPCA data, 2000 x 12 with a 3-D latent."""
    return lvm.datasets.make_ppca(2000, 12, 3, noise=0.2, random_state=0)


@pytest.fixture(scope="session")
def wine():
    """scikit-learn's wine data: (Y 178 x 13, class 0/1/2, feature names usable in a header)."""
    from sklearn.datasets import load_wine

    d = load_wine()
    return d.data, d.target, [n.replace("/", "_") for n in d.feature_names]
