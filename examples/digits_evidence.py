"""
Evidence on the digits: which family explains held-out digits best?
====================================================================

Every family fitted on the same training split of the digits (raw pixel intensities) with a 2-D
and a 10-D latent. The table gives held-out log p(y) per image (exact for PPCA and factor analysis,
importance-weighted estimates for the VAE and the GPLVM) and the first figure shows it with
standard errors; then reconstructions and samples of a VAE with a Bernoulli likelihood. Run it
with::

    python examples/digits_evidence.py [--out lvm-figures] [--quick]
"""

import lvm
from _common import parse_args

args = parse_args(__doc__)
data = lvm.datasets.load_digits()
Y = data.Y[:, data.Y.var(0) > 0]  # drop the three pixels that are blank in every image
if args.quick:  # every digit, but a smaller GPLVM with fewer iterations and draws, fewer VAE epochs
    vae = dict(hidden_sizes=(128, 128), max_epochs=60)
    gplvm = dict(n_inducing=30, max_iter=300, transform_max_iter=100, n_importance_samples=32)
else:
    vae = dict(hidden_sizes=(128, 128), max_epochs=150)
    gplvm = dict(n_inducing=50)
models = {}
for k in (2, 10):
    models[f"PPCA-{k}"] = lvm.PPCA(k)
    models[f"FA-{k}"] = lvm.FactorAnalysis(k)
    models[f"VAE-{k}"] = lvm.VAE(k, random_state=0, **vae)
    models[f"GPLVM-{k}"] = lvm.BayesianGPLVM(k, random_state=0, **gplvm)
# Raw pixel intensities (one shared unit): standardizing per pixel turns rare pixels into
# 50-sigma outliers in held-out images.
table = lvm.compare(models, Y, test_size=0.2, random_state=0, verbose=True)
print(table)
lvm.plot.evidence_comparison(table).savefig(args.out / "digits_evidence.png", dpi=110)

# For pictures, refit on all 64 pixels scaled to [0, 1] with a Bernoulli likelihood.
img = lvm.VAE(10, likelihood="bernoulli", random_state=0, **vae).fit(data.Y / 16.0)
lvm.plot.reconstructions(img, data.Y[:10] / 16.0, (8, 8), n=10).savefig(
    args.out / "digits_reconstructions.png", dpi=110)
lvm.plot.samples(img, 16, (8, 8)).savefig(args.out / "digits_samples.png", dpi=110)
print(f"wrote {args.out}/digits_evidence.png, digits_reconstructions.png, digits_samples.png")
