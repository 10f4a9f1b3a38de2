"""The variational autoencoder as an lvm estimator: the ELBO on the shared base and loop."""

from __future__ import annotations

import copy
import math
import numbers
from typing import NamedTuple

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, check_random_state

from .. import _distributed as dist
from .._base import LatentVariableModel
from .._training import train
from ..evidence import effective_sample_size, importance_weighted_log_evidence
from ._draws import row_keyed_normal
from .networks import (
    ACTIVATIONS,
    LIKELIHOODS,
    BernoulliLikelihood,
    GaussianLikelihood,
    VAEModule,
    build_decoder,
    build_encoder,
    kl_standard,
)

__all__ = ["VAE", "EvidenceEstimate"]

#: Elements (samples x rows x width) one evaluation chunk may hold; bounds the memory of IWAE.
_EVAL_ELEMENTS = 2**23


class EvidenceEstimate(NamedTuple):
    """What :meth:`VAE.log_evidence` returns: always these two arrays (or tensors), in order."""

    #: Estimated log p(y) per data point, in nats, shape (n_samples,).
    log_evidence: np.ndarray
    #: Kish's effective sample size of the importance weights per data point, shape (n_samples,).
    effective_sample_size: np.ndarray


#: Parameters from which Adam's fused kernel pays on the CPU.
_FUSED_CPU_MIN_PARAMETERS = 2**16


def _adam(params, lr, device: torch.device) -> torch.optim.Adam:
    """Adam, with the fused kernel on CUDA, and on the CPU for networks of at least 65536
    parameters (there it is about 2.5 times faster per step than the default; for tiny networks
    its thread-pool dispatch costs more than it saves)."""
    params = list(params)
    n = sum(p.numel() for p in params)
    if device.type == "cuda" or (device.type == "cpu" and n >= _FUSED_CPU_MIN_PARAMETERS):
        try:
            return torch.optim.Adam(params, lr=lr, fused=True)
        except (RuntimeError, ValueError, TypeError):  # dtype or device without a fused kernel
            pass
    return torch.optim.Adam(params, lr=lr)


