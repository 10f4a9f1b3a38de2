r"""The epsilon-prediction network of a diffusion model: a residual MLP eps_hat(z_t, gamma_t).

Given z_t = alpha_t y + sigma_t eps (rows of dimension D) and the noise level gamma_t, the network
predicts eps. The noise level enters through sinusoidal features of the normalized level
s = (gamma_t - gamma_min) / (gamma_max - gamma_min) (in [0, 1] on VDM's initial schedule):

.. math::
    e(s) = \big(\sin(1000\, s\, \omega_k), \cos(1000\, s\, \omega_k)\big)_{k < E/2}, \qquad
    \omega_k = 10000^{-k / (E/2 - 1)},

followed by a two-layer MLP to a conditioning vector c. Then, with width H,

.. math::
    h_0 = W_{in} z, \qquad
    h_{l+1} = h_l + W_{l,2}\, \phi\big(W_{l,1} \phi(\mathrm{LN}(h_l)) + U_l c\big), \qquad
    \hat\epsilon = z + W_{out} \phi(\mathrm{LN}(h_L)),

with W_out and its bias initialized at zero (as VDM's ``conv_out``). The initial network is then
eps_hat = z, the optimum at low signal-to-noise ratio, where z_t ~ eps; training starts from there.

With a ``base`` denoiser (the nested start: the Bayes-optimal denoiser of the Gaussian
N(mu, Sigma) fitted to the data, :class:`~.gaussian.OptimalGaussianDenoiser`), the skip is that
path instead, eps_hat = eps*_Gauss(z, gamma) + W_out phi(LN(h_L)): at step 0 the model is the
diffusion model of that Gaussian, whose bound is its exact log-density up to the endpoint terms,
and the network learns the non-Gaussian correction.

All weights are drawn from a :class:`torch.Generator` (PyTorch's default uniform initialization,
``kaiming_uniform_(a=sqrt(5))``), never from torch's global one.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .schedule import GAMMA_MAX, GAMMA_MIN

__all__ = ["ACTIVATIONS", "ResidualDenoiser", "gamma_embedding"]

#: Activation functions by name.
ACTIVATIONS = {
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "softplus": nn.Softplus,
}


def gamma_embedding(level: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features (n, dim) of normalized noise levels ``level`` (n,), as in VDM."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) / max(half - 1, 1)
                      * torch.arange(half, dtype=level.dtype, device=level.device))
    arg = 1000.0 * level.unsqueeze(-1) * freqs
    emb = torch.cat([torch.sin(arg), torch.cos(arg)], dim=-1)
    if dim % 2:
        emb = nn.functional.pad(emb, (0, 1))
    return emb


def _linear(n_in: int, n_out: int, generator: torch.Generator, *, zero: bool = False,
            bias: bool = True) -> nn.Linear:
    """nn.Linear without touching the global RNG: built uninitialized, then drawn from ``generator``."""
    layer = nn.utils.skip_init(nn.Linear, n_in, n_out, bias=bias)
    with torch.no_grad():
        if zero:
            layer.weight.zero_()
            if bias:
                layer.bias.zero_()
        else:
            # torch's own default for nn.Linear
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
            if bias:
                bound = 1.0 / math.sqrt(n_in)
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return layer


class _Block(nn.Module):
    def __init__(self, width: int, activation: str, generator: torch.Generator):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.inner = _linear(width, width, generator)
        self.cond = _linear(width, width, generator, bias=False)
        self.outer = _linear(width, width, generator)
        self.act = ACTIVATIONS[activation]()

    def forward(self, h, c):
        u = self.inner(self.act(self.norm(h))) + self.cond(c)
        return h + self.outer(self.act(u))


class ResidualDenoiser(nn.Module):
    """eps_hat(z, gamma): a residual MLP conditioned on the noise level, with z added back.

    Parameters
    ----------
    n_features : int
        D, the dimension of z (the data's own).
    width : int, default=256
        Hidden width H.
    depth : int, default=3
        Number of residual blocks L (0 gives an input and an output layer only).
    embedding_dim : int, default=64
        Number of sinusoidal features of the noise level.
    activation : str, default="silu"
        One of :data:`ACTIVATIONS`.
    gamma_range : (float, float), default=(-13.3, 5.0)
        The fixed (gamma_min, gamma_max) that normalize gamma before the embedding; the levels may
        leave it as the schedule learns.
    generator : torch.Generator, optional
        Draws the initial weights; a CPU generator seeded with 0 when omitted.
    base : nn.Module (z, gamma) -> eps, optional
        The path the network's output is added to; None adds z itself. An
        :class:`~.gaussian.OptimalGaussianDenoiser` here is also the control variate of the bound
        (:func:`~.bound.vlb_terms`).

    Notes
    -----
    ``forward(z, gamma)`` takes z of shape (n, D) and gamma of shape (n,) or a scalar, and returns
    eps_hat of shape (n, D). The module is built in torch's default dtype on the CPU; move it with
    ``.to(device, dtype)``.
    """

    def __init__(self, n_features: int, *, width: int = 256, depth: int = 3, embedding_dim: int = 64,
                 activation: str = "silu", gamma_range: tuple[float, float] = (GAMMA_MIN, GAMMA_MAX),
                 generator: torch.Generator | None = None, base: nn.Module | None = None):
        super().__init__()
        for name, value, low in (("n_features", n_features, 1), ("width", width, 1), ("depth", depth, 0),
                                 ("embedding_dim", embedding_dim, 2)):
            if isinstance(value, bool) or int(value) != value or value < low:
                raise ValueError(f"The {name!r} parameter of ResidualDenoiser must be an integer >= {low}. "
                                 f"Got {value!r} instead.")
        if activation not in ACTIVATIONS:
            raise ValueError(f"Unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}.")
        lo, hi = (float(g) for g in gamma_range)
        if not lo < hi:
            raise ValueError(f"gamma_range must be (gamma_min, gamma_max) with gamma_min < gamma_max; "
                             f"got {gamma_range!r}.")
        if generator is None:
            generator = torch.Generator().manual_seed(0)
        self.n_features = int(n_features)
        self.embedding_dim = int(embedding_dim)
        self.gamma_range = (lo, hi)
        D, H = self.n_features, int(width)
        self.embed = nn.Sequential(_linear(self.embedding_dim, H, generator), ACTIVATIONS[activation](),
                                   _linear(H, H, generator), ACTIVATIONS[activation]())
        self.input = _linear(D, H, generator)
        self.blocks = nn.ModuleList(_Block(H, activation, generator) for _ in range(int(depth)))
        self.norm = nn.LayerNorm(H)
        self.act = ACTIVATIONS[activation]()
        self.output = _linear(H, D, generator, zero=True)
        self.base = base

    def forward(self, z: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        """eps_hat(z, gamma), shape (n, D)."""
        gamma = torch.as_tensor(gamma, dtype=z.dtype, device=z.device).expand(z.shape[0])
        lo, hi = self.gamma_range
        c = self.embed(gamma_embedding((gamma - lo) / (hi - lo), self.embedding_dim))
        h = self.input(z)
        for block in self.blocks:
            h = block(h, c)
        skip = z if self.base is None else self.base(z, gamma)
        return skip + self.output(self.act(self.norm(h)))
