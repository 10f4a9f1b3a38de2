"""Figures for the things a person would rather look at than read.

Every helper returns a :class:`matplotlib.figure.Figure` built without pyplot's global state, so it
works headless (no display needed) and in notebooks alike; save it with ``fig.savefig(path)``.
matplotlib is imported lazily.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "EVIDENCE_STYLES",
    "latent_scatter",
    "embedding_report",
    "ard_relevance",
    "training_curve",
    "evidence_comparison",
    "comparison",
    "reconstructions",
    "samples",
    "samples_panel",
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


def _label_colors(labels):
    """(sorted unique labels, the colour of each point) with one fixed colour per label."""
    labels = np.asarray(labels)
    classes, index = np.unique(labels, return_inverse=True)
    return classes, np.array([f"C{i % 10}" for i in range(len(classes))])[index.ravel()]


def _ellipse_legend_handle(legend, orig_handle, xdescent, ydescent, width, height, fontsize):
    from matplotlib.patches import Ellipse

    return Ellipse((width / 2 - xdescent, height / 2 - ydescent), 0.8 * width, 1.2 * height)


def latent_scatter(model, Y, labels=None, *, dims=None, ax=None, uncertainty=True, title=None,
                   max_ellipses=300, s=8):
    """Scatter of the posterior means E[x | y], coloured by ``labels``.

    With more than two latent dimensions the two most relevant are shown (ARD relevance where the
    model has it, else the first two); ``dims`` picks them explicitly. Where the model gives a
    posterior standard deviation, ellipses of ±1 sd of q(x | y) along each shown axis are drawn for
    up to ``max_ellipses`` points (evenly spaced), and the legend says so.

    A model with one latent dimension gets a 1-D plot: the latent on the x axis, one row of
    points per label (jittered vertically, the rows named on the y axis; one jittered row without
    labels) and ±1 sd as horizontal bars.

    Parameters
    ----------
    model : fitted lvm estimator
        Any estimator with ``transform``.
    Y : array-like of shape (n_samples, n_features)
        The points to embed.
    labels : array-like of shape (n_samples,), optional
        Colours the points, one fixed colour per label, with a legend.
    dims : sequence of two int, optional
        The latent dimensions to show.
    ax : matplotlib.axes.Axes, optional
        Draw into these axes instead of a new figure.
    uncertainty : bool, default=True
        Draw the ±1 sd ellipses (or bars) where the model gives a posterior standard deviation.
    title : str, optional
        The axes' title.
    max_ellipses : int, default=300
        At most this many ellipses.
    s : float, default=8
        The marker size.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (that of ``ax`` when given).
    """
    from matplotlib.legend_handler import HandlerPatch
    from matplotlib.patches import Ellipse

    try:
        X, X_std = model.transform(Y, return_std=True)
    except TypeError:
        X, X_std = model.transform(Y), None
    X = np.asarray(X)
    X_std = None if X_std is None or not uncertainty else np.asarray(X_std)
    if ax is None:
        fig = _figure((5, 4.5) if X.shape[1] > 1 else (5.5, 3.2))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    classes, colors = (None, np.full(len(X), "C0")) if labels is None else _label_colors(labels)
    step = max(1, -(-len(X) // max_ellipses))  # ceil: at most max_ellipses marks
    which = "" if step == 1 else f", 1 in {step} points"
    handles, handler_map = [], {}
    if X.shape[1] == 1:
        _strip(ax, X[:, 0], X_std, labels, classes, colors, step, s)
        if X_std is not None:
            from matplotlib.lines import Line2D

            handles.append(Line2D([], [], color="0.3", lw=0.8, marker="|",
                                  label=f"bars: ±1 sd of q(x | y){which}"))
        ax.set_xlabel("latent dim 0")
    else:
        dims = list(dims) if dims is not None else _relevant_dims(model)
        xy = X[:, dims]
        if labels is None:
            ax.scatter(xy[:, 0], xy[:, 1], s=s, alpha=0.8, color="C0")
        else:
            labels = np.asarray(labels)
            for i, lab in enumerate(classes):
                m = labels == lab
                ax.scatter(xy[m, 0], xy[m, 1], s=s, alpha=0.8, color=f"C{i % 10}", label=str(lab))
        if X_std is not None:
            std = X_std[:, dims]
            for i in range(0, len(xy), step):
                ax.add_patch(Ellipse(xy[i], 2 * std[i, 0], 2 * std[i, 1], fill=False, lw=0.4,
                                     alpha=0.4, color=colors[i]))
            handles.append(Ellipse((0, 0), 1, 1, fill=False, lw=0.8, color="0.3",
                                   label=f"ellipses: ±1 sd of q(x | y){which}"))
            handler_map[Ellipse] = HandlerPatch(patch_func=_ellipse_legend_handle)
        ax.set_xlabel(f"latent dim {dims[0]}")
        ax.set_ylabel(f"latent dim {dims[1]}")
    if labels is not None and X.shape[1] > 1:
        handles = ax.get_legend_handles_labels()[0] + handles
    if handles:
        n_entries = len(handles)
        ax.legend(handles=handles, handler_map=handler_map, markerscale=2, fontsize="small",
                  loc="best", ncol=2 if n_entries > 6 else 1)
    ax.set_title(title or type(model).__name__)
    return fig


def embedding_report(model, Y, labels=None, Y_test=None, labels_test=None, *, report=None,
                     title=None, max_ellipses=300, s=4):
    """The 2-D map with its uncertainty and, beneath it, how faithful it is and its evidence.

    The held-out rows ``Y_test`` (or ``Y`` without them) are drawn by :func:`latent_scatter`
    (posterior means, ±1 sd ellipses of q(x | y)), and the figure's caption gives
    :func:`lvm.metrics.embedding_report`: held-out log p(y) per point and its kind, k-NN accuracy
    (classifiers fitted on the embedding of ``Y``), trustworthiness, neighbour overlap and the
    reconstruction error.

    Parameters
    ----------
    model : fitted lvm estimator
        Any estimator with ``transform``.
    Y : array-like of shape (n, n_features)
        The training rows.
    labels : array-like of shape (n,), optional
        Their labels: colour the points and give the k-NN accuracies.
    Y_test, labels_test : optional
        Held-out rows and their labels: drawn and scored instead of ``Y``.
    report : lvm.metrics.EmbeddingReport, optional
        Computed already (skips the metrics).
    title : str, optional
        The axes' title.
    max_ellipses : int, default=300
        At most this many ellipses.
    s : float, default=4
        The marker size.

    Returns
    -------
    matplotlib.figure.Figure
        The map and, beneath it, the report.
    """
    from .metrics import embedding_report as _report

    if report is None:
        report = _report(model, Y, labels, Y_test, labels_test)
    shown, shown_labels = (Y, labels) if Y_test is None else (Y_test, labels_test)
    fig = _figure((6.5, 6.2))
    ax = fig.add_subplot()
    latent_scatter(model, shown, shown_labels, ax=ax, max_ellipses=max_ellipses, s=s,
                   title=title or f"{type(model).__name__}: "
                                  f"{'held-out' if Y_test is not None else 'training'} rows")
    text = str(report).replace("; ", "\n", 2).replace("; ", ", ")
    ax.annotate(text, (0.0, -0.13), xycoords="axes fraction", va="top", fontsize="small")
    return fig


def _strip(ax, x, x_std, labels, classes, colors, step, s):
    """The 1-D latent: x on the horizontal axis, one jittered row per label."""
    rng = np.random.default_rng(0)
    if labels is None:
        row = np.zeros(len(x))
        ax.set_yticks([])
    else:
        row = np.searchsorted(classes, np.asarray(labels)).astype(float)
        ax.set_yticks(np.arange(len(classes)), [str(c) for c in classes])
        ax.set_ylabel("label")
    y = row + rng.uniform(-0.3, 0.3, len(x))
    ax.scatter(x, y, s=s, alpha=0.8, c=list(colors))
    if x_std is not None:
        keep = slice(None, None, step)
        ax.errorbar(x[keep], y[keep], xerr=x_std[keep, 0], fmt="none", lw=0.4, alpha=0.4,
                    ecolor=list(colors[keep]))


def ard_relevance(model, ax=None):
    """Bar chart of the ARD relevances (inverse lengthscales, normalized) of a GP-LVM.

    The dimensions counted in ``effective_dims_`` are coloured, the others grey.

    Parameters
    ----------
    model : fitted lvm.BayesianGPLVM
        A model with ``relevance_``.
    ax : matplotlib.axes.Axes, optional
        Draw into these axes instead of a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (that of ``ax`` when given).
    """
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
    """Plot the training objective from ``history_`` (train, and validation where recorded).

    Every iterative lvm estimator keeps one record layout, ``epoch``, ``n_iter``, ``train`` and
    ``validation`` (None without a validation split): the x axis is ``n_iter``, the iterations
    so far in the unit of the estimator's budget (optimizer or EM iterations for ``max_iter``,
    epochs for ``max_epochs``).

    Parameters
    ----------
    model : fitted lvm estimator
        A model with ``history_``.
    ax : matplotlib.axes.Axes, optional
        Draw into these axes instead of a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (that of ``ax`` when given).
    """
    history = getattr(model, "history_", None)
    if not history:
        raise ValueError(f"{type(model).__name__} has no training history (history_); fit it first.")
    if ax is None:
        fig = _figure((5, 3))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    steps = [h["n_iter"] for h in history]
    ax.plot(steps, [h["train"] for h in history], label="train")
    validated = [(n, h["validation"]) for n, h in zip(steps, history)
                 if h["validation"] is not None]
    if validated:
        ax.plot(*zip(*validated), label="validation")
    ax.set_xlabel("iterations (n_iter)")
    ax.set_ylabel("objective per point (nats)")
    ax.legend()
    ax.set_title(f"{type(model).__name__} training")
    return fig


#: Marker and colour of each evidence kind, fixed so that a colour means the same kind in every
#: figure (and never the colour a model gets elsewhere from matplotlib's cycle).
EVIDENCE_STYLES = {
    "exact": {"marker": "o", "color": "black"},
    "lower bound": {"marker": "v", "color": "tab:purple"},
    "importance-weighted estimate": {"marker": "D", "color": "tab:brown"},
    "upper bound": {"marker": "^", "color": "tab:olive"},
}
_OTHER_STYLES = [{"marker": m, "color": c} for m, c in
                 [("s", "tab:gray"), ("P", "tab:cyan"), ("X", "tab:pink"), ("*", "darkgoldenrod")]]


def _evidence_styles(kinds):
    """The style of each kind: the fixed one, else (for kinds not listed) one of a reserve, given
    in sorted order of those kinds, so it does not depend on the order of the models."""
    others = sorted(set(kinds) - set(EVIDENCE_STYLES))
    styles = dict(EVIDENCE_STYLES)
    styles.update({k: _OTHER_STYLES[i % len(_OTHER_STYLES)] for i, k in enumerate(others)})
    return styles


def evidence_comparison(table, ax=None, split="test"):
    """Plot the mean log p(y) per point by model, with standard errors, from :func:`lvm.compare`.

    Models are named on the x axis by the table's ``model`` entries; marker and colour say the
    kind of evidence (exact, lower bound, importance-weighted estimate), one fixed style per kind
    (:data:`EVIDENCE_STYLES`), explained in the legend.

    Parameters
    ----------
    table : list of dict
        What :func:`lvm.compare` returns.
    ax : matplotlib.axes.Axes, optional
        Draw into these axes instead of a new figure.
    split : {"test", "train"}, default="test"
        Which of the table's evidence columns to show.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (that of ``ax`` when given).
    """
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
    styles = _evidence_styles(r["evidence"] for r in records)
    finite = np.isfinite(vals)
    errs = np.where(np.isfinite(errs), errs, 0.0)
    seen = set()
    for i, r in enumerate(records):
        kind = r["evidence"]
        if not finite[i]:  # e.g. -inf held out: named at the bottom, not drawn off the scale
            ax.annotate(f"{vals[i]:.4g}", (i, 0.02), xycoords=("data", "axes fraction"),
                        ha="center", color=styles[kind]["color"])
            continue
        ax.errorbar(i, vals[i], yerr=errs[i], fmt=styles[kind]["marker"],
                    color=styles[kind]["color"], capsize=5, ms=8,
                    label=None if kind in seen else kind)
        seen.add(kind)
    if seen:
        ax.legend(fontsize="small", loc="best", title="evidence", title_fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    ax.set_xticks(range(len(records)), [r["model"] for r in records], rotation=20)
    ax.set_ylabel(f"{split} log p(y) per point (nats)")
    if finite.any():
        v, e = vals[finite], errs[finite]
        lo, hi = (v - 2 * e).min(), (v + 2 * e).max()
        pad = 0.1 * max(hi - lo, 1e-9)
        ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlim(-0.5, len(records) - 0.5)
    ax.set_title("Evidence per point (± standard error)")
    return fig


def comparison(table, Y=None, labels=None, *, images=None):
    """One latent scatter per model of a :func:`lvm.compare` table and its evidence chart.

    A model without a low-dimensional embedding (the diffusion model) shows its samples instead.
    ``lvm compare --plot`` and ``lvm demo`` draw this figure.

    Parameters
    ----------
    table : lvm.ComparisonTable
        What :func:`lvm.compare` returned.
    Y : array-like of shape (n_train, n_features), optional
        The rows to embed; by default the training rows as each model was fitted on them
        (``table.train_data``, or ``table.train_counts`` for a count likelihood): their q(x | y)
        is fitted already, where embedding held-out rows would, for the GPLVM, fit q(x) for
        them again after scoring did.
    labels : array-like of shape (n_train,), optional
        Colours.
    images : tuple (image_shape, pixels), optional
        When the rows are images: their shape and the mask of the columns kept (``pixels``),
        to show samples as images.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per model and the evidence chart.
    """
    from ._compare import _count_likelihood

    n = len(table)
    fig = _figure((4.2 * n + 4.5, 4.5))
    axes = fig.subplots(1, n + 1, gridspec_kw={"width_ratios": [1] * n + [1.1]})
    for ax, rec in zip(axes[:-1], table):
        # the rows the model was fitted on: the integers for a count likelihood (lvm.compare's rule)
        counts = _count_likelihood(rec["estimator"]) is not None
        rows = Y if Y is not None else table.train_counts if counts else table.train_data
        if not rec["estimator"].has_embedding:
            shape, pixels = images if images is not None else (None, None)
            samples_panel(rec["estimator"], rows, ax=ax, image_shape=shape, pixels=pixels,
                          title=rec["model"])
            continue
        latent_scatter(rec["estimator"], rows, labels, ax=ax, title=rec["model"], s=4)
        if ax.get_legend() is not None and ax is not axes[0]:
            ax.get_legend().remove()
    evidence_comparison(table, ax=axes[-1])
    rec = table[0]
    fig.suptitle(f"Posterior means E[x | y] of the {rec['n_train']} training rows"
                 + ("" if all(r["estimator"].has_embedding for r in table)
                    else " (samples for models without a low-dimensional embedding)")
                 + f"; evidence on the {rec['n_test']} held-out rows", fontsize="medium")
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
    """Show originals (top) and their reconstructions f(E[x | y]) (bottom) for image data.

    Parameters
    ----------
    model : fitted lvm estimator
        A model with ``transform`` and ``inverse_transform``.
    Y : array-like of shape (n_samples, n_features)
        Images, one per row.
    image_shape : tuple of int
        The shape of one image, e.g. (8, 8).
    n : int, default=8
        How many of the first rows to show.

    Returns
    -------
    matplotlib.figure.Figure
        A new figure.
    """
    Y = np.asarray(Y)[:n]
    R = np.asarray(model.inverse_transform(model.transform(Y)))
    fig = _figure((1.1 * len(Y), 2.4))
    return _image_grid(fig, [Y, R], image_shape, titles=["data", "reconstruction"])


def samples(model, n=16, image_shape=None, random_state=0, kind="mean"):
    """Show images drawn from the fitted generative model.

    Parameters
    ----------
    model : fitted lvm estimator
        A model with ``inverse_transform`` (and ``sample`` for ``kind="draws"``).
    n : int, default=16
        How many images, on a square grid.
    image_shape : tuple of int
        The shape of one image, e.g. (8, 8); required.
    random_state : int or None, default=0
        Seeds the draws.
    kind : {"mean", "draws"}, default="mean"
        ``"mean"``: decoder means f(x) for x drawn from the prior N(0, I) (by
        ``numpy.random.default_rng(random_state)``), shown with ``model.inverse_transform`` and
        free of the observation noise that would only blur them. ``"draws"``: full draws
        y ~ p(y | x) from ``model.sample`` (noise included: Gaussian, or Bernoulli pixels).

    Returns
    -------
    matplotlib.figure.Figure
        A new figure.
    """
    if image_shape is None:
        raise ValueError("samples() needs image_shape, e.g. (8, 8) for the digits.")
    if kind == "mean":
        k = int(getattr(model, "n_components_", None) or model.n_components)
        X = np.random.default_rng(random_state).standard_normal((n, k))
        S = np.asarray(model.inverse_transform(X))
    elif kind == "draws":
        S = np.asarray(model.sample(n, random_state=random_state))
    else:
        raise ValueError(f"kind must be 'mean' (decoder means) or 'draws' (samples of p(y | x)), "
                         f"got {kind!r}.")
    cols = int(np.ceil(np.sqrt(n)))
    rows = [list(S[i:i + cols]) for i in range(0, n, cols)]
    rows[-1] += [np.zeros_like(S[0])] * (cols - len(rows[-1]))
    fig = _figure((1.1 * cols, 1.1 * len(rows)))
    return _image_grid(fig, rows, image_shape)


def samples_panel(model, Y=None, *, ax=None, n=16, image_shape=None, pixels=None, random_state=0,
                  title=None, s=4):
    """Draw samples of a model on one axes, in place of a latent scatter.

    A model without a low-dimensional embedding (the diffusion model) takes the place of its
    latent scatter in a figure with this panel. With ``image_shape`` the n draws are tiled as a
    mosaic of images; ``pixels`` (a boolean mask of ``prod(image_shape)`` entries) says which
    pixels the features are, for images whose constant pixels were dropped (the others are drawn
    blank). Without it, the first two features of n draws are scattered over those of the data
    ``Y`` (grey).

    Parameters
    ----------
    model : fitted lvm estimator
        A model with ``sample``.
    Y : array-like of shape (n_samples, n_features), optional
        Data drawn in grey behind the samples (scatter only).
    ax : matplotlib.axes.Axes, optional
        Draw into these axes instead of a new figure.
    n : int, default=16
        Number of draws.
    image_shape : tuple of int, optional
        (height, width): tile the draws as images.
    pixels : array-like of bool, optional
        Which of the ``prod(image_shape)`` pixels the features are.
    random_state : int, default=0
        Seeds the draws.
    title : str, optional
        The panel's title (default: the model's class name).
    s : float, default=4
        Marker size of the scatter.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (that of ``ax`` when given).
    """
    if ax is None:
        fig = _figure((4.2, 4.2))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    S = np.asarray(model.sample(n, random_state=random_state), dtype=np.float64)
    if image_shape is not None:
        h, w = image_shape
        if pixels is not None:
            full = np.full((n, h * w), np.nan)
            full[:, np.asarray(pixels, dtype=bool).ravel()] = S
            S = full
        cols = int(np.ceil(np.sqrt(n)))
        rows = int(np.ceil(n / cols))
        mosaic = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
        for i in range(n):
            r, c = divmod(i, cols)
            mosaic[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = \
                S[i].reshape(h, w)
        gaps = np.full(mosaic.shape, True)
        for i in range(n):
            r, c = divmod(i, cols)
            gaps[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = False
        lo = np.nanmin(S) if np.isfinite(S).any() else 0.0
        # pixels not modelled: the images' background; the gaps between images: white
        mosaic = np.where(np.isnan(mosaic) & ~gaps, lo, mosaic)
        from matplotlib import colormaps

        cmap = colormaps["gray"].with_extremes(bad="white")
        ax.imshow(np.ma.masked_invalid(mosaic), cmap=cmap)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"{n} samples")
    else:
        if Y is not None:
            Yn = np.asarray(Y, dtype=np.float64)
            ax.scatter(Yn[:, 0], Yn[:, 1] if Yn.shape[1] > 1 else np.zeros(len(Yn)), s=s,
                       color="0.75", label="data")
        ax.scatter(S[:, 0], S[:, 1] if S.shape[1] > 1 else np.zeros(len(S)), s=4 * s,
                   color="C3", label="samples")
        ax.set_xlabel("feature 0")
        ax.set_ylabel("feature 1" if S.shape[1] > 1 else "")
        ax.legend(fontsize="small", loc="best")
    ax.set_title(title if title is not None else "samples")
    return fig
