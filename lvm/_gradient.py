r"""The estimator layer under every gradient-trained family (the VAE, the Bayesian GPLVM, ...).

A family on this layer is only its math. It builds an ``nn.Module`` from the training rows and
says, for a minibatch of rows (or for all of them), what its objective is; the layer owns the
rest, once for every family:

* the validation split, the optimizers (by name from :data:`OPTIMIZERS`), full-batch or minibatch
  epochs, early stopping, ``history_`` / ``n_iter_`` / ``n_epochs_`` / ``best_epoch_`` /
  ``converged_`` across ``fit`` and ``partial_fit``, and numerical recovery (through
  :func:`lvm._training.train`);
* the two parameter groups: *global* parameters shared by every row (network weights, kernel,
  inducing inputs, q(u), noise) and *local* ones, one per training row (free q(x_n)), each with its
  own optimizer;
* data parallelism under ``torch.distributed``: every rank takes the same number of steps per
  epoch (the largest shard sets it; smaller shards are split into as many, smaller, batches); at
  step i the loss of rank r is

  .. math::
      -\Big(\frac{1}{T_i} \sum_{n \in B_{r,i}} \ell_n + \frac{g}{R}\Big),

  with :math:`\ell_n` the family's per-row objective, :math:`T_i` the rows of step i summed over
  the R ranks and g the family's global term per point (e.g. -KL(q(u)) / N), and the gradients of
  the global parameters are summed over ranks with one all-reduce of a flat buffer, so every
  rank takes the step of the mean objective over the global batch. (DistributedDataParallel
  cannot serve here: the local parameters differ in number between ranks.) Local parameters stay
  on the rank that owns their rows;
* evaluation: ``score_samples`` is the importance-weighted estimate through
  :mod:`lvm.evidence.estimators`, with the family's posterior and decoder likelihood, draws keyed
  by row and a seed fixed at fit; :meth:`log_evidence`, :meth:`elbo` and :meth:`elbo_samples` for
  every family.

The hooks a family implements are listed under :class:`GradientLatentModel`; a family written
as one object behind an abstract base answers them all through :mod:`lvm._family`.
"""

from __future__ import annotations

import abc
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from . import _distributed as dist
from ._base import LatentVariableModel
from ._monte_carlo import MonteCarloEvidence
from ._training import TrainResult, history_record, train
from ._validation import positive_int
from .evidence.draws import DrawCache

__all__ = ["GradientLatentModel", "TrainingPlan", "OPTIMIZERS", "n_validation_rows"]

#: Parameters from which Adam's fused kernel pays on the CPU.
_FUSED_CPU_MIN_PARAMETERS = 2**16
#: L-BFGS memory (pairs of updates kept).
_LBFGS_HISTORY = 100
#: Whether full-batch L-BFGS epochs reuse the closure's last evaluation where the parameters have
#: not moved (see ``_full_batch_epoch``; off only to test that the values are the same).
_REUSE_LBFGS_EVALUATIONS = True


def _adam(params, lr, device: torch.device, steps: int = 1) -> torch.optim.Adam:
    """Adam, with the fused kernel on CUDA, and on the CPU for models of at least 65536
    parameters (there it is about 2.5 times faster per step than the default; for tiny models
    its thread-pool dispatch costs more than it saves)."""
    params = list(params)
    n = sum(p.numel() for p in params)
    if device.type == "cuda" or (device.type == "cpu" and n >= _FUSED_CPU_MIN_PARAMETERS):
        try:
            return torch.optim.Adam(params, lr=lr, fused=True)
        except (RuntimeError, ValueError, TypeError):  # dtype or device without a fused kernel
            pass
    return torch.optim.Adam(params, lr=lr)


def _lbfgs(params, lr, device: torch.device, steps: int = 20) -> torch.optim.LBFGS:
    """L-BFGS with a strong-Wolfe line search, ``steps`` iterations per call."""
    return torch.optim.LBFGS(list(params), lr=lr, max_iter=steps, history_size=_LBFGS_HISTORY,
                             line_search_fn="strong_wolfe", tolerance_grad=1e-9,
                             tolerance_change=1e-12)


#: Optimizers by name: ``(params, lr, device, steps) -> torch.optim.Optimizer``.
OPTIMIZERS = {"adam": _adam, "lbfgs": _lbfgs}


def n_validation_rows(n: int, fraction: float) -> int:
    """The rows the validation split holds out of ``n`` (at least one when ``fraction > 0``)."""
    return max(1, int(round(fraction * n))) if fraction else 0


