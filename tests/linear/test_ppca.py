import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles
from scipy.stats import multivariate_normal
from sklearn.decomposition import PCA

import lvm


def test_score_samples_equals_brute_force_gaussian(ppca_data):
    model = lvm.PPCA(3, device="cpu").fit(ppca_data.Y)
    brute = multivariate_normal(model.mean_, model.get_covariance()).logpdf(ppca_data.Y)
    np.testing.assert_allclose(model.score_samples(ppca_data.Y), brute, rtol=1e-8)
    assert model.log_evidence_ == pytest.approx(brute.sum(), rel=1e-10)


def test_covariance_is_the_ml_solution(ppca_data):
    # C = W W^T + sigma^2 I, sigma^2 the mean discarded eigenvalue of the 1/N covariance.
    Y = ppca_data.Y
    S = np.cov(Y, rowvar=False, bias=True)
    lam, U = np.linalg.eigh(S)
    lam, U = lam[::-1], U[:, ::-1]
    sigma2 = lam[3:].mean()
    C = U[:, :3] @ np.diag(lam[:3]) @ U[:, :3].T + sigma2 * (np.eye(12) - U[:, :3] @ U[:, :3].T)
    model = lvm.PPCA(3, device="cpu").fit(Y)
    assert model.noise_variance_ == pytest.approx(sigma2, rel=1e-12)
    np.testing.assert_allclose(model.get_covariance(), C, rtol=1e-10, atol=1e-12)


def test_matches_sklearn_pca_score_with_the_same_covariance_convention(ppca_data):
    Y = ppca_data.Y
    n = len(Y)
    pca = PCA(3, svd_solver="full").fit(Y)
    # scikit-learn divides by N - 1; lvm is maximum likelihood (1/N). Rescale to compare like with like.
    pca.explained_variance_ *= (n - 1) / n
    pca.noise_variance_ *= (n - 1) / n
    model = lvm.PPCA(3, device="cpu").fit(Y)
    assert model.score(Y) == pytest.approx(pca.score(Y), rel=1e-6)
    np.testing.assert_allclose(model.score_samples(Y), pca.score_samples(Y), rtol=1e-6)


def test_recovers_true_subspace_and_noise():
    data = lvm.datasets.make_ppca(5000, 20, 3, noise=0.25, random_state=1)
    model = lvm.PPCA(3, device="cpu").fit(data.Y)
    angles = subspace_angles(model.components_.T, data.W)
    assert np.max(angles) < 0.05  # radians
    assert model.noise_variance_ == pytest.approx(data.noise, rel=0.03)
    np.testing.assert_allclose(model.mean_, data.mean, atol=0.1)


def test_posterior_is_exact(ppca_data):
    Y = ppca_data.Y[:50]
    model = lvm.PPCA(3, device="cpu").fit(ppca_data.Y)
    W, mu, s2 = model.components_.T, model.mean_, model.noise_variance_
    M = W.T @ W + s2 * np.eye(3)
    mean = np.linalg.solve(M, W.T @ (Y - mu).T).T
    std = np.sqrt(np.diag(s2 * np.linalg.inv(M)))
    X, X_std = model.transform(Y, return_std=True)
    np.testing.assert_allclose(X, mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(X_std, np.broadcast_to(std, X.shape), rtol=1e-10)
    np.testing.assert_allclose(model.inverse_transform(X), X @ W.T + mu, rtol=1e-10)


def test_samples_have_the_model_covariance(ppca_data):
    model = lvm.PPCA(3, device="cpu", random_state=0).fit(ppca_data.Y)
    S = model.sample(100_000, random_state=0)
    np.testing.assert_allclose(np.cov(S, rowvar=False), model.get_covariance(), atol=0.05)
    np.testing.assert_array_equal(model.sample(3, random_state=1), model.sample(3, random_state=1))


def test_fewer_samples_than_features_uses_the_same_ml_solution():
    rng = np.random.default_rng(0)
    Y = rng.standard_normal((30, 50))
    model = lvm.PPCA(4, device="cpu").fit(Y)
    brute = multivariate_normal(model.mean_, model.get_covariance()).logpdf(Y)
    np.testing.assert_allclose(model.score_samples(Y), brute, rtol=1e-8)
    lam = np.linalg.svd(Y - Y.mean(0), compute_uv=False) ** 2 / 30
    assert model.noise_variance_ == pytest.approx(np.concatenate([lam, np.zeros(20)])[4:].mean())


def test_auto_picks_the_true_dimension():
    data = lvm.datasets.make_ppca(3000, 15, 4, noise=0.1, random_state=2)
    model = lvm.PPCA("auto", device="cpu").fit(data.Y)
    assert model.n_components_ == 4


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtypes(ppca_data, dtype):
    model = lvm.PPCA(3, device="cpu", dtype=dtype).fit(ppca_data.Y)
    X = model.transform(ppca_data.Y)
    assert X.dtype == np.dtype(dtype)
    ref = lvm.PPCA(3, device="cpu").fit(ppca_data.Y).score(ppca_data.Y)
    assert model.score(ppca_data.Y) == pytest.approx(ref, rel=1e-5 if dtype == "float32" else 1e-12)


def test_tensor_in_tensor_out(ppca_data):
    Y = torch.as_tensor(ppca_data.Y)
    model = lvm.PPCA(3, device="cpu").fit(Y)
    X = model.transform(Y)
    assert isinstance(X, torch.Tensor) and X.shape == (len(Y), 3)
    assert isinstance(model.score_samples(Y), torch.Tensor)
    np.testing.assert_allclose(X.numpy(), model.transform(ppca_data.Y))


@pytest.mark.gpu
def test_cuda_matches_cpu(ppca_data):
    cpu = lvm.PPCA(3, device="cpu").fit(ppca_data.Y)
    Y = torch.as_tensor(ppca_data.Y, device="cuda")
    gpu = lvm.PPCA(3, device="cuda").fit(Y)
    X = gpu.transform(Y)
    assert X.device.type == "cuda"
    assert gpu.score(Y) == pytest.approx(cpu.score(ppca_data.Y), rel=1e-10)
