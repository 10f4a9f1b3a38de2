r"""The Monte Carlo evidence of the gradient-trained families, from their posterior and decoder.

A mixin of :class:`lvm._gradient.GradientLatentModel` (not used alone). With a family's
q(x | z) (``_posterior_params``) and log p(z | x) (``_log_likelihood``) it gives, per row and
with draws keyed by row and a seed fixed at fit (:mod:`lvm.evidence.estimators`):

* the evidence methods of :meth:`~lvm._base.LatentVariableModel.log_evidence`: ``"iwae"`` (the
  importance-weighted estimate, what ``score_samples`` returns), ``"elbo"`` and ``"prior"``;
* :meth:`MonteCarloEvidence.elbo_samples` and :meth:`MonteCarloEvidence.elbo`;
* the imputation of missing entries by self-normalized importance sampling (``_conditional``,
  the engine of :class:`lvm.LatentImputer` for these families).
"""

from __future__ import annotations

import torch
from sklearn.utils.validation import check_is_fitted, check_random_state

from . import _distributed as dist
from ._validation import check_positive_int
from .evidence.estimators import chunked, estimate_log_evidence

__all__ = ["MonteCarloEvidence"]


class MonteCarloEvidence:
    """The Monte Carlo evidence methods, the ELBO and imputation of a gradient-trained family."""

    def _estimate(self, Z, method: str, n_samples: int, seed: int, with_ess: bool = False):
        """Per-row ``EvidenceEstimate`` of log p(z) by ``method`` (a family may override this to
        offer its own estimators, keeping the signature)."""
        self._model.eval()
        with torch.no_grad():
            return estimate_log_evidence(
                method, Z, self._posterior_params, self._log_likelihood, n_samples=n_samples,
                n_components=self.n_components_, seed=seed, width=self._eval_width(),
                with_ess=with_ess)

    #: The estimator of the validation objective early stopping watches, and its draws per row.
    _validation_method = "elbo"
    _validation_samples = 1

    #: The Monte Carlo evidence methods (:data:`lvm.evidence.ESTIMATORS`); the first,
    #: ``"iwae"``, is what ``score_samples`` returns.
    _evidence_methods = {"iwae": "_monte_carlo_evidence", "elbo": "_monte_carlo_evidence",
                         "prior": "_monte_carlo_evidence"}
    _default_evidence = "iwae"

    def _monte_carlo_evidence(self, Z, method, n_samples, random_state):
        """The estimate ``method`` with S = ``n_samples`` (None: ``n_importance_samples``) draws
        per row, keyed at fit or by ``random_state``."""
        S = int(self.n_importance_samples) if n_samples is None else n_samples
        return self._estimate(Z, method, S, self._eval_seed_for(random_state), with_ess=True)

    def _conditional(self, Z, sample: bool, generator):
        r"""Z with its missing entries filled from p(z_m | z_o), by self-normalized importance
        sampling with the posterior q(x | z_o) as proposal:

        .. math::
            \mathbb E[z_m \mid z_o] \approx \sum_s \bar w_s\, \mathbb E[z_m \mid x_s],
            \qquad \bar w_s \propto \frac{p(z_o \mid x_s)\, p(x_s)}{q(x_s \mid z_o)},

        with S = ``n_importance_samples`` draws keyed by row (the mean is deterministic). With
        ``sample``, one x_s is drawn by its weight and z_m from p(z_m | x_s) (sampling importance
        resampling), with ``generator``."""
        from .evidence.draws import row_keyed_normal
        from .evidence.estimators import importance_log_weights

        self._model.eval()
        S, K = int(self.n_importance_samples), self.n_components_

        def fill_chunk(z):
            mu, var = self._posterior_params(z)
            eps = row_keyed_normal(z, S, K, self._eval_seed + 2)
            weights = torch.softmax(
                importance_log_weights(z, mu, var, eps, self._log_likelihood), 0)  # (S, n)
            x = mu + torch.sqrt(var) * eps
            if not sample:
                fill = (weights.unsqueeze(-1) * self._decode(x)).sum(0)
            else:
                pick = torch.multinomial(weights.T, 1, generator=generator).squeeze(1)
                chosen = x[pick, torch.arange(z.shape[0], device=z.device)]
                fill = self._likelihood_module().sample(
                    self._decoder_sample(chosen, generator), generator)
            return torch.where(torch.isnan(z), fill.to(z.dtype), z)

        with torch.no_grad():
            return chunked(fill_chunk, Z, S * max(self._eval_width(), Z.shape[1]), empty=Z)

    def _posterior(self, Z):
        self._model.eval()
        mu, var = self._posterior_params(Z)
        return mu, torch.sqrt(var)

    def _eval_seed_for(self, random_state=None) -> int:
        """The key of the evaluation draws: fixed at fit, or derived from ``random_state``."""
        if random_state is None:
            return self._eval_seed
        return int(check_random_state(random_state).randint(0, 2**31 - 1))

    def _elbo_values(self, Y, n_samples):
        check_is_fitted(self)
        S = check_positive_int(n_samples)
        with self._threads(Y):
            Z = self._validate_Y(Y, reset=False)
            values = self._estimate(Z, "elbo", S, self._eval_seed).log_evidence
            return values.to(torch.float64) + self._row_log_jacobian(Z)

    def elbo_samples(self, Y, n_samples: int = 16):
        """The evidence lower bound of each sample, in nats.

        ``n_samples`` reparameterized draws of the expected log-likelihood, minus the closed-form
        KL; deterministic (the draws are keyed at fit).

        Parameters
        ----------
        Y : array-like or torch.Tensor of shape (n_samples, n_features)
            The rows to evaluate.
        n_samples : int, default=16
            Draws per row.

        Returns
        -------
        ndarray or Tensor of shape (n_samples,)
            The ELBO of each row.
        """
        return self._output(self._elbo_values(Y, n_samples), Y)

    def elbo(self, Y, n_samples: int = 16) -> float:
        """The mean evidence lower bound per sample, in nats (see :meth:`elbo_samples`).

        Under torch.distributed, the mean over the rows of all ranks.

        Parameters
        ----------
        Y : array-like or torch.Tensor of shape (n_samples, n_features)
            The rows to evaluate.
        n_samples : int, default=16
            Draws per row.

        Returns
        -------
        float
            The mean ELBO per row.
        """
        return float(dist.global_mean(self._elbo_values(Y, n_samples)))