@dataclass
class TrainingPlan:
    """How a family trains, read by the layer from the family's hyper-parameters.

    Parameters
    ----------
    mode : {"minibatch", "full"}
        One pass over the rows per epoch in minibatches, or ``steps_per_epoch`` optimizer
        iterations on all rows per epoch.
    optimizer : str
        A name of :data:`OPTIMIZERS` ("adam", "lbfgs").
    learning_rate : float
        Its step size.
    max_epochs : int
        The budget, in epochs.
    tol : float or None
        The plateau rule's relative tolerance (None: run the whole budget).
    tol_floor : float, default=0.0
        With ``tol``, the least rise of the objective per point that the plateau rule counts.
    batch_size : int, default=0
        Rows per minibatch (minibatch mode).
    steps_per_epoch : int, default=1
        Optimizer iterations per epoch (full-batch mode).
    iters_per_epoch : int, default=1
        Converts epochs into the unit of the family's iteration budget (``n_iter_``).
    validation_fraction : float, default=0.0
        The rows held out for early stopping.
    patience : int, default=10
        Epochs without a better validation objective before stopping.
    patience_rule : callable or None, default=None
        The patience after the best epoch so far, ``patience_rule(best_epoch)`` (at most
        ``patience``); None: ``patience`` throughout.
    limit_message : str or None, default=None
        How the ConvergenceWarning words the budget ("in max_iter=100 iterations").
    budget_parameter : str, default="max_epochs"
        The hyper-parameter the warning says to raise.
    budget_hint : str, default=""
        More words for the warning.
    """

    mode: str
    optimizer: str
    learning_rate: float
    max_epochs: int
    tol: float | None
    tol_floor: float = 0.0
    batch_size: int = 0
    steps_per_epoch: int = 1
    iters_per_epoch: int = 1
    validation_fraction: float = 0.0
    patience: int = 10
    patience_rule: Callable[[int], int] | None = None
    limit_message: str | None = None
    budget_parameter: str = "max_epochs"
    budget_hint: str = ""


