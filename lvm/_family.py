r"""The family contract: a gradient-trained family is one object behind an abstract base.

A family is the math of a latent-variable model x ~ N(0, I_K), z | x ~ p(z | f(x)) on the
model's standardized rows z, and of the posterior q(x | z) it is trained with:

* its objective, a lower bound of the log evidence of a batch of rows B out of N,

  .. math::
      \mathcal L = \frac{N}{|B|} \sum_{n \in B} \ell_n + N g, \qquad
      \ell_n \le \log p(z_n) \text{ per row, } g \text{ a global term per point}

  (e.g. :math:`\ell_n = \mathbb E_{q(x_n)}[\log p(z_n \mid x_n)] - \mathrm{KL}(q(x_n) \| p(x_n))`
  and :math:`g = -\mathrm{KL}(q(u) \| p(u)) / N`);
* the posterior q(x | z) = N(mean, diag var) of any rows, training or new;
* the decoder: log p(z | x) for draws of x, E[z | x], a draw of f at x, and the likelihood
  p(z | f).

:class:`Family` states it as abstract methods, with defaults where one exists. Everything a fit
learns lives on the family object, built once per fit (a refit builds a new one).
:class:`FamilyEstimator` is the estimator base on top: a subclass gives its docstring,
hyper-parameters, :meth:`FamilyEstimator._plan` and :meth:`FamilyEstimator._make_family`, and
the gradient layer (:mod:`lvm._gradient`) does the rest: the data gate, standardization, the
training loop, early stopping, interruption, the evidence estimates, ``transform``, ``sample``.
"""

from __future__ import annotations

import abc

import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from . import _distributed as dist
from ._gradient import GradientLatentModel, TrainingPlan

__all__ = ["Family", "FamilyEstimator", "TrainingPlan"]


