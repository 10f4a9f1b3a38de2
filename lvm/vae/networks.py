"""The VAE's networks, in plain PyTorch (no estimator, no data handling).

- :func:`mlp` builds a multilayer perceptron; :func:`build_encoder` / :func:`build_decoder` the
  default amortized encoder y -> (mu, log sigma^2) and decoder x -> f(x), optionally with an affine
  path beside the network (:class:`AffinePlusNetwork`), f(v) = B v + b + g(v), so that a network
  whose last layer is zero starts as the affine map (:func:`start_at_affine`: the VAE's nested
  start at a linear-Gaussian model and its exact posterior).
- :class:`VAEModule` puts an encoder (an :class:`lvm.latents.AmortizedLatent`), a decoder and a
  likelihood from :mod:`lvm.likelihoods` together. Its ``forward(y, eps)`` is the one-sample ELBO per
  data point with the analytic KL,

      ELBO(y) = log p(y | f(mu + sigma * eps)) - KL(N(mu, sigma^2) || N(0, I)).
"""

from __future__ import annotations

import torch
from torch import nn

from ..latents import AmortizedLatent

__all__ = ["ACTIVATIONS", "mlp", "build_encoder", "build_decoder", "AffinePlusNetwork",
           "start_at_affine", "VAEModule"]

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


def build_encoder(n_features: int, n_components: int, hidden_sizes=(256, 256), activation="relu",
                  affine: bool = False):
    """y (n, D) -> (n, 2K): the posterior means, then the log-variances.

    An MLP; with ``affine`` an :class:`AffinePlusNetwork` (a plain ``nn.Linear`` when there are no
    hidden layers)."""
    return _build((n_features, *tuple(hidden_sizes), 2 * n_components), activation, affine)


def build_decoder(n_components: int, n_features: int, hidden_sizes=(256, 256), activation="relu",
                  affine: bool = False):
    """x (..., K) -> (..., D): the decoder output f (the Gaussian mean, the Bernoulli logits).

    The MLP mirrors the encoder's widths; ``affine`` as in :func:`build_encoder`."""
    return _build((n_components, *tuple(hidden_sizes)[::-1], n_features), activation, affine)


def _build(sizes, activation, affine):
    net = mlp(sizes, activation)
    if len(sizes) == 2:  # no hidden layer: the MLP is the affine map itself
        return net[0] if affine else net
    if not affine:
        return net
    return AffinePlusNetwork(nn.Linear(sizes[0], sizes[-1]), net)


class AffinePlusNetwork(nn.Module):
    """f(v) = affine(v) + network(v): an affine path beside a network on the same input.

    With the network's last layer at zero it is exactly the affine map, and training grows the
    nonlinear part g = network from there.
    """

    def __init__(self, affine: nn.Linear, network: nn.Module):
        super().__init__()
        self.affine = affine
        self.network = network

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.affine(v) + self.network(v)


def start_at_affine(module: nn.Module, weight: torch.Tensor, bias: torch.Tensor) -> None:
    """Make ``module`` (from :func:`build_encoder` / :func:`build_decoder` with ``affine=True``)
    compute exactly v -> weight v + bias: the affine path takes ``weight`` (out, in) and ``bias``
    (out,), and the network's last layer is set to zero."""
    if isinstance(module, AffinePlusNetwork):
        affine = module.affine
        last = [m for m in module.network.modules() if isinstance(m, nn.Linear)][-1]
        with torch.no_grad():
            last.weight.zero_()
            last.bias.zero_()
    elif isinstance(module, nn.Linear):
        affine = module
    else:
        raise TypeError(f"start_at_affine needs an nn.Linear or AffinePlusNetwork, got "
                        f"{type(module).__name__}.")
    with torch.no_grad():
        affine.weight.copy_(weight.to(affine.weight))
        affine.bias.copy_(bias.to(affine.bias))


class VAEModule(nn.Module):
    """Encoder q(x | y) = N(mu(y), diag sigma^2(y)), decoder f(x) and a likelihood p(y | f).

    Parameters
    ----------
    encoder : nn.Module or AmortizedLatent
        Maps y of shape (n, D) to either one tensor of shape (n, 2K) (the means, then the
        log-variances) or a pair ``(mu, log_var)`` of (n, K) tensors.
    decoder : nn.Module
        Maps x of shape (..., K) to (..., D): the decoder output f. It must accept leading batch
        dimensions (as ``nn.Linear`` does).
    likelihood : lvm.likelihoods.Likelihood
    n_components : int
        K, used to split a single encoder output.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, likelihood: nn.Module,
                 n_components: int):
        super().__init__()
        self.latent = encoder if isinstance(encoder, AmortizedLatent) else \
            AmortizedLatent(encoder, n_components)
        self.decoder = decoder
        self.likelihood = likelihood
        self.n_components = int(n_components)

    @property
    def encoder(self) -> nn.Module:
        """The encoder network (its output is split into means and log-variances)."""
        return self.latent.net

    def encode(self, y: torch.Tensor):
        """Posterior mean and log-variance, each of shape (n, K)."""
        return self.latent.encode(y)

    def forward(self, y: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """ELBO per data point, shape (n,), with the reparameterization x = mu + sigma * eps.

        Rows with missing entries (NaN) need an encoder with a mask channel; their likelihood
        counts the observed entries only (the MIWAE bound of log p(y_o))."""
        mu, log_var = self.latent.encode(y)
        return self.elbo_at(y, mu, log_var, eps)

    def elbo_at(self, y: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor,
                eps: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` with the encoder's output ``(mu, log_var)`` for ``y`` given."""
        x = mu + torch.exp(0.5 * log_var) * eps
        mask = ~torch.isnan(y) if self.latent.mask_channel else None
        return (self.likelihood.log_prob(y, self.decoder(x), mask)
                - self.latent.kl_log_var(mu, log_var))
