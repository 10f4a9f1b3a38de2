r"""How faithful a low-dimensional embedding is to the data's neighbours, beside its evidence.

A 2-D map is judged by what it keeps of the data's neighbourhoods. For held-out rows
:math:`y^*_1, \dots, y^*_m` embedded as :math:`x^*_i` (a model's posterior means, ``transform``)
and training rows embedded as :math:`x_n`:

* **k-NN accuracy** (``knn_accuracy``): a k-nearest-neighbour classifier fitted on the training
  embedding and its labels, scored on the held-out embedding (the protocol of the parametric
  t-SNE / UMAP literature; 1-NN and 5-NN).
* **Trustworthiness** (Venna & Kaski 2001; :func:`sklearn.manifold.trustworthiness`) of the
  held-out embedding at k = 5: one minus a normalized penalty for the points that are among a
  point's k nearest in the embedding but not in the data, weighted by their rank in the data,

  .. math::
      T(k) = 1 - \frac{2}{m k (2m - 3k - 1)} \sum_i \sum_{j \in U_k(i)} (r(i, j) - k).

* **Neighbour overlap** (``neighbor_overlap``) at k = 15: the mean fraction of each held-out
  row's k nearest rows in the data that are also among its k nearest in the embedding,
  :math:`\frac1m \sum_i |N_k^Y(i) \cap N_k^X(i)| / k` (1 for a perfect map, about k/m for a
  random one).
* **Reconstruction RMSE**: the root mean squared difference, in the data's units, between the
  held-out rows and their decoding from the 2-D coordinates (a model's ``inverse_transform``).

:func:`embedding_report` computes all of them, and the model's held-out evidence where it has one,
for any fitted estimator with ``transform``; :func:`lvm.plot.embedding_report` draws it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["knn_accuracy", "neighbor_overlap", "trustworthiness", "embedding_report",
           "EmbeddingReport"]


def _as_array(a) -> np.ndarray:
    if hasattr(a, "detach"):  # a torch.Tensor
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64)


def knn_accuracy(X_train, labels_train, X_test, labels_test, n_neighbors: int = 1) -> float:
    """Accuracy on ``X_test`` of a ``n_neighbors``-NN classifier fitted on ``X_train``.

    Parameters
    ----------
    X_train : array-like of shape (n, k)
        Embedding of the training rows.
    labels_train : array-like of shape (n,)
        Their labels.
    X_test : array-like of shape (m, k)
        Embedding of the held-out rows.
    labels_test : array-like of shape (m,)
        Their labels.
    n_neighbors : int, default=1
        The classifier's number of neighbours.

    Returns
    -------
    float
        The fraction of held-out rows whose predicted label is their own.
    """
    from sklearn.neighbors import KNeighborsClassifier

    clf = KNeighborsClassifier(n_neighbors=n_neighbors).fit(_as_array(X_train),
                                                            np.asarray(labels_train))
    return float(clf.score(_as_array(X_test), np.asarray(labels_test)))


def _neighbor_sets(A: np.ndarray, k: int) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(n_neighbors=k).fit(A).kneighbors(return_distance=False)


def neighbor_overlap(Y, X, n_neighbors: int = 15) -> float:
    r"""Mean fraction of each row's k nearest rows in the data kept in the embedding.

    :math:`\frac1m \sum_i |N_k^Y(i) \cap N_k^X(i)| / k`, with :math:`N_k^Y(i)` the ``n_neighbors``
    nearest rows of row i in ``Y`` and :math:`N_k^X(i)` in ``X``.

    Parameters
    ----------
    Y : array-like of shape (m, n_features)
        The rows in the data space (a row is not its own neighbour).
    X : array-like of shape (m, n_components)
        The same rows embedded.
    n_neighbors : int, default=15
        The number of neighbours, k.

    Returns
    -------
    float in [0, 1]
        The mean overlap: 1 for a map that keeps every neighbour set, about k/m for a random one.
    """
    Y, X = _as_array(Y), _as_array(X)
    if len(Y) != len(X):
        raise ValueError(f"Y and X must have the same rows; got {len(Y)} and {len(X)}.")
    if not 1 <= n_neighbors < len(Y):
        raise ValueError(f"n_neighbors={n_neighbors} must be in [1, {len(Y) - 1}] for "
                         f"{len(Y)} rows.")
    a, b = _neighbor_sets(Y, n_neighbors), _neighbor_sets(X, n_neighbors)
    same = (a[:, :, None] == b[:, None, :]).any(-1).sum(1)
    return float(same.mean() / n_neighbors)


def trustworthiness(Y, X, n_neighbors: int = 5) -> float:
    """Trustworthiness of the embedding ``X`` of the rows ``Y`` (scikit-learn's, see the module).

    Parameters
    ----------
    Y : array-like of shape (m, n_features)
        The rows in the data space.
    X : array-like of shape (m, n_components)
        The same rows embedded.
    n_neighbors : int, default=5
        The number of neighbours, k.

    Returns
    -------
    float in [0, 1]
        1 when every point's k nearest in the embedding are among its k nearest in the data.
    """
    from sklearn.manifold import trustworthiness as _trustworthiness

    return float(_trustworthiness(_as_array(Y), _as_array(X), n_neighbors=n_neighbors))


@dataclass
class EmbeddingReport:
    """Neighbour metrics of a held-out embedding and the model's held-out evidence.

    Parameters
    ----------
    evidence : float or None
        Mean held-out log p(y) per row, nats (``score``), None for a model without one.
    evidence_kind : str or None
        ``"exact"``, ``"lower bound"``, ``"importance-weighted estimate"``, ...
    knn_1, knn_5 : float or None
        Held-out 1-NN and 5-NN accuracy (classifiers fitted on the training embedding); None
        without labels.
    trustworthiness : float
        Of the held-out embedding, at ``k_trust`` neighbours.
    neighbor_overlap : float
        Of the held-out embedding, at ``k_overlap`` neighbours.
    reconstruction_rmse : float or None
        Of the held-out rows from their coordinates (None without ``inverse_transform``).
    n_train, n_test : int
        Rows the classifiers were fitted on, rows scored.
    held_out : bool
        Whether the rows scored are held out (else the rows the model was fitted to, and the
        k-NN accuracies are leave-one-out).
    k_trust, k_overlap : int
        The neighbours of the trustworthiness and of the overlap.
    """

    evidence: float | None
    evidence_kind: str | None
    knn_1: float | None
    knn_5: float | None
    trustworthiness: float
    neighbor_overlap: float
    reconstruction_rmse: float | None
    n_train: int
    n_test: int
    held_out: bool = True
    k_trust: int = 5
    k_overlap: int = 15

    def as_dict(self) -> dict:
        """The fields as a plain dict.

        Returns
        -------
        dict
            Field name -> value.
        """
        return asdict(self)

    def __str__(self) -> str:
        parts = []
        if self.evidence is not None:
            which = "held-out" if self.held_out else "training"
            parts.append(f"{which} log p(y) {self.evidence:.2f} nats/pt ({self.evidence_kind})")
        if self.knn_1 is not None:
            parts.append(f"1-NN {self.knn_1:.3f}, 5-NN {self.knn_5:.3f}")
        parts.append(f"trustworthiness@{self.k_trust} {self.trustworthiness:.3f}")
        parts.append(f"overlap@{self.k_overlap} {self.neighbor_overlap:.3f}")
        if self.reconstruction_rmse is not None:
            parts.append(f"RMSE {self.reconstruction_rmse:.3g}")
        return "; ".join(parts)


def embedding_report(model, Y, labels=None, Y_test=None, labels_test=None, *,
                     X=None, X_test=None, evidence: bool = True, k_trust: int = 5,
                     k_overlap: int = 15) -> EmbeddingReport:
    """Neighbour metrics and held-out evidence of a fitted model's embedding.

    The held-out rows ``Y_test`` are embedded with ``model.transform`` (or passed as ``X_test``);
    the k-NN classifiers are fitted on the embedding of ``Y`` (or ``X``) with ``labels``. Without
    ``Y_test`` the rows ``Y`` are scored against themselves: the k-NN accuracies are then
    leave-one-out (each row's neighbours exclude itself).

    Works for any estimator with ``transform`` (lvm's, scikit-learn's PCA, umap-learn's UMAP,
    openTSNE's embeddings): the evidence is reported where the model has ``score`` and an
    ``evidence_kind``, the reconstruction error where it has ``inverse_transform``.

    Parameters
    ----------
    model : fitted estimator
        Any estimator with ``transform``.
    Y : array-like of shape (n, n_features)
        The training rows (those the model was fitted to).
    labels : array-like of shape (n,), optional
        Their labels (for the k-NN accuracies).
    Y_test : array-like of shape (m, n_features), optional
        Held-out rows.
    labels_test : array-like of shape (m,), optional
        Their labels.
    X, X_test : array-like, optional
        Embeddings already computed (skips ``transform``).
    evidence : bool, default=True
        Whether to compute the held-out evidence (``model.score(Y_test)``, seconds for the
        Monte Carlo families).
    k_trust : int, default=5
        The neighbours of the trustworthiness.
    k_overlap : int, default=15
        The neighbours of the neighbour overlap.

    Returns
    -------
    EmbeddingReport
        The metrics, the evidence and its kind.
    """
    Y_np = _as_array(Y)
    held_out = Y_test is not None
    Yt_np = _as_array(Y_test) if held_out else Y_np
    if X is None and labels is not None:
        X = model.transform(Y)
    if X_test is None:
        X_test = model.transform(Y_test if held_out else Y)
    Xt = _as_array(X_test)
    knn = [None, None]
    if labels is not None:
        if held_out:
            if labels_test is None:
                raise ValueError("labels_test is needed with Y_test and labels.")
            knn = [knn_accuracy(X, labels, Xt, labels_test, k) for k in (1, 5)]
        else:  # leave-one-out on the rows themselves
            lab = np.asarray(labels)
            idx = _neighbor_sets(Xt, 5)
            knn[0] = float(np.mean(lab[idx[:, 0]] == lab))
            knn[1] = float(np.mean([_majority(v) == t for v, t in zip(lab[idx], lab)]))
    value, kind = None, None
    if evidence and hasattr(model, "score") and getattr(model, "evidence_kind", None):
        value, kind = float(model.score(Y_test if held_out else Y)), model.evidence_kind
    rmse = None
    if hasattr(model, "inverse_transform"):
        try:
            recon = _as_array(model.inverse_transform(X_test))
            rmse = float(np.sqrt(np.mean((recon - Yt_np) ** 2)))
        except (AttributeError, NotImplementedError, ValueError):
            rmse = None
    return EmbeddingReport(
        evidence=value, evidence_kind=kind, knn_1=knn[0], knn_5=knn[1],
        trustworthiness=trustworthiness(Yt_np, Xt, k_trust),
        neighbor_overlap=neighbor_overlap(Yt_np, Xt, k_overlap), reconstruction_rmse=rmse,
        n_train=len(Y_np), n_test=len(Yt_np), held_out=held_out, k_trust=k_trust,
        k_overlap=k_overlap)


def _majority(votes):
    """The most frequent label (the smallest of those tied, as scikit-learn's classifier)."""
    values, counts = np.unique(votes, return_counts=True)
    return values[np.argmax(counts)]
