"""The covariance functions of the GP decoder: GPyTorch kernels with one lengthscale per latent dim.

One registry maps the ``kernel`` hyper-parameter to a constructor; :func:`relevance` reads the
automatic relevance determination (ARD) weights off a fitted kernel, and :func:`relevant_columns`
picks the most relevant latent dims.
"""

from __future__ import annotations

import copy
import numbers

import gpytorch
import numpy as np
import torch

__all__ = ["KERNELS", "make_kernel", "relevance", "kernel_name", "relevant_columns"]


def _rbf(q: int):
    return gpytorch.kernels.ScaleKernel(gpytorch.kernels.RBFKernel(ard_num_dims=q))


def _linear(q: int):
    return gpytorch.kernels.LinearKernel(ard_num_dims=q)


def _linear_plus_rbf(q: int):
    return gpytorch.kernels.AdditiveKernel(_linear(q), _rbf(q))


def _matern(q: int):
    return gpytorch.kernels.ScaleKernel(gpytorch.kernels.MaternKernel(nu=2.5, ard_num_dims=q))


#: ``kernel`` name -> constructor taking the latent dimension. RBF-ARD, linear-ARD and their sum have
#: closed-form psi-statistics (see :mod:`lvm.gplvm.psi`); Matern 5/2 is for ``inference="svi"`` only.
KERNELS = {"rbf": _rbf, "linear": _linear, "linear+rbf": _linear_plus_rbf, "matern": _matern}


def make_kernel(kernel, n_components: int) -> gpytorch.kernels.Kernel:
    """A fresh kernel for ``n_components`` latent dims: a registry name or a copy of a GPyTorch kernel."""
    if isinstance(kernel, gpytorch.kernels.Kernel):
        return copy.deepcopy(kernel)
    try:
        return KERNELS[kernel](n_components)
    except KeyError:
        raise ValueError(
            f"Unknown kernel {kernel!r}; use one of {sorted(KERNELS)} or a gpytorch Kernel instance."
        ) from None


def kernel_name(kernel: gpytorch.kernels.Kernel) -> str:
    if isinstance(kernel, gpytorch.kernels.AdditiveKernel):
        return "+".join(kernel_name(k) for k in kernel.kernels)
    base = kernel.base_kernel if isinstance(kernel, gpytorch.kernels.ScaleKernel) else kernel
    return type(base).__name__


def relevance(kernel: gpytorch.kernels.Kernel) -> torch.Tensor:
    r"""ARD weight of each latent dim: 1 / lengthscale^2 (stationary kernels) or the weight variance
    (linear kernel), the curvature the kernel puts along that axis.

    For a sum of kernels it is the sum of the parts' curvatures in the data's units,
    :math:`\partial^2 k(x, x') / \partial x_q \partial x'_q` at x = x', which is the variance of the
    GP's slope along dim q, :math:`\mathbb V[\partial g / \partial x_q]`: v_q for the linear part,
    sigma^2 / l_q^2 for a scaled RBF part; so for ``"linear+rbf"`` it is
    :math:`v_q + \sigma^2 / l_q^2`, and a dim counts when either part uses it, in proportion to that
    part's scale.
    """
    if isinstance(kernel, gpytorch.kernels.AdditiveKernel):
        return sum(_slope_variance(k) for k in kernel.kernels)
    base = kernel.base_kernel if isinstance(kernel, gpytorch.kernels.ScaleKernel) else kernel
    if isinstance(base, gpytorch.kernels.LinearKernel):
        return base.variance.reshape(-1)
    if getattr(base, "lengthscale", None) is not None:
        return base.lengthscale.reshape(-1) ** -2
    raise ValueError(f"{type(base).__name__} has no ARD weights; use an ARD kernel.")


def _slope_variance(kernel: gpytorch.kernels.Kernel) -> torch.Tensor:
    """v_q (linear) or sigma^2 / l_q^2 (scaled RBF): the variance of dg / dx_q."""
    if isinstance(kernel, gpytorch.kernels.ScaleKernel) and isinstance(
            kernel.base_kernel, gpytorch.kernels.RBFKernel):
        return kernel.outputscale * kernel.base_kernel.lengthscale.reshape(-1) ** -2
    if isinstance(kernel, gpytorch.kernels.LinearKernel):
        return kernel.variance.reshape(-1)
    raise ValueError(f"relevance of a sum of kernels needs linear and scaled RBF parts; got "
                     f"{type(kernel).__name__}.")


def lengthscales(kernel: gpytorch.kernels.Kernel) -> torch.Tensor:
    """Lengthscale of each latent dim: relevance^{-1/2} (for the linear kernel, 1 / sqrt(variance))."""
    return relevance(kernel) ** -0.5


def relevant_columns(relevant_dims: np.ndarray, dims) -> np.ndarray:
    """The latent dims ``dims`` picks, most relevant first, from ``relevant_dims`` (all Q dims in
    decreasing relevance): ``"relevant"`` the two most relevant, an int k the k most relevant."""
    Q = len(relevant_dims)
    if isinstance(dims, str) and dims == "relevant":
        k = min(2, Q)
    elif isinstance(dims, numbers.Integral) and not isinstance(dims, bool) and 1 <= dims <= Q:
        k = int(dims)
    else:
        raise ValueError(f"dims must be None, 'relevant' or an int in [1, {Q}]; got {dims!r}.")
    return relevant_dims[:k].copy()