class GradientLatentModel(MonteCarloEvidence, LatentVariableModel):
    """Base of the gradient-trained families (not public).

    Hooks (the family's math, on standardized data ``Z``):

    ``_current_plan()`` -> :class:`TrainingPlan` (the fit in progress's)
    ``_build(Z)`` -> the ``nn.Module`` to train (stored as ``self._model``)
    ``_global_parameters()``, ``_local_parameters()``
        the shared and the per-row parameters of ``self._model``.
    ``_batch_objective(z, rows, generator)`` -> ``(per_row, global_term)``
        minibatch mode: the objective of each row of the batch (its ELBO term) and a 0-d global
        term per point (or None), whose sum over rows / N plus the global term is the bound.
    ``_full_objective(Z)`` -> the bound summed over all rows (full-batch mode).
    ``_full_penalty(Z)`` -> a term subtracted from it for the optimizer only (full-batch mode; 0 by
        default): the optimizer maximizes bound - penalty, the value recorded is the bound.
    ``_posterior_params(Z)`` -> (mu, var) of q(x | z) for rows (encoder, or fitted frozen).
    ``_log_likelihood(z, x)`` -> (S, n): log p(z | x) for draws x (S, n, K).
    ``_decode(X)``, ``_decoder_sample(X, generator)``, ``_likelihood_module()``.
    ``_finalize()``: the public fitted attributes from ``self._model``.
    ``_after_step()``: after every optimizer step (e.g. a moving average of the weights).
    ``_latent_dim(Z)``: K (``n_components``, unless the family derives it from the data).
    ``_add_rows(Z)`` (``partial_fit``): prepare new rows; return True if the local parameters changed.
    ``_on_failure(retry, exception)``: act on a numerical failure; return what was done.

    The ones without a default are abstract; :class:`lvm._family.FamilyEstimator` answers all
    of them from a :class:`lvm._family.Family` object.
    """

    evidence_kind = "importance-weighted estimate"
    train_evidence_kind = "lower bound"
    _default_dtype = torch.float32

    _parameter_constraints: dict = {
        **LatentVariableModel._parameter_constraints,
        "n_importance_samples": [positive_int()],
    }

    # ------------------------------------------------------------------ family hooks
    @abc.abstractmethod
    def _build(self, Z):
        """The ``nn.Module`` to train on the rows ``Z`` (stored as ``self._model``)."""

    @abc.abstractmethod
    def _current_plan(self) -> TrainingPlan:
        """The plan of the fit in progress (computed once per fit)."""

    def _global_parameters(self):
        return list(self._model.parameters())

    def _local_parameters(self):
        return []

    @abc.abstractmethod
    def _batch_objective(self, z, rows, generator):
        """Minibatch mode: ``(per_row, global_term)`` of the rows ``z``."""

    @abc.abstractmethod
    def _full_objective(self, Z):
        """Full-batch mode: the bound summed over all rows."""

    def _full_penalty(self, Z):
        return 0.0

    @abc.abstractmethod
    def _posterior_params(self, Z):
        """(mu, var) of q(x | z) for the rows ``Z``."""

    @abc.abstractmethod
    def _log_likelihood(self, z, x):
        """log p(z | x), shape (S, n), for draws ``x`` of shape (S, n, K)."""

    def _finalize(self) -> None:
        pass

    def _after_step(self) -> None:
        """Called after every optimizer step (e.g. to update an average of the weights)."""

    def _latent_dim(self, Z) -> int:
        """K, the latent dimension: ``n_components`` (a family may derive it from the data)."""
        return int(self.n_components)

    def _add_rows(self, Z) -> bool:
        return False

    def _on_failure(self, retry: int, exc) -> str | None:
        return None

    def _eval_width(self) -> int:
        """The widest per-draw computation of ``_log_likelihood`` (sets evaluation chunks)."""
        return self.n_features_in_

    @staticmethod
    def _any_missing(Z) -> bool:
        """Whether the rows of any rank have a missing entry (NaN): decided by the data, once."""
        return bool(dist.max_int(int(torch.isnan(Z).any())))

    def _warn_constant_features(self, Z) -> None:
        """With per-feature Gaussian noise, a feature constant in the training rows gets a noise
        variance at its floor, and a held-out row in which it varies a very low log p(y): say so,
        with the ways out."""
        from .likelihoods import LIKELIHOODS, GaussianLikelihood

        if (getattr(self, "noise", None) != "per_feature" or Z.shape[0] < 2
                or not issubclass(LIKELIHOODS[self.likelihood], GaussianLikelihood)):
            return
        var = torch.nanmean((Z - torch.nanmean(Z, 0)) ** 2, 0)
        constant = torch.nonzero(var <= 1e-6 * var.mean()).flatten().tolist()
        if constant:
            warnings.warn(
                f"{len(constant)} feature(s) are constant in the training rows (columns "
                f"{constant[:5]}{', ...' if len(constant) > 5 else ''}): with noise='per_feature' "
                "their noise variance sits at its floor, so a held-out row in which they vary gets "
                "a very low log p(y). Dequantize integer data (add U[0, 1) noise, as "
                "lvm.compare(dequantize=True) does), drop constant columns, or pass "
                "noise='shared'.", UserWarning, stacklevel=4)

    # ------------------------------------------------------------------ fitting
    def _start(self, Z) -> None:
        """Fresh model, optimizers, bookkeeping and evaluation key for a new fit."""
        self.n_components_ = self._latent_dim(Z)
        self.history_ = []
        self.n_epochs_ = 0
        self.n_iter_ = 0
        self.best_epoch_ = None
        self._model = self._build(Z)
        self._make_optimizers()
        self._eval_seed = self._new_seed()

    def _make_optimizers(self, local_only: bool = False) -> None:
        plan = self._current_plan()
        make = OPTIMIZERS[plan.optimizer]
        local = self._local_parameters()
        if plan.mode == "full":
            # One optimizer over everything: L-BFGS needs the whole parameter vector.
            self._optimizers = [make(self._global_parameters() + local, plan.learning_rate,
                                     self._device, plan.steps_per_epoch)]
            return
        if not local_only:
            self._global_optimizer = make(self._global_parameters(), plan.learning_rate,
                                          self._device, plan.steps_per_epoch)
        self._optimizers = [self._global_optimizer] + (
            [OPTIMIZERS["adam"](local, plan.learning_rate, self._device)] if local else [])

    def _split_validation(self, Z):
        fraction = self._current_plan().validation_fraction
        if not fraction:
            return Z, None
        n = Z.shape[0]
        n_val = n_validation_rows(n, fraction)
        if n - n_val < 1:
            raise ValueError(
                f"validation_fraction={fraction} leaves no training rows out of n_samples={n}; "
                "lower validation_fraction or pass more data."
            )
        perm = torch.randperm(n, generator=self._generator, device=self._device)
        return Z[perm[n_val:]], Z[perm[:n_val]]

    def _fit(self, Z) -> None:
        dist.gather_counts(*Z.shape, self._device)  # the same features on every rank
        Z_train, Z_val = self._split_validation(Z)
        self._start(Z_train)
        plan = self._current_plan()
        self._run(Z_train, Z_val, plan.max_epochs, plan.tol)

    def _fit_checked(self, T, stats) -> None:
        """Fit, then decide convergence once for the whole fit (all its stages)."""
        super()._fit_checked(T, stats)
        plan = self._current_plan()
        patience = plan.patience if plan.validation_fraction else None
        self._record_convergence(
            self.converged_, plan.limit_message or f"in max_epochs={plan.max_epochs} epochs",
            plan.budget_parameter, tol=plan.tol, patience=patience, best_epoch=self.best_epoch_,
            n_epochs=self.n_epochs_, hint=plan.budget_hint)

    def _partial_fit_chunk(self, Z, first: bool) -> None:
        dist.gather_counts(*Z.shape, self._device)
        if first:
            self._start(Z)
        elif self._add_rows(Z):
            self._make_optimizers(local_only=True)
        self._run(Z, None, 1, None)

    def _run(self, Z, Z_val, max_epochs: int, tol) -> None:
        plan = self._current_plan()
        epoch = (self._minibatch_epoch(Z, plan) if plan.mode == "minibatch"
                 else self._full_batch_epoch(Z, plan))
        validation = None if Z_val is None else self._validation(Z_val)
        result = TrainResult()
        name = type(self).__name__
        callback = self._epoch_callback()
        self._rows = Z  # the rows being fitted, for _finalize (not kept after it)
        try:
            with self._usable_on_interrupt(lambda: self._after_training(result, plan)):
                train(epoch, [self._model], self._optimizers, max_epochs=max_epochs, tol=tol,
                      tol_floor=plan.tol_floor,
                      validation=validation, patience=plan.patience,
                      patience_rule=plan.patience_rule,
                      verbose=self.verbose and dist.world()[0] == 0, desc=name,
                      objective_name="elbo", on_failure=self._on_failure, callback=callback,
                      estimator_name=name, limit_message=plan.limit_message,
                      advice=self._failure_advice(), result=result, validate_start=True,
                      warn=False)
            self._after_training(result, plan)
        finally:
            del self._rows

    def _failure_advice(self) -> str:
        advice = "Try a smaller learning_rate"
        if self._dtype == torch.float32:
            advice += " or dtype='float64'"
        return advice + "."

    def _after_training(self, result: TrainResult, plan: TrainingPlan) -> None:
        offset, shift = self.n_epochs_, self._log_jacobian
        for record in result.history:
            epoch = record["epoch"] + offset
            validation = record.get("validation")
            self.history_.append(history_record(
                epoch, epoch * plan.iters_per_epoch, record["train"] + shift,
                None if validation is None else validation + shift))
        self.n_epochs_ += result.n_epochs
        self.n_iter_ = self.n_epochs_ * plan.iters_per_epoch
        if result.best_epoch is not None:
            self.best_epoch_ = result.best_epoch + offset
        self.converged_ = bool(result.converged)
        kept = self.best_epoch_ if result.best_epoch is not None else self.n_epochs_
        self.train_evidence_ = next((r["train"] for r in self.history_ if r["epoch"] == kept),
                                    float("nan"))
        if result.best_epoch == 0 and not result.interrupted:  # the start was kept: its bound
            values = self._estimate(self._rows, "elbo", 1, self._eval_seed).log_evidence
            self.train_evidence_ = float(dist.global_mean(values)) + shift
        self._finalize()

    # ------------------------------------------------------------------ epochs
    def _minibatch_epoch(self, Z, plan: TrainingPlan):
        """One pass of minibatch steps over ``Z``; returns the objective per point (0-d)."""
        model, gen = self._model, self._generator
        n = Z.shape[0]
        bs = int(plan.batch_size)
        counts = dist.gather_counts(n, Z.shape[1], self._device)
        world = len(counts)
        if world > 1:
            steps = max(1, math.ceil(max(counts) / bs))
            totals = [sum(c // steps + (i < c % steps) for c in counts) for i in range(steps)]
            weights = [1.0 / max(t, 1) for t in totals]
        n_global = sum(counts)
        optimizers = self._optimizers
        shared = self._global_parameters() if world > 1 else None
        after_step = self._after_step

        def epoch():
            model.train()
            perm = torch.randperm(n, generator=gen, device=Z.device)
            batches = perm.split(bs) if world == 1 else torch.tensor_split(perm, steps)
            total = torch.zeros((), device=Z.device, dtype=Z.dtype)
            global_term = None
            for i, rows in enumerate(batches):
                per_row, global_term = self._batch_objective(Z[rows], rows, gen)
                objective = per_row.sum() * (1.0 / rows.shape[0] if world == 1 else weights[i])
                if global_term is not None:
                    objective = objective + global_term / world
                for opt in optimizers:
                    opt.zero_grad(set_to_none=True)
                (-objective).backward()
                if shared is not None:
                    dist.all_reduce_grads(shared)
                for opt in optimizers:
                    opt.step()
                after_step()
                total = total + per_row.detach().sum()
            value = dist.all_reduce_sum(total) / n_global
            if global_term is not None:
                value = value + global_term.detach()
            return value

        return epoch

    def _full_batch_epoch(self, Z, plan: TrainingPlan):
        """``steps_per_epoch`` optimizer iterations on all rows; returns the bound per point."""
        N = Z.shape[0]
        opt = self._optimizers[0]
        if plan.optimizer == "lbfgs":
            return _lbfgs_epoch(self, Z, opt)

        def epoch():
            self._model.train()
            for _ in range(plan.steps_per_epoch):
                opt.zero_grad()
                value = self._full_objective(Z) / N
                (self._full_penalty(Z) / N - value).backward()
                opt.step()
                self._after_step()
            return value.detach()

        return epoch

    def _validation(self, Z_val):
        counts = dist.gather_counts(Z_val.shape[0], Z_val.shape[1], self._device)
        if sum(counts) == 0:
            return None

        draws = DrawCache()  # the same rows and key every epoch: their draws are kept

        def validation():
            with draws:
                values = self._estimate(Z_val, self._validation_method,
                                        self._validation_samples, self._eval_seed).log_evidence
            return dist.global_mean(values)

        return validation

    # ------------------------------------------------------------------ facts
    @property
    def n_parameters_(self) -> int:
        """Global (shared) fitted parameters; per-row variational parameters are not counted."""
        check_is_fitted(self)
        local = {id(p) for p in self._local_parameters()}
        return int(sum(p.numel() for p in self._model.parameters() if id(p) not in local))

    def _work_elements(self, n_rows: int, n_features: int) -> int:
        plan_batch = getattr(self, "batch_size", n_rows)
        return min(n_rows, int(plan_batch)) * max(n_features, self._widest())

    def _widest(self) -> int:
        return 1

    @staticmethod
    def _to_numpy(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().numpy().astype(np.float64)


def _lbfgs_epoch(est, Z, opt):
    """One ``opt.step`` of full-batch L-BFGS on the rows ``Z`` for the estimator ``est``;
    returns the bound per point where it ended.

    The last evaluation is kept with the parameters it was made at. torch's L-BFGS evaluates the
    closure at the start of every step() call, where the previous call's line search ended, and
    the epoch records the bound there too: both are read from this cache when the parameters
    are bit for bit the same (same values, one objective and gradient less per epoch: on small
    tables, 10 L-BFGS iterations per epoch, 2 of about 12 evaluations).
    """
    N = Z.shape[0]
    params = [p for group in opt.param_groups for p in group["params"]]
    last = {}

    def flat():
        return torch.cat([p.detach().reshape(-1) for p in params])

    def cached():
        x = last.get("x")
        return _REUSE_LBFGS_EVALUATIONS and x is not None and torch.equal(x, flat())

    def closure():
        if cached():
            for p, g in zip(params, last["grads"]):
                p.grad = None if g is None else g.clone()
            return last["loss"]
        opt.zero_grad()
        bound = est._full_objective(Z)
        loss = -(bound - est._full_penalty(Z)) / N
        loss.backward()
        last.update(x=flat(), loss=loss.detach(), value=bound.detach() / N,
                    grads=[None if p.grad is None else p.grad.clone() for p in params])
        return loss

    def epoch():
        est._model.train()
        try:
            opt.step(closure)
            est._after_step()
            if cached():
                value = last["value"]
            else:
                with torch.no_grad():
                    value = est._full_objective(Z) / N
        except BaseException:
            last.clear()  # the recovery may change the objective (jitter, noise floor)
            raise
        if not bool(torch.isfinite(value)):
            last.clear()
        return value

    return epoch
