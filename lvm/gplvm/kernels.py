"""The covariance functions of the GP decoder: GPyTorch kernels with one lengthscale per latent dim.

One registry maps the ``kernel`` hyper-parameter to a constructor; :func:`relevance` reads the
automatic relevance determination (ARD) weights off a fitted kernel.
"""

from __future__ import annotations

import copy

import gpytorch
import torch

__all__ = ["KERNELS", "make_kernel", "relevance", "kernel_name"]


def _rbf(q: int):
    return gpytorch.kernels.ScaleKernel(gpytorch.kernels.RBFKernel(ard_num_dims=q))


def _linear(q: int):
    return gpytorch.kernels.LinearKernel(ard_num_dims=q)


def _matern(q: int):
    return gpytorch.kernels.ScaleKernel(gpytorch.kernels.MaternKernel(nu=2.5, ard_num_dims=q))


#: ``kernel`` name -> constructor taking the latent dimension. RBF-ARD and linear-ARD have closed-form
#: psi-statistics (see :mod:`lvm.gplvm.psi`); Matern 5/2 is for ``inference="svi"`` only.
KERNELS = {"rbf": _rbf, "linear": _linear, "matern": _matern}


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
    base = kernel.base_kernel if isinstance(kernel, gpytorch.kernels.ScaleKernel) else kernel
    return type(base).__name__


def relevance(kernel: gpytorch.kernels.Kernel) -> torch.Tensor:
    """ARD weight of each latent dim: 1 / lengthscale^2 (stationary kernels) or the weight variance
    (linear kernel), the curvature the kernel puts along that axis."""
    base = kernel.base_kernel if isinstance(kernel, gpytorch.kernels.ScaleKernel) else kernel
    if isinstance(base, gpytorch.kernels.LinearKernel):
        return base.variance.reshape(-1)
    if getattr(base, "lengthscale", None) is not None:
        return base.lengthscale.reshape(-1) ** -2
    raise ValueError(f"{type(base).__name__} has no ARD weights; use an ARD kernel.")


def lengthscales(kernel: gpytorch.kernels.Kernel) -> torch.Tensor:
    """Lengthscale of each latent dim; for the linear kernel, 1 / sqrt(variance)."""
    return relevance(kernel) ** -0.5
