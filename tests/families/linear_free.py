r"""A minimal family on the abstract base: y = W x + b + e, e ~ N(0, s^2 I), x ~ N(0, I_K), with
free q(x_n) = N(m_n, diag v_n), trained by the closed-form ELBO

.. math::
    \ell_n = -\tfrac12 \sum_d \Big[\log 2\pi s^2 + \frac{(z_{nd} - (W m_n + b)_d)^2
    + \sum_k W_{dk}^2 v_{nk}}{s^2}\Big] - \tfrac12 \sum_k (v_{nk} + m_{nk}^2 - 1 - \log v_{nk}).

For any row, training or new, q(x | z) is the maximizer of that bound given W, b, s^2: the
exact posterior mean and the inverse diagonal of the posterior precision P = I + W^T W / s^2.
"""

import torch
from torch import nn

from lvm import Family, FamilyEstimator, TrainingPlan
from lvm._validation import positive_int, positive_real
from lvm.latents import PointLatent, kl_standard
from lvm.likelihoods import GaussianLikelihood


class LinearFreeFamily(Family):
    def __init__(self, Z, K, generator):
        super().__init__(GaussianLikelihood.from_data(Z, noise="shared"))
        (N, D), like = Z.shape, dict(dtype=Z.dtype, device=Z.device)
        self.W = nn.Parameter(torch.randn(D, K, generator=generator, **like) / D**0.5)
        self.b = nn.Parameter(Z.mean(0))
        self.q = PointLatent(torch.zeros(N, K, **like), torch.ones(N, K, **like))

    def local_parameters(self):
        return list(self.q.parameters())

    def objective(self, z, rows, generator):
        m, v = self.q(rows=rows)
        mean, var = m @ self.W.T + self.b, v @ (self.W**2).T
        return self.likelihood.expected_log_prob(z, mean, var) - kl_standard(m, v), None

    def posterior(self, z):
        s2 = self.likelihood.noise
        P = torch.eye(self.W.shape[1], dtype=z.dtype, device=z.device) + self.W.T @ self.W / s2
        mean = torch.linalg.solve(P, self.W.T @ (z - self.b).T / s2).T
        return mean, (1.0 / torch.diagonal(P)).expand_as(mean)

    def log_likelihood(self, z, x):
        return self.likelihood.log_prob(z, self.decode(x))

    def decode(self, x):
        return x @ self.W.T + self.b

    def decoder_sample(self, x, generator):  # f = W x + b is deterministic given x
        return self.decode(x)


class LinearFree(FamilyEstimator):
    """Linear-Gaussian decoder with free q(x_n), fitted by L-BFGS on the closed-form ELBO."""

    family = "linear (free posteriors)"
    _default_dtype = torch.float64
    _parameter_constraints = {**FamilyEstimator._parameter_constraints,
                              "n_components": [positive_int()], "max_epochs": [positive_int()],
                              "tol": [positive_real(), None]}

    def __init__(self, n_components=2, *, max_epochs=20, tol=1e-8, n_importance_samples=64,
                 device="auto", dtype=None, random_state=None, verbose=False):
        self.n_components = n_components
        self.max_epochs = max_epochs
        self.tol = tol
        self.n_importance_samples = n_importance_samples
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    def _plan(self, Z):
        return TrainingPlan(mode="full", optimizer="lbfgs", learning_rate=1.0, tol=self.tol,
                            max_epochs=self.max_epochs, steps_per_epoch=20, iters_per_epoch=20)

    def _make_family(self, Z):
        return LinearFreeFamily(Z, self.n_components_, self._generator)