class VAE(LatentVariableModel):
    r"""Variational autoencoder (Kingma & Welling, 2014) trained by the ELBO.

    The model is :math:`x \sim \mathcal N(0, I_K)` and :math:`y \mid x \sim p(y \mid f_\theta(x))`
    with :math:`f_\theta` a neural network: Gaussian :math:`\mathcal N(f_\theta(x), \sigma^2 I)`
    (:math:`\sigma^2` learned, one value or one per feature) or Bernoulli with logits
    :math:`f_\theta(x)`. An encoder gives the approximate posterior
    :math:`q_\phi(x \mid y) = \mathcal N(\mu_\phi(y), \mathrm{diag}\,\sigma_\phi^2(y))`, and
    training maximizes, with Adam on minibatches and :math:`x = \mu + \sigma \odot \epsilon`,
    :math:`\epsilon \sim \mathcal N(0, I)`,

    .. math::
        \mathrm{ELBO}(y) = \mathbb E_q[\log p(y \mid x)] - \mathrm{KL}(q(x \mid y) \,\|\, p(x))
        \le \log p(y),

    with the KL in closed form. The whole data set stays on ``device`` and minibatches are drawn by
    index permutation (no DataLoader).

    ``score_samples`` is the importance-weighted estimate (Burda et al., 2016) with the encoder as
    proposal and S = ``n_importance_samples`` draws,

    .. math::
        \log \hat p(y) = \log \frac1S \sum_{s=1}^S \frac{p(y \mid x_s) p(x_s)}{q(x_s \mid y)},
        \qquad x_s \sim q(x \mid y),

    a stochastic lower bound: its expectation is at most log p(y) and rises toward it as S grows.
    The evaluation draws are keyed by each row's content and a seed fixed at fit, so
    ``score_samples`` is deterministic, a row's value depends neither on the other rows nor on
    their order, and distinct rows get independent draws (the mean over N rows has Monte Carlo
    error O(1/sqrt(N))).

    Parameters
    ----------
    n_components : int, default=2
        Latent dimension K.
    hidden_sizes : tuple of int, default=(256, 256)
        Widths of the encoder's hidden layers; the decoder mirrors them. ``()`` gives affine
        encoder and decoder (a linear VAE, whose optimum is PPCA's maximum-likelihood model).
    activation : {"relu", "tanh", "elu", "gelu", "softplus", "leaky_relu", "sigmoid"}, \
            default="relu"
    likelihood : {"gaussian", "bernoulli"}, default="gaussian"
        ``"bernoulli"`` needs data in [0, 1] (binary, or intensities scaled to [0, 1]).
    noise : {"shared", "per_feature"}, default="shared"
        The Gaussian noise variance: one sigma^2 for all features, or one per feature.
    encoder : torch.nn.Module, default=None
        A custom encoder instead of the MLP, mapping y of shape (n, D) to one (n, 2K) tensor (means,
        then log-variances) or to a pair ``(mu, log_var)`` of (n, K) tensors. It is copied at fit.
    decoder : torch.nn.Module, default=None
        A custom decoder mapping x of shape (..., K) to (..., D) (the Gaussian mean or the Bernoulli
        logits); it must accept leading batch dimensions, as ``nn.Linear`` does. Copied at fit.
    batch_size : int, default=128
        Minibatch size (per process under ``torch.distributed``).
    max_epochs : int, default=100
    learning_rate : float, default=1e-3
        Adam's step size.
    validation_fraction : float in [0, 1), default=0.1
        Fraction of the rows held out (at random) to compute a validation ELBO after each epoch;
        training stops when it has not improved for ``patience`` epochs and the best weights are
        restored. 0 trains on all rows for ``max_epochs`` epochs.
    patience : int, default=10
    tol : float or None, default=None
        Without validation, stop when the training ELBO per point improved by less than ``tol``
        (relative) over 5 epochs. None runs all epochs.
    n_importance_samples : int, default=256
        S for ``score_samples`` / ``score`` (evaluated in chunks, memory O(S * chunk * width)).
    device : {"auto", "cpu", "cuda"} or torch.device, default="auto"
    dtype : {"float32", "float64"} or None, default="float32"
        Dtype of the networks and outputs; None follows the input's float dtype.
    random_state : int, RandomState or None, default=None
        Seeds the initial weights, the validation split, the minibatch order, the
        reparameterization noise and the evaluation draws; the global torch RNG is left untouched.
    verbose : bool, default=False
        Show a progress bar with the running ELBO.

    Attributes
    ----------
    module_ : lvm.vae.networks.VAEModule
        The trained encoder, decoder and likelihood together.
    encoder_, decoder_ : torch.nn.Module
    noise_variance_ : float or ndarray of shape (n_features,)
        The learned Gaussian noise variance (Gaussian likelihood only).
    history_ : list of dict
        Per epoch: ``epoch``, ``train`` (mean training ELBO per point) and, with validation,
        ``validation`` (validation ELBO per point).
    n_epochs_ : int
        Epochs run.
    best_epoch_ : int or None
        The epoch whose weights were kept (with validation).
    n_components_ : int
    n_features_in_ : int

    Notes
    -----
    **Out of core.** :meth:`partial_fit` runs one pass of minibatch steps over each chunk it is
    given, keeping Adam's state between calls.

    **Data parallel.** When :mod:`torch.distributed` is initialized (e.g. under ``torchrun``, with
    ``gloo`` on CPUs or ``nccl`` on GPUs), each rank calls ``fit`` / ``partial_fit`` with its own
    rows: the networks are wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`, which
    starts every rank from rank 0's weights and averages the gradients, so all ranks end with the
    same model. ``batch_size`` is per rank; shards may differ in size (every rank takes as many
    steps as the largest shard needs, the smaller ones in smaller batches, and each step's loss is
    weighted so that the gradient is that of the mean ELBO over the global batch). The training
    and validation ELBO, hence early stopping, and :meth:`score` / :meth:`elbo` are reduced over
    the ranks; :meth:`score_samples` stays per row and local. Every rank must call these methods
    together, and a data error raised on one rank only (e.g. Bernoulli data outside [0, 1]) leaves
    the others waiting.

    See Also
    --------
    lvm.PPCA : the linear-Gaussian model with exact evidence (a linear VAE's optimum).

    References
    ----------
    Kingma, D. P. & Welling, M. (2014). Auto-encoding variational Bayes. ICLR.
    Burda, Y., Grosse, R. & Salakhutdinov, R. (2016). Importance weighted autoencoders. ICLR.

    Examples
    --------
    >>> import lvm
    >>> data = lvm.datasets.make_ppca(300, 5, 2, noise=0.1, random_state=0)
    >>> vae = lvm.VAE(2, hidden_sizes=(32,), max_epochs=5, random_state=0).fit(data.Y)
    >>> vae.transform(data.Y).shape
    (300, 2)
    """

    evidence_kind = "importance-weighted estimate"
    _default_dtype = torch.float32

    _parameter_constraints: dict = {
        **LatentVariableModel._parameter_constraints,
        "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "hidden_sizes": ["array-like"],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "likelihood": [StrOptions(set(LIKELIHOODS))],
        "noise": [StrOptions({"shared", "per_feature"})],
        "encoder": [torch.nn.Module, None],
        "decoder": [torch.nn.Module, None],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="left")],
        "patience": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left"), None],
        "n_importance_samples": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(self, n_components=2, *, hidden_sizes=(256, 256), activation="relu",
                 likelihood="gaussian", noise="shared", encoder=None, decoder=None, batch_size=128,
                 max_epochs=100, learning_rate=1e-3, validation_fraction=0.1, patience=10, tol=None,
                 n_importance_samples=256, device="auto", dtype="float32", random_state=None,
                 verbose=False):
        self.n_components = n_components
        self.hidden_sizes = hidden_sizes
        self.activation = activation
        self.likelihood = likelihood
        self.noise = noise
        self.encoder = encoder
        self.decoder = decoder
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.tol = tol
        self.n_importance_samples = n_importance_samples
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ data checks
    def _validate_Y(self, Y, *, reset, min_samples=1):
        Yt = super()._validate_Y(Y, reset=reset, min_samples=min_samples)
        if self.likelihood == "bernoulli":
            lo, hi = torch.aminmax(Yt)
            lo, hi = float(lo), float(hi)
            if lo < 0.0 or hi > 1.0:
                raise ValueError(
                    f"likelihood='bernoulli' needs data in [0, 1]; got values in [{lo:.4g}, "
                    f"{hi:.4g}]. Scale the data to [0, 1] (e.g. divide by the maximum) or use "
                    "likelihood='gaussian'."
                )
        return Yt

    def _check_data_hyperparameters(self, Y):
        super()._check_data_hyperparameters(Y)
        for h in tuple(self.hidden_sizes):
            if not isinstance(h, numbers.Integral) or isinstance(h, bool) or h < 1:
                raise ValueError(
                    f"hidden_sizes must hold positive integers (layer widths); got "
                    f"{tuple(self.hidden_sizes)!r}."
                )

    # ------------------------------------------------------------------ building
    def _seed(self) -> int:
        """A fresh seed from the estimator's own generator."""
        return int(torch.randint(0, 2**31 - 1, (1,), generator=self._generator,
                                 device=self._device))

    def _build(self, Y: torch.Tensor) -> VAEModule:
        """The networks and likelihood, initialized from ``random_state`` alone."""
        n, D = Y.shape
        K = int(self.n_components)
        # The networks are built on the CPU (then moved), so only the CPU RNG needs forking.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._seed())
            hidden = tuple(int(h) for h in self.hidden_sizes)
            if self.encoder is None:
                encoder = build_encoder(D, K, hidden, self.activation)
            else:
                encoder = copy.deepcopy(self.encoder)
            if self.decoder is None:
                decoder = build_decoder(K, D, hidden, self.activation)
                last = [m for m in decoder.modules() if isinstance(m, torch.nn.Linear)][-1]
                with torch.no_grad():  # start the decoder at the data mean
                    mean = Y.mean(0).to(last.bias)
                    if self.likelihood == "bernoulli":
                        mean = torch.logit(mean.clamp(1e-3, 1 - 1e-3))
                    last.bias.copy_(mean.cpu())
            else:
                decoder = copy.deepcopy(self.decoder)
            if self.likelihood == "gaussian":
                var = Y.var(0, correction=0).to(torch.float64).cpu() if n > 1 else \
                    torch.ones(D, dtype=torch.float64)
                scale = max(float(var.mean()), 1e-12)
                init = var.mean() if self.noise == "shared" else var
                likelihood = GaussianLikelihood(
                    1 if self.noise == "shared" else D,
                    initial_noise=init.clamp_min(1e-3 * scale).float(),
                    min_noise=1e-6 * scale,
                )
            else:
                likelihood = BernoulliLikelihood()
        module = VAEModule(encoder, decoder, likelihood, K)
        return module.to(device=self._device, dtype=self._dtype)

    def _initialize(self, Y: torch.Tensor) -> None:
        """Fresh networks, optimizer and evaluation draws for a new fit."""
        self.module_ = self._build(Y)
        self._optimizer = _adam(self.module_.parameters(), self.learning_rate, self._device)
        self._eval_seed = self._seed()
        self.n_components_ = int(self.n_components)
        self.history_ = []
        self.n_epochs_ = 0
        self.best_epoch_ = None

    def _set_fitted_attributes(self) -> None:
        self.encoder_ = self.module_.encoder
        self.decoder_ = self.module_.decoder
        if isinstance(self.module_.likelihood, GaussianLikelihood):
            noise = self.module_.likelihood.noise.detach().cpu().numpy().astype(np.float64)
            self.noise_variance_ = float(noise[0]) if self.noise == "shared" else noise

    # ------------------------------------------------------------------ distributed helpers
    def _wrapped(self):
        """The module to run the training forward through: DDP under torch.distributed."""
        if dist.world()[1] == 1:
            return self.module_
        from torch.nn.parallel import DistributedDataParallel

        ids = None
        if self._device.type == "cuda":
            index = self._device.index
            ids = [torch.cuda.current_device() if index is None else index]
        return DistributedDataParallel(self.module_, device_ids=ids)

    # ------------------------------------------------------------------ training
    def _make_epoch(self, net, Y: torch.Tensor):
        """One pass of Adam steps over ``Y``; returns the mean training ELBO per point (0-d).

        Under torch.distributed every rank takes the same number of steps (the largest shard
        sets it; smaller shards are split into as many, smaller, batches) and each loss is scaled
        so that DDP's gradient average is the gradient of the mean ELBO over the global batch.
        """
        module, opt, gen = self.module_, self._optimizer, self._generator
        n = Y.shape[0]
        K = self.n_components_
        bs = int(self.batch_size)
        dev, dt = self._device, self._dtype
        counts = dist.gather_counts(n, Y.shape[1], self._device)
        world = len(counts)
        if world > 1:
            steps = max(1, math.ceil(max(counts) / bs))
            totals = [sum(c // steps + (i < c % steps) for c in counts) for i in range(steps)]
            scales = [world / max(t, 1) for t in totals]
        n_global = sum(counts)

        def epoch():
            module.train()
            perm = torch.randperm(n, generator=gen, device=dev)
            batches = perm.split(bs) if world == 1 else torch.tensor_split(perm, steps)
            total = torch.zeros((), device=dev, dtype=dt)
            for i, idx in enumerate(batches):
                eps = torch.randn(idx.shape[0], K, generator=gen, device=dev, dtype=dt)
                elbo = net(Y[idx], eps)
                if world == 1:
                    loss = -elbo.mean()
                else:
                    loss = -elbo.sum() * scales[i]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total = total + elbo.detach().sum()
            return dist.all_reduce_sum(total) / n_global

        return epoch

    def _make_validation(self, Y: torch.Tensor):
        counts = dist.gather_counts(Y.shape[0], Y.shape[1], self._device)
        n_global = sum(counts)
        if n_global == 0:
            return None

        def validation():
            with torch.no_grad():
                total = self._evaluate(Y, 1, self._eval_seed, "elbo").sum() if Y.shape[0] else \
                    torch.zeros((), device=self._device, dtype=self._dtype)
            return dist.all_reduce_sum(total) / n_global

        return validation

    def _train(self, net, Y_train, Y_val, max_epochs, tol):
        result = train(
            self._make_epoch(net, Y_train),
            [self.module_],
            self._optimizer,
            max_epochs=max_epochs,
            tol=tol,
            validation=None if Y_val is None else self._make_validation(Y_val),
            patience=self.patience,
            verbose=self.verbose and dist.world()[0] == 0,
            desc="VAE",
            objective_name="elbo",
            estimator_name="VAE",
        )
        offset = self.n_epochs_
        for record in result.history:
            record["epoch"] += offset
        self.history_.extend(result.history)
        self.n_epochs_ += result.n_epochs
        if result.best_epoch is not None:
            self.best_epoch_ = result.best_epoch + offset
        return result

    def _fit(self, Y: torch.Tensor) -> None:
        n = Y.shape[0]
        dist.gather_counts(n, Y.shape[1], self._device)  # under torch.distributed: same features on every rank
        self._initialize(Y)
        Y_val = None
        if self.validation_fraction > 0:
            n_val = max(1, int(round(self.validation_fraction * n)))
            if n - n_val < 1:
                raise ValueError(
                    f"validation_fraction={self.validation_fraction} leaves no training rows out "
                    f"of n_samples={n}; lower validation_fraction or pass more data."
                )
            perm = torch.randperm(n, generator=self._generator, device=self._device)
            Y_val, Y = Y[perm[:n_val]], Y[perm[n_val:]]
        self._train(self._wrapped(), Y, Y_val, int(self.max_epochs), self.tol)
        self._set_fitted_attributes()

    def partial_fit(self, Y, y=None):
        """One pass of minibatch Adam steps over the chunk ``Y``; the first call initializes.

        The optimizer state (Adam's moments) and the generator stream carry over between calls, so
        a data set too large for memory can be streamed chunk by chunk, as with
        :class:`sklearn.decomposition.IncrementalPCA`. No validation split is made; ``history_``
        gets one record per call. Under torch.distributed each rank passes its own chunk.

        Parameters
        ----------
        Y : array-like or torch.Tensor of shape (n_samples, n_features)
        y : Ignored

        Returns
        -------
        self
        """
        first = not hasattr(self, "module_")
        Yt = self._validate_chunk(Y, first=first)
        dist.gather_counts(*Yt.shape, self._device)
        if first:
            self._initialize(Yt)
        self._train(self._wrapped(), Yt, None, 1, None)
        self._set_fitted_attributes()
        return self

    # ------------------------------------------------------------------ evaluation
    def _eval_seed_for(self, random_state=None) -> int:
        """The key of the evaluation draws: fixed at fit, or derived from ``random_state``."""
        if random_state is None:
            return self._eval_seed
        return int(check_random_state(random_state).randint(0, 2**31 - 1))

    def _chunk_rows(self, n_samples: int) -> int:
        width = max([self.n_features_in_, *[int(h) for h in tuple(self.hidden_sizes)]])
        return max(1, _EVAL_ELEMENTS // max(1, n_samples * width))

    def _evaluate(self, Y: torch.Tensor, n_samples: int, seed: int, method: str,
                  with_ess: bool = False):
        """Per-row estimate (and ESS) with ``n_samples`` draws, in chunks of rows.

        ``method``: "elbo" (reconstruction term averaged over the draws, closed-form KL), "iwae"
        (encoder proposal) or "prior". The draws are keyed by each row's content and ``seed``
        (:func:`row_keyed_normal`), so a row's value depends on neither the batch nor the order.
        """
        module = self.module_
        module.eval()
        rows = self._chunk_rows(n_samples)
        values, sizes = [], []
        with torch.no_grad():
            for start in range(0, Y.shape[0], rows):
                y = Y[start:start + rows]
                eps = row_keyed_normal(y, n_samples, self.n_components_, seed)
                if method == "elbo":
                    mu, log_var = module.encode(y)
                    x = mu + torch.exp(0.5 * log_var) * eps
                    rec = module.likelihood.log_prob(y, module.decoder(x)).mean(0)
                    values.append(rec - kl_standard(mu, log_var))
                    if with_ess:
                        sizes.append(effective_sample_size(
                            module.log_weights(y, eps, "encoder"), dim=0))
                    continue
                log_w = module.log_weights(y, eps, "prior" if method == "prior" else "encoder")
                values.append(importance_weighted_log_evidence(log_w, dim=0))
                if with_ess:
                    sizes.append(effective_sample_size(log_w, dim=0))
        out = torch.cat(values) if values else Y.new_zeros(0)
        if with_ess:
            return out, (torch.cat(sizes) if sizes else Y.new_zeros(0))
        return out

    # family hooks
    def _posterior(self, Y):
        self.module_.eval()
        mu, log_var = self.module_.encode(Y)
        return mu, torch.exp(0.5 * log_var)

    def _decode(self, X):
        self.module_.eval()
        return self.module_.likelihood.mean(self.module_.decoder(X))

    def _log_evidence(self, Y):
        return self._evaluate(Y, int(self.n_importance_samples), self._eval_seed, "iwae")

    def _sample(self, n, generator):
        self.module_.eval()
        x = torch.randn(n, self.n_components_, generator=generator, device=self._device,
                        dtype=self._dtype)
        return self.module_.likelihood.sample(self.module_.decoder(x), generator)

    # ------------------------------------------------------------------ public extras
    def score(self, Y, y=None) -> float:
        """Mean importance-weighted log evidence per sample, in nats (see :meth:`score_samples`).

        Under torch.distributed, each rank passes its own rows and every rank gets the mean over
        the rows of all ranks.
        """
        check_is_fitted(self)
        Yt = self._validate_Y(Y, reset=False)
        with torch.no_grad():
            values = self._log_evidence(Yt)
        if dist.world()[1] == 1:
            return float(values.mean())
        stats = torch.stack([values.sum(), values.new_tensor(float(values.shape[0]))])
        stats = dist.all_reduce_sum(stats.to(torch.float64))
        return float(stats[0] / stats[1])

    def elbo_samples(self, Y, n_samples: int = 16):
        """The ELBO of each sample, in nats: ``n_samples`` reparameterized draws of the
        reconstruction term minus the closed-form KL. Deterministic (draws keyed at fit)."""
        check_is_fitted(self)
        n_samples = self._check_n_samples(n_samples)
        Yt = self._validate_Y(Y, reset=False)
        return self._output(self._evaluate(Yt, n_samples, self._eval_seed, "elbo"), Y)

    def elbo(self, Y, n_samples: int = 16) -> float:
        """The mean ELBO per sample, in nats (see :meth:`elbo_samples`); under torch.distributed
        the mean over the rows of all ranks."""
        check_is_fitted(self)
        n_samples = self._check_n_samples(n_samples)
        Yt = self._validate_Y(Y, reset=False)
        values = self._evaluate(Yt, n_samples, self._eval_seed, "elbo")
        if dist.world()[1] == 1:
            return float(values.mean())
        stats = torch.stack([values.sum(), values.new_tensor(float(values.shape[0]))])
        stats = dist.all_reduce_sum(stats.to(torch.float64))
        return float(stats[0] / stats[1])

    _METHODS = ("elbo", "iwae", "prior")

    def log_evidence(self, Y, method: str = "iwae", n_samples: int | None = None,
                     random_state=None) -> EvidenceEstimate:
        """Monte Carlo estimates of log p(y) per sample, with their effective sample sizes.

        Parameters
        ----------
        Y : array-like or torch.Tensor of shape (n_samples, n_features)
        method : {"elbo", "iwae", "prior"}, default="iwae"
            ``"elbo"``: the ELBO (reconstruction term averaged over the draws, closed-form KL), a
            lower bound. ``"iwae"``: the importance-weighted estimate with the encoder as proposal
            (as :meth:`score_samples`). ``"prior"``: the naive estimator
            log (1/S) sum_s p(y | x_s) with x_s drawn from the prior N(0, I); unbiased in p(y) but
            its weights concentrate on a vanishing fraction of the draws, so it is far below
            log p(y) unless S is astronomically large.
        n_samples : int, default=None
            S, the number of draws; None uses ``n_importance_samples``.
        random_state : int, RandomState or None, default=None
            None uses the evaluation key fixed at fit (deterministic, as :meth:`score_samples`);
            otherwise fresh draws keyed by this seed.

        Returns
        -------
        EvidenceEstimate
            A named pair ``(log_evidence, effective_sample_size)``, both of shape (n_samples,):
            the estimate in nats and Kish's effective sample size (sum w)^2 / sum w^2 of the
            importance weights w_s = p(y, x_s) / r(x_s) (for ``"elbo"``, those of the encoder
            proposal). numpy in gives numpy out, a tensor gives tensors.
        """
        check_is_fitted(self)
        if method not in self._METHODS:
            raise ValueError(f"Unknown method {method!r}; choose one of {list(self._METHODS)}.")
        S = self._check_n_samples(self.n_importance_samples if n_samples is None else n_samples)
        Yt = self._validate_Y(Y, reset=False)
        value, ess = self._evaluate(Yt, S, self._eval_seed_for(random_state), method,
                                    with_ess=True)
        return EvidenceEstimate(self._output(value, Y), self._output(ess, Y))

    @staticmethod
    def _check_n_samples(n_samples) -> int:
        if not isinstance(n_samples, numbers.Integral) or isinstance(n_samples, bool) \
                or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
        return int(n_samples)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.dtype is not None:
            tags.transformer_tags.preserves_dtype = [self.dtype]
        return tags
