"""scikit-learn's own estimator checks over BayesianGPLVM (tiny configurations, both inference modes)."""

from sklearn.utils.estimator_checks import parametrize_with_checks

import lvm


def _tiny(**kw):
    return lvm.BayesianGPLVM(n_components=1, n_inducing=5, max_iter=10, transform_max_iter=20,
                             n_importance_samples=5, device="cpu", random_state=0, **kw)


@parametrize_with_checks([_tiny(), _tiny(inference="svi", batch_size=16)])
def test_sklearn_compatible(estimator, check):
    check(estimator)
