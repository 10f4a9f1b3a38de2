"""scikit-learn's own estimator checks over the VAE (tiny networks, a few epochs)."""

from sklearn.utils.estimator_checks import parametrize_with_checks

import lvm


@parametrize_with_checks(
    [
        lvm.VAE(n_components=1, hidden_sizes=(8,), max_epochs=5, n_importance_samples=16,
                device="cpu"),
        lvm.VAE(n_components=1, hidden_sizes=(8,), max_epochs=5, n_importance_samples=16,
                device="cpu", dtype=None, noise="per_feature", validation_fraction=0.0),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
