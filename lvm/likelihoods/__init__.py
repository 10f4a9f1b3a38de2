"""Likelihoods p(y | f) shared by every decoder family, chosen by name.

A new likelihood is one file (a :class:`Likelihood` subclass) and one line in
:data:`LIKELIHOODS`; every family that accepts ``likelihood=`` can then use it. A name may carry
options in parentheses, ``"binomial(n=16)"`` (see :meth:`Likelihood.configure`).
"""

import ast
import re
from collections.abc import Set

from ._base import Likelihood, masked_sum
from .bernoulli import BernoulliLikelihood
from .binomial import BinomialLikelihood
from .gaussian import GaussianLikelihood
from .negative_binomial import NegativeBinomialLikelihood
from .poisson import PoissonLikelihood

__all__ = ["Likelihood", "GaussianLikelihood", "BernoulliLikelihood", "PoissonLikelihood",
           "NegativeBinomialLikelihood", "BinomialLikelihood", "LIKELIHOODS", "get_likelihood",
           "parse_likelihood", "masked_sum"]

_SPEC = re.compile(r"^\s*([A-Za-z_]\w*)\s*(?:\((.*)\))?\s*$", re.S)


def parse_likelihood(spec: str) -> tuple[str, dict]:
    """Split a likelihood name with options, ``"binomial(n=16)"``, into the name and options.

    Option values are Python literals (numbers, lists); a bare word is a string (``n=total``).

    Parameters
    ----------
    spec : str
        A registered name, optionally followed by ``(key=value, ...)``.

    Returns
    -------
    name : str
        The registered name.
    options : dict
        The options, empty without parentheses.

    Raises
    ------
    ValueError
        When ``spec`` is not of that form.

    Examples
    --------
    >>> from lvm.likelihoods import parse_likelihood
    >>> parse_likelihood("binomial(n=16)")
    ('binomial', {'n': 16})
    """
    match = _SPEC.match(spec) if isinstance(spec, str) else None
    bad = ValueError(f"likelihood={spec!r} is not a likelihood name with options such as "
                     "'poisson' or 'binomial(n=16)'.")
    if match is None:
        raise bad
    name, inner = match.group(1), match.group(2)
    if inner is None or not inner.strip():
        return name, {}
    try:
        call = ast.parse(f"f({inner})", mode="eval").body
    except SyntaxError:
        raise bad from None
    if not isinstance(call, ast.Call) or call.args or any(k.arg is None for k in call.keywords):
        raise bad
    options = {}
    for kw in call.keywords:
        if isinstance(kw.value, ast.Name):
            options[kw.arg] = kw.value.id
            continue
        try:
            options[kw.arg] = ast.literal_eval(kw.value)
        except ValueError:
            raise bad from None
    return name, options


class _Names(Set):
    """The registry's names, live; ``"binomial(n=16)"`` is in it when ``"binomial"`` is."""

    def __init__(self, registry):
        self._registry = registry

    @classmethod
    def _from_iterable(cls, iterable):  # set operations give plain sets
        return frozenset(iterable)

    def __contains__(self, spec):
        try:
            return parse_likelihood(spec)[0] in self._registry
        except ValueError:
            return False

    def __iter__(self):
        return iter(dict.keys(self._registry))

    def __len__(self):
        return len(self._registry)


class _Registry(dict):
    """A dict of likelihood classes by name; a name with options, ``registry["binomial(n=16)"]``,
    gives the class with those options bound (:meth:`Likelihood.configure`)."""

    def __missing__(self, spec):
        name, options = parse_likelihood(spec)
        if not options or name not in self:
            raise KeyError(spec)
        return self[name].configure(**options)

    def keys(self):
        """The names, as a live set that also holds every name with options.

        Returns
        -------
        collections.abc.Set
            The names.
        """
        return _Names(self)


#: Likelihoods by the name the estimators' ``likelihood`` parameter takes.
LIKELIHOODS = _Registry({
    "gaussian": GaussianLikelihood,
    "bernoulli": BernoulliLikelihood,
    "poisson": PoissonLikelihood,
    "negative_binomial": NegativeBinomialLikelihood,
    "binomial": BinomialLikelihood,
})


def get_likelihood(name: str) -> type[Likelihood]:
    """Look up the likelihood class registered under ``name`` in :data:`LIKELIHOODS`.

    Parameters
    ----------
    name : str
        A key of :data:`LIKELIHOODS`, e.g. ``"gaussian"``, optionally with options:
        ``"binomial(n=16)"``.

    Returns
    -------
    type
        The :class:`Likelihood` subclass.

    Raises
    ------
    ValueError
        When no likelihood has that name (the message lists the names), or an option is wrong.

    Examples
    --------
    >>> from lvm.likelihoods import get_likelihood
    >>> get_likelihood("bernoulli").__name__
    'BernoulliLikelihood'
    >>> get_likelihood("binomial(n=16)").options
    {'n': 16}
    """
    base, options = parse_likelihood(name) if isinstance(name, str) else (name, {})
    if base not in LIKELIHOODS:
        raise ValueError(
            f"Unknown likelihood {name!r}; choose one of {sorted(LIKELIHOODS)}."
        )
    cls = dict.__getitem__(LIKELIHOODS, base)
    return cls.configure(**options) if options else cls
