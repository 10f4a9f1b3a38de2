"""Factor Analysis: per-feature noise, fitted by EM on the sample covariance."""

from __future__ import annotations

import numbers

import torch

from .._stats import DEFAULT_CHUNK, GaussianStats, descending_eigh
from .._training import TrainResult, history_record, train
from .._validation import Interval
from ..evidence import average_log_likelihood
from ._linear import LinearGaussianModel


class _FAParameters(torch.nn.Module):
    def __init__(self, W, noise):
        super().__init__()
        self.register_buffer("W", W)
        self.register_buffer("noise", noise)


class FactorAnalysis(LinearGaussianModel):
    r"""Factor analysis with exact evidence, fitted by EM.

    The model is :math:`x \sim \mathcal N(0, I_K)`, :math:`y \mid x \sim \mathcal N(W x + \mu, \Psi)`
    with :math:`\Psi = \mathrm{diag}(\psi_1..\psi_D)`, so :math:`p(y) = \mathcal N(y; \mu, W W^\top +
    \Psi)`. EM (Rubin & Thayer, 1982) needs only the ML sample covariance :math:`S`, computed once:

    .. math::
        M = I + W^\top \Psi^{-1} W,\quad \beta = M^{-1} W^\top \Psi^{-1},\quad
        W \leftarrow S \beta^\top (M^{-1} + \beta S \beta^\top)^{-1},\quad
        \Psi \leftarrow \mathrm{diag}(S - W \beta S),

    so an iteration costs O(D^2 K), independent of N. EM starts from the PPCA solution and stops
    when the mean log-likelihood per sample improves by less than ``tol`` (relative to
    max(1, its magnitude)) over 10 iterations.

    Parameters
    ----------
    n_components : int, default=2
    max_iter : int, default=2000
        Maximum number of EM iterations.
    tol : float, default=1e-7
        Stopping tolerance on the mean log-likelihood per sample (nats).
    min_noise : float, default=1e-8
        Lower bound on each psi_d, relative to the feature's variance (Heywood cases).
    device, dtype, chunk_size, random_state, verbose
        As for :class:`lvm.PPCA`; ``verbose=True`` shows EM progress.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
    mean_ : ndarray of shape (n_features,)
    noise_variance_ : ndarray of shape (n_features,)
        The per-feature noise variances psi.
    n_iter_ : int
    log_evidence_ : float
        Exact log p(Y) of the training data, summed over samples, in nats.
    train_evidence_ : float
        The same per sample.
    history_ : list of dict
        One record every 10 EM iterations (every iteration with missing values), in the layout
        of every lvm estimator: ``epoch``, ``n_iter`` (EM iterations so far), ``train`` (the
        exact mean log-likelihood per sample in the data's units, as ``train_evidence_``) and
        ``validation`` (None).
    converged_ : bool
        Whether EM met ``tol`` before ``max_iter`` (an interrupted fit keeps its last EM state
        and is usable, with ``converged_ = False``).
    location_, scale_ : ndarray of shape (n_features,), float
        The standardization the model is computed in (see :mod:`lvm._base`).
    n_parameters_ : int
        D K + 2 D.

    See Also
    --------
    sklearn.decomposition.FactorAnalysis : the same model fitted by an SVD-based iteration.
    """

    _parameter_constraints: dict = {
        **LinearGaussianModel._parameter_constraints,
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "min_noise": [Interval(numbers.Real, 0, None, closed="neither")],
    }

    _STEPS_PER_CHECK = 10

    def __init__(self, n_components=2, *, max_iter=2000, tol=1e-7, min_noise=1e-8, device="auto",
                 dtype=None, chunk_size=DEFAULT_CHUNK, random_state=None, verbose=False):
        self.n_components = n_components
        self.max_iter = max_iter
        self.tol = tol
        self.min_noise = min_noise
        self.device = device
        self.dtype = dtype
        self.chunk_size = chunk_size
        self.random_state = random_state
        self.verbose = verbose

    def _solve(self, stats: GaussianStats, spectrum=None):
        S = stats.covariance
        D, K = S.shape[0], int(self.n_components)
        var = torch.diagonal(S)
        # Heywood floor, relative to each feature's variance (the data are standardized, so the
        # tiny absolute guard only matters for a constant feature).
        floor = self.min_noise * var.clamp_min(torch.finfo(torch.float64).tiny)
        # Start from PPCA: top eigenvectors, isotropic noise from the discarded spectrum.
        eigvals, eigvecs = descending_eigh(S)
        sigma2 = eigvals[K:].mean() if K < D else eigvals[-1]
        sigma2 = torch.maximum(sigma2, floor.max())
        W0 = eigvecs[:, :K] * torch.sqrt((eigvals[:K] - sigma2).clamp_min(0))
        params = _FAParameters(W0, torch.maximum(sigma2.expand(D).clone(), floor))
        eye = torch.eye(K, dtype=S.dtype, device=S.device)

        def em_steps():
            W, noise = params.W, params.noise
            for _ in range(self._STEPS_PER_CHECK):
                Wp = W / noise.unsqueeze(-1)
                Minv = torch.linalg.inv(eye + W.T @ Wp)
                beta = Minv @ Wp.T  # (K, D): E[x | y] = beta (y - mu)
                SbT = S @ beta.T  # (D, K)
                Exx = Minv + beta @ SbT
                W = torch.linalg.solve(Exx, SbT.T).T
                noise = torch.maximum(var - (W * SbT).sum(1), floor)
            params.W, params.noise = W, noise
            return average_log_likelihood(S, W, noise)

        result = TrainResult()

        def finish():
            self.n_iter_ = result.n_epochs * self._STEPS_PER_CHECK
            self.history_ = [history_record(r["epoch"], r["epoch"] * self._STEPS_PER_CHECK,
                                            r["train"] + self._log_jacobian)
                             for r in result.history]
            self.converged_ = result.converged

        def store_last_good():
            finish()
            self._store_solution(stats, params.W, stats.mean, params.noise,
                                 self._noise_attributes(params.noise))

        with self._usable_on_interrupt(store_last_good):
            train(
                em_steps,
                [params],
                max_epochs=max(1, -(-self.max_iter // self._STEPS_PER_CHECK)),
                tol=self.tol,
                n_iter_no_change=1,
                verbose=self.verbose,
                desc="FactorAnalysis EM",
                objective_name="log p(y)",
                estimator_name="FactorAnalysis",
                limit_message=f"in max_iter={self.max_iter} EM iterations",
                callback=self._epoch_callback(),
                result=result,
                warn=False,
            )
        finish()
        self._record_convergence(result.converged, f"in max_iter={self.max_iter} EM iterations",
                                 "max_iter", tol=self.tol)
        return params.W, stats.mean, params.noise, self._noise_attributes(params.noise)

    def _noise_attributes(self, noise):
        return {"noise_variance_": (noise * self._scale ** 2).to(self._dtype).cpu().numpy()}

    @staticmethod
    def _n_noise_parameters(n_features: int) -> int:
        return n_features

    # --- missing values (EM over the observed entries) ------------------------------------------
    _noise_model = "per_feature"

    def _em_max_iter(self):
        return int(self.max_iter)

    def _em_tol(self):
        return float(self.tol)

    def _em_floor(self):
        return float(self.min_noise)

    def _missing_attributes(self, W, noise) -> dict:
        return self._noise_attributes(noise)
