"""The data sets the VAE is held to the linear models on: fixed splits, fixed dequantization, one
latent dimension per data set (the same K for the VAE and the linear model it must match)."""

from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

import lvm
from lvm.datasets import DataFileNotFoundError

#: name -> latent dimension K: 2 for the 2-D synthetic PPCA data and for oil flow (three flow
#: regimes on a curved low-dimensional manifold, the classic 2-D embedding), 5 for the 8 x 8
#: digits, 10 for the Frey faces and USPS (larger images, more factors of variation).
N_COMPONENTS = {"ppca": 2, "oil": 2, "digits": 5, "frey": 10, "usps": 10}


def _dequantize(Y, seed):
    """Integer data plus U[0, 1) noise: a continuous density on the dequantized values is a lower
    bound on the log-probability of the integers (the same draws for every model)."""
    return Y + np.random.default_rng(seed).random(Y.shape)


def load_problem(name: str) -> SimpleNamespace:
    """``Y_train``, ``Y_test`` (float64), ``K`` and a description; skips when the data are absent."""
    try:
        if name == "ppca":
            d = lvm.datasets.make_ppca(3000, 20, 2, noise=0.1, random_state=0)
            Y_tr, Y_te = d.Y[:2000], d.Y[2000:]
            what = "make_ppca(3000, 20, 2, noise=0.1), first 2000 rows train, last 1000 test"
        elif name == "oil":
            Y_tr = lvm.datasets.load_oil_flow(split="train").Y
            Y_te = lvm.datasets.load_oil_flow(split="test").Y
            what = "oil flow, its train split (1000) / its test split (1000)"
        elif name == "digits":
            d = lvm.datasets.load_digits()
            Y_tr, Y_te = train_test_split(_dequantize(d.Y, 0), test_size=0.2, random_state=0,
                                          stratify=d.labels)
            what = "digits 0..16 + U[0, 1) (seed 0), stratified 80/20 split (seed 0)"
        elif name == "frey":
            Y = np.round(lvm.datasets.load_frey_faces().Y * 255.0)  # the integer pixel values
            Y_tr, Y_te = train_test_split(_dequantize(Y, 0), test_size=0.2, random_state=0)
            what = "Frey faces 0..255 + U[0, 1) (seed 0), random 80/20 split (seed 0)"
        elif name == "usps":
            Y_tr = lvm.datasets.load_usps(split="train").Y
            Y_te = lvm.datasets.load_usps(split="test").Y
            what = "USPS in [0, 1], its train split (7291) / its test split (2007)"
        else:
            raise ValueError(f"unknown problem {name!r}")
    except DataFileNotFoundError as exc:
        pytest.skip(f"{name}: {str(exc).splitlines()[0]}")
    return SimpleNamespace(name=name, Y_train=np.asarray(Y_tr, dtype=np.float64),
                           Y_test=np.asarray(Y_te, dtype=np.float64), K=N_COMPONENTS[name],
                           description=what)
