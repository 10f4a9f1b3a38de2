"""Numerical knobs as context managers, as GPyTorch's ``gpytorch.settings`` does.

Each knob has a global default and can be changed for a block of code::

    with lvm.settings.cholesky_jitter(float64=1e-6):
        model.fit(Y)

    with lvm.settings.num_threads(4):
        model.fit(Y)

Knobs that depend on the floating-point precision keep one value per dtype. Values are relative
to the scale of the quantity they act on (the mean diagonal of the matrix being factorized),
never absolute, so they mean the same thing in any units of the data.
"""

from __future__ import annotations

import contextlib

import torch

__all__ = ["cholesky_jitter", "eval_chunk_elements", "num_threads", "on_epoch", "thread_scope"]


class _value_context:
    """A setting with one global value, changed for the duration of a ``with`` block."""

    _global_value = None

    @classmethod
    def value(cls):
        return cls._global_value

    @classmethod
    def _set_value(cls, value):
        cls._global_value = value

    def __init__(self, value):
        self._instance_value = value

    def __enter__(self):
        self._orig_value = self.value()
        self._set_value(self._instance_value)
        return self

    def __exit__(self, *exc):
        self._set_value(self._orig_value)
        return False


class _dtype_value_context:
    """A setting with one value per floating-point dtype."""

    _global_float_value = None
    _global_double_value = None

    @classmethod
    def value(cls, dtype: torch.dtype):
        if dtype == torch.float64:
            return cls._global_double_value
        if dtype == torch.float32:
            return cls._global_float_value
        raise TypeError(f"{cls.__name__} has no value for dtype {dtype}.")

    @classmethod
    def _set_value(cls, float_value, double_value):
        if float_value is not None:
            cls._global_float_value = float_value
        if double_value is not None:
            cls._global_double_value = double_value

    def __init__(self, float32=None, float64=None):
        self._instance = (float32, float64)

    def __enter__(self):
        self._orig = (type(self)._global_float_value, type(self)._global_double_value)
        self._set_value(*self._instance)
        return self

    def __exit__(self, *exc):
        type(self)._global_float_value, type(self)._global_double_value = self._orig
        return False


class cholesky_jitter(_dtype_value_context):
    """Jitter added to a kernel matrix's diagonal before its Cholesky factorization.

    Relative to the matrix's mean diagonal: 1e-4 in float32 and 1e-6 in float64 by default. Each
    numerical failure during training multiplies the jitter in use by 10 before the retry.

    Parameters
    ----------
    float32 : float, optional
        The relative jitter for float32 computations inside the block (unchanged when None).
    float64 : float, optional
        The same for float64.

    Examples
    --------
    >>> import torch, lvm
    >>> with lvm.settings.cholesky_jitter(float64=1e-5):
    ...     lvm.settings.cholesky_jitter.value(torch.float64)
    1e-05
    >>> lvm.settings.cholesky_jitter.value(torch.float64)
    1e-06
    """

    _global_float_value = 1e-4
    _global_double_value = 1e-6


class eval_chunk_elements(_value_context):
    """Elements one chunk of a Monte Carlo evidence estimate may hold (draws x rows x width).

    Default 2**23, about 64 MB in float64; it bounds the memory of ``score_samples``.

    Parameters
    ----------
    value : int
        The number of elements inside the block.
    """

    _global_value = 2**23


class num_threads(_value_context):
    """Intra-op threads torch may use inside lvm's ``fit``, ``partial_fit`` and evaluation.

    ``None`` (the default) applies lvm's policy: problems whose largest per-step tensor is small
    (see :data:`SMALL_PROBLEM_ELEMENTS`) run on one thread, because the synchronization of
    torch's thread pool costs more than it gains on them and is many times slower when other
    processes share the cores; larger problems keep torch's setting. An integer fixes the
    count. Torch's own setting is restored afterwards.

    Parameters
    ----------
    value : int or None
        The thread count inside the block, or None for lvm's policy.
    """

    _global_value = None


#: Per-step work (elements of the largest tensor a training step touches) below which lvm's
#: thread policy runs on one thread.
SMALL_PROBLEM_ELEMENTS = 2**20

@contextlib.contextmanager
def thread_scope(work_elements: int | None = None):
    """Run a block under lvm's thread policy (see :class:`num_threads`), restoring torch's.

    Parameters
    ----------
    work_elements : int, optional
        The size of the largest tensor one step of the work touches; below
        ``SMALL_PROBLEM_ELEMENTS`` the policy uses one thread. None keeps torch's setting unless
        :class:`num_threads` fixes a count.

    Yields
    ------
    None
        Control, with torch's intra-op thread count set for the block.
    """
    requested = num_threads.value()
    if requested is None:
        if work_elements is None or work_elements >= SMALL_PROBLEM_ELEMENTS:
            yield
            return
        requested = 1
    before = torch.get_num_threads()
    if requested == before:
        yield
        return
    torch.set_num_threads(int(requested))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class on_epoch(_value_context):
    """A callable run after every epoch of every training loop inside the block.

    It is called as ``fn(record, name)`` with the epoch's record (``epoch``, ``train`` and, with
    validation, ``validation``: the objective per point in nats of the data as passed) and the
    estimator's class name.
    Benchmarks time epochs with it::

        with lvm.settings.on_epoch(lambda record, name: trace.append(time.perf_counter())):
            model.fit(Y)

    Parameters
    ----------
    value : callable or None
        ``fn(record, name)``, or None for nothing.
    """

    _global_value = None
