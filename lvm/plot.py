"""Figures for the things a person would rather look at than read.

Every helper returns a :class:`matplotlib.figure.Figure` built without pyplot's global state, so it
works headless (no display needed) and in notebooks alike; save it with ``fig.savefig(path)``.
matplotlib is imported lazily.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "latent_scatter",
    "ard_relevance",
    "training_curve",
    "evidence_comparison",
    "reconstructions",
    "samples",
]


def _figure(figsize):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _relevant_dims(model, n=2):
    """The n most relevant latent dimensions: by ARD relevance where the model has it, else the first."""
    relevance = getattr(model, "relevance_", None)
    if relevance is not None:
        return list(np.argsort(np.asarray(relevance))[::-1][:n])
    return list(range(n))


def latent_scatter(model, Y, labels=None, *, dims=None, ax=None, uncertainty=True, title=None,
                   max_ellipses=300, s=8):
    """Scatter of the posterior means E[x | y] in 2-D, coloured by ``labels``.

    With more than two latent dimensions the two most relevant are shown (ARD relevance where the
    model has it, else the first two); ``dims`` picks them explicitly. Where the model gives a
    posterior standard deviation, one-sigma ellipses are drawn for up to ``max_ellipses`` points.
    """
    from matplotlib.patches import Ellipse

    try:
        X, X_std = model.transform(Y, return_std=True)
    except TypeError:
        X, X_std = model.transform(Y), None
    X = np.asarray(X)
    if X.shape[1] == 1:
        X = np.column_stack([X, np.zeros(len(X))])
        X_std = None if X_std is None else np.column_stack([np.asarray(X_std), np.zeros(len(X))])
        dims = [0, 1]
    dims = list(dims) if dims is not None else _relevant_dims(model)
    if ax is None:
        fig = _figure((5, 4.5))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    xy = X[:, dims]
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=s, alpha=0.8, color="C0")
    else:
        labels = np.asarray(labels)
        for i, lab in enumerate(np.unique(labels)):
            m = labels == lab
            ax.scatter(xy[m, 0], xy[m, 1], s=s, alpha=0.8, color=f"C{i % 10}", label=str(lab))
        ax.legend(markerscale=2, fontsize="small", loc="best", ncol=2 if len(np.unique(labels)) > 5 else 1)
    if uncertainty and X_std is not None:
        std = np.asarray(X_std)[:, dims]
        step = max(1, len(xy) // max_ellipses)
        colors = (["C0"] * len(xy) if labels is None
                  else [f"C{np.searchsorted(np.unique(labels), l) % 10}" for l in labels])
        for i in range(0, len(xy), step):
            ax.add_patch(Ellipse(xy[i], 2 * std[i, 0], 2 * std[i, 1], fill=False, lw=0.4,
                                 alpha=0.4, color=colors[i]))
    ax.set_xlabel(f"latent dim {dims[0]}")
    ax.set_ylabel(f"latent dim {dims[1]}")
    ax.set_title(title or type(model).__name__)
    return fig


def ard_relevance(model, ax=None):
    """Bar chart of the ARD relevances (inverse lengthscales, normalized) of a GP-LVM."""
    relevance = getattr(model, "relevance_", None)
    if relevance is None:
        raise ValueError(
            f"{type(model).__name__} has no ARD relevances (relevance_); fit a BayesianGPLVM."
        )
    relevance = np.asarray(relevance)
    if ax is None:
        fig = _figure((5, 3))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    effective = getattr(model, "effective_dims_", None)
    colors = ["C0"] * len(relevance)
    if effective is not None:
        eff = set(np.atleast_1d(np.asarray(effective)).tolist()) if np.ndim(effective) else set(
            np.argsort(relevance)[::-1][: int(effective)].tolist())
        colors = ["C0" if i in eff else "0.7" for i in range(len(relevance))]
    ax.bar(np.arange(len(relevance)), relevance, color=colors)
    ax.set_xlabel("latent dimension")
    ax.set_ylabel("relevance")
    ax.set_xticks(np.arange(len(relevance)))
    ax.set_title("ARD relevance")
    return fig


def training_curve(model, ax=None):
    """The objective per epoch from ``history_`` (train, and validation where recorded)."""
    history = getattr(model, "history_", None)
    if not history:
        raise ValueError(f"{type(model).__name__} has no training history (history_); fit it first.")
    if ax is None:
        fig = _figure((5, 3))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
    ax.plot(epochs, [h["train"] for h in history], label="train")
    if any("validation" in h for h in history):
        ax.plot([e for e, h in zip(epochs, history) if "validation" in h],
                [h["validation"] for h in history if "validation" in h], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("objective per point (nats)")
    ax.legend()
    ax.set_title(f"{type(model).__name__} training")
    return fig


def evidence_comparison(table, ax=None, split="test"):
    """Mean log p(y) per point by model, with standard errors, from :func:`lvm.compare`."""
    records = list(table)
    if not records:
        raise ValueError("The comparison table is empty.")
    if ax is None:
        fig = _figure((1.4 * len(records) + 2.5, 3.2))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    key = f"{split}_log_evidence"
    vals = np.array([r[key] for r in records])
    errs = np.array([r.get(f"{split}_stderr", 0.0) for r in records])
    markers = {"exact": "o", "lower bound": "v", "importance-weighted estimate": "D"}
    seen = set()
    for i, r in enumerate(records):
        kind = r["evidence"]
        ax.errorbar(i, vals[i], yerr=errs[i], fmt=markers.get(kind, "s"), color=f"C{i % 10}",
                    capsize=5, ms=8, label=None if kind in seen else kind)
        seen.add(kind)
    ax.legend(fontsize="small", loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    ax.set_xticks(range(len(records)), [r["model"] for r in records], rotation=20)
    ax.set_ylabel(f"{split} log p(y) per point (nats)")
    lo, hi = vals.min() - 2 * errs.max(), vals.max() + 2 * errs.max()
    pad = 0.1 * max(hi - lo, 1e-9)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_title("Evidence per point (± standard error)")
    return fig


def _image_grid(fig, rows, image_shape, titles=None, cmap="gray"):
    n_rows, n_cols = len(rows), len(rows[0])
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            ax = axes[i][j]
            ax.imshow(np.asarray(img).reshape(image_shape), cmap=cmap)
            ax.set_xticks([])
            ax.set_yticks([])
        if titles:
            axes[i][0].set_ylabel(titles[i])
    return fig


def reconstructions(model, Y, image_shape, n=8):
    """Originals (top) and their reconstructions f(E[x | y]) (bottom) for image data."""
    Y = np.asarray(Y)[:n]
    R = np.asarray(model.inverse_transform(model.transform(Y)))
    fig = _figure((1.1 * len(Y), 2.4))
    return _image_grid(fig, [Y, R], image_shape, titles=["data", "reconstruction"])


def samples(model, n=16, image_shape=None, random_state=0):
    """Images drawn from the fitted generative model (decoder means where noise would only blur)."""
    if image_shape is None:
        raise ValueError("samples() needs image_shape, e.g. (8, 8) for the digits.")
    S = np.asarray(model.sample(n, random_state=random_state))
    cols = int(np.ceil(np.sqrt(n)))
    rows = [list(S[i:i + cols]) for i in range(0, n, cols)]
    rows[-1] += [np.zeros_like(S[0])] * (cols - len(rows[-1]))
    fig = _figure((1.1 * cols, 1.1 * len(rows)))
    return _image_grid(fig, rows, image_shape)