class Family(nn.Module, abc.ABC):
    r"""The math of one gradient-trained family (abstract).

    Built by :meth:`FamilyEstimator._make_family` from the training rows, once per fit; it holds
    all the state the fit learns (parameters, buffers, and plain attributes such as offsets or
    the number of training rows). Everything works on standardized rows ``z`` in the model's
    dtype and device; the estimator maps to and from the data's units.

    Parameters
    ----------
    likelihood : lvm.likelihoods.Likelihood
        The observation model p(z | f) (kept as the submodule ``likelihood``).

    Notes
    -----
    Abstract: :meth:`objective`, :meth:`posterior`, :meth:`log_likelihood`, :meth:`decode` and
    :meth:`decoder_sample`. The other methods have defaults: no per-row parameters, no penalty,
    nothing to do after a step, on new rows, on a failure, or at the end of training, and no
    public fitted attributes.
    The parameters of :meth:`local_parameters` get their own optimizer (Adam) in minibatch
    training; the others are global, and under ``torch.distributed`` the global parameters and
    all buffers start from rank 0's values.
    """

    #: The estimator whose value early stopping watches ("elbo" or "iwae"), and its draws per row.
    validation_method: str = "elbo"
    validation_samples: int = 1

    def __init__(self, likelihood: nn.Module):
        super().__init__()
        self.likelihood = likelihood

    # ------------------------------------------------------------------ abstract
    @abc.abstractmethod
    def objective(self, z: torch.Tensor, rows: torch.Tensor, generator: torch.Generator):
        r"""The training objective of a batch of rows.

        Parameters
        ----------
        z : torch.Tensor of shape (B, D)
            The rows (NaN marks a missing entry, for families that model it).
        rows : torch.Tensor of int64, shape (B,)
            Their ids among the training rows (to address per-row parameters).
        generator : torch.Generator
            For the reparameterization draws.

        Returns
        -------
        per_row : torch.Tensor of shape (B,)
            :math:`\ell_n`, each row's term of the bound (a family whose bound does not split by
            row may return its whole value for the batch as a 0-d tensor; it then trains on all
            rows at once, ``TrainingPlan(mode="full")``).
        global_term : torch.Tensor (0-d) or None
            g, the global term per point, or None.
        """

    @abc.abstractmethod
    def posterior(self, z: torch.Tensor):
        """q(x | z) of any rows: ``(mean, var)``, each of shape (n, K)."""

    @abc.abstractmethod
    def log_likelihood(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(z | x) of shape (S, n) for draws ``x`` of shape (S, n, K) (missing entries of
        ``z`` contribute nothing)."""

    @abc.abstractmethod
    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """E[z | x], of shape (..., D)."""

    @abc.abstractmethod
    def decoder_sample(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A draw of the decoder output f at ``x`` (f itself for a deterministic decoder)."""

    # ------------------------------------------------------------------ defaults
    def local_parameters(self) -> list:
        """The per-row parameters (free q(x_n)); none by default."""
        return []

    def global_parameters(self) -> list:
        """The parameters shared by all rows: all but :meth:`local_parameters`."""
        local = {id(p) for p in self.local_parameters()}
        return [p for p in self.parameters() if id(p) not in local]

    def penalty(self, z: torch.Tensor):
        """A term the optimizer subtracts from the full-batch objective (summed over rows) and
        the recorded bound does not include; 0 by default."""
        return 0.0

    def after_step(self) -> None:
        """Called after every optimizer step (e.g. to update an average of the weights)."""

    def add_rows(self, z: torch.Tensor) -> bool:
        """``partial_fit``: prepare the new rows ``z``; True if the local parameters changed."""
        return False

    def on_failure(self, retry: int, exc) -> str | None:
        """Act on a numerical failure after the last good state was restored; return a few
        words saying what was changed (None: nothing)."""
        return None

    def finalize(self, rows: torch.Tensor, generator: torch.Generator) -> None:
        """After training (and after an interruption), with the rows trained on."""

    def fitted_attributes(self, scale: float) -> dict:
        """The public fitted attributes (names ending in ``_``) the estimator shows, in the
        data's units (``scale`` is the standardization's, see :mod:`lvm._base`); none by
        default."""
        return {}

    def eval_width(self, n_features: int) -> int:
        """The widest per-draw computation of :meth:`log_likelihood` (sets evaluation chunks)."""
        return n_features


class FamilyEstimator(GradientLatentModel, metaclass=abc.ABCMeta):
    """Base of the estimators whose math is a :class:`Family` (``lvm.FamilyEstimator``).

    A subclass gives its docstring, ``_parameter_constraints``, ``__init__`` (which only stores
    its arguments) and two methods, :meth:`_plan` and :meth:`_make_family`; every hook of
    :class:`lvm._gradient.GradientLatentModel` is answered by the family object.

    Attributes
    ----------
    family_ : Family
        The fitted family (parameters in the model's standardized coordinates).
    """

    @abc.abstractmethod
    def _plan(self, Z: torch.Tensor) -> TrainingPlan:
        """How this fit trains, from the rows ``fit`` was given (before the validation split;
        see :func:`lvm._gradient.n_validation_rows`) or the first chunk of ``partial_fit``.
        Called once per fit."""

    @abc.abstractmethod
    def _make_family(self, Z: torch.Tensor) -> Family:
        """The family at the start of training on the training rows ``Z`` (random draws from
        ``self._generator`` or ``self._new_seed()``)."""

    # ------------------------------------------------------------------ the plan, once per fit
    def _current_plan(self) -> TrainingPlan:
        return self._fit_plan

    def _fit(self, Z) -> None:
        self._fit_plan = self._plan(Z)
        super()._fit(Z)

    def _partial_fit_chunk(self, Z, first: bool) -> None:
        if first:
            self._fit_plan = self._plan(Z)
        super()._partial_fit_chunk(Z, first)

    # ------------------------------------------------------------------ hooks, by delegation
    def _build(self, Z) -> Family:
        family = self._make_family(Z).to(device=self._device, dtype=self._dtype)
        if dist.is_distributed():  # every rank starts from rank 0's global state
            with torch.no_grad():
                for t in family.global_parameters() + list(family.buffers()):
                    t.copy_(dist.broadcast(t))
        return family

    @property
    def family_(self) -> Family:
        check_is_fitted(self)
        return self._model

    def _global_parameters(self):
        return self._model.global_parameters()

    def _local_parameters(self):
        return self._model.local_parameters()

    def _batch_objective(self, z, rows, generator):
        return self._model.objective(z, rows, generator)

    def _full_objective(self, Z):
        rows = torch.arange(Z.shape[0], device=Z.device)
        per_row, global_term = self._model.objective(Z, rows, self._generator)
        total = per_row.sum()
        return total if global_term is None else total + Z.shape[0] * global_term

    def _full_penalty(self, Z):
        return self._model.penalty(Z)

    def _posterior_params(self, Z):
        return self._model.posterior(Z)

    def _log_likelihood(self, z, x):
        return self._model.log_likelihood(z, x)

    def _decode(self, X):
        self._model.eval()
        return self._model.decode(X)

    def _decoder_sample(self, X, generator):
        self._model.eval()
        return self._model.decoder_sample(X, generator)

    def _likelihood_module(self):
        return self._model.likelihood

    def _after_step(self) -> None:
        self._model.after_step()

    def _add_rows(self, Z) -> bool:
        return self._model.add_rows(Z)

    def _on_failure(self, retry: int, exc) -> str | None:
        return self._model.on_failure(retry, exc)

    def _finalize(self) -> None:
        self._model.finalize(self._rows, self._generator)
        for name, value in self._model.fitted_attributes(self._scale).items():
            setattr(self, name, value)

    def _eval_width(self) -> int:
        return self._model.eval_width(self.n_features_in_)

    @property
    def _validation_method(self) -> str:
        return self._model.validation_method

    @property
    def _validation_samples(self) -> int:
        return self._model.validation_samples
