r"""The VAE's math as a :class:`lvm._family.Family`: its networks, objective and nested start.

The model is x ~ N(0, I_K), y | x ~ p(y | f(x)) with f a network, and the encoder gives
q(x | y) = N(mu(y), diag sigma^2(y)). The per-row objective, with S draws
x_s = mu + sigma * eps_s, is the ELBO (S = 1) or the importance-weighted bound (S > 1; MIWAE with
missing entries, whose likelihood counts the observed entries only),

.. math::
    \ell(y) = \log \frac1S \sum_{s=1}^S \frac{p(y \mid x_s)\, p(x_s)}{q(x_s \mid y)}
    \quad (S > 1), \qquad
    \ell(y) = \log p(y \mid x_1) - \mathrm{KL}(q(x \mid y) \,\|\, p(x)) \quad (S = 1).

With a neighbour graph the gradient is that of :math:`\ell - w L` with L t-SNE's contrastive
loss of the encoder means (:mod:`lvm.latents.neighbors`), while the value stays :math:`\ell`, so
every reported number is a bound of the same decoder's model.

**Nested start** (:meth:`VAEFamily.from_data` with ``nested=True``): both networks get an affine
path, and the decoder's and the noise start at the maximum-likelihood linear-Gaussian model (PPCA
for shared noise, Factor Analysis for per-feature noise), the encoder's at its exact posterior
with W rotated so that the posterior covariance is diagonal (:func:`diagonal_posterior`).
"""

from __future__ import annotations

import copy
import functools
import math
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from .._family import Family
from .._stats import location_and_scale
from ..evidence.estimators import importance_log_weights
from ..latents import AmortizedLatent
from ..latents.neighbors import NeighborGraph, NeighborMap, neighbor_infonce
from ..likelihoods import GaussianLikelihood
from ..likelihoods._base import inverse_softplus, observed_mask
from .networks import VAEModule, build_decoder, build_encoder, start_at_affine

__all__ = ["VAEFamily", "linear_model", "diagonal_posterior", "has_nested_start",
           "start_at_glm_pca", "default_patience"]


