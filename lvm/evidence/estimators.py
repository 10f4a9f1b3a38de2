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
    """What the Monte Carlo evidence methods return: always these two, in order."""

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
    """Per-row estimate (and ESS) of log p(y) by ``method``, in row chunks.

    Parameters
    ----------
    method : {"elbo", "iwae", "prior"}
    Y : (N, D) rows (in the model's own coordinates).
    posterior : callable y -> (mu, var), each (n, K); not called for ``"prior"``.
    log_likelihood : callable (y, x) -> (S, n), x of shape (S, n, K).
    n_samples : S.   n_components : K.   seed : the key of the row-keyed draws.
    width : the largest per-draw width the likelihood evaluates (hidden units, inducing points),
        which sets the chunk size with ``max_elements`` (default
        :class:`lvm.settings.eval_chunk_elements`).

    Returns
    -------
    EvidenceEstimate of tensors of shape (N,) (``effective_sample_size`` is None unless
    ``with_ess``).
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
