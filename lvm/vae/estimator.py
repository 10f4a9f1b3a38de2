"""The variational autoencoder as an estimator; its math is the family in :mod:`lvm.vae.model`."""

from __future__ import annotations

import numbers

import torch

from .. import _distributed as dist
from .._family import FamilyEstimator, TrainingPlan
from .._gradient import n_validation_rows
from .._validation import Interval, StrOptions, positive_int, positive_real, unit_interval
from ..evidence import EvidenceEstimate
from ..likelihoods import LIKELIHOODS
from .model import VAEFamily, default_patience, has_nested_start
from .networks import ACTIVATIONS, VAEModule

__all__ = ["VAE", "EvidenceEstimate"]


class VAE(FamilyEstimator):
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

    **Nested start.** The family contains the linear-Gaussian model (PPCA, or Factor Analysis with
    per-feature noise), and by default training starts *at* its maximum-likelihood solution with
    its exact posterior as the encoder (see ``init``): the starting ELBO is the linear model's
    exact evidence, and early stopping on the validation ELBO, which lets the start compete as
    epoch 0, never keeps weights that are worse on the validation rows. A well-trained VAE
    therefore does not lose to PPCA / FA by more than the noise of its evidence estimate.

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
        encoder and decoder (a linear VAE, whose optimum is PPCA's maximum-likelihood model, or
        FA's with per-feature noise; with ``init="linear"`` it starts there).
    activation : {"relu", "tanh", "elu", "gelu", "softplus", "leaky_relu", "sigmoid"}, \
            default="relu"
    likelihood : str, default="gaussian"
        One of "gaussian", "bernoulli", "poisson", "negative_binomial", "binomial(n=...)".
        Any name of :data:`lvm.likelihoods.LIKELIHOODS`. ``"bernoulli"`` needs data in [0, 1]
        (binary, or intensities scaled to [0, 1]). The count likelihoods (``"poisson"``,
        ``"negative_binomial"`` with one learned size per feature, ``"binomial(n=16)"`` with n a
        number, one per feature ``"binomial(n=[...])"`` or the row's total
        ``"binomial(n=total)"``) need non-negative integer data, and their evidence is a
        log-probability, log P(y) <= 0 per entry (given the row totals for ``n=total``). With
        ``hidden_sizes=()`` and a count likelihood the model is probabilistic GLM-PCA:
        y ~ Poisson(exp(W x + b)) (or NB / binomial) with x ~ N(0, I) integrated out, not a
        point estimate of x.
    noise : {"shared", "per_feature"}, default="per_feature"
        The Gaussian noise variance: one sigma^2 for all features, or one per feature. The
        default was chosen by held-out evidence: with default settings otherwise, the held-out
        IWAE estimate (nats per point, ``shared`` vs ``per_feature``) is -9.513 vs -9.522 on
        ``make_ppca(3000, 20, 2)`` data (whose true noise is shared; 2000 rows train, 1000
        test, K=2), 7.54 vs 8.16 on oil flow (train / test split, K=2), -147.0 vs -122.7 on
        the digits (0..16 + U[0, 1), 80/20, K=5), 76.4 vs 119.0 on USPS (train / test, K=10)
        and -2074.9 vs -1969.8 on the Frey faces (0..255 + U[0, 1), 80/20, K=10): per-feature
        noise costs 0.01 nats on isotropic data and gains 0.6 to 105 on real data, whose
        features are heterogeneous. Its hazard: a feature constant in the training rows gets
        its noise at the floor, and a held-out row where it varies scores very low (fit warns;
        dequantize integer data, or pass ``"shared"``).
    init : {"linear", "random"}, default="linear"
        Where training starts. ``"linear"`` (the nested start): both networks get an affine path
        beside the MLP, f(x) = W x + mu + g(x) and mu(y) = A (y - mu) + h(y),
        log sigma^2(y) = c + k(y), with W, mu and the noise at the maximum-likelihood linear model
        of the training rows (:class:`lvm.PPCA` for ``noise="shared"``,
        :class:`lvm.FactorAnalysis` for ``"per_feature"``), A and c at its exact posterior (W
        rotated so that the posterior covariance is diagonal), and the last layers of g, h and k at
        zero: at step 0 the model *is* the linear model, its ELBO equals the linear model's exact
        evidence, and the networks grow from there. With ``hidden_sizes=()`` the networks are the
        affine maps alone. A count likelihood starts at PCA of its link-transformed counts
        (GLM-PCA's start, ``lvm.vae.model.start_at_glm_pca``; complete data); a custom network
        (used as given, never wrapped) or another likelihood starts as with ``"random"``.
        ``"random"``: plain MLPs from ``random_state``, the decoder's output bias at the data mean
        and the noise at the data's variance.
    encoder : torch.nn.Module, default=None
        A custom encoder instead of the MLP, mapping y of shape (n, D) to one (n, 2K) tensor (means,
        then log-variances) or to a pair ``(mu, log_var)`` of (n, K) tensors. It is copied at fit.
    decoder : torch.nn.Module, default=None
        A custom decoder mapping x of shape (..., K) to (..., D) (the Gaussian mean or the Bernoulli
        logits); it must accept leading batch dimensions, as ``nn.Linear`` does. Copied at fit.
    batch_size : int, default=128
        Minibatch size (per process under ``torch.distributed``).
    max_epochs : int or None, default=None
        The training budget in epochs (passes over the training rows). None scales it with the
        data: enough epochs for 50,000 optimizer steps, and at least 100 epochs (so about
        16,700 epochs on 300 training rows with ``batch_size=128``, 100 epochs from 64,000
        rows up). Early stopping (or ``tol``) normally ends training first; when the budget runs
        out before it, ``converged_`` is False and a ``ConvergenceWarning`` says what to raise.
    learning_rate : float, default=1e-3
        Adam's step size.
    validation_fraction : float in [0, 1), default=0.1
        Fraction of the rows held out (at random) to compute a validation ELBO before training
        and after each epoch; training stops when it has not improved for ``patience`` epochs
        and the best weights are restored (the start's included: ``best_epoch_ = 0``). 0 trains
        on all rows for ``max_epochs`` epochs.
    patience : int or None, default=None
        Epochs without a better validation ELBO before training stops. None measures it in
        optimizer steps and data passes: the epochs of 2,000 steps, but at least 10 epochs, so
        a large data set is not stopped by the noise of a few steps (39 on USPS's 6,562
        training rows, 10 from 25,600 rows up); where that is more than 80 epochs (under 3,200
        rows with ``batch_size=128``), a quarter of the best epoch so far, between 40 and 80:
        on a few hundred rows the validation ELBO peaks and then falls as the networks overfit,
        in passes over the rows, not in steps (the former 2,000 steps alone spent two thirds of
        the fit after the kept epoch). Larger tables keep their kept weights and their stop
        (``lvm.vae.model.default_patience`` has the measurements; ``benchmarks/small.py``
        prints the fit seconds and held-out evidence on small tables against a 10x budget).
    tol : float or None, default=None
        Without validation, stop when the training ELBO per point improved by less than ``tol``
        (relative) over 5 epochs. None runs all epochs.
    train_samples : int or None, default=None
        Draws per row in the training objective: 1 is the ELBO (the VAE); k > 1 the
        importance-weighted bound with k draws (IWAE; with missing values MIWAE, Mattei & Frellsen
        2019), tighter, so the decoder is less pulled toward what a Gaussian q can fit, at k times
        the cost per step. None: 1 for complete data, 20 when the training data have missing
        entries (MIWAE's choice; with the ELBO, a linear VAE on 30% missing entries ended 6% below
        the exact evidence, with 20 draws within 1%).
    neighbor_weight : float, default=3.0
        The weight of a neighbour-preservation term on the encoder means (see
        :mod:`lvm.latents.neighbors`): each training step maximizes the mean over the batch of
        ELBO(y_i) - ``neighbor_weight`` * L_i, where L_i is t-SNE's contrastive loss of row i's
        mean against one of its ``n_neighbors`` nearest training rows (the other rows' neighbours
        in the batch as negatives). The term moves q(x | y) only, for which the ELBO and the
        importance-weighted estimate are valid bounds whatever q is: every reported number
        stays an honest bound or estimate of the decoder's normalized model, ``history_`` and
        early stopping watch the ELBO itself, and the nested start's guarantee holds (the kept
        weights are never worse on the validation ELBO than the linear start). 0 trains the
        ELBO alone; larger values trade held-out evidence for a map that keeps the data's
        neighbourhoods, as a 2-D map for the eye must (``lvm embed``'s model,
        ``lvm.cli.MODELS["embed"]``, uses 30; ``benchmarks/embed.py`` prints the trade-off
        curve). The default, 3, organizes the map at no measured cost in evidence (digits'
        10-fold 1-NN 0.799 at 0, 0.881 at 3; the measurements are in :ref:`embedding`).
    n_neighbors : int, default=15
        k of the neighbour term's graph (exact k nearest training rows, in the model's
        standardized coordinates; built once per fit, and per chunk in :meth:`partial_fit`).
    neighbor_refine_steps : int, default=0
        With ``neighbor_weight > 0``: after fitting, q(x | y) of any row (training or new) has
        the encoder's variance and the encoder's mean refined by this many Adam steps of the
        neighbour term against the fitted map of the training rows (at most 10,000 of them; the
        row's k nearest as positives, 64 of them drawn anew each step as negatives;
        :class:`lvm.latents.neighbors.NeighborMap`, as UMAP's ``transform`` places new points).
        ``transform``, ``score_samples`` and every estimate use this one q, a valid proposal like
        any other: the evidence stays a bound (or estimate) of the same decoder's model.
        Deterministic and row by row. 0 keeps the encoder's q.
    neighbor_layout_steps : int, default=0
        With refinement: Adam steps laying the map of training rows out as a whole before rows
        are refined against it (t-SNE's and UMAP's layout, started at the encoder's map and
        tethered to it; :meth:`lvm.latents.neighbors.NeighborMap.layout`). On USPS it lets
        ``lvm embed``'s model train half the epochs for a more faithful map (:ref:`embedding`).
    n_importance_samples : int, default=256
        S for ``score_samples`` / ``score`` (evaluated in chunks, memory O(S * chunk * width)).
    device : {"auto", "cpu", "cuda"} or torch.device, default="auto"
    dtype : {"float32", "float64"} or None, default=None
        Dtype the networks compute in; None means float32. Outputs follow the input's float
        dtype whatever the computation dtype.
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
        The trained networks. They work in the model's standardized coordinates
        z = (y - location_) / scale_ (Gaussian likelihood; the identity otherwise): ``encoder_``
        maps z to the means and log-variances of q(x | y), ``decoder_`` maps x to the mean of z.
    location_ : ndarray of shape (n_features,)
    scale_ : float
        The standardization (see :mod:`lvm._base`).
    noise_variance_ : float or ndarray of shape (n_features,)
        The learned Gaussian noise variance, in the data's units (Gaussian likelihood only).
    history_ : list of dict
        Per epoch, the layout of every lvm estimator: ``epoch``, ``n_iter``, ``train`` (mean
        training ELBO per point, nats of the data as passed) and ``validation`` (validation ELBO
        per point; None without validation).
    train_evidence_ : float
        The training ELBO per point of the epoch whose weights were kept (for the start,
        ``best_epoch_ = 0``, its ELBO on the training rows with one draw per row).
    converged_ : bool
        Whether training stopped by its criterion (early stopping or ``tol``) rather than at
        ``max_epochs`` or by an interruption. (Without validation and with ``tol=None`` there is
        no criterion: False, and no warning.)
    n_epochs_, n_iter_ : int
        Epochs run (``n_iter_`` is the same count, scikit-learn's name).
    best_epoch_ : int or None
        The epoch whose weights were kept (with validation); 0 when no epoch beat the start.
    n_components_ : int
    n_features_in_ : int

    Notes
    -----
    **Out of core.** :meth:`partial_fit` runs one pass of minibatch steps over each chunk it is
    given, keeping Adam's state between calls.

    **Data parallel.** When :mod:`torch.distributed` is initialized (e.g. under ``torchrun``, with
    ``gloo`` on CPUs or ``nccl`` on GPUs), each rank calls ``fit`` / ``partial_fit`` with its own
    rows: every rank starts from rank 0's weights and the gradients are summed over ranks at every
    step (see :mod:`lvm._gradient`), so all ranks end with the same model. ``batch_size`` is per rank; shards may differ in size (every rank takes as many
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
    >>> vae = lvm.VAE(2, hidden_sizes=(32,), max_epochs=20, patience=3, random_state=0)
    >>> vae = vae.fit(data.Y)
    >>> vae.transform(data.Y).shape
    (300, 2)
    """

    family = "neural"
    _allow_nan = True
    _likelihoods = "all"

    _parameter_constraints: dict = {
        **FamilyEstimator._parameter_constraints,
        "n_components": [positive_int()],
        "hidden_sizes": ["array-like"],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "likelihood": [StrOptions(LIKELIHOODS.keys())],  # live: a registered likelihood is valid
        "noise": [StrOptions({"shared", "per_feature"})],
        "init": [StrOptions({"linear", "random"})],
        "encoder": [torch.nn.Module, None],
        "decoder": [torch.nn.Module, None],
        "batch_size": [positive_int()],
        "max_epochs": [positive_int(), None],
        "learning_rate": [positive_real()],
        "validation_fraction": [unit_interval()],
        "patience": [positive_int(), None],
        "tol": [Interval(numbers.Real, 0, None, closed="left"), None],
        "train_samples": [positive_int(), None],
        "neighbor_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "n_neighbors": [positive_int()],
        "neighbor_refine_steps": [Interval(numbers.Integral, 0, None, closed="left")],
        "neighbor_layout_steps": [Interval(numbers.Integral, 0, None, closed="left")],
    }

    def __init__(self, n_components=2, *, hidden_sizes=(256, 256), activation="relu",
                 likelihood="gaussian", noise="per_feature", init="linear", encoder=None,
                 decoder=None, batch_size=128, max_epochs=None, learning_rate=1e-3,
                 validation_fraction=0.1, patience=None, tol=None, train_samples=None,
                 neighbor_weight=3.0, n_neighbors=15, neighbor_refine_steps=0,
                 neighbor_layout_steps=0, n_importance_samples=256, device="auto", dtype=None,
                 random_state=None, verbose=False):
        self.n_components = n_components
        self.hidden_sizes = hidden_sizes
        self.activation = activation
        self.likelihood = likelihood
        self.noise = noise
        self.init = init
        self.encoder = encoder
        self.decoder = decoder
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.tol = tol
        self.train_samples = train_samples
        self.neighbor_weight = neighbor_weight
        self.n_neighbors = n_neighbors
        self.neighbor_refine_steps = neighbor_refine_steps
        self.neighbor_layout_steps = neighbor_layout_steps
        self.n_importance_samples = n_importance_samples
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    def _check_data_hyperparameters(self, Z):
        super()._check_data_hyperparameters(Z)
        self._warn_constant_features(Z)
        if any(not isinstance(h, numbers.Integral) or isinstance(h, bool) or h < 1
               for h in tuple(self.hidden_sizes)):
            raise ValueError("hidden_sizes must hold positive integers (layer widths); got "
                             f"{tuple(self.hidden_sizes)!r}.")

    # ------------------------------------------------------------------ the model
    #: The default budget and patience (``max_epochs=None``, ``patience=None``): the epochs of
    #: these many optimizer steps, at least these many epochs; the patience at most 80, and
    #: below that a quarter of the best epoch (:func:`lvm.vae.model.default_patience`).
    _BUDGET_STEPS, _BUDGET_EPOCHS = 50_000, 100
    _PATIENCE_STEPS, _PATIENCE_EPOCHS, _PATIENCE_MAX_EPOCHS = 2_000, 10, 80

    def _plan(self, Z) -> TrainingPlan:
        """Minibatch Adam, the default budget and patience counted in the optimizer steps of
        the largest shard's training rows (``Z`` less the validation split) per epoch."""
        n = dist.max_int(Z.shape[0])
        per_epoch = max(1, -(-(n - n_validation_rows(n, self.validation_fraction))
                             // int(self.batch_size)))
        max_epochs = (int(self.max_epochs) if self.max_epochs is not None else
                      max(self._BUDGET_EPOCHS, -(-self._BUDGET_STEPS // per_epoch)))
        patience, rule = ((int(self.patience), None) if self.patience is not None else
                          default_patience(per_epoch, self._PATIENCE_STEPS, self._PATIENCE_EPOCHS,
                                           self._PATIENCE_MAX_EPOCHS))
        return TrainingPlan(mode="minibatch", optimizer="adam", learning_rate=self.learning_rate,
                            max_epochs=max_epochs, tol=self.tol, batch_size=int(self.batch_size),
                            validation_fraction=self.validation_fraction, patience=patience,
                            patience_rule=rule,
                            limit_message=f"in max_epochs={max_epochs} epochs "
                                          f"({max_epochs * per_epoch} optimizer steps)",
                            budget_hint="" if self.max_epochs is None else
                            f" (None sets a budget of at least {self._BUDGET_STEPS} steps)")

    def _make_family(self, Z: torch.Tensor) -> VAEFamily:
        """The networks and likelihood: at the linear model's optimum (see ``init``: lvm's own
        networks, a Gaussian likelihood and at least two rows to fit it to) or from
        ``random_state`` alone."""
        # Missing entries: the encoder sees the mask as well (MIWAE); decided once, by the data.
        masked = self._any_missing(Z)
        likelihood = LIKELIHOODS[self.likelihood]
        nested = (self.init == "linear" and self.encoder is None and self.decoder is None
                  and dist.min_int(Z.shape[0]) >= 2 and has_nested_start(likelihood, masked))
        return VAEFamily.from_data(
            Z, n_components=self.n_components_, hidden_sizes=self.hidden_sizes,
            activation=self.activation, likelihood=likelihood, noise=self.noise, nested=nested,
            encoder=self.encoder, decoder=self.decoder, masked=masked, seed=self._new_seed(),
            train_samples=(int(self.train_samples) if self.train_samples is not None
                           else 20 if masked else 1),
            neighbor_weight=self.neighbor_weight, n_neighbors=self.n_neighbors,
            refine_steps=self.neighbor_refine_steps, layout_steps=self.neighbor_layout_steps)

    @property
    def module_(self) -> VAEModule:
        return self._model.module

    def _widest(self) -> int:
        return max([1, *[int(h) for h in tuple(self.hidden_sizes)]])

    # ------------------------------------------------------------------ streaming
    def partial_fit(self, Y, y=None):
        """One pass of minibatch Adam steps over the chunk ``Y``; the first call initializes.

        The optimizer state (Adam's moments) and the generator stream carry over between calls, so
        a data set too large for memory can be streamed chunk by chunk, as with
        :class:`sklearn.decomposition.IncrementalPCA`. No validation split is made; ``history_``
        gets one record per call. The standardization is fixed by the first chunk. Under
        torch.distributed each rank passes its own chunk.

        Parameters
        ----------
        Y : array-like or torch.Tensor of shape (n_samples, n_features)
        y : Ignored

        Returns
        -------
        self
        """
        return self._partial_fit(Y, self._partial_fit_chunk)
