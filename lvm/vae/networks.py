"""The VAE's networks and likelihoods, in plain PyTorch (no estimator, no data handling).

- :func:`mlp` builds a multilayer perceptron; :func:`build_encoder` / :func:`build_decoder` the
  default amortized encoder y -> (mu, log sigma^2) and decoder x -> f(x).
- :class:`GaussianLikelihood` (learned noise variance, one value or one per feature) and
  :class:`BernoulliLikelihood` give log p(y | f) summed over features.
- :class:`VAEModule` puts the three together. Its ``forward(y, eps)`` is the one-sample ELBO per
  data point with the analytic KL,

      ELBO(y) = log p(y | f(mu + sigma * eps)) - KL(N(mu, sigma^2) || N(0, I)),

  so that wrapping it in :class:`torch.nn.parallel.DistributedDataParallel` averages its gradients;
  ``log_weights`` gives the importance weights log p(y, x) - log q(x | y) the evidence estimators
  need.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "ACTIVATIONS",
    "LIKELIHOODS",
    "mlp",
    "build_encoder",
    "build_decoder",
    "GaussianLikelihood",
    "BernoulliLikelihood",
    "VAEModule",
    "kl_standard",
]

_LOG_2PI = math.log(2 * math.pi)

#: Activation functions by name.
ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "softplus": nn.Softplus,
    "leaky_relu": nn.LeakyReLU,
    "sigmoid": nn.Sigmoid,
}


def mlp(sizes, activation: str = "relu") -> nn.Sequential:
    """Linear layers ``sizes[0] -> sizes[1] -> ... -> sizes[-1]`` with ``activation`` between them.

    No activation after the last layer; ``mlp((a, b))`` is a single affine map.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}.")
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i > 0:
            layers.append(ACTIVATIONS[activation]())
        layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


def build_encoder(n_features: int, n_components: int, hidden_sizes=(256, 256), activation="relu"):
    """MLP y (n, D) -> (n, 2K): the posterior means, then the log-variances."""
    return mlp((n_features, *hidden_sizes, 2 * n_components), activation)


def build_decoder(n_components: int, n_features: int, hidden_sizes=(256, 256), activation="relu"):
    """MLP x (n, K) -> (n, D): the decoder mean (Gaussian) or logits (Bernoulli)."""
    return mlp((n_components, *tuple(hidden_sizes)[::-1], n_features), activation)


