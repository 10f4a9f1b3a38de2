from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch, check_random_state

#: Environment variable naming a folder that holds the benchmark .npz files.
DATA_DIR_ENV = "LVM_DATA_DIR"


class DataFileNotFoundError(FileNotFoundError):
    """A benchmark data file is not on this machine; the message says how to obtain it."""


def _candidate_dirs():
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        yield Path(env)
    here = Path(__file__).resolve()
    # The project checkout sits beside ../shared/data; also look from the working directory.
    for base in (here.parents[2], Path.cwd()):
        yield base.parent / "shared" / "data"
        yield base / "shared" / "data"


def _find(filename: str, path, env_var: str, how_to_get: str) -> Path:
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise DataFileNotFoundError(f"No file at {p}. {how_to_get}")
        return p
    specific = os.environ.get(env_var)
    if specific:
        p = Path(specific)
        if not p.is_file():
            raise DataFileNotFoundError(f"{env_var}={specific} does not name a file. {how_to_get}")
        return p
    for d in _candidate_dirs():
        if (d / filename).is_file():
            return d / filename
    raise DataFileNotFoundError(
        f"{filename} was not found. Pass path=..., set {env_var} to the file or {DATA_DIR_ENV} to "
        f"its folder, or place it at ../shared/data/{filename} beside the project. {how_to_get}"
    )


def load_digits() -> Bunch:
    """Load scikit-learn's bundled 8x8 digits: 1797 x 64, pixel values 0..16, ten classes.

    Always available (shipped with scikit-learn).

    Returns
    -------
    sklearn.utils.Bunch
        ``Y`` (1797, 64) float64, ``labels`` (1797,) the digit, ``image_shape`` (8, 8) and
        ``description``.

    Examples
    --------
    >>> import lvm
    >>> digits = lvm.datasets.load_digits()
    >>> digits.Y.shape, digits.image_shape
    ((1797, 64), (8, 8))
    """
    from sklearn.datasets import load_digits as _sk

    d = _sk()
    return Bunch(
        Y=d.data.astype(np.float64),
        labels=d.target.astype(np.int64),
        image_shape=(8, 8),
        description="UCI optical handwritten digits (8x8, 0..16), scikit-learn's bundled copy.",
    )


_OIL_HOW = (
    "The three-phase oil-flow data (Bishop & James 1993) is in Neil Lawrence's datasets mirror "
    "(github.com/lawrennd/datasets_mirror, three_phase_oil_flow/) and GPyTorch's examples "
    "(examples/045_GPLVM/3PhData.tar.gz); save DataTrn.txt and DataTrnLbls.txt as "
    "oil_flow.npz with arrays Y (1000 x 12) and labels (argmax of the one-hot rows). "
    "See datasets/README.md."
)


def load_oil_flow(path=None, split: str = "train") -> Bunch:
    """Load the three-phase oil-flow benchmark: 1000 x 12, three flow regimes.

    Parameters
    ----------
    path : str or Path, optional
        The ``oil_flow.npz`` file. Otherwise ``$LVM_OIL_FLOW``, then ``$LVM_DATA_DIR/oil_flow.npz``,
        then ``../shared/data/oil_flow.npz`` beside the project.
    split : {"train", "valid", "test"}, default="train"
        Which of the benchmark's three sets of 1000 points.

    Returns
    -------
    sklearn.utils.Bunch
        ``Y`` (1000, 12) float64 (raw), ``labels`` (1000,) the flow regime 0, 1 or 2, and
        ``description``.

    Raises
    ------
    DataFileNotFoundError
        When the file is not on this machine; the message says how to obtain it.
    """
    keys = {"train": ("Y", "labels"), "valid": ("Y_valid", "labels_valid"),
            "test": ("Y_test", "labels_test")}
    if split not in keys:
        raise ValueError(f"split must be one of {sorted(keys)}, got {split!r}.")
    p = _find("oil_flow.npz", path, "LVM_OIL_FLOW", _OIL_HOW)
    with np.load(p) as f:
        ky, kl = keys[split]
        return Bunch(Y=f[ky].astype(np.float64), labels=f[kl].astype(np.int64),
                     description=f"Three-phase oil flow (Bishop & James 1993), {split} split, raw.")


