r"""The Bayesian GPLVM's math as a :class:`lvm._family.Family`: its model, bounds and q(x*).

The model is x_n ~ N(0, I_Q), g_d ~ GP(0, k) with one kernel shared by the D outputs, and
y_nd ~ p(y | f = g_d(x_n) + c_d), c the data mean in the likelihood's link (:attr:`offset`).
q(x_n) = N(mu_n, diag s_n) is free per training row (or amortized by an encoder), and the GP is
sparse, with M inducing inputs. The objective is

* ``inference="collapsed"``: the Titsias & Lawrence bound of all rows at once, q(u) integrated
  out (:class:`lvm.gplvm.collapsed.CollapsedELBO`), trained full-batch;
* ``inference="svi"``: the uncollapsed bound per row with an explicit q(u)
  (:class:`lvm.gplvm.svi.SVIELBO`), whose global term is -KL(q(u) || p(u)) / N, trained on
  minibatches.

With a neighbour graph (:mod:`lvm.latents.neighbors`) the optimizer's objective is the bound
minus w times t-SNE's contrastive loss of the means of q(x); the recorded value stays the bound.
After training the decoder is frozen (:class:`lvm.gplvm.posterior.InducingPosterior`): a training
row is served its own fitted q(x_n) (:class:`lvm.latents.FrozenPosteriors`), and a new row's
q(x*) is fitted with Adam against the frozen decoder (and, with the neighbour term, against the
fitted training map), started at its nearest training row's q(x).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import _distributed as dist
from .. import settings
from .._family import Family, TrainingPlan
from ..evidence import row_keyed_normal
from ..latents import FrozenPosteriors, PointLatent, fit_frozen
from ..latents.neighbors import NeighborGraph, NeighborMap
from ..likelihoods import GaussianLikelihood
from ._init import (LATENT_VAR_INIT, LENGTHSCALE_INIT_FACTOR, NOISE_INIT_FRACTION,
                    initial_inducing, initial_kernel, initial_latent, link_scale_start, pca_fill,
                    pca_start, warm_start_q_u)
from .collapsed import CollapsedELBO, NoiseTooSmallError, SparseGPLVM, kuu_cholesky
from .kernels import lengthscales, make_kernel, relevance
from .posterior import InducingPosterior
from .psi import has_psi_statistics
from .svi import SharedKernelGP, SVIELBO, SVIGPLVM

__all__ = ["GPLVMFamily", "training_plan"]

#: Optimizer steps grouped into one call of the training loop's ``epoch`` (one host read-back each).
STEPS_PER_EPOCH = {"lbfgs": 10, "adam": 50}
#: ``tol="auto"``: the relative plateau tolerance of each optimizer (see BayesianGPLVM's ``tol``).
AUTO_TOL = {"lbfgs": 1e-3, "adam": 1e-6}
#: ``tol="auto"``, L-BFGS: a rise of the whole bound (nats, summed over the N training rows) over
#: the plateau rule's 50 iterations below which it stops whatever the relative tolerance says:
#: in the shared-noise stage of a per-feature fit (the next stage's start), and in the
#: per-feature stage of a map (n_components <= 2; not of a larger Q fitted for its ARD
#: relevances, which kept a second dim at 0.29 on tests/gplvm/test_estimator.py's ARD problem).
#: 30 / N per point is below 1e-3 of the bound (the relative rule) on USPS (bound about -280 in
#: the model's units) and on scikit-learn's standardized digits (N = 1797: 0.0167 < 1e-3 x 19.96,
#: its final bound), so it decides on a few hundred rows only (docs/gplvm_defaults.rst).
AUTO_TOL_NATS = {"lbfgs": 30.0}
#: Default step sizes.
LEARNING_RATE = {"lbfgs": 1.0, "adam": 0.01}

#: Training rows kept for lookup with their q(x) (:class:`lvm.latents.FrozenPosteriors`), so that
#: ``transform`` of a training row returns its own fitted q(x_n), and new rows start from their
#: nearest one.
BANK_SIZE = 20000
#: Rows per chunk when fitting q(x*) for new rows.
ROW_CHUNK = 1024
#: Adam's step size and the Monte Carlo draws (kernels without psi-statistics) for q(x*).
TRANSFORM_LR = 0.05
TRANSFORM_DRAWS = 16


def training_plan(inference: str, optimizer: str, learning_rate, max_iter: int, tol,
                  batch_size: int, first_stage: bool = False, n_rows: int = 0) -> TrainingPlan:
    """How a fit trains: collapsed, full-batch L-BFGS or Adam for ``max_iter`` iterations (at most
    half of them in the first stage of a two-stage fit); SVI, minibatch Adam for ``max_iter``
    epochs. ``optimizer="auto"``, ``learning_rate=None`` and ``tol="auto"`` take the defaults."""
    name = optimizer if optimizer != "auto" else "lbfgs" if inference == "collapsed" else "adam"
    lr = learning_rate or LEARNING_RATE[name]
    if inference == "collapsed":
        steps = STEPS_PER_EPOCH[name]
        iters = max_iter // 2 if first_stage else max_iter
        return TrainingPlan(mode="full", optimizer=name, learning_rate=lr,
                            max_epochs=max(1, math.ceil(iters / steps)),
                            tol=AUTO_TOL[name] if isinstance(tol, str) else tol,
                            tol_floor=(AUTO_TOL_NATS.get(name, 0.0) / max(1, n_rows)
                                       if isinstance(tol, str) and first_stage else 0.0),
                            steps_per_epoch=steps, iters_per_epoch=steps,
                            limit_message=f"in max_iter={max_iter} iterations",
                            budget_parameter="max_iter")
    return TrainingPlan(mode="minibatch", optimizer="adam", learning_rate=lr,
                        max_epochs=int(max_iter),
                        tol=AUTO_TOL["adam"] if isinstance(tol, str) else tol,
                        batch_size=int(batch_size), limit_message=f"in max_iter={max_iter} epochs",
                        budget_parameter="max_iter")


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float64)


class GPLVMFamily(Family):
    """The GPLVM's q(x), GP and likelihood (``module``: a :class:`SparseGPLVM` for collapsed
    inference, an :class:`SVIGPLVM` for SVI) and everything one fit learns with them.

    Parameters
    ----------
    module : SparseGPLVM or SVIGPLVM
    inference : {"collapsed", "svi"}
    encoder : bool
        Whether q(x | y) is amortized (then no per-row parameters).
    masked : bool
        Whether the training rows miss entries (NaN), decided once by the data.
    offset : torch.Tensor of shape (D,)
        c, the constant the GP's outputs are deviations from.
    n_total : int
        N, the training rows (of all ranks; grows with ``partial_fit``).
    jitter : float
        The K_uu jitter, relative to its mean diagonal (raised on a failed factorization).
    neighbor_weight : float
        w, the weight of the neighbour term (0: none).
    n_neighbors : int
        k of the neighbour graph and of the fitted map.
    graph : lvm.latents.neighbors.NeighborGraph or None
        The neighbour graph of the rows being trained on (None without the term).
    transform_max_iter : int
        Adam steps fitting q(x*) of a new row.

    Attributes
    ----------
    frozen : lvm.latents.FrozenPosteriors
        q(x_n) of the training rows, one block per fit or ``partial_fit`` chunk.
    chunk : int
        The block being fitted (0: ``fit``, or the first chunk).
    posterior_model : InducingPosterior or None
        The frozen decoder (set by :meth:`finalize`; a copy, so not a submodule).
    map : lvm.latents.neighbors.NeighborMap or None
        The fitted training map new rows' q(x*) are fitted against (set by :meth:`finalize`).
    elbo : float or None
        Collapsed: the final bound per point (standardized units); SVI: None (the last pass's).
    eval_seed : int
        The key of the draws fitting q(x*) (the estimator's evaluation key, set at the start).
    """

    def __init__(self, module, *, inference: str, encoder: bool, masked: bool, offset, n_total,
                 jitter: float, neighbor_weight: float = 0.0, n_neighbors: int = 15, graph=None,
                 transform_max_iter: int = 100):
        super().__init__(module.likelihood)
        self.module = module
        self.inference = inference
        self.encoder = bool(encoder)
        self.masked = bool(masked)
        self.offset = offset
        self.n_total = n_total
        self.jitter = jitter
        self.neighbor_weight = float(neighbor_weight)
        self.n_neighbors = int(n_neighbors)
        self.neighbors = graph
        self.transform_max_iter = int(transform_max_iter)
        self.n_components = int(module.inducing_points.shape[-1])
        self.frozen = FrozenPosteriors(BANK_SIZE)
        self.chunk = 0
        self.map = None
        self.elbo = None
        self.eval_seed = 0
        # The frozen decoder holds copies of the parameters: kept out of the module tree, so
        # that parameters(), n_parameters_ and train() / eval() do not reach it.
        self.__dict__["posterior_model"] = None

    @classmethod
    def from_data(cls, Z, *, n_components: int, n_inducing: int, kernel, inference: str,
                  likelihood, noise: str, encoder: bool, masked: bool, generator, device, dtype,
                  neighbor_weight: float, n_neighbors: int, transform_max_iter: int):
        """q(x), the kernel, the inducing inputs, the likelihood (and q(u)) from PCA of the
        training rows ``Z``; ``likelihood`` is the class, ``noise`` its noise form. A count
        likelihood with free q(x) on complete rows starts from PCA of the counts on the scale of
        f instead (GLM-PCA's start, :func:`lvm.gplvm._init.link_scale_start`)."""
        N, D = Z.shape
        Q = int(n_components)
        gen, dev, dt = generator, device, dtype
        center = dist.moments(Z)[1]
        center = center.to(dt)
        lik = likelihood.from_data(Z, noise=noise, fraction=NOISE_INIT_FRACTION).to(
            device=dev, dtype=dt)
        if isinstance(lik, GaussianLikelihood) and lik.noise.numel() > 1:
            # Per-feature noise starts where the shared noise does (every feature at the same
            # value), so both fits start from the same model.
            shared = type(lik).from_data(Z, noise="shared", fraction=NOISE_INIT_FRACTION)
            with torch.no_grad():
                lik.raw_noise.copy_(shared.raw_noise.to(lik.raw_noise).expand(D))
        link = hasattr(lik, "link_transform") and not masked and not encoder
        if link:  # counts: GLM-PCA's start, PCA on the scale of f (see link_scale_start)
            Zc, offset = link_scale_start(lik, Z)
        else:
            # The GP models deviations from a constant: the data mean in the likelihood's link.
            offset = lik.inverse_mean(center)
            # Missing entries: the PCA start sees them at their rank-Q PCA reconstruction.
            Zc = pca_fill(Z - center, Q)
        start = pca_start(Zc, Q)
        latent = initial_latent(Zc, start, encoder, gen, mask_channel=masked)
        if encoder:
            latent.center.copy_(center)
        X0 = latent(Z, None)[0].detach()
        inducing = initial_inducing(X0, min(n_inducing, dist.min_int(N)), gen)
        gp_kernel = initial_kernel(
            make_kernel(kernel, Q).to(device=dev, dtype=dt), start, isinstance(kernel, str),
            lik.location_scale,
            LENGTHSCALE_INIT_FACTOR if inference == "collapsed" else 1.0)
        jitter = settings.cholesky_jitter.value(dt)
        graph = NeighborGraph(Z, int(n_neighbors)) if neighbor_weight > 0 and not encoder else None
        if inference == "collapsed":
            module = SparseGPLVM(latent, gp_kernel, lik, inducing).to(device=dev, dtype=dt)
        else:
            with torch.no_grad():
                kuu_scale = float(gp_kernel(inducing, diag=True).mean())
            gp = SharedKernelGP(gp_kernel, inducing, D, jitter=jitter * kuu_scale)
            module = SVIGPLVM(latent, gp.to(device=dev, dtype=dt), lik, offset)
            if isinstance(lik, GaussianLikelihood) and has_psi_statistics(gp_kernel):
                warm_start_q_u(module, Z - offset, settings.cholesky_jitter.value(torch.float64))
        return cls(module, inference=inference, encoder=encoder, masked=masked, offset=offset,
                   n_total=start.n_total, jitter=jitter, neighbor_weight=neighbor_weight,
                   n_neighbors=n_neighbors, graph=graph, transform_max_iter=transform_max_iter)

    # ------------------------------------------------------------------ parameters
    def global_parameters(self) -> list:
        m = self.module
        params = (list(m.kernel.parameters()) + [m.inducing_points]
                  if self.inference == "collapsed" else list(m.gp.parameters()))
        params += list(m.likelihood.parameters())
        if self.encoder:
            params += list(m.latent.parameters())
        return params

    def local_parameters(self) -> list:
        return [] if self.encoder else list(self.module.latent.parameters())

    def untie_noise(self, D: int) -> None:
        """Replace the fitted shared noise by D per-feature noises at its value (same floor).

        Per-feature noise (collapsed, Gaussian) is fitted in two stages: first the shared-noise
        model from the PCA start to its optimum, then, after this call, one noise variance per
        feature from there, so the richer model starts at the simpler one's optimum and can only
        improve on it. Fitted from the PCA start directly, per-feature noise let the optimizer
        explain signal as noise early and end in a worse optimum: on standardized oil flow
        (Q = 10, M = 50) a bound of -2.51 nats per point against -1.24 for one shared noise.
        """
        shared = self.module.likelihood
        per_feature = type(shared)(n_noise=D, min_noise=shared.min_noise).to(shared.raw_noise)
        with torch.no_grad():
            per_feature.raw_noise.copy_(shared.raw_noise.detach().expand(D))
        self.module.likelihood = self.likelihood = per_feature

    # ------------------------------------------------------------------ training
    def objective(self, z, rows, generator):
        if self.inference == "collapsed":  # the whole bound: it does not split by row
            return CollapsedELBO(self.module, jitter=self.jitter)(z - self.offset), None
        per_row, kl_u = SVIELBO(self.module, self.n_total, masked=self.masked).terms(
            z, rows, generator)
        if self.neighbors is not None:
            # The value stays the bound; the gradient is that of bound - weight * term.
            penalty = self.neighbor_weight * self.neighbors.loss(self.module.latent.mu, rows)
            per_row = per_row - (penalty - penalty.detach())
        return per_row, -kl_u / self.n_total

    def penalty(self, z):
        if self.neighbors is None:
            return 0.0
        return self.neighbor_weight * self.neighbors.loss(self.module.latent.mu).sum()

    def on_failure(self, retry, exc):
        if isinstance(exc, NoiseTooSmallError):
            likelihood = self.module.likelihood
            likelihood.min_noise *= 10.0
            return f"raised the noise floor to {likelihood.min_noise:.3g} of the data's variance"
        self.jitter *= 10.0
        if self.inference == "svi":
            self.module.strategy.jitter_val *= 10.0
        return f"raised the K_uu jitter to {self.jitter:.3g} of its mean diagonal"

    def add_rows(self, z) -> bool:
        """``partial_fit``: count the chunk's rows; fit their q(x) with the model frozen."""
        count = torch.tensor(float(z.shape[0]), dtype=torch.float64, device=z.device)
        self.n_total += int(dist.all_reduce_sum(count).item())
        self.masked = bool(dist.max_int(int(torch.isnan(z).any()))) or self.masked
        self.chunk += 1
        if self.encoder:
            return False
        mu, var = self.posterior(z)
        self.module.latent = PointLatent(mu, var)
        if self.neighbor_weight > 0:  # of the chunk's rows, as q(x) now is
            self.neighbors = NeighborGraph(z, self.n_neighbors)
        else:
            self.neighbors = None
        return True

    def finalize(self, rows, generator) -> None:
        """The frozen decoder, the bound (collapsed), the training rows' q(x_n) and the map."""
        m, Z = self.module, rows
        with torch.no_grad():
            if self.inference == "collapsed":
                value, L, mean, root = CollapsedELBO(m, jitter=self.jitter).terms(Z - self.offset)
                self.elbo = float(value) / Z.shape[0]
            else:
                q = m.strategy.variational_distribution
                L = kuu_cholesky(m.kernel, m.inducing_points, self.jitter)
                mean = q.mean.T.contiguous()
                root = q.lazy_covariance_matrix.root_decomposition().root.to_dense()
            self.__dict__["posterior_model"] = InducingPosterior(
                m.kernel, m.inducing_points, L, mean, root, m.likelihood, self.offset)
            mu, var = m.latent(Z, None)
            self.frozen.extend(self.chunk, Z, mu, var)
            if self.neighbors is not None:
                self.map = NeighborMap(self.frozen.rows, self.frozen.mean, self.n_neighbors)

    def fitted_attributes(self, scale: float) -> dict:
        """q(x) of the training rows (free q only), the inducing inputs, the noise variance
        (Gaussian; in the data's units), the lengthscales and the relevances."""
        m, kept = self.module, {}
        with torch.no_grad():
            if not self.encoder:
                kept["latent_mean_"] = _numpy(self.frozen.mean)
                kept["latent_var_"] = _numpy(self.frozen.var)
            kept["inducing_points_"] = _numpy(m.inducing_points)
            kept["n_inducing_"] = int(m.inducing_points.shape[0])
            if isinstance(m.likelihood, GaussianLikelihood):
                noise = _numpy(m.likelihood.noise) * scale ** 2
                kept["noise_variance_"] = float(noise[0]) if noise.shape[0] == 1 else noise
            kept["lengthscales_"] = _numpy(lengthscales(m.kernel))
            w = _numpy(relevance(m.kernel))
        kept["relevance_"] = w / w.max()
        return kept

    # ------------------------------------------------------------------ the fitted model
    def posterior(self, z):
        """q(x*) for rows: the encoder's output, or, per row, its own fitted q(x_n) when the row
        is a training row (so ``transform`` of the training data is the training embedding) and
        otherwise q(x*) fitted with the model frozen, started at the nearest training row's."""
        if self.encoder:
            with torch.no_grad():
                return self.module.latent(z, None)
        mus, vars_ = [], []
        for i in range(0, z.shape[0], ROW_CHUNK):
            mu, var = self._fit_rows(z[i:i + ROW_CHUNK])
            mus.append(mu)
            vars_.append(var)
        if not mus:
            empty = z.new_zeros((0, self.n_components))
            return empty, empty
        return torch.cat(mus), torch.cat(vars_)

    def _fit_rows(self, y):
        mu, var, found = self.frozen.lookup(y)
        new = ~found
        if bool(new.any()):
            post = self.posterior_model
            y_new = y[new]
            eps = row_keyed_normal(y_new, TRANSFORM_DRAWS, self.n_components, self.eval_seed + 1)

            if self.map is None:
                def expected_log_lik(rows, m, v):
                    return post.expected_log_likelihood(rows, m, v, eps)
            else:  # the same objective as the training rows': minus the neighbour term
                index, weight = self.map.neighbors(y_new), self.neighbor_weight

                def expected_log_lik(rows, m, v):
                    return (post.expected_log_likelihood(rows, m, v, eps)
                            - weight * self.map.loss(m, index))

            mu[new], var[new] = fit_frozen(
                expected_log_lik, y_new, mu[new], torch.full_like(mu[new], LATENT_VAR_INIT),
                max_iter=self.transform_max_iter, learning_rate=TRANSFORM_LR,
                name="BayesianGPLVM")
        return mu, var

    def log_likelihood(self, z, x):
        return self.posterior_model.log_marginal(z, x)

    def decode(self, x):
        mean, var = self.posterior_model.predict(x)
        return self.posterior_model.likelihood.marginal_mean(mean, var.expand_as(mean))

    def decoder_sample(self, x, generator):
        mean, var = self.posterior_model.predict(x)
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + var.sqrt() * eps

    def eval_width(self, n_features: int) -> int:
        return max(int(self.module.inducing_points.shape[0]), n_features)
