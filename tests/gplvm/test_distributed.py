"""Issue 7: data-parallel SVI BayesianGPLVM on two gloo ranks (spawned by the test itself)."""

import numpy as np
import pytest

import lvm
from tests.distributed_utils import run_ranks

CFG = dict(n_components=2, inference="svi", n_inducing=15, max_iter=12, tol=None, device="cpu",
           random_state=0, transform_max_iter=100, n_importance_samples=20)
BATCH = 64


def _data():
    data = lvm.datasets.make_ppca(900, 6, 2, noise=0.1, random_state=3)
    return data.Y[:800], data.Y[800:]


def _fit_shard(rank, world_size):
    Y, held_out = _data()
    shard = np.array_split(Y, [450])[rank]  # unequal shards on purpose
    m = lvm.BayesianGPLVM(batch_size=BATCH, **CFG).fit(shard)
    return {"Z": m.inducing_points_, "lengthscales": m.lengthscales_, "noise": m.noise_variance_,
            "q_u_mean": m.family_.posterior_model.mean.numpy(), "elbo": m.elbo_,
            "score": m.score(held_out), "n_rows": m.latent_mean_.shape[0]}


def _bad_shard(rank, world_size):
    Y, _ = _data()
    lvm.BayesianGPLVM(**CFG).fit(Y[:, : 6 - rank])


def _collapsed(rank, world_size):
    Y, _ = _data()
    lvm.BayesianGPLVM(2, device="cpu").fit(Y)


@pytest.fixture(scope="module")
def ranks():
    return run_ranks(_fit_shard, 2)


# Two spawned gloo processes (5.5 s, shared by the two tests below): slow, -m slow runs them;
# the default suite keeps the linear families' two-rank check (tests/linear/test_distributed.py).
@pytest.mark.slow
def test_both_ranks_end_with_the_same_global_parameters(ranks):
    (s0, r0), (s1, r1) = ranks
    assert s0 == "ok" and s1 == "ok", (r0, r1)
    for key in ("Z", "lengthscales", "q_u_mean"):
        np.testing.assert_array_equal(r0[key], r1[key])
    np.testing.assert_array_equal(r0["noise"], r1["noise"])
    assert r0["elbo"] == r1["elbo"]
    assert (r0["n_rows"], r1["n_rows"]) == (450, 350)  # q(x) stays local to its rows


@pytest.mark.slow
def test_held_out_evidence_close_to_single_process(ranks):
    Y, held_out = _data()
    single = lvm.BayesianGPLVM(batch_size=2 * BATCH, **CFG).fit(Y)
    ref = single.score(held_out)
    scores = [r["score"] for _, r in ranks]
    print(f"held-out evidence per point: 2 ranks {scores[0]:.4f} / {scores[1]:.4f}, "
          f"single process {ref:.4f}; training bound 2 ranks {ranks[0][1]['elbo']:.4f}, "
          f"single {single.elbo_:.4f}")
    assert abs(scores[0] - ref) < 0.25
    assert abs(ranks[0][1]["elbo"] - single.elbo_) < 0.25


# Two spawned processes that import torch to check an error (7 s): slow, -m slow runs it.
@pytest.mark.slow
def test_shards_with_different_feature_counts_are_rejected():
    for status, r in run_ranks(_bad_shard, 2):
        assert status == "error" and r[0] == "ValueError"
        assert "different numbers of features across ranks" in r[1]


# Two spawned processes that import torch to check an error (7 s): slow, -m slow runs it.
@pytest.mark.slow
def test_collapsed_mode_is_rejected_under_distributed():
    for status, r in run_ranks(_collapsed, 2):
        assert status == "error" and "use inference='svi' for a data-parallel fit" in r[1]
