import pytest
import torch

import lvm


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="CUDA is not available")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Every test runs on one intra-op thread: the problems are small, and on a shared 2-core
    machine the synchronization of torch's thread pool costs more than it gains and makes steps
    many times slower. ``lvm.settings.num_threads(1)`` fixes it for lvm's fits and evaluations;
    torch's own count is set too, for the tensors tests compute themselves (likelihoods, bounds,
    psi statistics). Session-scoped, so the module-scoped fits are on one thread too; restored
    at the end."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with lvm.settings.num_threads(1):
            yield
    finally:
        torch.set_num_threads(before)


# The seeded PPCA data sets the tests share (make_ppca, random_state=0), one fixture per shape,
# named by it: the families check different things at different costs.
@pytest.fixture(scope="session")
def ppca_data():
    """2000 x 12, 3-D latent, noise 0.2: the linear families' exact evidence and EM."""
    return lvm.datasets.make_ppca(2000, 12, 3, noise=0.2, random_state=0)


@pytest.fixture(scope="session")
def ppca_3000x20():
    """3000 x 20, 2-D latent, noise 0.1: enough rows for a VAE to learn the linear map and match
    PPCA's exact evidence."""
    return lvm.datasets.make_ppca(3000, 20, 2, noise=0.1, random_state=0)


@pytest.fixture(scope="session")
def ppca_400x5():
    """400 x 5, 2-D latent, noise 0.1: small enough for the GPLVM's bounds (cubic in the
    inducing points, linear in rows) in a fraction of a second."""
    return lvm.datasets.make_ppca(400, 5, 2, noise=0.1, random_state=0)


@pytest.fixture(scope="session")
def ppca_300x4():
    """300 x 4, 2-D latent, noise 0.2: the diffusion model's Gaussian start (its cost grows with
    the data's dimension)."""
    return lvm.datasets.make_ppca(300, 4, 2, noise=0.2, random_state=0)


@pytest.fixture(scope="session")
def wine():
    """scikit-learn's wine data: (Y 178 x 13, class 0/1/2, feature names usable in a header)."""
    from sklearn.datasets import load_wine

    d = load_wine()
    return d.data, d.target, [n.replace("/", "_") for n in d.feature_names]
