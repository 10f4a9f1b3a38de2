"""
Choosing the latent dimension: by evidence and by ARD
=====================================================

PPCA: on data with a true 4-D latent, the exact held-out evidence per point for K = 1..12 peaks at
the truth, and Minka's Laplace approximation (n_components="auto") picks it from the training data
alone. GPLVM: fitted with 10 latent dimensions on the oil-flow data, the ARD lengthscales switch off
the dimensions the data do not need (skipped when the file is absent). Run it with::

    python examples/choose_dimension.py [--out lvm-figures] [--quick]
"""

import numpy as np
from matplotlib.figure import Figure

import lvm
from _common import parse_args

args = parse_args(__doc__)
data = lvm.datasets.make_ppca(3000, 12, 4, noise=0.5, random_state=0)
Ytr, Yte = data.Y[:2000], data.Y[2000:]
ks = np.arange(1, 13)
train = [lvm.PPCA(int(k)).fit(Ytr).score(Ytr) for k in ks]
held = [lvm.PPCA(int(k)).fit(Ytr).score(Yte) for k in ks]
auto = lvm.PPCA("auto").fit(Ytr).n_components_
print("K  train log p(y)  held-out log p(y)")
for k, a, b in zip(ks, train, held):
    print(f"{k:2d}  {a:14.4f}  {b:17.4f}")
print(f"held-out evidence peaks at K = {ks[int(np.argmax(held))]}; "
      f"Minka's 'auto' picks K = {auto}; the truth is 4")
fig = Figure(figsize=(10, 3.6), layout="constrained")
ax1, ax2 = fig.subplots(1, 2)
ax1.plot(ks, train, "o-", label="train")
ax1.plot(ks, held, "s-", label="held-out")
ax1.axvline(4, color="0.6", ls="--", label="true K")
ax1.set(xlabel="K", ylabel="exact log p(y) per point (nats)", title="PPCA evidence vs K")
ax1.legend()
try:
    oil = lvm.datasets.load_oil_flow()
    Y = (oil.Y - oil.Y.mean(0)) / oil.Y.std(0)
    gplvm = lvm.BayesianGPLVM(10, n_inducing=30 if args.quick else 50,
                              max_iter=300 if args.quick else 1000, random_state=0).fit(Y)
    lvm.plot.ard_relevance(gplvm, ax=ax2)
    ax2.set_title(f"GPLVM on oil flow: {gplvm.effective_dims_} effective of 10")
    print(f"GPLVM (Q=10) relevances: {np.round(gplvm.relevance_, 3)}; effective dims "
          f"{gplvm.effective_dims_}; bound {gplvm.elbo_:.3f} nats/point")
except lvm.datasets.DataFileNotFoundError as exc:
    ax2.text(0.5, 0.5, "oil-flow data not found", ha="center")
    print(f"skipping the GPLVM part: {exc}")
fig.savefig(args.out / "choose_dimension.png", dpi=110)
print(f"wrote {args.out / 'choose_dimension.png'}")
