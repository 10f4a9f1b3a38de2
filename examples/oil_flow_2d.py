"""The oil-flow data embedded in 2-D by the three decoder families, side by side.

    python examples/oil_flow_2d.py [--out lvm-figures]

Needs ../shared/data/oil_flow.npz (or LVM_OIL_FLOW); see datasets/README.md. Each panel's title
gives the leave-one-out 1-nearest-neighbour accuracy of the 2-D embedding.
"""

import time

import numpy as np
from matplotlib.figure import Figure
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

import lvm
from _common import output_dir

out = output_dir(__doc__)
data = lvm.datasets.load_oil_flow()
Y = (data.Y - data.Y.mean(0)) / data.Y.std(0)  # standardized per feature, as GPyTorch's recipe does

models = {
    "PPCA": lvm.PPCA(2),
    "VAE": lvm.VAE(2, hidden_sizes=(64, 64), max_epochs=300, batch_size=100, random_state=0),
    "Bayesian GPLVM": lvm.BayesianGPLVM(2, n_inducing=50, random_state=0),
}
fig = Figure(figsize=(14, 4.5), layout="constrained")
axes = fig.subplots(1, 3)
for ax, (name, model) in zip(axes, models.items()):
    t0 = time.perf_counter()
    X = np.asarray(model.fit_transform(Y))
    seconds = time.perf_counter() - t0
    acc = cross_val_score(KNeighborsClassifier(1), X, data.labels, cv=len(X) // 100).mean()
    lvm.plot.latent_scatter(model, Y, data.labels, ax=ax,
                            title=f"{name}: 1-NN {100 * acc:.1f}%, {seconds:.0f} s")
    print(f"{name:<15} 1-NN accuracy (10-fold) {100 * acc:5.1f}%  fit {seconds:5.1f} s  "
          f"score {model.score(Y):8.3f} nats/point ({model.evidence_kind})")
fig.savefig(out / "oil_flow_2d.png", dpi=110)
print(f"wrote {out / 'oil_flow_2d.png'}")