class GaussianLikelihood(nn.Module):
    """y | f ~ N(f, diag(noise)), ``noise`` learned: one value (``n_noise=1``) or one per feature.

    The variance is stored raw with a softplus transform and a floor, ``noise = softplus(raw_noise)
    + min_noise``, so it stays positive whatever the optimizer does.
    """

    def __init__(self, n_noise: int = 1, initial_noise: float | torch.Tensor = 1.0,
                 min_noise: float = 1e-6):
        super().__init__()
        self.min_noise = float(min_noise)
        init = torch.as_tensor(initial_noise, dtype=torch.get_default_dtype()).expand(n_noise)
        init = (init - self.min_noise).clamp_min(1e-6)
        # softplus^{-1}(v) = v + log(-expm1(-v))
        self.raw_noise = nn.Parameter(init + torch.log(-torch.expm1(-init)))

    @property
    def noise(self) -> torch.Tensor:
        """The noise variance sigma^2, shape (1,) or (n_features,)."""
        return F.softplus(self.raw_noise) + self.min_noise

    def log_prob(self, y: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """log N(y; f, diag(noise)) summed over the last dimension; broadcasts over leading ones."""
        noise = self.noise
        D = y.shape[-1]
        log_det = torch.log(noise).sum() * (D // noise.shape[0])  # shared: D log sigma^2
        return -0.5 * (((y - f) ** 2 / noise).sum(-1) + log_det + D * _LOG_2PI)

    def mean(self, f: torch.Tensor) -> torch.Tensor:
        return f

    def sample(self, f: torch.Tensor, generator=None) -> torch.Tensor:
        eps = torch.randn(f.shape, generator=generator, device=f.device, dtype=f.dtype)
        return f + eps * torch.sqrt(self.noise)


class BernoulliLikelihood(nn.Module):
    """y | f ~ Bernoulli(sigmoid(f)) per feature, for binary or [0, 1]-valued data (f are logits).

    For y strictly inside (0, 1) this is the continuous "cross-entropy" likelihood the VAE
    literature uses; it is a normalized density only for binary y.
    """

    def log_prob(self, y: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        y, f = torch.broadcast_tensors(y, f)
        return -F.binary_cross_entropy_with_logits(f, y, reduction="none").sum(-1)

    def mean(self, f: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(f)

    def sample(self, f: torch.Tensor, generator=None) -> torch.Tensor:
        return torch.bernoulli(torch.sigmoid(f), generator=generator)


def kl_standard(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(log_var)) || N(0, I)) summed over the last dimension.

    :func:`lvm.evidence.gaussian_kl_standard` in terms of the log-variance the encoder outputs,
    which saves the exp/log round trip on every training step.
    """
    return 0.5 * (torch.exp(log_var) + mu * mu - 1.0 - log_var).sum(-1)


#: Likelihoods by name.
LIKELIHOODS = {"gaussian": GaussianLikelihood, "bernoulli": BernoulliLikelihood}


class VAEModule(nn.Module):
    """Encoder q(x | y) = N(mu(y), diag sigma^2(y)), decoder f(x) and a likelihood p(y | f).

    Parameters
    ----------
    encoder : nn.Module
        Maps y of shape (n, D) to either one tensor of shape (n, 2K) (the means, then the
        log-variances) or a pair ``(mu, log_var)`` of (n, K) tensors.
    decoder : nn.Module
        Maps x of shape (..., K) to (..., D): the mean of a Gaussian likelihood, or the logits of
        a Bernoulli one. It must accept leading batch dimensions (as ``nn.Linear`` does).
    likelihood : GaussianLikelihood or BernoulliLikelihood
    n_components : int
        K, used to split a single encoder output.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, likelihood: nn.Module,
                 n_components: int):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihood
        self.n_components = int(n_components)

    def encode(self, y: torch.Tensor):
        """Posterior mean and log-variance, each of shape (n, K)."""
        out = self.encoder(y)
        if isinstance(out, (tuple, list)):
            if len(out) != 2:
                raise ValueError(
                    f"A custom encoder must return one (n, 2K) tensor or a pair (mu, log_var); it "
                    f"returned a sequence of {len(out)} items."
                )
            mu, log_var = out
        else:
            K = self.n_components
            if out.dim() != 2 or out.shape[-1] != 2 * K:
                raise ValueError(
                    f"The encoder returned shape {tuple(out.shape)}; expected "
                    f"(n, 2 * n_components) = (n, {2 * K}) (means, then log-variances) or a pair "
                    "(mu, log_var)."
                )
            mu, log_var = out[:, :K], out[:, K:]
        if mu.shape != (y.shape[0], self.n_components) or log_var.shape != mu.shape:
            raise ValueError(
                f"The encoder returned mu of shape {tuple(mu.shape)} and log_var of shape "
                f"{tuple(log_var.shape)}; both must be (n, n_components) = "
                f"({y.shape[0]}, {self.n_components})."
            )
        return mu, log_var

    def forward(self, y: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """ELBO per data point, shape (n,), with the reparameterization x = mu + sigma * eps."""
        mu, log_var = self.encode(y)
        x = mu + torch.exp(0.5 * log_var) * eps
        return self.likelihood.log_prob(y, self.decoder(x)) - kl_standard(mu, log_var)

    def log_weights(self, y: torch.Tensor, eps: torch.Tensor, proposal: str = "encoder"):
        """log p(y, x_s) - log r(x_s) for x_s ~ r, shape (S, n); ``eps`` is (S, n, K) or (S, 1, K).

        ``proposal="encoder"``: r = q(x | y), x_s = mu + sigma * eps_s (IWAE).
        ``proposal="prior"``: r = p(x), x_s = eps_s, so the weight is log p(y | x_s) (naive MC).
        """
        if proposal == "prior":
            x = eps.expand(eps.shape[0], y.shape[0], eps.shape[-1])
            return self.likelihood.log_prob(y, self.decoder(x))
        mu, log_var = self.encode(y)
        x = mu + torch.exp(0.5 * log_var) * eps
        log_prior = -0.5 * (x * x + _LOG_2PI).sum(-1)
        log_q = -0.5 * ((eps * eps + _LOG_2PI).sum(-1) + log_var.sum(-1))
        return self.likelihood.log_prob(y, self.decoder(x)) + log_prior - log_q
