"""Evidence comparison on the digits: which family explains held-out digits best?

    python examples/digits_evidence.py [--out lvm-figures]

All families fitted on the same training split (raw pixels) with a 2-D and a 10-D latent; the table
gives held-out log p(y) per point (exact for PPCA / FA, importance-weighted estimates for the VAE and
the GPLVM) and the figure shows it with standard errors, plus VAE reconstructions and samples.
"""

import lvm
from _common import output_dir

out = output_dir(__doc__)
data = lvm.datasets.load_digits()
Y = data.Y[:, data.Y.var(0) > 0]  # drop the three pixels that are blank in every image
models = {}
for k in (2, 10):
    models[f"PPCA-{k}"] = lvm.PPCA(k)
    models[f"FA-{k}"] = lvm.FactorAnalysis(k)
    models[f"VAE-{k}"] = lvm.VAE(k, hidden_sizes=(128, 128), max_epochs=150, random_state=0)
    models[f"GPLVM-{k}"] = lvm.BayesianGPLVM(k, n_inducing=50, random_state=0)
# Raw pixel intensities (one shared unit): standardizing per pixel turns rare pixels into
# 50-sigma outliers in held-out images.
table = lvm.compare(models, Y, test_size=0.2, random_state=0, verbose=True)
print(table)
lvm.plot.evidence_comparison(table).savefig(out / "digits_evidence.png", dpi=110)
# For pictures, refit on all 64 pixels scaled to [0, 1] with a Bernoulli likelihood.
img = lvm.VAE(10, likelihood="bernoulli", hidden_sizes=(128, 128), max_epochs=150,
              random_state=0).fit(data.Y / 16.0)
lvm.plot.reconstructions(img, data.Y[:10] / 16.0, (8, 8), n=10).savefig(
    out / "digits_reconstructions.png", dpi=110)
lvm.plot.samples(img, 16, (8, 8)).savefig(out / "digits_samples.png", dpi=110)
print(f"wrote {out}/digits_evidence.png, digits_reconstructions.png, digits_samples.png")
