"""scikit-learn's own estimator checks over the linear family."""

from sklearn.utils.estimator_checks import parametrize_with_checks

import lvm


@parametrize_with_checks(
    [lvm.PPCA(n_components=1, device="cpu"), lvm.FactorAnalysis(n_components=1, device="cpu")]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
