"""The one training loop, on its own: several optimizers, numerical recovery, interruption,
callbacks, early stopping, and the convergence warning."""

import math

import pytest
import torch
from linear_operator.utils.errors import NotPSDError
from sklearn.exceptions import ConvergenceWarning

from lvm._training import NumericalError, TrainResult, train


class Quadratic(torch.nn.Module):
    """Maximize -(a - 3)^2 - (b + 1)^2 with one optimizer per parameter."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.zeros(()))
        self.b = torch.nn.Parameter(torch.zeros(()))

    def objective(self):
        return -(self.a - 3.0) ** 2 - (self.b + 1.0) ** 2


def _setup(lr=0.1):
    model = Quadratic()
    opts = [torch.optim.Adam([model.a], lr=lr), torch.optim.Adam([model.b], lr=lr)]
    return model, opts


def _epoch(model, opts, poison=None, steps=10):
    calls = {"n": 0}

    def epoch():
        calls["n"] += 1
        for _ in range(steps):
            for o in opts:
                o.zero_grad()
            value = model.objective()
            if poison is not None and calls["n"] in poison:
                value = value * float("nan")  # NaN gradients reach every optimizer's moments
            (-value).backward()
            for o in opts:
                o.step()
        return value.detach()

    return epoch, calls


def test_several_optimizers_converge():
    model, opts = _setup()
    epoch, _ = _epoch(model, opts)
    result = train(epoch, [model], opts, max_epochs=100, tol=1e-10)
    assert result.converged and float(model.a) == pytest.approx(3, abs=1e-3)
    assert float(model.b) == pytest.approx(-1, abs=1e-3)


def test_a_nan_is_recovered_from_in_every_optimizer():
    """The NaN poisons both optimizers' moments; both are restored and their step sizes halved."""
    model, opts = _setup()
    epoch, _ = _epoch(model, opts, poison={3})
    seen = []
    result = train(epoch, [model], opts, max_epochs=60, tol=1e-10,
                   on_failure=lambda retry, exc: seen.append((retry, exc)) or "did something")
    assert result.retries == 1 and seen == [(1, None)]
    assert all(g["lr"] == pytest.approx(0.05) for o in opts for g in o.param_groups)
    assert all(torch.isfinite(s["exp_avg"]).all() for o in opts for s in o.state.values())
    assert float(model.a) == pytest.approx(3, abs=1e-2)


def test_numerical_error_after_the_retries_names_the_remedies_and_keeps_the_last_good_state():
    model, opts = _setup()
    epoch, _ = _epoch(model, opts, poison=set(range(3, 100)))
    result, ends = TrainResult(), []
    with pytest.raises(NumericalError, match=r"at epoch 3 .* did not recover after 3 retries "
                                             r"\(halved the step size; raised the jitter\)"):
        train(epoch, [model], opts, max_epochs=50, on_failure=lambda r, e: "raised the jitter",
              advice="Try X.", result=result, callback=lambda r: ends.append(float(model.a)))
    assert result.n_epochs == 2 and float(model.a) == ends[-1]
    # step sizes halved three times, not reset by the restores
    assert opts[0].param_groups[0]["lr"] == pytest.approx(0.1 / 8)


def test_a_failed_factorization_is_passed_to_on_failure():
    model, opts = _setup()
    calls = {"n": 0}

    def epoch():
        calls["n"] += 1
        if calls["n"] == 2:
            raise NotPSDError("injected")
        return model.objective().detach()

    seen = []
    train(epoch, [model], opts, max_epochs=3, on_failure=lambda r, e: seen.append(e))
    assert len(seen) == 1 and isinstance(seen[0], NotPSDError)


def test_keyboard_interrupt_restores_the_last_whole_epoch():
    model, opts = _setup()
    epoch, calls = _epoch(model, opts)

    def interrupted():
        if calls["n"] == 3:
            with torch.no_grad():
                model.a.add_(100.0)  # half an epoch's damage
            raise KeyboardInterrupt
        return epoch()

    result, ends = TrainResult(), []
    with pytest.raises(KeyboardInterrupt):
        train(interrupted, [model], opts, max_epochs=10, result=result,
              callback=lambda r: ends.append(float(model.a)))
    assert result.interrupted and result.n_epochs == 3 and float(model.a) == ends[-1]


