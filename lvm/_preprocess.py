r"""Per-feature standardization of a table with missing entries (NaN), and its log-Jacobian.

z = (y - m) / s, with m_d and s_d the mean and standard deviation of feature d over its observed
entries (s_d = 1 where it is 0 or undefined: a constant or empty feature). A NaN stays NaN, and
the log-Jacobian of a row, log |dz/dy| = -sum_d log s_d, runs over the features the row observes,
so log p(y_o) = log p(z_o) + log |dz_o/dy_o| for every row. ``lvm.compare(standardize=True)`` and
the command line's ``--standardize`` both use it. Numpy only (the command line imports it).
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["feature_standardization", "standardize"]


def feature_standardization(Y):
    """Per-feature mean and standard deviation of ``Y`` (n_samples, n_features) over its observed
    (non-NaN) entries, as float64 arrays of shape (n_features,); the scale is 1 where the standard
    deviation is 0 or undefined, and the mean is NaN for a feature with nothing observed."""
    Y = np.asarray(Y, dtype=np.float64)
    with warnings.catch_warnings():  # an all-NaN feature: NaN mean, reported by the estimator
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(Y, 0)
        scale = np.nanstd(Y, 0)
    scale[~(scale > 0)] = 1.0
    return mean, scale


def standardize(Y, mean, scale):
    """``(Z, log_jacobian)``: Z = (Y - mean) / scale, NaN where Y is, and log |dZ/dY| of each row,
    -sum of log(scale) over the row's observed features, shape (n_samples,)."""
    Y = np.asarray(Y, dtype=np.float64)
    return (Y - mean) / scale, -((~np.isnan(Y)) @ np.log(scale))