def load_frey_faces(path=None) -> Bunch:
    """Load Brendan Frey's face frames: 1965 x 560 (28 x 20 images), pixels scaled to [0, 1].

    Parameters
    ----------
    path : str or Path, optional
        The ``frey_faces.npz`` file. Otherwise ``$LVM_FREY_FACES``, then
        ``$LVM_DATA_DIR/frey_faces.npz``, then ``../shared/data/frey_faces.npz`` beside the
        project.

    Returns
    -------
    sklearn.utils.Bunch
        ``Y`` (1965, 560) float64, ``labels`` None, ``image_shape`` (28, 20) and
        ``description``.

    Raises
    ------
    DataFileNotFoundError
        When the file is not on this machine; the message says how to obtain it.
    """
    p = _find("frey_faces.npz", path, "LVM_FREY_FACES",
              "It is Roweis' frey_rawface.mat; see datasets/README.md.")
    with np.load(p) as f:
        return Bunch(Y=f["Y"].astype(np.float64) / 255.0, labels=None, image_shape=(28, 20),
                     description="Frey faces (Roweis' frey_rawface.mat), pixels / 255.")


def load_olivetti_faces(path=None) -> Bunch:
    """Load the Olivetti faces: 400 x 4096 (64 x 64 images), 40 subjects, pixels / 255.

    Parameters
    ----------
    path : str or Path, optional
        The ``olivetti_faces.npz`` file. Otherwise ``$LVM_OLIVETTI_FACES``, then
        ``$LVM_DATA_DIR/olivetti_faces.npz``, then ``../shared/data/olivetti_faces.npz`` beside
        the project.

    Returns
    -------
    sklearn.utils.Bunch
        ``Y`` (400, 4096) float64, ``labels`` (400,) the subject, ``image_shape`` (64, 64) and
        ``description``.

    Raises
    ------
    DataFileNotFoundError
        When the file is not on this machine; the message says how to obtain it.
    """
    p = _find("olivetti_faces.npz", path, "LVM_OLIVETTI_FACES",
              "It is Roweis' olivettifaces.mat; see datasets/README.md.")
    with np.load(p) as f:
        return Bunch(Y=f["Y"].astype(np.float64), labels=f["labels"].astype(np.int64),
                     image_shape=(64, 64), description="Olivetti / AT&T faces, pixels / 255.")


def load_usps(path=None, split: str = "train") -> Bunch:
    """Load the USPS digits: 7291 (train) or 2007 (test) x 256 (16 x 16 images), in [0, 1].

    Parameters
    ----------
    path : str or Path, optional
        The ``usps.npz`` file. Otherwise ``$LVM_USPS``, then ``$LVM_DATA_DIR/usps.npz``, then
        ``../shared/data/usps.npz`` beside the project.
    split : {"train", "test"}, default="train"
        Which set.

    Returns
    -------
    sklearn.utils.Bunch
        ``Y`` (n, 256) float64, ``labels`` (n,) the digit, ``image_shape`` (16, 16) and
        ``description``.

    Raises
    ------
    DataFileNotFoundError
        When the file is not on this machine; the message says how to obtain it.
    """
    p = _find("usps.npz", path, "LVM_USPS", "It is the common usps.h5; see datasets/README.md.")
    ky, kl = {"train": ("Y", "labels"), "test": ("Y_test", "labels_test")}[split]
    with np.load(p) as f:
        return Bunch(Y=f[ky].astype(np.float64), labels=f[kl].astype(np.int64),
                     image_shape=(16, 16), description=f"USPS digits, {split} split.")


def make_ppca(n_samples=1000, n_features=10, n_components=2, noise=0.1, random_state=None) -> Bunch:
    """Draw synthetic data from the PPCA model, with its true parameters.

    y = W x + mean + e, x ~ N(0, I_K), e ~ N(0, noise I_D); W has orthogonal columns with
    decreasing norms (3, 2.5, ...) and the mean is standard normal.

    Parameters
    ----------
    n_samples : int, default=1000
        N, the number of points.
    n_features : int, default=10
        D.
    n_components : int, default=2
        K, the true latent dimension (at most ``n_features``).
    noise : float, default=0.1
        The noise variance sigma^2 (positive).
    random_state : int, RandomState or None, default=None
        Seeds the parameters and the draws.

    Returns
    -------
    sklearn.utils.Bunch
        ``Y`` (n_samples, n_features), ``X`` (n_samples, n_components) the true latents, ``W``
        (n_features, n_components), ``mean`` (n_features,), ``noise`` (the variance sigma^2),
        ``labels`` (None) and ``description``.

    Examples
    --------
    >>> import lvm
    >>> data = lvm.datasets.make_ppca(500, 10, 2, noise=0.1, random_state=0)
    >>> data.Y.shape, data.W.shape
    ((500, 10), (10, 2))
    """
    for name, v in (("n_samples", n_samples), ("n_features", n_features),
                    ("n_components", n_components)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}.")
    if n_components > n_features:
        raise ValueError(f"n_components={n_components} must be at most n_features={n_features}.")
    if not noise > 0:
        raise ValueError(f"noise must be a positive variance, got {noise!r}.")
    rng = check_random_state(random_state)
    Q, _ = np.linalg.qr(rng.standard_normal((n_features, n_components)))
    scales = 3.0 - 0.5 * np.arange(n_components) * (2.5 / max(1, n_components))
    W = Q * scales
    mean = rng.standard_normal(n_features)
    X = rng.standard_normal((n_samples, n_components))
    Y = X @ W.T + mean + np.sqrt(noise) * rng.standard_normal((n_samples, n_features))
    return Bunch(Y=Y, X=X, W=W, mean=mean, noise=float(noise), labels=None,
                 description=f"PPCA data: {n_samples} x {n_features}, K={n_components}, "
                             f"noise variance {noise}.")


