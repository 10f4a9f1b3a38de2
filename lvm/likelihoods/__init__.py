"""Likelihoods p(y | f) shared by every decoder family, chosen by name.

A new likelihood is one file (a :class:`Likelihood` subclass) and one line in
:data:`LIKELIHOODS`; every family that accepts ``likelihood=`` can then use it.
"""

from ._base import Likelihood, masked_sum
from .bernoulli import BernoulliLikelihood
from .gaussian import GaussianLikelihood

__all__ = ["Likelihood", "GaussianLikelihood", "BernoulliLikelihood", "LIKELIHOODS",
           "get_likelihood", "masked_sum"]

#: Likelihoods by the name the estimators' ``likelihood`` parameter takes.
LIKELIHOODS = {"gaussian": GaussianLikelihood, "bernoulli": BernoulliLikelihood}


def get_likelihood(name: str) -> type[Likelihood]:
    """Look up the likelihood class registered under ``name`` in :data:`LIKELIHOODS`.

    Parameters
    ----------
    name : str
        A key of :data:`LIKELIHOODS`, e.g. ``"gaussian"``.

    Returns
    -------
    type
        The :class:`Likelihood` subclass.

    Raises
    ------
    ValueError
        When no likelihood has that name; the message lists the names.

    Examples
    --------
    >>> from lvm.likelihoods import get_likelihood
    >>> get_likelihood("bernoulli").__name__
    'BernoulliLikelihood'
    """
    try:
        return LIKELIHOODS[name]
    except KeyError:
        raise ValueError(
            f"Unknown likelihood {name!r}; choose one of {sorted(LIKELIHOODS)}."
        ) from None
