"""Probabilistic PCA (Tipping & Bishop, 1999), maximum likelihood in closed form."""

from __future__ import annotations

import numbers

import torch

from .._distributed import is_distributed
from .._validation import Interval, StrOptions, positive_int
from ._linear import LinearGaussianModel
from .._stats import DEFAULT_CHUNK, GaussianStats, descending_eigh


class PPCA(LinearGaussianModel):
    r"""Probabilistic principal component analysis with exact evidence.

    The model is :math:`x \sim \mathcal N(0, I_K)`, :math:`y \mid x \sim \mathcal N(W x + \mu,
    \sigma^2 I_D)`, so :math:`p(y) = \mathcal N(y; \mu, W W^\top + \sigma^2 I)`. Its maximum-likelihood
    solution is closed form (Tipping & Bishop, 1999): with :math:`\lambda_1 \ge \dots \ge \lambda_D`
    and :math:`U` the eigenvalues and eigenvectors of the sample covariance :math:`S`,

    .. math::
        \mu = \bar y, \qquad \sigma^2 = \frac{1}{D-K} \sum_{j>K} \lambda_j, \qquad
        W = U_K (\Lambda_K - \sigma^2 I)^{1/2}.

    The fit costs one D x D covariance (a single pass over the data, in chunks) and one D x D
    eigendecomposition; when there are fewer samples than features, a thin SVD of the centred data
    is used instead.

    **Convention.** :math:`S` is the maximum-likelihood covariance, :math:`\frac1N \sum_n (y_n - \bar
    y)(y_n - \bar y)^\top`. scikit-learn's :class:`~sklearn.decomposition.PCA` divides by N - 1, so
    its ``score`` is that of a slightly wider Gaussian; rescale its ``explained_variance_`` and
    ``noise_variance_`` by (N - 1) / N to compare like with like.

    Parameters
    ----------
    n_components : int or "auto", default=2
        Latent dimension K (at most n_features). ``"auto"`` picks K by Minka's (2000) Laplace
        approximation to the evidence p(Y | K) (scikit-learn's implementation, as for
        ``PCA(n_components="mle")``), which needs n_samples >= n_features and complete data.
    max_iter : int, default=1000
        EM iterations when Y has missing values (NaN); complete data are fitted in closed form.
    tol : float, default=1e-9
        EM stops when the observed-data log-likelihood changes by less than ``tol`` times its
        magnitude (missing values only).
    device : {"auto", "cpu", "cuda"} or torch.device, default="auto"
        Where the linear algebra runs; "auto" takes CUDA when available.
    dtype : {"float32", "float64"} or None, default=None
        Dtype of the fitted parameters and of the outputs; None computes in float64 and returns
        the input's float dtype. Statistics are always accumulated in float64.
    chunk_size : int, default=65536
        Rows per chunk when accumulating the covariance (memory is O(chunk_size * D)).
    random_state : int, RandomState or None, default=None
        Seeds :meth:`sample`; the fit itself is deterministic.
    verbose : bool, default=False
        Show the progress of EM with missing values (the closed form has none).

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        W^T: the rows are the scaled principal axes.
    mean_ : ndarray of shape (n_features,)
    noise_variance_ : float
        sigma^2. With ``n_components = n_features`` every sigma^2 <= lambda_D gives the same
        covariance (the sample covariance); lvm takes lambda_D, which keeps the evidence and the
        posterior well conditioned.
    explained_variance_ : ndarray of shape (n_components,)
        The top eigenvalues lambda_1..lambda_K of the ML covariance.
    eigenvalues_ : ndarray of shape (n_features,)
        All eigenvalues of the ML covariance, descending.
    n_components_ : int
    log_evidence_ : float
        Exact log p(Y) of the training data, summed over samples, in nats.
    train_evidence_ : float
        The same per sample (every lvm estimator's training evidence, ``train_evidence_kind``
        "exact").
    location_, scale_ : ndarray of shape (n_features,), float
        The standardization the model is computed in (see :mod:`lvm._base`); everything public is
        in the data's units.
    n_parameters_ : int
        D K + D + 1.
    n_iter_ : int
        EM iterations with missing values; 1 (one closed-form solve) otherwise.
    converged_ : bool
        Whether EM converged (missing values only).
    history_ : list of dict
        With missing values, one record per EM iteration in the layout of every lvm estimator:
        ``epoch``, ``n_iter``, ``train`` (the exact observed-data log-likelihood per sample in
        the data's units) and ``validation`` (None).
    n_features_in_ : int

    References
    ----------
    Tipping, M. E. & Bishop, C. M. (1999). Probabilistic principal component analysis. JRSS B 61(3).
    Minka, T. P. (2000). Automatic choice of dimensionality for PCA. NIPS 13.

    Examples
    --------
    >>> import lvm
    >>> data = lvm.datasets.make_ppca(500, 10, 2, noise=0.1, random_state=0)
    >>> model = lvm.PPCA(n_components=2).fit(data.Y)
    >>> round(model.score(data.Y), 1)  # exact log p(y) per sample, nats
    -6.7
    """

    _parameter_constraints: dict = {
        **LinearGaussianModel._parameter_constraints,
        "n_components": [positive_int(), StrOptions({"auto"})],
        "max_iter": [positive_int()],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
    }

    def __init__(self, n_components=2, *, max_iter=1000, tol=1e-9, device="auto", dtype=None,
                 chunk_size=DEFAULT_CHUNK, random_state=None, verbose=False):
        self.n_components = n_components
        self.max_iter = max_iter
        self.tol = tol
        self.device = device
        self.dtype = dtype
        self.chunk_size = chunk_size
        self.random_state = random_state
        self.verbose = verbose

    def _check_data_hyperparameters(self, Y):
        super()._check_data_hyperparameters(Y)
        n, d = Y.shape
        if self.n_components == "auto" and n < d:
            raise ValueError(
                f"n_components='auto' (Minka's evidence) needs n_samples >= n_features; got "
                f"{n} samples and {d} features. Pass an integer n_components."
            )

    def _fits_from_stats(self, T):
        return not self._thin(T)

    def _thin(self, Z) -> bool:
        return Z.shape[0] < Z.shape[1] and self.n_components != "auto" and not is_distributed()

    def _fit(self, Z):
        if self._thin(Z) and not bool(torch.isnan(Z).any()):
            # Fewer samples than features: the thin SVD of the centred data is cheaper than a
            # D x D eigendecomposition and gives the same spectrum (padded with zeros); its root
            # stands in for the scatter, formed only if partial_fit later merges more rows.
            Z64 = Z.to(torch.float64)
            mean = Z64.mean(0)
            svd = torch.linalg.svd(Z64 - mean, full_matrices=False)
            stats = GaussianStats(Z.shape[0], mean, root=svd.S.unsqueeze(1) * svd.Vh)
            eigvals = torch.zeros(Z.shape[1], dtype=torch.float64, device=Z.device)
            eigvals[: svd.S.shape[0]] = svd.S**2 / Z.shape[0]
            self._fit_to(stats, spectrum=(eigvals, svd.Vh.T))
        else:
            super()._fit(Z)

    def _solve(self, stats: GaussianStats, spectrum=None):
        """The closed-form ML solution from the descending spectrum of the ML covariance."""
        eigvals, eigvecs = spectrum if spectrum is not None else descending_eigh(stats.covariance)
        D = eigvals.shape[0]
        eigvals = eigvals.clamp_min(0.0)
        if self.n_components == "auto":
            from sklearn.decomposition._pca import _infer_dimension

            K = max(1, int(_infer_dimension(eigvals.cpu().numpy(), stats.n)))
        else:
            K = int(self.n_components)
        # With K = D every sigma^2 <= lambda_D gives the same C (the sample covariance); take
        # lambda_D, which keeps the posterior (and the evidence) well conditioned.
        sigma2 = eigvals[K:].mean() if K < D else eigvals[-1]
        # Data of rank <= K make sigma^2 = 0 and p(y) degenerate; keep it a tiny positive
        # fraction of the largest variance (relative, so the same in any units).
        top = eigvals[0] if float(eigvals[0]) > 0 else eigvals.new_ones(())
        sigma2 = torch.maximum(sigma2, torch.finfo(torch.float64).eps * D * top)
        scale = torch.sqrt((eigvals[:K] - sigma2).clamp_min(0.0))
        W = eigvecs[:, :K] * scale
        s2 = self._scale ** 2
        extra = {"n_iter_": 1,  # one closed-form solve (EM iterations with missing values)
                 "noise_variance_": float(sigma2) * s2,
                 "explained_variance_": (eigvals[:K] * s2).cpu().numpy(),
                 "eigenvalues_": (eigvals * s2).cpu().numpy()}
        return W, stats.mean, sigma2.expand(D).clone(), extra

    @staticmethod
    def _n_noise_parameters(n_features: int) -> int:
        return 1

    # --- missing values (EM) --------------------------------------------------------------------
    def _em_max_iter(self):
        return int(self.max_iter)

    def _em_tol(self):
        return float(self.tol)

    def _em_floor(self):
        return 1e-8

    def _missing_attributes(self, W, noise) -> dict:
        s2 = self._scale ** 2
        C = W @ W.T + torch.diag(noise)
        eigvals = descending_eigh(C)[0]
        K = W.shape[1]
        return {"noise_variance_": float(noise[0]) * s2,
                "explained_variance_": (eigvals[:K] * s2).cpu().numpy(),
                "eigenvalues_": (eigvals * s2).cpu().numpy()}