def make_counts(n_samples=1000, n_features=20, n_components=2, likelihood="poisson", *,
                scale=0.7, rate=5.0, total_count=5.0, random_state=None) -> Bunch:
    r"""Draw synthetic count data from a Poisson-PCA or negative-binomial PCA model, with its truth.

    x ~ N(0, I_K), f = W x + b, and per entry y ~ Poisson(exp f) or, for
    ``likelihood="negative_binomial"``, y ~ NB(mean exp f, size ``total_count``)
    (Var y = mu + mu^2 / r). W has orthogonal columns of norm ``scale``, so each log-mean varies
    with standard deviation at most ``scale`` over the points, and b is chosen so that feature d's
    mean count is ``rate`` times a log-normal factor (standard deviation 0.5 on the log scale):
    :math:`b_d = \log \mathrm{rate} + 0.5\, g_d - \tfrac12 \lVert W_d \rVert^2`, g_d ~ N(0, 1).
    These are the models of ``lvm.VAE(K, hidden_sizes=(), likelihood=...)``, which can
    represent the truth exactly.

    Parameters
    ----------
    n_samples : int, default=1000
        N, the number of points.
    n_features : int, default=20
        D.
    n_components : int, default=2
        K, the true latent dimension (at most ``n_features``).
    likelihood : {"poisson", "negative_binomial"}, default="poisson"
        The distribution of the counts given f.
    scale : float, default=0.7
        The norm of every column of W (non-negative).
    rate : float, default=5.0
        The typical mean count of a feature (positive).
    total_count : float, default=5.0
        The negative binomial's size r, the same for every feature (positive; ignored for the
        Poisson).
    random_state : int, RandomState or None, default=None
        Seeds the parameters and the draws.

    Returns
    -------
    sklearn.utils.Bunch
        ``Y`` (n_samples, n_features) the counts as float64, ``X`` (n_samples, n_components) the
        true latents, ``W`` (n_features, n_components), ``bias`` (n_features,), ``likelihood``,
        ``total_count`` (None for the Poisson), ``labels`` (None) and ``description``.

    Examples
    --------
    >>> import lvm
    >>> data = lvm.datasets.make_counts(500, 20, 2, random_state=0)
    >>> data.Y.shape, data.W.shape, bool((data.Y == data.Y.round()).all())
    ((500, 20), (20, 2), True)
    """
    for name, v in (("n_samples", n_samples), ("n_features", n_features),
                    ("n_components", n_components)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}.")
    if n_components > n_features:
        raise ValueError(f"n_components={n_components} must be at most n_features={n_features}.")
    if likelihood not in ("poisson", "negative_binomial"):
        raise ValueError(f"likelihood must be 'poisson' or 'negative_binomial', got "
                         f"{likelihood!r}.")
    if not scale >= 0:
        raise ValueError(f"scale must be a non-negative number, got {scale!r}.")
    for name, v in (("rate", rate), ("total_count", total_count)):
        if not v > 0:
            raise ValueError(f"{name} must be a positive number, got {v!r}.")
    rng = check_random_state(random_state)
    Q, _ = np.linalg.qr(rng.standard_normal((n_features, n_components)))
    W = Q * float(scale)
    bias = np.log(rate) + 0.5 * rng.standard_normal(n_features) - 0.5 * (W ** 2).sum(1)
    X = rng.standard_normal((n_samples, n_components))
    mu = np.exp(X @ W.T + bias)
    if likelihood == "negative_binomial":
        r = float(total_count)
        mu = mu * rng.gamma(r, 1.0 / r, size=mu.shape)  # gamma-Poisson: NB(mu, r)
    Y = rng.poisson(mu).astype(np.float64)
    return Bunch(Y=Y, X=X, W=W, bias=bias, likelihood=likelihood,
                 total_count=float(total_count) if likelihood == "negative_binomial" else None,
                 labels=None,
                 description=f"{likelihood} PCA counts: {n_samples} x {n_features}, "
                             f"K={n_components}, scale {scale}, rate {rate}"
                             + (f", size {total_count}" if likelihood == "negative_binomial"
                                else "") + ".")
