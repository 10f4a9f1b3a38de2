"""Named model settings: the estimators ``lvm compare``, ``lvm embed`` and ``lvm demo`` fit.

Kept in one place, and importable without torch, so that a script (a benchmark, a notebook)
fits exactly the model the command line fits: ``build_model("embed")`` is ``lvm embed``'s
default model. The command line re-exports them (``lvm.cli.MODELS``, ``lvm.cli.build_model``).
"""

from __future__ import annotations

import lvm

__all__ = ["MODELS", "DEMO_MODELS", "DEMO_QUICK", "build_model", "build_demo_model"]

#: CLI model keys -> (lvm class, keyword arguments, overrides under ``--fast``), for ``compare``
#: and ``embed``; the latent dimension, ``random_state`` and ``verbose`` come from the options.
MODELS = {
    "ppca": ("PPCA", {}, {}),
    "fa": ("FactorAnalysis", {}, {}),
    "vae": ("VAE", {"hidden_sizes": (128, 128), "max_epochs": 200, "batch_size": 128},
            {"max_epochs": 60}),
    "gplvm": ("BayesianGPLVM", {"n_inducing": 50},
              {"n_inducing": 32, "max_iter": 300, "tol": None}),
    # latents of the data's own dimension: --components does not apply
    "diffusion": ("DiffusionModel", {}, {"max_epochs": 300}),
    # lvm embed's default: the VAE with the neighbour term, its map laid out and rows refined
    # against it (its evidence is still a bound of its own decoder's model). On USPS, in one run
    # of benchmarks/embed.py at weights 0 / 3 / 30 / 300 / 1000 (100 epochs, 800 refinement
    # steps, no layout): held-out 29.1 / 35.2 / 37.7 / 27.9 / 19.5 nats per point, test 5-NN
    # 0.733 / 0.874 / 0.905 / 0.926 / 0.924, trustworthiness 0.892 / 0.949 / 0.962 / 0.959 /
    # 0.957: 30 has the best evidence and trustworthiness of them. Most of the map's faithfulness
    # comes after training: fitted for 100 epochs, test trustworthiness@5 was 0.918 unrefined,
    # 0.956 after 200 refinement steps against 512 drawn negatives, 0.962 after 800 against 64
    # (70 epochs: 0.958). Laying the training map out first (400 steps, NeighborMap.tether) lets
    # training stop at 50 epochs: trustworthiness 0.964, 5-NN 0.921, held-out 31.3 nats per
    # point (40 epochs: 0.961 / 0.914 / 29.4; 200 layout steps: 0.964 / 0.915 / 30.9), in about
    # two thirds of the time of 100 epochs without it.
    "embed": ("VAE", {"neighbor_weight": 30.0, "batch_size": 512, "learning_rate": 3e-3,
                      "validation_fraction": 0.0, "max_epochs": 50,
                      "neighbor_refine_steps": 800, "neighbor_layout_steps": 400},
              {"max_epochs": 20}),
}

