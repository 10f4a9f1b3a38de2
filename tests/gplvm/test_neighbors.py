"""The GPLVM's neighbour term (neighbor_weight): its full-batch loss by hand and by finite
differences, that it moves q(x) but never the number reported, and new rows' q(x*)."""

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs

import lvm
from lvm.gplvm.collapsed import CollapsedELBO
from lvm.latents.neighbors import NeighborGraph, NeighborMap
from lvm.metrics import neighbor_overlap

SMALL = dict(n_inducing=12, max_iter=60, device="cpu", random_state=0)


@pytest.fixture(scope="module")
def blobs():
    Y, labels = make_blobs(240, n_features=8, centers=5, cluster_std=2.0, random_state=0)
    return Y, labels


def test_full_batch_loss_by_hand():
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(30, 4, generator=g, dtype=torch.float64)
    mu = torch.randn(30, 2, generator=g, dtype=torch.float64)
    graph, s = NeighborGraph(Z, 3), 2.0
    got = graph.loss(mu, scale=s)
    negatives = graph.negatives.tolist()
    assert negatives == list(range(30))  # 30 rows <= N_NEGATIVES: every row is a negative

    def q(a, b):
        return 1.0 / (1.0 + s * s * float(((a - b) ** 2).sum()))

    for i in range(30):
        attraction = np.mean([math.log(q(mu[i], mu[j])) for j in graph.index[i].tolist()])
        repulsion = math.log(sum(q(mu[i], mu[r]) for r in negatives))
        assert got[i].item() == pytest.approx(repulsion - attraction, rel=1e-12)
    rows = torch.tensor([4, 17])
    torch.testing.assert_close(graph.loss(mu, rows, scale=s), got[rows])


def test_full_batch_loss_gradient_matches_finite_differences():
    g = torch.Generator().manual_seed(1)
    Z = torch.randn(12, 3, generator=g, dtype=torch.float64)
    mu = torch.randn(12, 2, generator=g, dtype=torch.float64, requires_grad=True)
    graph = NeighborGraph(Z, 4)
    assert torch.autograd.gradcheck(lambda m: graph.loss(m, scale=1.5), (mu,))


def test_map_loss_is_the_training_form_against_fixed_reference_means():
    g = torch.Generator().manual_seed(2)
    Z = torch.randn(40, 3, generator=g, dtype=torch.float64)
    X = torch.randn(40, 2, generator=g, dtype=torch.float64)
    nmap = NeighborMap(Z, X, 5)
    # A new row equal to training row i: its nearest reference row is row i itself.
    index = nmap.neighbors(Z[:3])
    assert (index[:, 0] == torch.arange(3)).all()
    m = X[:3].clone() + 0.1
    s = nmap.scale  # 40 rows <= N_NEGATIVES: every reference row is a negative
    pos = X[index] * s
    attraction = -torch.log1p((m.unsqueeze(1) * s - pos).square().sum(-1)).mean(1)
    repulsion = torch.logsumexp(-torch.log1p(torch.cdist(m * s, X * s).square()), 1)
    torch.testing.assert_close(nmap.loss(m, index), repulsion - attraction)


@pytest.mark.parametrize("inference", ["collapsed", "svi"])
def test_the_term_moves_q_not_the_reported_bound(blobs, inference):
    Y, labels = blobs
    kw = dict(SMALL, inference=inference)
    if inference == "svi":
        kw.update(max_iter=8, batch_size=60)
    plain = lvm.BayesianGPLVM(2, neighbor_weight=0, **kw).fit(Y)
    mapped = lvm.BayesianGPLVM(2, neighbor_weight=10.0, **kw).fit(Y)
    assert plain.family_.neighbors is None and mapped.family_.neighbors is not None
    # the map keeps more of each row's 15 nearest rows
    kept = [neighbor_overlap(Y, m.latent_mean_, 15) for m in (plain, mapped)]
    print(f"{inference}: overlap@15 {kept[0]:.3f} (weight 0) -> {kept[1]:.3f} (weight 10)")
    assert kept[1] > kept[0]
    if inference == "collapsed":
        # the number reported is the bound itself at the fitted parameters (no term in it)
        Z = mapped._validate_Y(Y, reset=False)
        with torch.no_grad():
            family = mapped.family_
            bound = CollapsedELBO(family.module, jitter=family.jitter)(Z - family.offset)
        value = float(bound) / Y.shape[0] + mapped._log_jacobian
        assert mapped.elbo_ == pytest.approx(value, rel=1e-10)
        assert mapped.history_[-1]["train"] == pytest.approx(value, rel=1e-8)


def test_new_rows_fitted_against_the_map_are_row_independent(blobs):
    Y, labels = blobs
    m = lvm.BayesianGPLVM(2, neighbor_weight=10.0, transform_max_iter=30, **SMALL).fit(Y[:200])
    X = m.transform(Y[200:])
    np.testing.assert_allclose(m.transform(Y[210:220]), X[10:20], rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(m.transform(Y[200:]), X)  # deterministic
    # the training rows are served their own q(x_n)
    np.testing.assert_array_equal(m.transform(Y[:200]), m.latent_mean_)
    # a new row lands among its own blob's training rows
    from sklearn.neighbors import KNeighborsClassifier

    acc = KNeighborsClassifier(5).fit(m.latent_mean_, labels[:200]).score(X, labels[200:])
    assert acc >= 0.9
    assert np.isfinite(m.score(Y[200:]))


def test_auto_weight_is_on_for_maps_only(blobs):
    Y = blobs[0][:80]
    kw = dict(SMALL, max_iter=4, tol=None)
    assert lvm.BayesianGPLVM(2, **kw).fit(Y).family_.neighbors is not None
    assert lvm.BayesianGPLVM(3, **kw).fit(Y).family_.neighbors is None  # ARD: the evidence's dims
    assert lvm.BayesianGPLVM(2, encoder=True, **kw).fit(Y).family_.neighbors is None


@pytest.mark.slow
def test_default_gplvm_map_of_the_digits():
    """Issue 18's bar: the default GPLVM's 2-D q(x) means of the standardized digits give a
    10-fold 1-NN accuracy of at least 0.85 (0.884 measured; 0.751 with neighbor_weight=0)."""
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler

    d = lvm.datasets.load_digits()
    Y = StandardScaler().fit_transform(d.Y)
    X = lvm.BayesianGPLVM(2, random_state=0).fit(Y).transform(Y)
    acc = cross_val_score(KNeighborsClassifier(1), X, d.labels, cv=10).mean()
    print(f"\ndefault GPLVM, digits, 10-fold 1-NN of the 2-D means: {acc:.3f}")
    assert acc >= 0.85
