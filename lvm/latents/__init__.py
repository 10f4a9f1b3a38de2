"""The latent variable x: its prior N(0, I) and the posteriors q(x | y) families use.

Every posterior maps rows to ``(mean, variance)``: :class:`AmortizedLatent` from the rows' data
(an encoder), :class:`PointLatent` from the rows' ids (free parameters per training row). Neither
ever indexes the data; :class:`FrozenPosteriors` keeps the fitted q(x_n) of training rows with
the rows, to look rows up.
"""

from .amortized import AmortizedLatent
from .free import PointLatent, fit_frozen
from .frozen import FrozenPosteriors
from .prior import kl_standard, kl_standard_log_var, log_prior, sample_prior

__all__ = ["AmortizedLatent", "PointLatent", "FrozenPosteriors", "fit_frozen", "kl_standard",
           "kl_standard_log_var", "log_prior", "sample_prior"]
