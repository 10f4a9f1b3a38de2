"""lvm.metrics and lvm.plot.embedding_report: the neighbour metrics by hand on small problems."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.manifold import trustworthiness as sk_trustworthiness
from sklearn.neighbors import KNeighborsClassifier

import lvm
from lvm.metrics import embedding_report, knn_accuracy, neighbor_overlap, trustworthiness


@pytest.fixture(scope="module")
def blobs():
    Y, labels = make_blobs(300, n_features=6, centers=3, cluster_std=1.0, random_state=0)
    return Y[:200], labels[:200], Y[200:], labels[200:]


def _overlap_by_hand(Y, X, k):
    def sets(A):
        d = ((A[:, None] - A[None]) ** 2).sum(-1)
        np.fill_diagonal(d, np.inf)
        return [set(np.argsort(row, kind="stable")[:k]) for row in d]

    return np.mean([len(a & b) / k for a, b in zip(sets(Y), sets(X))])


def test_neighbor_overlap_by_hand():
    rng = np.random.default_rng(0)
    Y, X = rng.normal(size=(40, 5)), rng.normal(size=(40, 2))
    assert neighbor_overlap(Y, X, 4) == pytest.approx(_overlap_by_hand(Y, X, 4), abs=1e-12)
    # A map that keeps every distance (a rotation) keeps every neighbour set.
    Q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    assert neighbor_overlap(Y, Y @ Q, 4) == 1.0


def test_neighbor_overlap_errors():
    with pytest.raises(ValueError, match="same rows"):
        neighbor_overlap(np.zeros((5, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"n_neighbors=5 must be in \[1, 4\]"):
        neighbor_overlap(np.zeros((5, 2)), np.zeros((5, 2)), 5)


def test_trustworthiness_and_knn_are_scikit_learns(blobs):
    Y, labels, Yt, labels_t = blobs
    X, Xt = Y[:, :2], Yt[:, :2]
    assert trustworthiness(Yt, Xt, 5) == sk_trustworthiness(Yt, Xt, n_neighbors=5)
    assert trustworthiness(Yt, Yt, 5) == pytest.approx(1.0)
    expected = KNeighborsClassifier(5).fit(X, labels).score(Xt, labels_t)
    assert knn_accuracy(X, labels, Xt, labels_t, 5) == expected


def test_embedding_report_of_ppca(blobs):
    Y, labels, Yt, labels_t = blobs
    model = lvm.PPCA(2).fit(Y)
    rep = embedding_report(model, Y, labels, Yt, labels_t)
    X, Xt = model.transform(Y), model.transform(Yt)
    assert rep.evidence == pytest.approx(model.score(Yt), rel=1e-12)
    assert rep.evidence_kind == "exact"
    assert rep.knn_1 == knn_accuracy(X, labels, Xt, labels_t, 1)
    assert rep.trustworthiness == pytest.approx(sk_trustworthiness(Yt, Xt, n_neighbors=5))
    rmse = np.sqrt(np.mean((model.inverse_transform(Xt) - Yt) ** 2))
    assert rep.reconstruction_rmse == pytest.approx(rmse, rel=1e-12)
    assert (rep.n_train, rep.n_test) == (200, 100)
    assert "exact" in str(rep) and set(rep.as_dict()) >= {"knn_5", "neighbor_overlap"}
    with pytest.raises(ValueError, match="labels_test is needed"):
        embedding_report(model, Y, labels, Yt)


def test_embedding_report_leave_one_out(blobs):
    Y, labels = blobs[0], blobs[1]
    model = lvm.PPCA(2).fit(Y)
    rep = embedding_report(model, Y, labels, evidence=False)
    X = model.transform(Y)
    d = ((X[:, None] - X[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert rep.knn_1 == pytest.approx(np.mean(labels[d.argmin(1)] == labels))
    assert rep.evidence is None


def test_plot_embedding_report(blobs):
    from matplotlib.figure import Figure

    Y, labels, Yt, labels_t = blobs
    model = lvm.PPCA(2).fit(Y)
    fig = lvm.plot.embedding_report(model, Y, labels, Yt, labels_t)
    assert isinstance(fig, Figure)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any("trustworthiness@5" in t and "exact" in t for t in texts)