class VAEFamily(Family):
    """The VAE's encoder, decoder and likelihood (``module``, a :class:`VAEModule`) and its
    training objective.

    Parameters
    ----------
    module : lvm.vae.networks.VAEModule
    train_samples : int
        S, the draws per row of the training bound (1: the ELBO).
    neighbor_weight : float
        w, the weight of the neighbour term (0: none).
    n_neighbors : int
        k of the neighbour graph (of the rows being trained on) and of the map of new rows.
    refine_steps : int
        Adam steps refining q(x | y)'s mean against the fitted map (0: the encoder's q).
    layout_steps : int
        Adam steps laying the fitted map out as a whole first
        (:meth:`lvm.latents.neighbors.NeighborMap.layout`; 0: the encoder's map).
    widths : tuple of int
        The hidden widths (the widest per-draw computation, for evaluation chunks).
    graph : lvm.latents.neighbors.NeighborGraph or None
        The neighbour graph of the training rows (None without the term).
    shared_noise : bool
        Whether a Gaussian likelihood has one noise variance (``noise_variance_`` a float).
    """

    #: At most this many training rows make the map that rows are refined against.
    MAP_ROWS = 10_000

    def __init__(self, module: VAEModule, *, train_samples: int = 1, neighbor_weight=0.0,
                 n_neighbors: int = 15, refine_steps: int = 0, layout_steps: int = 0, widths=(),
                 graph=None, shared_noise: bool = False):
        super().__init__(module.likelihood)
        self.module = module
        self.shared_noise = bool(shared_noise)
        self.train_samples = int(train_samples)
        self.neighbor_weight = float(neighbor_weight)
        self.n_neighbors = int(n_neighbors)
        self.refine_steps = int(refine_steps)
        self.layout_steps = int(layout_steps)
        self.widths = tuple(int(h) for h in widths)
        self.neighbors = graph
        self.map = None  # the fitted map new rows are refined against (set by finalize)
        # Early stopping watches the objective being trained: the ELBO or the IW bound.
        self.validation_method = "elbo" if self.train_samples == 1 else "iwae"
        self.validation_samples = self.train_samples

    @classmethod
    def from_data(cls, Z, *, n_components: int, hidden_sizes, activation: str, likelihood,
                  noise: str, nested: bool, encoder=None, decoder=None, masked: bool,
                  seed: int, **options) -> "VAEFamily":
        """The family at the start of training on the rows ``Z``: lvm's networks (or copies of
        ``encoder`` / ``decoder``) from ``seed`` alone, at the linear model's optimum when
        ``nested``; with ``masked`` the encoder sees the missing-value mask too (MIWAE).
        ``options`` are those of the constructor; the neighbour graph is made here."""
        D, K = Z.shape[1], int(n_components)
        hidden = tuple(int(h) for h in hidden_sizes)
        # The networks are built on the CPU (then moved), so only the CPU RNG needs forking.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = (build_encoder(2 * D if masked else D, K, hidden, activation, affine=nested)
                   if encoder is None else copy.deepcopy(encoder))
            lik = likelihood.from_data(Z, noise=noise)
            if decoder is None:
                dec = build_decoder(K, D, hidden, activation, affine=nested)
                if not nested:
                    last = [m for m in dec.modules() if isinstance(m, torch.nn.Linear)][-1]
                    with torch.no_grad():  # start the decoder at the data mean
                        mean = torch.nanmean(Z, 0)
                        last.bias.copy_(lik.inverse_mean(mean).to(last.bias).cpu())
            else:
                dec = copy.deepcopy(decoder)
        if lik.location_scale:  # the data are standardized already
            latent = AmortizedLatent(net, K, mask_channel=masked)
        else:  # counts, intensities: the encoder still sees unit-scale input
            loc, scale = location_and_scale(Z)
            latent = AmortizedLatent(net, K, input_loc=loc, input_scale=scale,
                                     mask_channel=masked)
        module = VAEModule(latent, dec, lik, K).to(device=Z.device, dtype=Z.dtype)
        weight = float(options.get("neighbor_weight", 0.0))
        graph = NeighborGraph(Z, int(options.get("n_neighbors", 15))) if weight > 0 else None
        if nested and lik.location_scale:
            start_at_linear_model(module, Z, K, noise)
        elif nested:
            start_at_glm_pca(module, Z, K)
        return cls(module, widths=hidden, graph=graph, shared_noise=noise == "shared", **options)

    # ------------------------------------------------------------------ the contract
    def global_parameters(self) -> list:
        return list(self.module.parameters())

    def objective(self, z, rows, generator):
        S, module, B = self.train_samples, self.module, z.shape[0]
        neighbors = None if self.neighbors is None else self.neighbors.sample(rows, generator)
        if neighbors is None:
            mu, log_var = module.latent.encode(z)
        else:  # the rows and one neighbour of each through the encoder at once
            mu, log_var = module.latent.encode(torch.cat([z, neighbors]))
            mu, mu_neighbor, log_var = mu[:B], mu[B:], log_var[:B]
        K = module.n_components
        if S == 1:
            eps = torch.randn(B, K, generator=generator, device=z.device, dtype=z.dtype)
            bound = module.elbo_at(z, mu, log_var, eps)
        else:
            # The importance-weighted bound with S draws per row (IWAE; MIWAE with holes).
            mask = ~torch.isnan(z) if module.latent.mask_channel else None  # no host sync
            eps = torch.randn(S, B, K, generator=generator, device=z.device, dtype=z.dtype)
            log_w = importance_log_weights(
                z, mu, torch.exp(log_var), eps,
                lambda y, x: module.likelihood.log_prob(y, module.decoder(x), mask))
            bound = torch.logsumexp(log_w, 0) - math.log(S)
        if neighbors is None:
            return bound, None
        # The value stays the bound (history_, early stopping); the gradient is that of
        # bound - neighbor_weight * L: the neighbour term moves the encoder means alone.
        penalty = self.neighbor_weight * neighbor_infonce(mu, mu_neighbor)
        return bound - (penalty - penalty.detach()), None

    def posterior(self, z):
        mu, var = self.module.latent(z)
        if self.map is not None:
            mu = self.map.refine(z, mu, self.refine_steps)
        return mu, var

    def log_likelihood(self, z, x):
        return self.module.likelihood.log_prob(z, self.module.decoder(x), observed_mask(z))

    def decode(self, x):
        return self.module.likelihood.mean(self.module.decoder(x))

    def decoder_sample(self, x, generator):
        return self.module.decoder(x)

    def add_rows(self, z) -> bool:
        """``partial_fit``: the neighbour term's graph is of the chunk being passed."""
        if self.neighbors is not None:
            self.neighbors = NeighborGraph(z, self.n_neighbors)
        return False

    def finalize(self, rows, generator) -> None:
        """With the neighbour term and refinement steps: the map of (at most ``MAP_ROWS``)
        training rows and their encoder means that q(x | y) is refined against, laid out as a
        whole first with ``layout_steps``."""
        if self.neighbor_weight > 0 and self.refine_steps > 0:
            if rows.shape[0] > self.MAP_ROWS:
                keep = torch.randperm(rows.shape[0], generator=generator,
                                      device=rows.device)[:self.MAP_ROWS]
                rows = rows[keep.sort().values]
            self.eval()
            with torch.no_grad():
                means = torch.cat([self.module.latent(c)[0] for c in rows.split(4096)])
            self.map = NeighborMap(rows, means, self.n_neighbors)
            # The training graph is the map's own when the map holds the very rows it was made of.
            same = self.neighbors is not None and self.neighbors.rows is rows
            self.map.layout(self.layout_steps, self.neighbors if same else None)

    def fitted_attributes(self, scale: float) -> dict:
        """``encoder_``, ``decoder_`` and, for a Gaussian likelihood, ``noise_variance_`` in
        the data's units (one float for shared noise)."""
        kept = {"encoder_": self.module.encoder, "decoder_": self.module.decoder}
        if isinstance(self.likelihood, GaussianLikelihood):
            noise = self.likelihood.noise.detach().cpu().numpy().astype(np.float64) * scale**2
            kept["noise_variance_"] = float(noise[0]) if self.shared_noise else noise
        return kept

    def eval_width(self, n_features: int) -> int:
        return max([n_features, *self.widths])


