"""
Bounds, estimators and the effective sample size
================================================

The essay's story in code: bounds, estimators, and why the encoder is what makes them usable.

1. On PPCA data, where log p(y) is exact, a VAE with a linear decoder: the ELBO lies below the
   exact evidence, and the importance-weighted estimate climbs toward it as the number of samples
   S grows (it is tight because the true posterior is Gaussian).
2. On the digits, the naive estimator that samples x from the prior has an effective sample size
   near 1 out of thousands of draws and lands far below the encoder-proposal estimate: sampling
   from the prior is exponentially inefficient in the latent dimension.

Run it with::

    python examples/essay_evidence.py [--out lvm-figures] [--quick]
"""

import numpy as np
from matplotlib.figure import Figure

import lvm
from _common import parse_args

args = parse_args(__doc__)
out = args.out
# --quick: part 2 on fewer digits with fewer epochs (the draws per digit stay 2000)
digit_epochs, n_rows = (40, 150) if args.quick else (80, 300)

# 1. bounds vs the exact evidence
data = lvm.datasets.make_ppca(3000, 20, 2, noise=0.1, random_state=0)
exact = lvm.PPCA(2).fit(data.Y).score(data.Y)
vae = lvm.VAE(2, hidden_sizes=(), max_epochs=100, batch_size=100, validation_fraction=0.0,
              dtype="float64", random_state=0).fit(data.Y)
S_values = [1, 10, 100, 1000]
iwae = [vae.log_evidence(data.Y, method="iwae", n_samples=s).log_evidence.mean() for s in S_values]
elbo = vae.elbo(data.Y)
print(f"exact PPCA log p(y) {exact:.4f};  linear-VAE ELBO {elbo:.4f}")
for s, v in zip(S_values, iwae):
    print(f"  IWAE S={s:5d}: {v:.4f}  (gap to exact {exact - v:.4f} nats)")

# 2. prior sampling vs the encoder proposal on the digits
d = lvm.datasets.load_digits()
Y = d.Y[:, d.Y.var(0) > 0]
Y = (Y - Y.mean(0)) / Y.std(0)
rows = []
for k in (2, 5, 10):
    m = lvm.VAE(k, hidden_sizes=(128, 128), max_epochs=digit_epochs, random_state=0).fit(Y)
    for method in ("prior", "iwae"):
        est = m.log_evidence(Y[:n_rows], method=method, n_samples=2000, random_state=0)
        rows.append((k, method, float(np.mean(est.log_evidence)),
                     float(np.median(est.effective_sample_size))))
print("\nK  proposal  log p(y) estimate  median ESS of 2000 draws")
for k, method, v, ess in rows:
    print(f"{k:2d}  {method:8s}  {v:17.2f}  {ess:10.1f}")

fig = Figure(figsize=(10, 3.6), layout="constrained")
ax1, ax2 = fig.subplots(1, 2)
ax1.axhline(exact, color="k", label="exact log p(y) (PPCA)")
ax1.axhline(elbo, color="C3", ls="--", label="ELBO")
ax1.plot(S_values, iwae, "o-", label="IWAE estimate")
ax1.set(xscale="log", xlabel="importance samples S", ylabel="nats per point",
        title="Linear VAE on PPCA data")
ax1.legend()
for method, c in (("prior", "C1"), ("iwae", "C0")):
    ks = [r[0] for r in rows if r[1] == method]
    ax2.plot(ks, [r[3] for r in rows if r[1] == method], "o-", color=c,
             label=f"{'prior' if method == 'prior' else 'encoder'} proposal")
ax2.set(yscale="log", xlabel="latent dimension K", ylabel="median ESS of 2000 draws",
        title="Digits: prior vs encoder proposal")
ax2.legend()
fig.savefig(out / "essay_evidence.png", dpi=110)
print(f"wrote {out / 'essay_evidence.png'}")
