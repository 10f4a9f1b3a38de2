r"""Ordinary differential equation solvers for a batch of states, in torch: dx/dt = f(t, x).

The state is one tensor x of shape (n, m), one row per independent trajectory; ``func(t, x)``
receives t as a 0-dim tensor of x's dtype and device. Integration runs from t0 to t1 in either
direction.

* ``"rk4"``: the classical fourth-order Runge-Kutta method with ``n_steps`` equal steps (4 function
  evaluations per step). Each row's result depends on that row alone.
* ``"dopri5"``: Dormand-Prince 5(4) with the first-same-as-last property (6 evaluations per step) and
  error control. The local error estimate e = h sum_i (b_i - b*_i) k_i of each row is scaled by
  atol + rtol max(|x|, |x_new|), its root mean square taken over the row, and the step accepted when
  the largest over the rows is at most 1; the next step is h * clip(0.9 err^{-1/5}, 0.2, 10). The
  step size is shared by the batch, so a row's result can change (within the tolerance) with the
  other rows. The initial step follows Hairer, Norsett & Wanner, *Solving ODEs I*, II.4.
"""

from __future__ import annotations

import torch

__all__ = ["SOLVERS", "rk4", "dopri5", "odeint"]

# Dormand & Prince (1980), the 5th-order solution propagated, the 4th-order one for the error.
_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0)
_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
)
_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84)
_B4 = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)
_E = tuple(b - b4 for b, b4 in zip(_B + (0.0,), _B4))


def _check_positive_int(name, value):
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")


def rk4(func, x0: torch.Tensor, t0: float, t1: float, *, n_steps: int = 100) -> torch.Tensor:
    """x(t1) by ``n_steps`` classical Runge-Kutta steps of equal size from x(t0) = ``x0``."""
    _check_positive_int("n_steps", n_steps)
    h = (float(t1) - float(t0)) / int(n_steps)
    x = x0

    def at(t):
        return torch.tensor(t, dtype=x0.dtype, device=x0.device)

    for i in range(int(n_steps)):
        t = float(t0) + i * h
        k1 = func(at(t), x)
        k2 = func(at(t + h / 2), x + (h / 2) * k1)
        k3 = func(at(t + h / 2), x + (h / 2) * k2)
        k4 = func(at(t + h), x + h * k3)
        x = x + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


def _error_norm(err, x, x_new, rtol, atol) -> float:
    scale = atol + rtol * torch.maximum(x.abs(), x_new.abs())
    return float(((err / scale) ** 2).mean(-1).sqrt().max())


def dopri5(func, x0: torch.Tensor, t0: float, t1: float, *, rtol: float = 1e-6, atol: float = 1e-8,
           first_step: float | None = None, max_steps: int = 10_000) -> torch.Tensor:
    """x(t1) by adaptive Dormand-Prince 5(4) steps from x(t0) = ``x0``.

    Parameters
    ----------
    func : callable (t, x) -> dx/dt.
    x0 : (n, m) tensor.
    t0, t1 : float
        Start and end times (t1 < t0 integrates backwards).
    rtol, atol : float
        Relative and absolute tolerances of the local error.
    first_step : float, optional
        Size of the first step; chosen automatically when omitted.
    max_steps : int
        Most steps (accepted or rejected) before giving up with a RuntimeError.
    """
    _check_positive_int("max_steps", max_steps)
    if not (rtol > 0 and atol > 0):
        raise ValueError(f"rtol and atol must be positive; got rtol={rtol!r}, atol={atol!r}.")
    t0, t1 = float(t0), float(t1)
    span = t1 - t0
    if span == 0.0:
        return x0
    direction = 1.0 if span > 0 else -1.0

    def at(t):
        return torch.tensor(t, dtype=x0.dtype, device=x0.device)

    x, t = x0, t0
    k1 = func(at(t), x)
    if first_step is None:
        scale = atol + rtol * x.abs()
        d0 = float(((x / scale) ** 2).mean().sqrt())
        d1 = float(((k1 / scale) ** 2).mean().sqrt())
        h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
        h0 = min(h0, abs(span))
        f1 = func(at(t + direction * h0), x + direction * h0 * k1)
        d2 = float((((f1 - k1) / scale) ** 2).mean().sqrt()) / h0
        h1 = max(1e-6, h0 * 1e-3) if max(d1, d2) <= 1e-15 else (0.01 / max(d1, d2)) ** 0.2
        h = min(100 * h0, h1)
    else:
        h = abs(float(first_step))
    for _ in range(int(max_steps)):
        h = min(h, abs(t1 - t))
        hs = direction * h
        ks = [k1]
        for c, a in zip(_C[1:], _A[1:]):
            ks.append(func(at(t + c * hs), x + hs * sum(ai * k for ai, k in zip(a, ks))))
        x_new = x + hs * sum(b * k for b, k in zip(_B, ks))
        k7 = func(at(t + hs), x_new)
        ks.append(k7)
        err = hs * sum(e * k for e, k in zip(_E, ks))
        norm = _error_norm(err, x, x_new, rtol, atol)
        if norm <= 1.0:
            t, x, k1 = t + hs, x_new, k7
            if direction * (t1 - t) <= 1e-12 * abs(span):
                return x
        if norm != norm:  # NaN
            raise RuntimeError(f"dopri5 met a non-finite state at t = {t:.6g}.")
        h = h * min(10.0, max(0.2, 0.9 * norm ** -0.2 if norm > 0 else 10.0))
        if h < 1e-14 * abs(span):
            raise RuntimeError(f"dopri5 step size underflow at t = {t:.6g}; the problem may be stiff. "
                               "Loosen rtol/atol or use method='rk4' with more steps.")
    raise RuntimeError(f"dopri5 did not reach t = {t1:.6g} in max_steps={max_steps} steps (stopped at "
                       f"t = {t:.6g}). Raise max_steps, loosen rtol/atol, or use method='rk4'.")


#: ODE solvers by name.
SOLVERS = {"rk4": rk4, "dopri5": dopri5}


def odeint(func, x0: torch.Tensor, t0: float, t1: float, *, method: str = "dopri5",
           options: dict | None = None) -> torch.Tensor:
    """x(t1) for dx/dt = func(t, x), x(t0) = ``x0``, with the solver ``SOLVERS[method](**options)``."""
    if method not in SOLVERS:
        raise ValueError(f"Unknown ODE solver {method!r}; choose one of {sorted(SOLVERS)}.")
    return SOLVERS[method](func, x0, t0, t1, **(options or {}))
