r"""The likelihood p(y | f) shared by every decoder family.

A likelihood maps the decoder output f (one value per feature) to a distribution over the data.
Every quantity is per row, summed over features, and takes an optional boolean ``mask`` of the
data's shape (True where an entry is observed): masked entries contribute nothing, and whatever
they hold (NaN included) never enters the arithmetic.

Besides ``log_prob(y, f)`` the families need two integrals over a Gaussian belief
f ~ N(m, v) about the decoder output (a GP's predictive, say):

.. math::
    \text{expected\_log\_prob} = \mathbb E_{f}[\log p(y \mid f)], \qquad
    \text{log\_marginal} = \log \mathbb E_{f}[p(y \mid f)],

the first for variational bounds, the second for the evidence of a point given x. Both are
closed form for the Gaussian; the default here is Gauss–Hermite quadrature with ``n_points``
nodes, :math:`\mathbb E[g(f)] \approx \pi^{-1/2} \sum_i w_i\, g(m + \sqrt{2v}\, t_i)`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

__all__ = ["Likelihood"]

_GH_CACHE: dict = {}
_CONFIGURED: dict = {}


def _new_configured(base, options):
    cls = base.configure(**options)
    return cls.__new__(cls)


def _gauss_hermite(n: int, like: torch.Tensor):
    key = (n, like.device, like.dtype)
    if key not in _GH_CACHE:
        t, w = np.polynomial.hermite.hermgauss(n)
        _GH_CACHE[key] = (torch.as_tensor(t, dtype=like.dtype, device=like.device),
                          torch.as_tensor(w / math.sqrt(math.pi), dtype=like.dtype,
                                          device=like.device))
    return _GH_CACHE[key]


def masked_sum(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Sum over the last dimension of the entries where ``mask`` is True (all without a mask).

    Masked entries never enter the arithmetic, so a NaN there does not propagate.

    Parameters
    ----------
    values : torch.Tensor of shape (..., D)
        The values to sum.
    mask : torch.Tensor of bool of shape (..., D), or None
        True where an entry counts.

    Returns
    -------
    torch.Tensor of shape (...)
        The sums.
    """
    if mask is None:
        return values.sum(-1)
    return torch.where(mask, values, values.new_zeros(())).sum(-1)


def observed_mask(y: torch.Tensor) -> torch.Tensor | None:
    """The ``mask`` argument for data ``y`` whose NaN are missing entries: True where observed, or
    None when every entry is (the unmasked fast path)."""
    mask = ~torch.isnan(y)
    return None if bool(mask.all()) else mask


