"""The one training loop every iterative family uses.

A family supplies ``epoch``, a callable that runs one pass of optimizer steps and returns the
objective (log evidence or its bound per data point, higher is better) as a 0-d tensor; the loop
reads it back once per epoch, never per step, so on a GPU the steps queue without host round trips.

The loop owns what every family needs: ``max_epochs``, relative tolerance, early stopping on a
validation objective with the best state restored, ``history_``, a progress bar, the
ConvergenceWarning, and recovery from numerical failure (NaN objective or a failed Cholesky): the
last good state is restored, the step size halved (and the family's ``on_failure`` hook called, for
example to raise the jitter), up to ``max_retries`` times, after which :class:`NumericalError` is
raised with the model left in its last good state.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch
from sklearn.exceptions import ConvergenceWarning

__all__ = ["NumericalError", "TrainResult", "train"]


class NumericalError(FloatingPointError):
    """Training met a non-finite objective or a non-positive-definite matrix it could not recover from."""


@dataclass
class TrainResult:
    history: list = field(default_factory=list)
    n_epochs: int = 0
    converged: bool = False
    best_epoch: int | None = None


def _linalg_errors():
    errs = [torch._C._LinAlgError]
    try:
        from linear_operator.utils.errors import NanError, NotPSDError

        errs += [NotPSDError, NanError]
    except ImportError:  # pragma: no cover
        pass
    return tuple(errs)


def _snapshot(modules, optimizer):
    state = [copy.deepcopy(m.state_dict()) for m in modules]
    opt = copy.deepcopy(optimizer.state_dict()) if optimizer is not None else None
    return state, opt


def _restore(snapshot, modules, optimizer):
    state, opt = snapshot
    for m, s in zip(modules, state):
        m.load_state_dict(s)
    if optimizer is not None and opt is not None:
        optimizer.load_state_dict(opt)


def train(
    epoch: Callable[[], torch.Tensor],
    modules,
    optimizer=None,
    *,
    max_epochs: int,
    tol: float | None = None,
    n_iter_no_change: int = 5,
    validation: Callable[[], torch.Tensor] | None = None,
    patience: int = 10,
    verbose: bool | int = False,
    desc: str = "fit",
    objective_name: str = "elbo",
    max_retries: int = 3,
    on_failure: Callable[[int], None] | None = None,
    estimator_name: str = "model",
    limit_message: str | None = None,
) -> TrainResult:
    """Run ``epoch`` up to ``max_epochs`` times; see the module docstring.

    Parameters
    ----------
    epoch : callable returning a 0-d tensor, the training objective per point (higher is better).
    modules : list of torch.nn.Module whose state is snapshotted and restored.
    optimizer : torch.optim.Optimizer or None; its learning rate is halved after a failure.
    tol : stop when the training objective improved by less than ``tol`` (relative to
        ``max(1, |objective|)``) over ``n_iter_no_change`` epochs. None: run all epochs.
    validation : callable returning the validation objective; enables early stopping with
        ``patience`` and restoring the best state.
    """
    modules = list(modules)
    result = TrainResult()
    bar = None
    if verbose:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_epochs, desc=desc, leave=bool(verbose), dynamic_ncols=True)
    good = _snapshot(modules, optimizer)
    best_val, best_state, since_best = -math.inf, None, 0
    retries = 0
    errors = _linalg_errors()
    ep = 0
    try:
        while ep < max_epochs:
            try:
                value = float(epoch())
                failure = None if math.isfinite(value) else f"the {objective_name} became {value}"
            except errors as exc:
                failure = f"{type(exc).__name__}: {exc}".split("\n")[0]
            if failure is not None:
                _restore(good, modules, optimizer)
                retries += 1
                if retries > max_retries:
                    raise NumericalError(
                        f"{estimator_name} training failed at epoch {ep + 1} ({failure}) and did not "
                        f"recover after {max_retries} retries with a smaller step"
                        + (" and more jitter" if on_failure is not None else "")
                        + ". The model was left in its last good state. Try standardizing the data, "
                        "a smaller learning rate, or float64."
                    )
                if optimizer is not None:
                    for group in optimizer.param_groups:
                        group["lr"] = group["lr"] * 0.5
                if on_failure is not None:
                    on_failure(retries)
                continue
            ep += 1
            record = {"epoch": ep, "train": value}
            if validation is not None:
                val = float(validation())
                record["validation"] = val
                if val > best_val:
                    best_val, since_best, result.best_epoch = val, 0, ep
                    best_state = _snapshot(modules, None)
                else:
                    since_best += 1
            result.history.append(record)
            good = _snapshot(modules, optimizer)
            if bar is not None:
                post = {objective_name: f"{value:.4g}"}
                if validation is not None:
                    post["val"] = f"{record['validation']:.4g}"
                bar.set_postfix(post, refresh=False)
                bar.update(1)
            if validation is not None and since_best >= patience:
                result.converged = True
                break
            if tol is not None and ep > n_iter_no_change:
                old = result.history[-1 - n_iter_no_change]["train"]
                if value - old < tol * max(1.0, abs(value)):
                    result.converged = True
                    break
    finally:
        if bar is not None:
            bar.close()
    if best_state is not None:
        _restore(best_state, modules, None)
    result.n_epochs = ep
    if not result.converged and tol is not None and validation is None:
        warnings.warn(
            f"{estimator_name} did not converge "
            + (limit_message or f"in max_epochs={max_epochs} epochs")
            + f" (tol={tol}); increase the iteration limit or tol.",
            ConvergenceWarning,
        )
    return result
