"""The evidence interface of every lvm estimator: ``score_samples``, ``score``, ``log_evidence``.

A mixin of :class:`lvm._base.LatentVariableModel` (not used alone). A family names its evidence
methods in ``_evidence_methods`` (name -> private method) and its default in
``_default_evidence``; this layer validates the rows, dispatches, checks the options a method
takes and adds the log-Jacobian of the standardization, so every value is in nats of the data
as passed.
"""

from __future__ import annotations

import inspect
import math

import torch
from sklearn.utils.validation import check_is_fitted

from . import _distributed as dist
from ._validation import check_positive_int

__all__ = ["EvidenceAPI"]


class EvidenceAPI:
    """log p(y) per row by the family's named methods, in the data's units."""

    def _score_values(self, Y) -> torch.Tensor:
        """log p(y) per row in nats, of the data as passed (float64 tensor)."""
        check_is_fitted(self)
        with self._threads(Y):
            Z = self._validate_Y(Y, reset=False)
            with torch.no_grad():
                values = self._log_evidence(Z).detach()
        return values.to(torch.float64) + self._row_log_jacobian(Z)

    def _row_log_jacobian(self, Z: torch.Tensor):
        """-(observed entries) log(scale_) per row: the log-Jacobian of the standardization."""
        if self._loc is None or not bool(torch.isnan(Z).any()):
            return self._log_jacobian
        return -(~torch.isnan(Z)).sum(1).to(torch.float64) * math.log(self._scale)

    def score_samples(self, Y):
        """Log evidence log p(y) of each sample, in nats.

        Whether this is exact, a lower bound or an importance-weighted estimate is given by the
        estimator's ``evidence_kind``; for a row with missing entries it is that of the observed
        entries.

        Parameters
        ----------
        Y : array-like or torch.Tensor of shape (n_samples, n_features)
            The rows to score.

        Returns
        -------
        ndarray or Tensor of shape (n_samples,)
            The log evidence of each row, in nats of the data as passed.
        """
        return self._output(self._score_values(Y), Y)

    def score(self, Y, y=None) -> float:
        """Mean log evidence per sample, in nats (see :meth:`score_samples`).

        Under torch.distributed each rank passes its own rows and every rank gets the mean over
        the rows of all ranks (all ranks must call it together).

        Parameters
        ----------
        Y : array-like or torch.Tensor of shape (n_samples, n_features)
            The rows to score.
        y : None
            Ignored; present for scikit-learn's API.

        Returns
        -------
        float
            The mean of :meth:`score_samples`, in nats per row.
        """
        return float(dist.global_mean(self._score_values(Y)))

    # ------------------------------------------------------------------ evidence
    #: The evidence methods of the family: name -> the name of the private method computing it,
    #: called as ``impl(Z, method, n_samples, random_state, **options)`` on rows in the model's
    #: coordinates and returning an :class:`lvm.evidence.EvidenceEstimate` of tensors (values
    #: without the log-Jacobian of the standardization). Its keyword-only parameters are the
    #: options the method takes.
    _evidence_methods: dict = {}
    #: The method ``score_samples`` uses, and ``log_evidence(method=None)``.
    _default_evidence: str = ""

    def _evidence_impl(self, method):
        """(name, bound method) of the evidence method ``method`` (None: the default)."""
        name = self._default_evidence if method is None else method
        if not isinstance(name, str) or name not in self._evidence_methods:
            raise ValueError(f"Unknown method {method!r}; choose one of "
                             f"{list(self._evidence_methods)} (the evidence methods of "
                             f"{type(self).__name__}).")
        return name, getattr(self, self._evidence_methods[name])

    def _evidence(self, Z, method=None, n_samples=None, random_state=None, **options):
        """The :class:`lvm.evidence.EvidenceEstimate` of rows ``Z`` (model coordinates, tensors)."""
        name, impl = self._evidence_impl(method)
        if options:
            taken = [p.name for p in inspect.signature(impl).parameters.values()
                     if p.kind == p.KEYWORD_ONLY]
            unknown = sorted(set(options) - set(taken))
            if unknown:
                raise TypeError(
                    f"{type(self).__name__}.log_evidence(method={name!r}) got unknown option(s) "
                    f"{unknown}; it takes {taken if taken else 'none'}.")
        with torch.no_grad():
            return impl(Z, name, n_samples, random_state, **options)

    def _log_evidence(self, Z):
        """log p(z) per row by the default evidence method (what ``score_samples`` returns)."""
        return self._evidence(Z).log_evidence

    def log_evidence(self, Y, method=None, n_samples=None, random_state=None, **options):
        """The log evidence log p(y) of each sample by a named method, with its standard error.

        The one evidence interface of every lvm estimator. The methods (``method=None`` is the
        first of each, the one :meth:`score_samples` uses):

        * :class:`lvm.PPCA`, :class:`lvm.FactorAnalysis`: ``"exact"``, the closed-form marginal
          likelihood (of the observed entries of a row with missing values).
        * :class:`lvm.VAE`, :class:`lvm.BayesianGPLVM`: ``"iwae"``, the importance-weighted
          estimate with the posterior q(x | y) as proposal; ``"elbo"``, the evidence lower bound
          (expected log-likelihood over the draws minus the closed-form KL); ``"prior"``, the naive
          estimator with draws from the prior N(0, I), unbiased in p(y) but far below log p(y)
          unless S is astronomically large.
        * :class:`lvm.DiffusionModel`: ``"bound"`` (also ``"vlb"``), the continuous-time
          variational bound averaged over (t, eps) draws, with the option ``n_steps=T`` for the
          looser T-step discrete-time bound; ``"ode"``, the probability-flow ODE log-likelihood,
          the density of a different model (the deterministic flow), which neither bounds nor is
          bounded by this model's evidence, with the options ``divergence`` ("auto", "exact" or
          "hutchinson") and ``n_probes`` (Rademacher probes per row for Hutchinson's estimator).

        Parameters
        ----------
        Y : array-like or torch.Tensor of shape (n_samples, n_features)
            The rows to evaluate (NaN marks a missing entry for families that model them).
        method : str, default=None
            The method, one of the estimator's (above); None takes its default.
        n_samples : int, default=None
            Monte Carlo draws per row; None uses the estimator's own number
            (``n_importance_samples``, or ``n_eval_draws`` for the diffusion model). Unused by
            ``"exact"`` and ``"ode"``.
        random_state : int, RandomState or None, default=None
            None uses the evaluation key fixed at fit (deterministic, the draws of
            :meth:`score_samples`); otherwise fresh draws keyed by this seed. Unused by
            ``"exact"``.
        **options : dict
            Options of the method (above); an option the method does not take is a TypeError.

        Returns
        -------
        lvm.evidence.EvidenceEstimate
            ``(log_evidence, standard_error, effective_sample_size, kind, method)``: the value of
            each row in nats of the data as passed, its Monte Carlo standard error (per row; zero
            when exact), Kish's effective sample size of its importance weights (None where there
            are none), ``kind`` ("exact", "bound" or "estimate") and the method's name. numpy in
            gives numpy out, a tensor gives tensors.
        """
        check_is_fitted(self)
        self._evidence_impl(method)  # an unknown method fails before the rows are read
        if n_samples is not None:
            n_samples = check_positive_int(n_samples, "n_samples")
        with self._threads(Y):
            Z = self._validate_Y(Y, reset=False)
            est = self._evidence(Z, method, n_samples, random_state, **options)
            value = est.log_evidence.detach().to(torch.float64) + self._row_log_jacobian(Z)
        out = lambda t: None if t is None else self._output(t, Y)  # noqa: E731
        return est._replace(log_evidence=out(value), standard_error=out(est.standard_error),
                            effective_sample_size=out(est.effective_sample_size))