# ---------------------------------------------------------------------- the nested start
def start_at_linear_model(module: VAEModule, Z, n_components: int, noise: str) -> None:
    """Set the decoder's affine path and the noise to the linear-Gaussian model's maximum
    likelihood (PPCA for shared noise, Factor Analysis for per-feature noise) on the rows ``Z``,
    the encoder's to its exact posterior, and both networks' residuals to zero."""
    W, mean, variance = linear_model(Z, n_components, noise, Z.device)
    likelihood = module.likelihood
    with torch.no_grad():
        floor = likelihood.floor.to(torch.float64)
        target = (variance if noise == "per_feature" else variance[:1]) - floor
        target = target.clamp_min(1e-3 * floor)  # as the likelihood's own start does
        likelihood.raw_noise.copy_(inverse_softplus(target).to(likelihood.raw_noise))
        # The posterior of the model as stored (its noise may have met the floor).
        variance = likelihood.noise.to(torch.float64).expand(Z.shape[1])
    W, A, log_var = diagonal_posterior(W, variance)
    start_at_affine(module.decoder, W, mean)
    weight = torch.cat([A, torch.zeros_like(A)])
    if module.latent.mask_channel:
        # The complete-data posterior applied to the zero-filled row (zero: the mean); the
        # mask's columns start at zero, and training learns how holes should widen q.
        weight = torch.cat([weight, torch.zeros_like(weight)], 1)
    start_at_affine(module.encoder, weight, torch.cat([-A @ mean, log_var]))


def has_nested_start(likelihood: type, masked: bool) -> bool:
    """Whether a likelihood class has a nested start: the Gaussian (the linear-Gaussian model's
    optimum, missing values too) or a count likelihood on complete data (GLM-PCA's start)."""
    return (issubclass(likelihood, GaussianLikelihood)
            or hasattr(likelihood, "link_transform") and not masked)


def start_at_glm_pca(module: VAEModule, Z, n_components: int) -> None:
    r"""The nested start of a count likelihood (GLM-PCA's start): PPCA of the counts on the scale
    of the decoder output, :math:`T = \text{link}(z)` (``likelihood.link_transform``: log(z +
    1/2) for a log link, logit((z + 1/2) / (n + 1)) for the binomial), gives the decoder's affine
    path f(x) = W x + mu; the encoder's affine path is the least-squares linear map from its
    input to that PPCA's posterior means A (T - mu), with its posterior variances, and both
    networks' residuals start at zero. There is no closed-form evidence to start at; training
    goes on from this model, and early stopping keeps it if training never betters it."""
    T = module.likelihood.link_transform(Z.detach().to(torch.float64))
    W, mean, variance = linear_model(T, n_components, "shared", Z.device)
    W, A, log_var = diagonal_posterior(W, variance)
    start_at_affine(module.decoder, W, mean)
    latent = module.latent
    v = Z.detach().to(torch.float64)
    if latent.input_loc is not None:
        v = (v - latent.input_loc.to(v)) / latent.input_scale.to(v)
    X = torch.cat([v, torch.ones_like(v[:, :1])], 1)  # [input, 1] -> the posterior means
    gram = X.T @ X
    ridge = 1e-8 * gram.diagonal().mean() * torch.eye(X.shape[1], dtype=X.dtype, device=X.device)
    beta = torch.linalg.solve(gram + ridge, X.T @ ((T - mean) @ A.T))  # (D + 1, K)
    weight = torch.cat([beta[:-1].T, torch.zeros_like(beta[:-1].T)])
    start_at_affine(module.encoder, weight, torch.cat([beta[-1], log_var]))


