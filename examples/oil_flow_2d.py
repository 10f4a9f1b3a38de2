"""
Oil flow in 2-D by every decoder family
=======================================

The three-phase oil-flow data (1000 points, 12 features, three flow regimes) embedded in a 2-D
latent space by PPCA, the VAE and the Bayesian GPLVM, side by side. Each panel's title gives the
1-nearest-neighbour accuracy of the 2-D embedding (10-fold cross-validation) and the fit time.

Needs ``../shared/data/oil_flow.npz`` (or ``LVM_OIL_FLOW``; see ``datasets/README.md``). Without
it the script says so and embeds the digits instead, so that it still runs anywhere. Run it with::

    python examples/oil_flow_2d.py [--out lvm-figures] [--quick]
"""

import time

import numpy as np
from matplotlib.figure import Figure
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

import lvm
from _common import parse_args

args = parse_args(__doc__)
try:
    data = lvm.datasets.load_oil_flow()
    name = "oil flow"
except lvm.datasets.DataFileNotFoundError as exc:
    print(f"The oil-flow file is not here, so this run embeds the digits instead.\n{exc}")
    data = lvm.datasets.load_digits()
    name = "digits (oil flow not found)"
    data.Y, data.labels = data.Y[:1000], data.labels[:1000]  # as many points as the oil flow
data.Y = data.Y[:, data.Y.std(0) > 0]  # a constant feature (blank digit pixels) carries nothing
Y = (data.Y - data.Y.mean(0)) / data.Y.std(0)  # standardized per feature, as GPyTorch's recipe does

models = {
    "PPCA": lvm.PPCA(2),
    # --quick: fewer epochs and iterations, fewer inducing points
    "VAE": lvm.VAE(2, hidden_sizes=(64, 64), max_epochs=100 if args.quick else 300, batch_size=100,
                   random_state=0),
    "Bayesian GPLVM": lvm.BayesianGPLVM(2, n_inducing=30 if args.quick else 50,
                                        max_iter=300 if args.quick else 1000, random_state=0),
}
fig = Figure(figsize=(14, 4.5), layout="constrained")
fig.suptitle(f"{name}: {Y.shape[0]} points, {Y.shape[1]} features" +
             (" (quick settings)" if args.quick else ""))
axes = fig.subplots(1, 3)
for ax, (label, model) in zip(axes, models.items()):
    t0 = time.perf_counter()
    X = np.asarray(model.fit_transform(Y))
    seconds = time.perf_counter() - t0
    acc = cross_val_score(KNeighborsClassifier(1), X, data.labels, cv=10).mean()
    lvm.plot.latent_scatter(model, Y, data.labels, ax=ax,
                            title=f"{label}: 1-NN {100 * acc:.1f}%, {seconds:.0f} s")
    print(f"{label:<15} 1-NN accuracy (10-fold) {100 * acc:5.1f}%  fit {seconds:5.1f} s  "
          f"score {model.score(Y):8.3f} nats/point ({model.evidence_kind})")
fig.savefig(args.out / "oil_flow_2d.png", dpi=110)
print(f"wrote {args.out / 'oil_flow_2d.png'}")
