"""Data-parallel PPCA / Factor Analysis on two gloo ranks equal the single-process fit."""

import numpy as np
import pytest

import lvm
from tests.distributed_utils import run_ranks


def _data():
    return lvm.datasets.make_ppca(1200, 8, 2, noise=0.2, random_state=5).Y


def _fit_shard(rank, world_size, name):
    Y = _data()
    shard = np.array_split(Y, [700])[rank]  # unequal shards on purpose
    model = getattr(lvm, name)(2, device="cpu").fit(shard)
    return {"cov": model.get_covariance(), "mean": model.mean_, "score": model.score(Y),
            "log_evidence": model.log_evidence_}


def _bad_shard(rank, world_size):
    Y = _data()[:, : 8 - rank]  # rank 1 has one column fewer
    lvm.PPCA(2, device="cpu").fit(Y)


@pytest.mark.parametrize("name", ["PPCA", "FactorAnalysis"])
def test_two_ranks_equal_single_process(name):
    Y = _data()
    ref = getattr(lvm, name)(2, device="cpu").fit(Y)
    results = run_ranks(_fit_shard, 2, name)
    for status, r in results:
        assert status == "ok", r
        np.testing.assert_allclose(r["cov"], ref.get_covariance(), rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(r["mean"], ref.mean_, rtol=1e-8)
        assert r["score"] == pytest.approx(ref.score(Y), rel=1e-8)
        assert r["log_evidence"] == pytest.approx(ref.log_evidence_, rel=1e-8)


# Two spawned processes that import torch to check an error (7 s): slow, -m slow runs it.
@pytest.mark.slow
def test_shards_with_different_feature_counts_are_rejected_on_every_rank():
    results = run_ranks(_bad_shard, 2)
    for status, r in results:
        assert status == "error"
        assert r[0] == "ValueError" and "different numbers of features across ranks" in r[1]