def linear_model(Z, n_components: int, noise: str, device):
    """(W (D, K), mean (D,), noise (D,)) in float64: the maximum-likelihood linear-Gaussian model
    of the rows ``Z`` (:class:`lvm.PPCA` for ``noise="shared"``, :class:`lvm.FactorAnalysis` for
    ``"per_feature"``), in the units of ``Z``. Under torch.distributed, of all ranks' rows."""
    from .. import settings
    from ..linear import PPCA, FactorAnalysis

    cls = FactorAnalysis if noise == "per_feature" else PPCA
    linear = cls(n_components, device=device, dtype="float64")
    with warnings.catch_warnings(), settings.on_epoch(None):
        # EM stopped by its budget still gives a linear model and its exact posterior to start
        # from; the VAE's own training goes on from there.
        warnings.simplefilter("ignore", ConvergenceWarning)
        linear.fit(Z.detach().to(torch.float64))
    D = Z.shape[1]
    as_tensor = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64),  # noqa: E731
                                          device=Z.device)
    return (as_tensor(linear.components_).T, as_tensor(linear.mean_),
            as_tensor(linear.noise_variance_).expand(D).clone())


def diagonal_posterior(W, noise):
    r"""Rotate W so that the exact posterior of y = W x + mu + e, e ~ N(0, diag(noise)), has a
    diagonal covariance, and return (W R, A, log_var) with the posterior
    N(A (y - mu), diag(exp(log_var))).

    The model is invariant to x -> R^T x for orthogonal R (p(y) depends on W W^T only). With
    W^T Psi^{-1} W = R diag(lambda) R^T, the rotated W' = W R has W'^T Psi^{-1} W' = diag(lambda),
    so M = I + diag(lambda), the posterior covariance is M^{-1} = diag(1 / (1 + lambda)) and the
    posterior mean is M^{-1} W'^T Psi^{-1} (y - mu). The components come in decreasing lambda.
    (PPCA's W has orthogonal columns, so for it R only orders them.)
    """
    Wp = W / noise.unsqueeze(-1)
    lam, R = torch.linalg.eigh(W.T @ Wp)
    lam, R = lam.flip(0).clamp_min(0.0), R.flip(1)
    W = W @ R
    A = (W / noise.unsqueeze(-1)).T / (1.0 + lam).unsqueeze(-1)
    return W, A, -torch.log1p(lam)


# ---------------------------------------------------------------------- the default patience
def default_patience(steps_per_epoch: int, steps: int = 2_000, least: int = 10, most: int = 80,
                     fraction: float = 0.25):
    """``(patience, rule)`` of ``VAE(patience=None)``: the epochs of ``steps`` optimizer steps,
    at least ``least``; where that is more than ``most`` epochs (fewer than 25 steps per epoch,
    under 3,200 training rows with ``batch_size=128``), the plateau comes in data passes and the
    patience is ``fraction`` of the best epoch so far, between ``most // 2`` and ``most``
    (``rule``, for :func:`lvm._training.train`; None where the steps decide).

    On a few hundred rows a fit whose validation ELBO last rose at epoch 170 waited 80 epochs
    more, half the time it took to get there. The rule leaves scikit-learn's digits
    (standardized, 1,617 training rows, 13 steps per epoch, one thread) as it was: its
    validation ELBO's improvements came at most 34 epochs apart (after epoch 289), always under
    the rule's patience, and the best epoch ended at 355 (patience 80 again): best epoch 355 and
    435 epochs run with either rule. On ``benchmarks/small.py``'s tables (75/25 splits, K = 2,
    3, 4 and 2 steps per epoch), diabetes 250 -> 213 epochs, tanh-ppca 109 -> 69, digits-300
    317 -> 297, each with the same best epoch (170, 29 and 237), so the same held-out evidence.
    Its floor matters: at 10 epochs (``least``) diabetes stopped at epoch 18 (a 16-epoch gap
    after epoch 8; held-out -11.11 against -10.67) and digits-300 at 87 (-77.71 against
    -75.58). USPS (52 steps per epoch: 39 epochs) and larger data keep the steps' rule.
    """
    by_steps = max(least, -(-steps // max(1, steps_per_epoch)))
    if by_steps <= most:
        return by_steps, None
    return most, functools.partial(_relative_patience, least=most // 2, most=most,
                                   fraction=fraction)


def _relative_patience(best_epoch: int, least: int, most: int, fraction: float) -> int:
    return min(most, max(least, math.ceil(fraction * best_epoch)))