#: ``lvm demo``'s estimators, all its settings in one place: key -> (lvm class, keyword arguments).
#: They are fitted with a 2-D latent (the diffusion model's latents have the data's dimension) to
#: the digits (the 61 pixels that are not blank in every image), raw intensities dequantized by
#: uniform noise in [0, 1) (the same draws for every model), 80 % train / 20 % held out.
DEMO_MODELS = {
    "ppca": ("PPCA", {}),
    "fa": ("FactorAnalysis", {}),
    "vae": ("VAE", {"hidden_sizes": (128, 128), "max_epochs": 200, "batch_size": 128,
                    "patience": 20}),
    # 300 L-BFGS iterations and 100 steps per held-out q(x*): -129.1 held out, as -129.0 with the
    # estimator's defaults (1000 and 300) and -129.1 with 500 iterations, which took 22.2 s to
    # fit against 10.0 s (32 inducing points and 400 iterations: -132.2 in 6.9 s).
    "gplvm": ("BayesianGPLVM", {"n_inducing": 50, "max_iter": 300, "transform_max_iter": 100}),
    # The nested start (the fitted Gaussian's diffusion model at step 0) at 6e-3 leaves the
    # Gaussian's plateau after about 80 epochs: -122.0 to -122.4 held out in 300 epochs
    # (46-51 s), against -124.1 in 400 epochs (61 s) from the random start at 2e-3. With the
    # fitted Gaussian as the control variate, 16 draws per row are as precise as 128 were with
    # N(0, I)'s.
    "diffusion": ("DiffusionModel", {"init": "gaussian", "learning_rate": 6e-3, "max_epochs": 300,
                                     "patience": 100, "n_eval_draws": 16}),
    # The same digits as counts (0..16 of 16 trials) and the same VAE: its number is log P(y) of
    # the integer images themselves, of which the dequantized families' are lower bounds.
    "binomial": ("VAE", {"likelihood": "binomial(n=16)", "hidden_sizes": (128, 128),
                         "max_epochs": 200, "batch_size": 128, "patience": 20}),
}

#: ``lvm demo --quick``: the demo's code path in a few seconds, a smoke run whose numbers mean
#: little: the first ``n_rows`` digits, the pixels inked in at least ``min_inked`` of them, and
#: these overrides of :data:`DEMO_MODELS`.
DEMO_QUICK = {
    "n_rows": 300,
    "min_inked": 0.05,
    "vae": {"hidden_sizes": (32,), "max_epochs": 3},
    "binomial": {"hidden_sizes": (32,), "max_epochs": 3},
    "gplvm": {"n_inducing": 8, "max_iter": 5, "tol": None, "transform_max_iter": 5,
              "n_importance_samples": 8},
    "diffusion": {"width": 16, "depth": 1, "max_epochs": 3, "n_eval_draws": 8,
                  "sampling_steps": 20},
}


def _construct(cls_name, kwargs, n_components, random_state, verbose):
    cls = getattr(lvm, cls_name)
    common = {"random_state": random_state, "verbose": verbose}
    if "n_components" not in cls._get_param_names():  # latents of the data's dimension
        return cls(**{**kwargs, **common})
    return cls(n_components, **{**kwargs, **common})


def build_model(key: str, n_components: int = 2, *, fast: bool = False, random_state=None,
                verbose: bool = False, **params):
    """The estimator ``lvm compare`` and ``lvm embed`` build for a key of :data:`MODELS`.

    So that a script (a benchmark, a notebook) fits exactly the model the command line fits:
    ``build_model("embed")`` is ``lvm embed``'s default model.

    Parameters
    ----------
    key : str
        A key of :data:`MODELS` (``"ppca"``, ``"fa"``, ``"vae"``, ``"gplvm"``, ``"diffusion"``,
        ``"embed"``).
    n_components : int, default=2
        The latent dimension (ignored by the diffusion model, whose latents have the data's).
    fast : bool, default=False
        Apply the key's ``--fast`` overrides.
    random_state, verbose
        As the estimators take them.
    **params
        Hyper-parameters overriding the key's settings.

    Returns
    -------
    estimator
        Unfitted.
    """
    if key not in MODELS:
        raise ValueError(f"Unknown model {key!r}; choose one of {list(MODELS)}.")
    cls_name, kwargs, fast_kwargs = MODELS[key]
    return _construct(cls_name, {**kwargs, **(fast_kwargs if fast else {}), **params},
                      n_components, random_state, verbose)


def build_demo_model(key: str, *, quick: bool = False, random_state=None, verbose: bool = False):
    """``lvm demo``'s estimator for a key of :data:`DEMO_MODELS` (2-D latent), with the
    :data:`DEMO_QUICK` overrides under ``quick``; unfitted."""
    cls_name, kwargs = DEMO_MODELS[key]
    overrides = DEMO_QUICK.get(key, {}) if quick else {}
    return _construct(cls_name, {**kwargs, **overrides}, 2, random_state, verbose)
