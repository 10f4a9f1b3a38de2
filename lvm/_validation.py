"""Hyper-parameter validation: the one place lvm imports scikit-learn's private ``_param_validation``.

Estimators declare ``_parameter_constraints`` with these names and scikit-learn's
``BaseEstimator._validate_params`` checks them when ``fit`` starts, with its uniform messages
("The 'tol' parameter of PPCA must be a float in the range [0.0, inf). Got -1 instead.").
"""

from __future__ import annotations

import numbers

from sklearn.utils._param_validation import Interval, StrOptions

__all__ = ["Interval", "StrOptions", "positive_int", "nonnegative_int", "positive_real",
           "unit_interval", "check_positive_int"]


def positive_int():
    """An integer >= 1."""
    return Interval(numbers.Integral, 1, None, closed="left")


def nonnegative_int():
    """An integer >= 0."""
    return Interval(numbers.Integral, 0, None, closed="left")


def positive_real():
    """A real number > 0."""
    return Interval(numbers.Real, 0, None, closed="neither")


def unit_interval(closed="left"):
    """A real number in [0, 1) (``closed="left"``) or [0, 1] (``"both"``)."""
    return Interval(numbers.Real, 0, 1, closed=closed)


def check_positive_int(value, name: str = "n_samples") -> int:
    """``value`` as an int when it is a positive integer (not a bool); otherwise a ValueError."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)
