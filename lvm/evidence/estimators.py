r"""Monte Carlo estimators of log p(y) over any family: a posterior and a decoder likelihood.

An estimator needs only two callables: ``posterior(y) -> (mu, var)``, a Gaussian q(x | y) per row
(an encoder, or q(x*) fitted with the decoder frozen), and ``log_likelihood(y, x) -> (S, n)``,
log p(y | x) for draws x of shape (S, n, K). With x_s = mu + sqrt(var) eps_s,

* ``"elbo"``: :math:`\frac1S \sum_s \log p(y \mid x_s) - \mathrm{KL}(q \,\|\, p)`, the evidence
  lower bound with the KL in closed form;
* ``"iwae"``: :math:`\log \frac1S \sum_s p(y \mid x_s) p(x_s) / q(x_s)`, the importance-weighted
  bound (Burda et al., 2016), whose expectation rises toward log p(y) as S grows;
* ``"prior"``: the same with the prior as proposal, x_s = eps_s: unbiased for p(y), but its
  weights collapse onto a vanishing fraction of the draws, so in practice far below log p(y).

Each comes with the Monte Carlo standard error of each row's value and Kish's effective sample
size of its importance weights (for ``"elbo"``, those of the posterior proposal), in one
:class:`EvidenceEstimate`, the result type of every estimator's ``log_evidence``. The draws
eps_s are keyed by each row's content and a seed (:func:`lvm.evidence.draws.row_keyed_normal`), so
an estimate is deterministic, independent of the other rows in the batch and of their order, and
independent across rows. Rows are processed by :func:`chunked`, in chunks of at most
:class:`lvm.settings.eval_chunk_elements` elements.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch

from ..latents.prior import kl_standard, log_prior
from .draws import row_keyed_normal
from .monte_carlo import effective_sample_size, importance_weighted_log_evidence

__all__ = ["EvidenceEstimate", "KINDS", "ESTIMATORS", "chunked", "estimate_log_evidence",
           "importance_log_weights"]

_LOG_2PI = math.log(2 * math.pi)

#: What an evidence value can be: the exact log p(y), a (stochastic) lower bound on it, or an
#: estimate (importance-weighted, or the likelihood of another model such as a probability flow).
KINDS = ("exact", "bound", "estimate")


class EvidenceEstimate(NamedTuple):
    """What every ``log_evidence`` returns: per-row values of log p(y) and how far to trust them.

    The one result type of :meth:`lvm.PPCA.log_evidence`, :meth:`lvm.FactorAnalysis.log_evidence`,
    :meth:`lvm.VAE.log_evidence`, :meth:`lvm.BayesianGPLVM.log_evidence`,
    :meth:`lvm.DiffusionModel.log_evidence` and of :func:`estimate_log_evidence` (which gives
    tensors). ``lvm.diffusion.DiffusionEvidence`` is another name for it.

    Parameters
    ----------
    log_evidence : ndarray or torch.Tensor of shape (n_samples,)
        The value of each row, in nats.
    standard_error : ndarray or torch.Tensor of shape (n_samples,)
        The Monte Carlo standard error of each row's value (**per row**, not of the mean: the
        standard error of the mean over n rows, whose draws are independent, is
        sqrt(sum of squares) / n). Zero for an exact value; NaN where one draw cannot tell (a
        single draw per row). For an importance-weighted estimate it is the delta-method value
        sqrt(1 / ESS - 1 / S), which, like the estimate, trusts the draws: it says nothing about
        the bias of log of a mean, nor about weights heavier-tailed than the draws show.
    effective_sample_size : ndarray or torch.Tensor of shape (n_samples,), or None
        Kish's effective sample size (sum w)^2 / sum w^2 of each row's importance weights
        (for ``"elbo"``, those of the posterior proposal); None where nothing is importance
        weighted (an exact value, the diffusion model's bound, a probability flow).
    kind : {"exact", "bound", "estimate"}, default="estimate"
        What the values are (:data:`KINDS`).
    method : str, default=""
        The method that computed them (a key of the estimator's evidence methods).
    """

    #: The value of each row, in nats, shape (n_samples,).
    log_evidence: object
    #: The Monte Carlo standard error of each row's value, shape (n_samples,).
    standard_error: object = None
    #: Kish's effective sample size of each row's importance weights, or None.
    effective_sample_size: object = None
    #: "exact", "bound" or "estimate".
    kind: str = "estimate"
    #: The method that computed the values.
    method: str = ""


def chunked(fn: Callable, Z: torch.Tensor, per_row: int, *, empty=None,
            max_elements: int | None = None):
    """Apply ``fn`` to consecutive chunks of the rows of ``Z`` and join the results.

    The one chunk loop of the evaluation methods: a chunk holds at most ``max_elements``
    elements (default :class:`lvm.settings.eval_chunk_elements`), counted as ``per_row`` per row
    (draws x width), so memory does not grow with the number of rows.

    Parameters
    ----------
    fn : callable
        ``fn(rows) -> tensor`` or a tuple of tensors (or None), each with one entry per row
        along its first dimension.
    Z : torch.Tensor of shape (N, ...)
        The rows.
    per_row : int
        Elements one row takes in ``fn``.
    empty : object, optional
        What to return when ``Z`` has no rows (``fn`` is then not called); default
        ``Z.new_zeros(0)``.
    max_elements : int, optional
        Elements one chunk may hold.

    Returns
    -------
    torch.Tensor or tuple
        The outputs of ``fn`` concatenated along the first dimension (element by element for a
        tuple; a None element stays None).
    """
    from .. import settings

    budget = settings.eval_chunk_elements.value() if max_elements is None else max_elements
    rows = max(1, int(budget) // max(1, int(per_row)))
    outs = [fn(Z[start:start + rows]) for start in range(0, Z.shape[0], rows)]
    if not outs:
        return Z.new_zeros(0) if empty is None else empty
    if isinstance(outs[0], tuple):
        return tuple(None if parts[0] is None else torch.cat(parts) for parts in zip(*outs))
    return torch.cat(outs)


def importance_log_weights(y, mu, var, eps, log_likelihood, proposal: str = "posterior"):
    """log p(y, x_s) - log r(x_s) for x_s ~ r, shape (S, n); ``eps`` is (S, n, K).

    ``proposal="posterior"``: r = q(x | y) = N(mu, diag var); ``"prior"``: r = N(0, I), whose
    weight is log p(y | x_s).
    """
    if proposal == "prior":
        return log_likelihood(y, eps)
    x = mu + torch.sqrt(var) * eps
    log_q = -0.5 * ((eps * eps + _LOG_2PI).sum(-1) + torch.log(var).sum(-1))
    return log_likelihood(y, x) + log_prior(x) - log_q


def _mean_se(values):
    """The standard error of the mean over draws (dim 0); NaN for a single draw."""
    S = values.shape[0]
    if S < 2:
        return torch.full_like(values[0], math.nan)
    return values.std(0) / math.sqrt(S)


def _weighted_se(log_w, ess):
    """Delta-method standard error of log (1/S) sum_s w_s: sqrt(1 / ESS - 1 / S)."""
    S = log_w.shape[0]
    if S < 2:
        return torch.full_like(ess, math.nan)
    return torch.sqrt((1.0 / ess - 1.0 / S).clamp_min(0.0))


def _elbo(y, mu, var, eps, log_likelihood, with_ess):
    x = mu + torch.sqrt(var) * eps
    ll = log_likelihood(y, x)
    value = ll.mean(0) - kl_standard(mu, var)
    ess = None
    if with_ess:  # the weights of the posterior proposal, from the same log p(y | x_s)
        log_q = -0.5 * ((eps * eps + _LOG_2PI).sum(-1) + torch.log(var).sum(-1))
        ess = effective_sample_size(ll + log_prior(x) - log_q, 0)
    return value, _mean_se(ll), ess


def _weighted(log_w, with_ess):
    ess = effective_sample_size(log_w, 0)
    return (importance_weighted_log_evidence(log_w, 0), _weighted_se(log_w, ess),
            ess if with_ess else None)


def _iwae(y, mu, var, eps, log_likelihood, with_ess):
    return _weighted(importance_log_weights(y, mu, var, eps, log_likelihood), with_ess)


def _prior(y, mu, var, eps, log_likelihood, with_ess):
    return _weighted(importance_log_weights(y, mu, var, eps, log_likelihood, proposal="prior"),
                     with_ess)


#: Estimators by name: ``(y, mu, var, eps, log_likelihood, with_ess) -> (value, standard error,
#: ess or None)``, each of shape (n,).
ESTIMATORS = {"elbo": _elbo, "iwae": _iwae, "prior": _prior}
#: What each estimator's values are (:data:`KINDS`).
_KIND = {"elbo": "bound", "iwae": "estimate", "prior": "estimate"}


def estimate_log_evidence(method: str, Y: torch.Tensor, posterior: Callable, log_likelihood: Callable,
                          *, n_samples: int, n_components: int, seed: int, width: int = 1,
                          with_ess: bool = False, max_elements: int | None = None):
    """Per-row estimate (and effective sample size) of log p(y) by ``method``, in row chunks.

    Parameters
    ----------
    method : {"elbo", "iwae", "prior"}
        The estimator, a key of :data:`ESTIMATORS`.
    Y : torch.Tensor of shape (N, D)
        The rows, in the model's own coordinates.
    posterior : callable
        ``posterior(y) -> (mu, var)``, each of shape (n, K): the Gaussian q(x | y) of each row.
        Not called for ``"prior"``.
    log_likelihood : callable
        ``log_likelihood(y, x) -> (S, n)``: log p(y | x) for draws x of shape (S, n, K).
    n_samples : int
        S, the draws per row.
    n_components : int
        K, the latent dimension.
    seed : int
        The key of the row-keyed draws (:func:`row_keyed_normal`).
    width : int, default=1
        The largest per-draw width the likelihood evaluates (hidden units, inducing points),
        which sets the chunk size with ``max_elements``.
    with_ess : bool, default=False
        Also compute the effective sample size of each row's importance weights.
    max_elements : int, optional
        Elements one chunk may hold (draws x rows x width); default
        :class:`lvm.settings.eval_chunk_elements`.

    Returns
    -------
    EvidenceEstimate
        Tensors of shape (N,): the values, their standard errors and (with ``with_ess``, else
        None) the effective sample sizes; ``kind`` "bound" for ``"elbo"``, "estimate" otherwise.

    Examples
    --------
    With the exact posterior of a one-dimensional linear-Gaussian model as the proposal, every
    importance weight equals p(y), so the estimate is exact and all draws count:

    >>> import math, torch
    >>> from lvm.evidence import estimate_log_evidence
    >>> y = torch.tensor([[0.5]], dtype=torch.float64)  # y = x + e, x ~ N(0, 1), e ~ N(0, 1)
    >>> def posterior(y):
    ...     return y / 2, torch.full_like(y, 0.5)
    >>> def log_likelihood(y, x):
    ...     return (-0.5 * ((y - x) ** 2 + math.log(2 * math.pi))).sum(-1)
    >>> est = estimate_log_evidence("iwae", y, posterior, log_likelihood, n_samples=100,
    ...                             n_components=1, seed=0, with_ess=True)
    >>> exact = -0.5 * (0.5**2 / 2 + math.log(2 * math.pi * 2))  # log N(0.5; 0, 2)
    >>> abs(est.log_evidence.item() - exact) < 1e-12, round(est.effective_sample_size.item(), 6)
    (True, 100.0)
    """
    try:
        fn = ESTIMATORS[method]
    except KeyError:
        raise ValueError(f"Unknown method {method!r}; choose one of {list(ESTIMATORS)}.") from None

    def chunk(y):
        eps = row_keyed_normal(y, n_samples, n_components, seed)
        mu = var = None
        if method != "prior":
            mu, var = posterior(y)
        value, se, ess = fn(y, mu, var, eps, log_likelihood, with_ess)
        return value.detach(), se.detach(), None if ess is None else ess.detach()

    empty = Y.new_zeros(0)
    value, se, ess = chunked(chunk, Y, n_samples * max(width, Y.shape[1]),
                             empty=(empty, empty, empty if with_ess else None),
                             max_elements=max_elements)
    return EvidenceEstimate(value, se, ess, _KIND[method], method)
