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

Each comes with Kish's effective sample size of its importance weights (for ``"elbo"``, those of
the posterior proposal). The draws eps_s are keyed by each row's content and a seed
(:func:`lvm.evidence.draws.row_keyed_normal`), so an estimate is deterministic, independent of the
other rows in the batch and of their order, and independent across rows. Rows are processed in
chunks of at most :class:`lvm.settings.eval_chunk_elements` elements.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch

from ..latents.prior import kl_standard, log_prior
from .draws import row_keyed_normal
from .monte_carlo import effective_sample_size, importance_weighted_log_evidence

__all__ = ["EvidenceEstimate", "ESTIMATORS", "estimate_log_evidence", "importance_log_weights"]

_LOG_2PI = math.log(2 * math.pi)


class EvidenceEstimate(NamedTuple):
    """What the Monte Carlo evidence methods return: always these two, in order.

    Parameters
    ----------
    log_evidence : ndarray or torch.Tensor of shape (n_samples,)
        Estimated log p(y) per data point, in nats.
    effective_sample_size : ndarray or torch.Tensor of shape (n_samples,), or None
        Kish's effective sample size of the importance weights per data point.
    """

    #: Estimated log p(y) per data point, in nats, shape (n_samples,).
    log_evidence: object
    #: Kish's effective sample size of the importance weights per data point, shape (n_samples,).
    effective_sample_size: object


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


def _elbo(y, mu, var, eps, log_likelihood, with_ess):
    x = mu + torch.sqrt(var) * eps
    value = log_likelihood(y, x).mean(0) - kl_standard(mu, var)
    ess = effective_sample_size(importance_log_weights(y, mu, var, eps, log_likelihood), 0) \
        if with_ess else None
    return value, ess


def _iwae(y, mu, var, eps, log_likelihood, with_ess):
    log_w = importance_log_weights(y, mu, var, eps, log_likelihood)
    return importance_weighted_log_evidence(log_w, 0), \
        (effective_sample_size(log_w, 0) if with_ess else None)


def _prior(y, mu, var, eps, log_likelihood, with_ess):
    log_w = importance_log_weights(y, mu, var, eps, log_likelihood, proposal="prior")
    return importance_weighted_log_evidence(log_w, 0), \
        (effective_sample_size(log_w, 0) if with_ess else None)


#: Estimators by name: ``(y, mu, var, eps, log_likelihood, with_ess) -> (value, ess or None)``.
ESTIMATORS = {"elbo": _elbo, "iwae": _iwae, "prior": _prior}


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
        Tensors of shape (N,); ``effective_sample_size`` is None unless ``with_ess``.

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
    from .. import settings

    try:
        fn = ESTIMATORS[method]
    except KeyError:
        raise ValueError(f"Unknown method {method!r}; choose one of {list(ESTIMATORS)}.") from None
    budget = settings.eval_chunk_elements.value() if max_elements is None else max_elements
    rows = max(1, budget // max(1, n_samples * max(width, Y.shape[1])))
    values, sizes = [], []
    for start in range(0, Y.shape[0], rows):
        y = Y[start:start + rows]
        eps = row_keyed_normal(y, n_samples, n_components, seed)
        mu = var = None
        if method != "prior":
            mu, var = posterior(y)
        value, ess = fn(y, mu, var, eps, log_likelihood, with_ess)
        values.append(value.detach())
        if with_ess:
            sizes.append(ess.detach())
    empty = Y.new_zeros(0)
    return EvidenceEstimate(torch.cat(values) if values else empty,
                            (torch.cat(sizes) if sizes else empty) if with_ess else None)
