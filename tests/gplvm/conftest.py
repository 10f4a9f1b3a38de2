"""Shared problems and settings for the GPLVM tests."""

import pytest

import lvm


#: Small, fast settings for fits whose numbers are not the point of the test.
SMALL = dict(n_inducing=10, max_iter=60, transform_max_iter=50, n_importance_samples=10,
             device="cpu", random_state=0)


@pytest.fixture(scope="module")
def Y(ppca_400x5):
    return ppca_400x5.Y[:200]


@pytest.fixture(scope="module")
def oil():
    try:
        d = lvm.datasets.load_oil_flow()
    except lvm.datasets.DataFileNotFoundError as exc:
        pytest.skip(str(exc))
    Y = (d.Y - d.Y.mean(0)) / d.Y.std(0)
    return Y, d.labels


def one_nn_accuracy(X, labels):
    """10-fold cross-validated 1-nearest-neighbour accuracy."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    cv = StratifiedKFold(10, shuffle=True, random_state=0)
    return float(cross_val_score(KNeighborsClassifier(1), X, labels, cv=cv).mean())
