"""The one training loop every iterative family uses.

A family supplies ``epoch``, a callable that runs one pass of optimizer steps and returns the
objective (log evidence or its bound per data point, higher is better) as a 0-d tensor; the loop
reads it back once per epoch, never per step, so on a GPU the steps queue without host round trips.

The loop owns what every family needs: ``max_epochs``, relative tolerance, early stopping on a
validation objective with the best state restored, the history, a progress bar, a per-epoch
callback, the ConvergenceWarning, and recovery from numerical failure (a non-finite objective or a
failed Cholesky factorization): the modules and *every* optimizer are restored to the last good
epoch, every step size is halved, and the family's ``on_failure`` hook may act at the depth of
the failure (more jitter on the matrix that failed, a higher noise floor), up to ``max_retries``
times, after which :class:`NumericalError` is raised with the model left in its last good state.
A ``KeyboardInterrupt`` also restores the last good state before it propagates, so the caller can
leave a usable model behind.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

import torch
from sklearn.exceptions import ConvergenceWarning

__all__ = ["NumericalError", "TrainResult", "train", "numerical_errors", "HISTORY_KEYS",
           "history_record", "not_converged_message", "warn_not_converged"]

#: The keys of every ``history_`` record, for every iterative family: ``epoch`` (1, 2, ...: one
#: record per call of the family's ``epoch``, a group of optimizer or EM iterations), ``n_iter``
#: (iterations so far, in the unit of the family's budget, ``max_iter`` or ``max_epochs``),
#: ``train`` (the training objective per point, nats of the data as passed: the log evidence
#: or its bound) and ``validation`` (the validation objective per point, None without a
#: validation split).
HISTORY_KEYS = ("epoch", "n_iter", "train", "validation")


def history_record(epoch: int, n_iter: int, train: float, validation: float | None = None) -> dict:
    """One ``history_`` record, with the keys of :data:`HISTORY_KEYS`."""
    return {"epoch": int(epoch), "n_iter": int(n_iter), "train": float(train),
            "validation": None if validation is None else float(validation)}


def not_converged_message(estimator_name: str, budget: str, parameter: str, *, tol=None,
                          patience: int | None = None, best_epoch: int | None = None,
                          n_epochs: int | None = None, hint: str = "") -> str:
    """The one message of lvm's ConvergenceWarning: which budget ran out before which stopping
    rule was met, and which parameter to raise (``hint`` follows its name).

    With ``patience`` the rule is early stopping on the validation objective, otherwise the
    relative tolerance ``tol``."""
    if patience is not None:
        rule = (f"early stopping needs patience={patience} epochs without a better validation "
                "objective")
        if best_epoch is not None:
            rule += f" (the best was epoch {best_epoch} of {n_epochs})"
        relax = "lower patience"
    else:
        rule = f"the objective's relative change had not fallen below tol={tol}"
        relax = "raise tol"
    return (f"{estimator_name} did not converge {budget}: {rule}. Raise {parameter}{hint}, "
            f"or {relax}.")


def warn_not_converged(estimator_name: str, budget: str, parameter: str, **rule) -> None:
    """Emit the ConvergenceWarning of :func:`not_converged_message`."""
    warnings.warn(not_converged_message(estimator_name, budget, parameter, **rule),
                  ConvergenceWarning, stacklevel=3)


class NumericalError(FloatingPointError):
    """Training met a non-finite objective or a non-positive-definite matrix it could not fix.

    Raised after the training loop's retries (more jitter, a higher noise floor) are spent. The
    estimator is left in its last good state.
    """


@dataclass
class TrainResult:
    """What :func:`train` did; filled in place, so it is complete even when training raises."""

    history: list = field(default_factory=list)
    n_epochs: int = 0
    converged: bool = False
    best_epoch: int | None = None
    start_validation: float | None = None
    interrupted: bool = False
    retries: int = 0


def numerical_errors() -> tuple:
    """The exceptions that mean "this step was numerically unsound" (retried by :func:`train`)."""
    errs = [torch._C._LinAlgError]
    try:
        from linear_operator.utils.errors import NanError, NotPSDError

        errs += [NotPSDError, NanError]
    except ImportError:  # pragma: no cover
        pass
    return tuple(errs)


def _as_list(optimizers):
    if optimizers is None:
        return []
    if isinstance(optimizers, (list, tuple)):
        return [o for o in optimizers if o is not None]
    return [optimizers]


def _copy_state(obj, old=None):
    """A copy of a state dict: tensors cloned, containers rebuilt, anything else deep-copied.
    (``copy.deepcopy`` gives the same values but costs a few times more in Python per tensor:
    taken every epoch, on a small table of a few optimizer steps per epoch that was a tenth of
    the VAE's fit.) With ``old``, an earlier copy of the same structure that nothing else holds,
    its tensors of the same shape are written in place rather than allocated anew."""
    if isinstance(obj, torch.Tensor):
        if (isinstance(old, torch.Tensor) and old.shape == obj.shape and old.dtype == obj.dtype
                and old.device == obj.device):
            return old.copy_(obj.detach())
        return obj.detach().clone()
    if type(obj) in (dict, OrderedDict):
        get = old.get if type(old) is type(obj) else dict().get
        out = type(obj)((k, _copy_state(v, get(k))) for k, v in obj.items())
        if hasattr(obj, "_metadata"):  # a module's state dict: versions for load_state_dict
            out._metadata = copy.deepcopy(obj._metadata)
        return out
    if type(obj) in (list, tuple):
        olds = old if type(old) is type(obj) and len(old) == len(obj) else [None] * len(obj)
        return type(obj)(_copy_state(v, o) for v, o in zip(obj, olds))
    return copy.deepcopy(obj)


def _snapshot(modules, optimizers, old=None):
    """The state of ``modules`` and ``optimizers``; with ``old``, an earlier snapshot of theirs
    that nothing else holds, written over (the same values, without allocating them anew)."""
    old_state, old_opts = (old if old is not None and len(old[0]) == len(modules)
                           and len(old[1]) == len(optimizers)
                           else ([None] * len(modules), [None] * len(optimizers)))
    state = [_copy_state(m.state_dict(), o) for m, o in zip(modules, old_state)]
    opts = [_copy_state(o.state_dict(), p) for o, p in zip(optimizers, old_opts)]
    return state, opts


def _restore(snapshot, modules, optimizers):
    state, opts = snapshot
    for m, s in zip(modules, state):
        m.load_state_dict(s)
    for o, s in zip(optimizers, opts):
        lrs = [g["lr"] for g in o.param_groups]
        # A copy: an optimizer may keep the tensors it loads, and the snapshot is written over
        # in place after the next whole epoch.
        o.load_state_dict(_copy_state(s))
        for g, lr in zip(o.param_groups, lrs):  # keep any step size halved since the snapshot
            g["lr"] = lr


def train(
    epoch: Callable[[], torch.Tensor],
    modules,
    optimizers=None,
    *,
    max_epochs: int,
    tol: float | None = None,
    n_iter_no_change: int = 5,
    tol_floor: float = 0.0,
    validation: Callable[[], torch.Tensor] | None = None,
    patience: int = 10,
    patience_rule: Callable[[int], int] | None = None,
    verbose: bool | int = False,
    desc: str = "fit",
    objective_name: str = "elbo",
    max_retries: int = 3,
    on_failure: Callable[[int, BaseException | None], str | None] | None = None,
    callback: Callable[[dict], None] | None = None,
    estimator_name: str = "model",
    limit_message: str | None = None,
    advice: str = "Try standardizing the data or a smaller learning rate.",
    result: TrainResult | None = None,
    warn: bool = True,
    validate_start: bool = False,
) -> TrainResult:
    """Run ``epoch`` up to ``max_epochs`` times; see the module docstring.

    Parameters
    ----------
    epoch : callable returning a 0-d tensor, the training objective per point (higher is better).
    modules : list of torch.nn.Module whose state is snapshotted and restored.
    optimizers : an optimizer, a list of them, or None; all are snapshotted and restored together,
        and their step sizes halved after a failure.
    tol : stop when the training objective improved by less than ``tol`` (relative to
        ``max(1, |objective|)``) over ``n_iter_no_change`` epochs. None: run all epochs.
    tol_floor : with ``tol``, the least improvement over those epochs that counts, in the
        objective's units (0: the relative rule alone).
    validation : callable returning the validation objective; enables early stopping with
        ``patience`` and restoring the best state.
    patience_rule : called with the best epoch so far (0: the start), returns the patience then
        (at most ``patience``, which the convergence warning names); None: ``patience`` always.
    on_failure : called as ``on_failure(retry, exception_or_None)`` after the restore; it may act
        on the cause and returns a few words saying what it changed (for the error message).
    callback : called with each epoch's record (``epoch``, ``train``, ``validation``) after it is
        appended to the history (benchmarks time epochs with it).
    advice : the last sentence of the :class:`NumericalError` message.
    result : a :class:`TrainResult` to fill in place (so the caller holds it if training raises).
    warn : whether to emit the ConvergenceWarning (:func:`warn_not_converged`) when the budget
        ran out before the stopping rule (``tol`` or early stopping) was met. The estimators pass
        False and decide it once per fit (``LatentVariableModel._record_convergence``).
    validate_start : also evaluate ``validation`` before the first epoch (kept in
        ``result.start_validation``); the starting state then competes as epoch 0, so the state
        kept is never worse on the validation objective than the one training started from.
    """
    modules = list(modules)
    optimizers = _as_list(optimizers)
    result = TrainResult() if result is None else result
    bar = None
    if verbose:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_epochs, desc=desc, leave=bool(verbose), dynamic_ncols=True)
    good = _snapshot(modules, optimizers)
    best_val, best_state, since_best = -math.inf, None, 0
    remedies: list[str] = []
    errors = numerical_errors()
    ep = 0
    try:
        if validation is not None and validate_start:
            best_val = result.start_validation = float(validation())
            if math.isfinite(best_val):
                best_state, result.best_epoch = _snapshot(modules, []), 0
            else:
                best_val = -math.inf
        while ep < max_epochs:
            try:
                value = float(epoch())
                failure, exc = (None if math.isfinite(value)
                                else f"the {objective_name} became {value}"), None
            except errors as err:
                failure, exc = f"{type(err).__name__}: {err}".split("\n")[0], err
            if failure is not None:
                _restore(good, modules, optimizers)
                result.retries += 1
                if result.retries > max_retries:
                    done = "; ".join(dict.fromkeys(["halved the step size"] + remedies))
                    raise NumericalError(
                        f"{estimator_name} training failed at epoch {ep + 1} ({failure}) and did not "
                        f"recover after {max_retries} retries ({done}). The model was left in its "
                        f"last good state (epoch {ep}). {advice}"
                    ) from exc
                for opt in optimizers:
                    for group in opt.param_groups:
                        group["lr"] = group["lr"] * 0.5
                if on_failure is not None:
                    remedy = on_failure(result.retries, exc)
                    if remedy:
                        remedies.append(remedy)
                continue
            ep += 1
            record = {"epoch": ep, "train": value}
            if validation is not None:
                val = float(validation())
                record["validation"] = val
                if val > best_val:
                    best_val, since_best, result.best_epoch = val, 0, ep
                    best_state = _snapshot(modules, [], best_state)
                else:
                    since_best += 1
            result.history.append(record)
            result.n_epochs = ep
            good = _snapshot(modules, optimizers, good)
            if callback is not None:
                callback(record)
            if bar is not None:
                post = {objective_name: f"{value:.4g}"}
                if validation is not None:
                    post["val"] = f"{record['validation']:.4g}"
                bar.set_postfix(post, refresh=False)
                bar.update(1)
            limit = patience if patience_rule is None else patience_rule(result.best_epoch or 0)
            if validation is not None and since_best >= limit:
                result.converged = True
                break
            if tol is not None and ep > n_iter_no_change:
                old = result.history[-1 - n_iter_no_change]["train"]
                if value - old < max(tol * max(1.0, abs(value)), tol_floor):
                    result.converged = True
                    break
    except KeyboardInterrupt:
        # An epoch cut short leaves the parameters half-updated: go back to the last whole one.
        _restore(good, modules, optimizers)
        result.interrupted = True
        raise
    finally:
        if bar is not None:
            bar.close()
    if best_state is not None:
        _restore(best_state, modules, [])
    result.n_epochs = ep
    if warn and not result.converged and (tol is not None or validation is not None):
        warn_not_converged(estimator_name, limit_message or f"in max_epochs={max_epochs} epochs",
                           "max_epochs", tol=tol,
                           patience=patience if validation is not None else None,
                           best_epoch=result.best_epoch, n_epochs=result.n_epochs)
    return result