def _fill(y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    # Unobserved entries may hold NaN; zero them before any arithmetic (a NaN behind torch.where
    # still poisons the gradient of the branch it sits in).
    return y if mask is None else torch.where(mask, y, y.new_zeros(()))


class Likelihood(nn.Module):
    """Base class: p(y | f) per entry, independent over features.

    Subclasses implement ``_log_prob_entries(y, f)`` (elementwise log-density), ``mean``,
    ``sample`` and, where it has a closed form, ``expected_log_prob`` / ``log_marginal``.

    Parameters
    ----------
    *args, **kwargs
        Passed to :class:`torch.nn.Module`; the base class has no parameters of its own.

    Attributes
    ----------
    support : str
        Words for the values the likelihood accepts, used in error messages.
    location_scale : bool
        True when y | f is a location-scale family in y (the Gaussian): the data may then be
        standardized internally, and the evidence shifts by the log-Jacobian.
    n_points : int
        Gauss-Hermite nodes for the default integrals.
    n_parameters : int
        The number of learned real parameters.
    name : str
        The name the class is registered under in :data:`lvm.likelihoods.LIKELIHOODS`.
    discrete : bool
        True when y takes integer values and ``log_prob`` is a log-probability (at most 0 per
        entry), not a log-density.
    option_names : tuple of str
        The options a name may set, as in ``"binomial(n=16)"`` (see :meth:`configure`).
    options : dict
        The options this class was configured with (empty for a registered class itself).
    """

    # Documented under Attributes in the class docstring.
    name: str = ""
    support: str = "real numbers"
    location_scale: bool = False
    discrete: bool = False
    n_points: int = 20
    option_names: tuple = ()
    options: dict = {}

    # ------------------------------------------------------------------ options
    @classmethod
    def configure(cls, **options) -> type:
        """Return the subclass of this likelihood with ``options`` bound (``"binomial(n=16)"``).

        :func:`lvm.likelihoods.get_likelihood` calls it for a name with options; the same options
        give the same class. Its instances pickle and copy as any other likelihood's.

        Parameters
        ----------
        **options
            Values for names in :attr:`option_names`.

        Returns
        -------
        type
            A subclass whose :attr:`options` hold ``options``.

        Raises
        ------
        ValueError
            For an option the likelihood does not take, or a value it rejects.
        """
        base = cls.__dict__.get("_configured_from", cls)
        unknown = sorted(set(options) - set(base.option_names))
        if unknown:
            takes = (f"it takes {list(base.option_names)}" if base.option_names
                     else "it takes none")
            raise ValueError(f"likelihood {base.name!r} has no option {unknown[0]!r}; {takes}.")
        options = base._check_options({**cls.options, **options})
        key = (base, repr(sorted(options.items())))
        if key not in _CONFIGURED:
            _CONFIGURED[key] = type(base.__name__, (base,), {
                "options": options, "_configured_from": base, "__module__": base.__module__,
                "__qualname__": base.__qualname__, "__doc__": base.__doc__})
        return _CONFIGURED[key]

    @classmethod
    def _check_options(cls, options: dict) -> dict:
        """Validate option values (subclasses with options override); return them."""
        return options

    @classmethod
    def spec(cls) -> str:
        """The name with options, as the estimators' ``likelihood`` parameter takes it.

        Returns
        -------
        str
            E.g. ``"poisson"`` or ``"binomial(n=16)"``.
        """
        if not cls.options:
            return cls.name
        return f"{cls.name}({', '.join(f'{k}={v}' for k, v in cls.options.items())})"

    def __reduce_ex__(self, protocol):
        reduced = super().__reduce_ex__(protocol)
        base = type(self).__dict__.get("_configured_from")
        if base is None:
            return reduced
        # A configured class is made at run time: rebuild it from its base and options.
        return (_new_configured, (base, dict(self.options))) + tuple(reduced[2:])

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_data(cls, Y: torch.Tensor, **preferences) -> "Likelihood":
        """Make a likelihood initialized for data ``Y`` (subclasses document their heuristics).

        Parameters
        ----------
        Y : torch.Tensor of shape (n_samples, n_features)
            The training data.
        **preferences
            A family's wishes (``noise="per_feature"``, a starting noise ``fraction``); a
            likelihood without such parameters ignores them, so a family never needs to know
            which likelihood it was given.

        Returns
        -------
        Likelihood
            A new instance.
        """
        return cls()

    @classmethod
    def check_support(cls, Y: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        """Raise a ValueError naming the problem when ``Y`` is outside the support.

        Parameters
        ----------
        Y : torch.Tensor of shape (n_samples, n_features)
            The data.
        mask : torch.Tensor of bool, optional
            True where an entry is observed; only those entries are checked.
        """

    # ------------------------------------------------------------------ densities
    def _log_prob_entries(self, y: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def log_prob(self, y, f, mask=None) -> torch.Tensor:
        """Log-density log p(y | f) per row, summed over the last dimension.

        Parameters
        ----------
        y : torch.Tensor of shape (..., D)
            The data.
        f : torch.Tensor of shape (..., D)
            The decoder output; leading dimensions broadcast against ``y``.
        mask : torch.Tensor of bool, optional
            True where an entry of ``y`` is observed; the others contribute nothing.

        Returns
        -------
        torch.Tensor of shape (...)
            The log-density of each row, in nats.
        """
        return masked_sum(self._log_prob_entries(_fill(y, mask), f), mask)

    def _nodes(self, mean, var):
        """Quadrature nodes f_i = mean + sqrt(2 var) t_i along a new leading axis, and the weights
        (shaped to broadcast against them)."""
        t, w = _gauss_hermite(self.n_points, mean)
        shape = (-1,) + (1,) * mean.dim()
        return mean + torch.sqrt(2.0 * var) * t.view(shape), w.view(shape)

    def expected_log_prob(self, y, mean, var, mask=None) -> torch.Tensor:
        """Expected log-density E_{f ~ N(mean, var)} log p(y | f) per row.

        By Gauss-Hermite quadrature with :attr:`n_points` nodes unless the subclass has a
        closed form.

        Parameters
        ----------
        y : torch.Tensor of shape (..., D)
            The data.
        mean, var : torch.Tensor of shape (..., D)
            The Gaussian belief about the decoder output, per entry.
        mask : torch.Tensor of bool, optional
            True where an entry of ``y`` is observed.

        Returns
        -------
        torch.Tensor of shape (...)
            The expectation per row, in nats.
        """
        f, w = self._nodes(mean, var)
        values = (self._log_prob_entries(_fill(y, mask), f) * w).sum(0)
        return masked_sum(values, mask)

    def log_marginal(self, y, mean, var, mask=None) -> torch.Tensor:
        """Log marginal density log E_{f ~ N(mean, var)} p(y | f) per row.

        Per entry, then summed over entries; by Gauss-Hermite quadrature unless the subclass
        has a closed form.

        Parameters
        ----------
        y : torch.Tensor of shape (..., D)
            The data.
        mean, var : torch.Tensor of shape (..., D)
            The Gaussian belief about the decoder output, per entry.
        mask : torch.Tensor of bool, optional
            True where an entry of ``y`` is observed.

        Returns
        -------
        torch.Tensor of shape (...)
            The log marginal density per row, in nats.
        """
        f, w = self._nodes(mean, var)
        values = torch.logsumexp(self._log_prob_entries(_fill(y, mask), f) + torch.log(w), 0)
        return masked_sum(values, mask)

    # ------------------------------------------------------------------ predictions
    def mean(self, f: torch.Tensor) -> torch.Tensor:
        """Mean of y given the decoder output, E[y | f].

        Parameters
        ----------
        f : torch.Tensor
            The decoder output.

        Returns
        -------
        torch.Tensor
            E[y | f], of the shape of ``f``.
        """
        raise NotImplementedError

    def marginal_mean(self, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        """Mean of y when f ~ N(mean, var), by quadrature unless closed form.

        Parameters
        ----------
        mean, var : torch.Tensor
            The Gaussian belief about the decoder output, per entry.

        Returns
        -------
        torch.Tensor
            E[y], of the shape of ``mean``.
        """
        f, w = self._nodes(mean, var)
        return (self.mean(f) * w).sum(0)

    def inverse_mean(self, mean: torch.Tensor) -> torch.Tensor:
        """Find the decoder output f whose E[y | f] is ``mean``.

        Used to start a decoder at the data mean.

        Parameters
        ----------
        mean : torch.Tensor
            A mean of y.

        Returns
        -------
        torch.Tensor
            The decoder output f, of the shape of ``mean``.
        """
        raise NotImplementedError

    def sample(self, f: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw y from p(y | f).

        Parameters
        ----------
        f : torch.Tensor
            The decoder output.
        generator : torch.Generator, optional
            The source of randomness.

        Returns
        -------
        torch.Tensor
            One draw per entry of ``f``.
        """
        raise NotImplementedError

    @property
    def n_parameters(self) -> int:
        """The number of learned real parameters."""
        return sum(p.numel() for p in self.parameters())


def check_counts(cls, Y: torch.Tensor, mask: torch.Tensor | None = None, upper=None) -> None:
    """Raise a ValueError when an observed entry of ``Y`` is not a non-negative integer (or is
    above ``upper``, the number of trials, a number or a tensor that broadcasts against ``Y``).

    Parameters
    ----------
    cls : type
        The likelihood class, named in the message.
    Y : torch.Tensor of shape (n_samples, n_features)
        The data.
    mask : torch.Tensor of bool, optional
        True where an entry is observed; only those entries are checked.
    upper : float or torch.Tensor, optional
        The largest value allowed.
    """
    observed = torch.ones_like(Y, dtype=torch.bool) if mask is None else mask
    Yf = _fill(Y, mask)
    bad = observed & ((Yf < 0) | (Yf != torch.round(Yf)) | ~torch.isfinite(Yf))
    if bool(bad.any()):
        example = float(Yf[bad][0])
        raise ValueError(
            f"likelihood={cls.spec()!r} needs non-negative integer counts; {int(bad.sum())} "
            f"observed entries are not (e.g. {example:.4g}). Pass the raw counts (not normalized "
            "or log-transformed), or use likelihood='gaussian' for continuous data.")
    if upper is not None:
        over = observed & (Yf > upper)
        if bool(over.any()):
            example = float(Yf[over][0])
            raise ValueError(
                f"likelihood={cls.spec()!r} needs counts at most the number of trials; "
                f"{int(over.sum())} observed entries are above it (e.g. {example:.4g}). Set n "
                "to the largest possible count (e.g. 'binomial(n=total)' for the row's total), "
                "or use likelihood='poisson'.")


def laplace_log_marginal(likelihood, y, mean, var, mask=None, n_newton: int = 30):
    r"""log E_{f ~ N(mean, var)} p(y | f) per row by adaptive Gauss-Hermite quadrature.

    For a likelihood log-concave in f whose integrand is much narrower than the belief (counts
    in the hundreds), nodes spread over N(mean, var) miss it. Here they are centred at the mode
    f* of log p(y | f) + log N(f; mean, var) and scaled by its curvature s^2 = -1 / h''(f*) (Liu
    & Pierce, 1994): with normalized weights w_i and nodes f_i = f* + sqrt(2) s t_i,

    .. math::
        \int \mathcal N(f; m, v)\, p(y \mid f)\, df \approx \sum_i w_i\,
        \frac{\mathcal N(f_i; m, v)\, p(y \mid f_i)}{\mathcal N(f_i; f^*, s^2)},

    exact for a Gaussian integrand. The mode is found by Newton's method (steps of at most 2)
    from ``mean``, without gradients: the rule's placement is fixed, the value stays
    differentiable in ``mean``, ``var`` and the likelihood's parameters.

    Parameters
    ----------
    likelihood : Likelihood
        It provides ``_log_prob_entries(y, f)`` and ``_log_prob_derivatives(y, f)``, the first
        and second derivatives of the log-probability in f.
    y : torch.Tensor of shape (..., D)
        The data.
    mean, var : torch.Tensor of shape (..., D)
        The Gaussian belief about f, per entry.
    mask : torch.Tensor of bool, optional
        True where an entry of ``y`` is observed.
    n_newton : int, default=30
        Newton steps.

    Returns
    -------
    torch.Tensor of shape (...)
        The log marginal probability per row, in nats.
    """
    y = _fill(y, mask)
    with torch.no_grad():
        m, v = mean.detach(), var.detach()
        f = m.clone()
        for _ in range(n_newton):
            d1, d2 = likelihood._log_prob_derivatives(y, f)
            f = f - ((d1 - (f - m) / v) / (d2 - 1.0 / v)).clamp(-2.0, 2.0)
        d2 = likelihood._log_prob_derivatives(y, f)[1]
        s = torch.rsqrt(1.0 / v - d2)
    t, w = _gauss_hermite(likelihood.n_points, mean)
    shape = (-1,) + (1,) * mean.dim()
    t, w = t.view(shape), w.view(shape)
    nodes = f + math.sqrt(2.0) * s * t
    log_belief = -0.5 * (torch.log(2 * math.pi * var) + (nodes - mean) ** 2 / var)
    log_rule = t ** 2 + torch.log(math.sqrt(2 * math.pi) * s)  # -log N(f_i; f*, s^2)
    values = torch.logsumexp(torch.log(w) + log_belief + log_rule
                             + likelihood._log_prob_entries(y, nodes), 0)
    return masked_sum(values, mask)


def inverse_softplus(v: torch.Tensor) -> torch.Tensor:
    """softplus^{-1}(v) = v + log(-expm1(-v)), stable for small and large v > 0."""
    return v + torch.log(-torch.expm1(-v))


class CountLikelihood(Likelihood):
    """Base of the count likelihoods: discrete, their support checked by :func:`check_counts`,
    the log marginal by adaptive Gauss-Hermite quadrature (:func:`laplace_log_marginal`), which
    needs ``_log_prob_derivatives(y, f)``: the first and second derivatives of the
    log-probability in f.

    Parameters
    ----------
    *args, **kwargs
        Passed to :class:`torch.nn.Module`.
    """

    support = "non-negative integers"
    discrete = True
    @classmethod
    def evidence_of(cls) -> str:
        """What ``log_prob`` is a log-probability of (``lvm.compare``'s ``of`` column).

        Returns
        -------
        str
            ``"log P(y)"``.
        """
        return "log P(y)"

    @classmethod
    def check_support(cls, Y, mask=None):
        """Raise a ValueError when an observed entry of ``Y`` is not a non-negative integer.

        Parameters
        ----------
        Y : torch.Tensor of shape (n_samples, n_features)
            The data.
        mask : torch.Tensor of bool, optional
            True where an entry is observed; only those entries are checked.
        """
        check_counts(cls, Y, mask)

    def link_transform(self, y: torch.Tensor) -> torch.Tensor:
        """The counts on the scale of the decoder output f: ``inverse_mean(y + 1/2)`` (log(y +
        1/2) for a log link), finite at y = 0. Its PCA starts a count model (GLM-PCA's start).

        Parameters
        ----------
        y : torch.Tensor
            Counts.

        Returns
        -------
        torch.Tensor
            f-scale values, of the shape of ``y``.
        """
        return self.inverse_mean(y + 0.5)

    def _log_prob_derivatives(self, y, f):  # pragma: no cover - abstract
        raise NotImplementedError

    def log_marginal(self, y, mean, var, mask=None):
        """Log marginal probability log E_{f ~ N(mean, var)} p(y | f) per row.

        By adaptive Gauss-Hermite quadrature centred at the integrand's mode
        (:func:`~lvm.likelihoods._base.laplace_log_marginal`): the integrand of a large count is
        far narrower than the belief, and nodes spread over the belief would miss it.

        Parameters
        ----------
        y : torch.Tensor of shape (..., D)
            The counts.
        mean, var : torch.Tensor of shape (..., D)
            The Gaussian belief about f, per entry.
        mask : torch.Tensor of bool, optional
            True where an entry of ``y`` is observed.

        Returns
        -------
        torch.Tensor of shape (...)
            The log marginal probability per row, in nats.
        """
        return laplace_log_marginal(self, y, mean, var, mask)


class LogLinkCountLikelihood(CountLikelihood):
    r"""A count likelihood with mean exp(f) (the log link): the Poisson and the negative binomial.

    With the option ``offset=library`` (``"poisson(offset=library)"``), a row's mean is scaled by
    its size factor, the row's total over the training rows' mean total,

    .. math::
        \mathbb E[y_{nd} \mid f] = s_n e^{f_{nd}}, \qquad
        s_n = \frac{\sum_d y_{nd}}{\bar t}

    (the total of the observed entries, at least 1/2), so that the decoder models the
    composition of a row and not its depth: the observed library size of scVI
    (``use_observed_lib_size=True``) and GLM-PCA's size factors. The row's total then enters as
    an observed covariate, and the number reported is log P(y | s), labelled so
    (:attr:`evidence_of`), not the log-probability log P(y) of the counts alone. ``mean`` and
    ``sample``, which see no row, are at the mean total (s = 1).

    Parameters
    ----------
    *args, **kwargs
        Passed to :class:`torch.nn.Module`.
    """

    option_names = ("offset",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        #: The training rows' mean total (the size factors' reference), 1 without an offset.
        self.register_buffer("reference_total", torch.ones((), dtype=torch.float64))

    @classmethod
    def _check_options(cls, options):
        offset = options.get("offset")
        if offset not in (None, "library"):
            raise ValueError(
                f"likelihood {cls.name!r} takes offset=library (each row's size factor, its "
                f"total over the training rows' mean total: '{cls.name}(offset=library)'); got "
                f"offset={offset!r}.")
        return options

    @property
    def library(self) -> bool:
        """Whether rows are scaled by their size factors (``offset=library``)."""
        return self.options.get("offset") == "library"

    @classmethod
    def evidence_of(cls) -> str:
        """What ``log_prob`` is a log-probability of.

        Returns
        -------
        str
            ``"log P(y)"``, or ``"log P(y | s)"`` with the offset.
        """
        return "log P(y | s)" if cls.options.get("offset") == "library" else "log P(y)"

    @classmethod
    def from_data(cls, Y, **preferences):
        """Make a likelihood for the training counts ``Y``.

        Made by ``_from_counts``; with the offset, the training rows' mean total (NaN entries
        left out) is recorded as the size factors' reference.

        Parameters
        ----------
        Y : torch.Tensor of shape (n_samples, n_features)
            The training counts.
        **preferences
            Other families' preferences (see :meth:`Likelihood.from_data`).

        Returns
        -------
        LogLinkCountLikelihood
            A new instance.
        """
        lik = cls._from_counts(Y)
        if lik.library:
            total = torch.nansum(Y.to(torch.float64), -1).mean().clamp_min(0.5)
            lik.reference_total.fill_(float(total))
        return lik

    @classmethod
    def _from_counts(cls, Y):
        return cls()

    def log_size(self, y: torch.Tensor, mask=None) -> torch.Tensor:
        """Return the log size factor log s_n of each row (zeros without the offset).

        Parameters
        ----------
        y : torch.Tensor of shape (..., D)
            Rows of counts.
        mask : torch.Tensor of bool, optional
            True where an entry is observed (the total is over those).

        Returns
        -------
        torch.Tensor of shape (..., 1)
            The log of the total over the reference total (the total at least 1/2).
        """
        if not self.library:
            return torch.zeros_like(y[..., :1])
        total = _fill(y, mask).sum(-1, keepdim=True).clamp_min(0.5)
        return torch.log(total / self.reference_total.to(total))

    def _offset(self, f, y, mask):
        """f (or the mean of a belief about it) shifted by each row's log size factor; f itself
        without the offset (no zeros added on the way)."""
        return f + self.log_size(y, mask) if self.library else f

    def log_prob(self, y, f, mask=None):
        """Log-probability log P(y | f) per row (with the offset: of means s_n exp(f)).

        Parameters
        ----------
        y : torch.Tensor of shape (..., D)
            The counts.
        f : torch.Tensor of shape (..., D)
            The log-means; leading dimensions broadcast against ``y``.
        mask : torch.Tensor of bool, optional
            True where an entry of ``y`` is observed; the others contribute nothing.

        Returns
        -------
        torch.Tensor of shape (...)
            The log-probability of each row, in nats.
        """
        return super().log_prob(y, self._offset(f, y, mask), mask)

    def expected_log_prob(self, y, mean, var, mask=None):
        """Expected log-probability E_{f ~ N(mean, var)} log P(y | f) per row.

        With the offset, the row's log size factor shifts the mean of f.

        Parameters
        ----------
        y : torch.Tensor of shape (..., D)
            The counts.
        mean, var : torch.Tensor of shape (..., D)
            The Gaussian belief about the log-mean, per entry.
        mask : torch.Tensor of bool, optional
            True where an entry of ``y`` is observed.

        Returns
        -------
        torch.Tensor of shape (...)
            The expectation per row, in nats.
        """
        return self._expected_log_prob(y, self._offset(mean, y, mask), var, mask)

    def _expected_log_prob(self, y, mean, var, mask=None):
        return super().expected_log_prob(y, mean, var, mask)

    def log_marginal(self, y, mean, var, mask=None):
        """Log marginal probability log E_{f ~ N(mean, var)} P(y | f) per row.

        With the offset, the row's log size factor shifts the mean of f.

        Parameters
        ----------
        y : torch.Tensor of shape (..., D)
            The counts.
        mean, var : torch.Tensor of shape (..., D)
            The Gaussian belief about the log-mean, per entry.
        mask : torch.Tensor of bool, optional
            True where an entry of ``y`` is observed.

        Returns
        -------
        torch.Tensor of shape (...)
            The log marginal probability per row, in nats.
        """
        return super().log_marginal(y, self._offset(mean, y, mask), var, mask)

    def link_transform(self, y):
        """The counts on the log-mean scale, log(y + 1/2) less the row's log size factor.

        Parameters
        ----------
        y : torch.Tensor of shape (..., D)
            Rows of counts.

        Returns
        -------
        torch.Tensor
            Log-means, of the shape of ``y``.
        """
        return super().link_transform(y) - self.log_size(y)

    def mean(self, f):
        """Return E[y | f] = exp(f).

        Parameters
        ----------
        f : torch.Tensor
            The log-means.

        Returns
        -------
        torch.Tensor
            The means, of the shape of ``f``.
        """
        return torch.exp(f)

    def marginal_mean(self, mean, var):
        """Return E[y] = exp(mean + var / 2) when f ~ N(mean, var).

        Parameters
        ----------
        mean, var : torch.Tensor
            The Gaussian belief about the log-mean.

        Returns
        -------
        torch.Tensor
            E[y], of the shape of ``mean``.
        """
        return torch.exp(mean + 0.5 * var)

    def inverse_mean(self, mean):
        """Return log(mean), the mean clamped to at least 1e-3 first.

        Parameters
        ----------
        mean : torch.Tensor
            Means of y.

        Returns
        -------
        torch.Tensor
            The log-means, finite.
        """
        # A feature that is 0 in every row would need mean 0 (log-mean -inf).
        return torch.log(mean.clamp_min(1e-3))
