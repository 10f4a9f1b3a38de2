"""Family 1, the linear decoder f(x) = W x + mu: PPCA (closed form) and Factor Analysis (EM)."""

from .factor_analysis import FactorAnalysis
from .ppca import PPCA

__all__ = ["PPCA", "FactorAnalysis"]