def test_callback_and_validation_early_stopping_restore_the_best_epoch():
    model, opts = _setup()
    epoch, calls = _epoch(model, opts, steps=1)
    values = iter([1.0, 3.0, 2.0, 2.5, 0.0, 1.0])
    states = {}

    def validation():
        states[calls["n"]] = float(model.a)
        return next(values)

    records = []
    result = train(epoch, [model], opts, max_epochs=6, validation=validation, patience=3,
                   callback=records.append)
    assert result.converged and result.best_epoch == 2 and len(records) == 5
    assert float(model.a) == pytest.approx(states[2])


@pytest.mark.parametrize("values, best", [([5.0, 1.0, 3.0, 2.0, 4.0], 0),
                                          ([1.0, 3.0, 2.0, 2.5, 0.0, 1.0], 1)])
def test_validate_start_lets_the_start_compete_as_epoch_zero(values, best):
    model, opts = _setup()
    epoch, calls = _epoch(model, opts, steps=1)
    states, it = {}, iter(values)

    def validation():
        states[calls["n"]] = float(model.a)
        return next(it)

    result = train(epoch, [model], opts, max_epochs=10, validation=validation, patience=3,
                   validate_start=True)
    assert result.start_validation == values[0] and result.best_epoch == best
    assert result.converged and result.n_epochs == best + 3 and len(result.history) == best + 3
    assert float(model.a) == states[best]


def test_convergence_warning_names_the_limit():
    model, opts = _setup(lr=1e-4)
    epoch, _ = _epoch(model, opts)
    with pytest.warns(ConvergenceWarning, match=r"model did not converge in 20 steps: the "
                      r"objective's relative change had not fallen below tol=1e-12\. Raise "
                      r"max_epochs, or raise tol\."):
        train(epoch, [model], opts, max_epochs=2, tol=1e-12, limit_message="in 20 steps")


def test_tol_floor_counts_a_rise_below_it_as_a_plateau():
    """The relative rule alone runs on while the objective rises 0.5 per epoch; with a floor of 3
    (in the objective's units) a rise of 2.5 over five epochs is a plateau."""
    for floor, stop in [(0.0, 40), (3.0, 6)]:
        values = iter(0.5 * torch.arange(1, 41, dtype=torch.float64))
        result = train(lambda: next(values), [], max_epochs=40, tol=1e-6, tol_floor=floor)
        assert result.n_epochs == stop and result.converged == (floor > 0)


def test_each_restore_returns_the_state_of_the_last_whole_epoch():
    """Snapshots are written over in place between failures, and a restore loads a copy (an
    optimizer may keep the tensors it loads): a second failure must restore the epoch before it,
    not a state the optimizer has since moved."""
    model, opts = _setup()
    epoch, calls = _epoch(model, opts, poison={3, 6})
    kept, restored = [], []

    def state():
        return ([float(model.a), float(model.b)]
                + [s["exp_avg"].item() for o in opts for s in o.state.values()])

    train(epoch, [model], opts, max_epochs=8, callback=lambda record: kept.append(state()),
          on_failure=lambda retry, exc: restored.append(state()))
    # Epochs: 1, 2 (kept), 3 fails -> epoch 2's state; 3 (call 4), 4 (call 5) kept; 6 fails.
    assert restored == [kept[1], kept[3]]


def test_patience_rule_is_asked_after_each_best_epoch():
    """The validation objective peaks at epochs 5 and 20 (gap 15): a rule giving 10 epochs after
    epoch 5 stops at 15; one giving 20 reaches the second peak and stops 20 epochs after it."""
    for rule, stop, best in [(lambda b: 10, 15, 5), (lambda b: 20 if b < 20 else 20, 40, 20)]:
        vals = [1.0 if e == 5 else 2.0 if e == 20 else 0.0 for e in range(1, 61)]
        it = iter(vals)
        result = train(lambda: torch.tensor(0.0), [], max_epochs=60, validation=lambda: next(it),
                       patience=80, patience_rule=rule)
        assert (result.n_epochs, result.best_epoch) == (stop, best)
