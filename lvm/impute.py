"""Imputation of missing values by any lvm model: the posterior of x given a row's observed
entries is exactly what filling its missing entries needs.

With the model fitted to the data with NaN (the evidence of the observed entries), a row's
missing entries are filled with E[y_m | y_o] = E_{p(x | y_o)} E[y_m | x] (single imputation), or a
draw from p(y_m | y_o) (``sample_posterior=True``, for multiple imputation). For the linear family
both are exact Gaussian conditionals.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin, clone
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

__all__ = ["LatentImputer"]


class LatentImputer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Fill missing values (NaN) with a latent-variable model's conditional expectation.

    A scikit-learn transformer that drops into a ``Pipeline`` where
    :class:`~sklearn.impute.SimpleImputer` or :class:`~sklearn.impute.IterativeImputer` would go:
    ``fit`` fits a clone of ``estimator`` to the data with their NaN (every lvm family whose
    ``allow_nan`` tag is True models the observed entries' evidence), ``transform`` replaces each
    NaN by E[y_m | y_o] under that model and keeps observed entries exactly as given.

    Parameters
    ----------
    estimator : lvm estimator, default=None
        The model, e.g. ``lvm.PPCA(3)``, ``lvm.FactorAnalysis(3)``; None means
        ``lvm.PPCA(n_components=2)``.
    sample_posterior : bool, default=False
        Fill with a draw from p(y_m | y_o) instead of its mean (multiple imputation: transform
        again, or with other ``random_state`` values, for more draws).
    random_state : int, RandomState or None, default=None
        Seeds the draws of ``sample_posterior``.

    Attributes
    ----------
    estimator_ : the fitted model.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np, lvm
    >>> Y = lvm.datasets.make_ppca(300, 6, 2, noise=0.1, random_state=0).Y
    >>> Y[::7, 2] = np.nan
    >>> filled = lvm.LatentImputer(lvm.PPCA(2)).fit_transform(Y)
    >>> bool(np.isnan(filled).any())
    False
    """

    def __init__(self, estimator=None, *, sample_posterior=False, random_state=None):
        self.estimator = estimator
        self.sample_posterior = sample_posterior
        self.random_state = random_state

    def _model(self):
        if self.estimator is None:
            from .linear import PPCA

            return PPCA(n_components=2)
        return clone(self.estimator)

    def fit(self, X, y=None):
        """Fit the model to ``X``, in which NaN marks missing entries.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data with missing values.
        y : None
            Ignored; present for scikit-learn's API.

        Returns
        -------
        object
            The fitted imputer.
        """
        model = self._model()
        if not model.__sklearn_tags__().input_tags.allow_nan:
            raise ValueError(f"{type(model).__name__} does not model missing values; choose an "
                             "estimator whose allow_nan tag is True (e.g. lvm.PPCA).")
        validate_data(self, X, ensure_all_finite="allow-nan", dtype=[np.float64, np.float32])
        self.estimator_ = model.fit(X)
        self._seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        self._draws = 0
        return self

    def transform(self, X):
        """Fill every NaN with E[y_m | y_o] under the model (or a draw from p(y_m | y_o)).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data with missing values.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            ``X`` with its missing entries filled; observed entries unchanged.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan",
                          dtype=[np.float64, np.float32])
        generator = None
        if self.sample_posterior:
            import torch

            generator = torch.Generator(device=self.estimator_.device_)
            generator.manual_seed(self._seed + self._draws)  # a fresh draw per call
            self._draws += 1
        return self.estimator_._fill_missing(X, sample=self.sample_posterior,
                                             generator=generator)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
