"""Out-of-core and data-parallel VAE fits: ``partial_fit``, and a 2-process gloo run."""

import gc
import os
import socket
import tempfile

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import lvm

EPOCHS = 8
HIDDEN = (64,)
BATCH = 64  # per process; the single-process reference uses 2 * BATCH


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _shards(Y_tr, Y_te):
    """Uneven shards: 55% / 45% of the training rows, halves of the test rows."""
    cut = int(0.55 * len(Y_tr))
    return [(Y_tr[:cut], Y_te[::2]), (Y_tr[cut:], Y_te[1::2])]


def _fit_on_rank(rank, Y_tr, Y_te, mode):
    Y, Y_test = _shards(Y_tr, Y_te)[rank]
    if mode == "bad_features":
        try:
            lvm.VAE(2, max_epochs=1, device="cpu").fit(Y[:, : 10 + rank])
        except ValueError as exc:
            return {"error": str(exc)}
        return {"error": None}
    vae = lvm.VAE(2, hidden_sizes=HIDDEN, batch_size=BATCH, max_epochs=EPOCHS,
                  validation_fraction=0.1 if mode == "fit" else 0.0, device="cpu", random_state=0)
    if mode == "fit":
        vae.fit(Y)
    else:  # partial_fit over two chunks, twice
        half = len(Y) // 2
        for _ in range(2):
            vae.partial_fit(Y[:half]).partial_fit(Y[half:])
    return {"state": {k: v.clone() for k, v in vae.module_.state_dict().items()},
            "score": vae.score(Y_test), "elbo": vae.elbo(Y_test), "history": vae.history_,
            "local_score": float(vae.score_samples(Y_test).mean())}


def _worker(rank, world, port, Y_tr, Y_te, out):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        results = {mode: _fit_on_rank(rank, Y_tr, Y_te, mode)
                   for mode in ("fit", "partial", "bad_features")}
        torch.save(results, os.path.join(out, f"rank{rank}.pt"))
    finally:
        gc.collect()  # see tests/distributed_utils.py: gloo can abort at exit otherwise
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_processes(digits_split):
    """One 2-process gloo group (spawned once, to keep CI short) running every scenario."""
    Y_tr, Y_te, *_ = digits_split
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(_worker, args=(2, _free_port(), Y_tr, Y_te, out), nprocs=2, join=True)
        return [torch.load(os.path.join(out, f"rank{r}.pt"), weights_only=False)
                for r in range(2)]


@pytest.mark.slow  # the 2-process gloo group: 14 s of spawning and imports
def test_two_process_fit_gives_identical_models(two_processes):
    r0, r1 = (r["fit"] for r in two_processes)
    assert r0["state"].keys() == r1["state"].keys()
    for k in r0["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k]), k
    assert r0["history"] == r1["history"]  # reduced objectives: the same early-stopping decisions
    assert r0["score"] == r1["score"] and r0["elbo"] == r1["elbo"]  # reduced over ranks


@pytest.mark.slow  # the 2-process gloo group: 14 s of spawning and imports
def test_two_process_evidence_matches_single_process(two_processes, digits_split):
    Y_tr, Y_te, *_ = digits_split
    single = lvm.VAE(2, hidden_sizes=HIDDEN, batch_size=2 * BATCH, max_epochs=EPOCHS,
                     validation_fraction=0.1, device="cpu", random_state=0).fit(Y_tr)
    expected = single.score(Y_te)
    fits = [r["fit"] for r in two_processes]
    got = fits[0]["score"]
    # The reduced score is the mean over all test rows (the ranks hold different halves).
    local = [r["local_score"] for r in fits]
    assert got == pytest.approx((local[0] * len(Y_te[::2]) + local[1] * len(Y_te[1::2]))
                                / len(Y_te), rel=1e-6)
    print(f"\nheld-out log p(y) per point: 2 gloo processes {got:.2f}, single process "
          f"{expected:.2f} ({EPOCHS} epochs, total batch {2 * BATCH})")
    assert abs(got - expected) < 0.03 * abs(expected)


@pytest.mark.slow  # the 2-process gloo group: 14 s of spawning and imports
def test_two_process_partial_fit(two_processes):
    r0, r1 = (r["partial"] for r in two_processes)
    for k in r0["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k]), k
    assert len(r0["history"]) == 4
    assert r0["score"] == r1["score"]


@pytest.mark.slow  # the 2-process gloo group: 14 s of spawning and imports
def test_shards_with_different_features_are_rejected_on_every_rank(two_processes):
    for r in two_processes:
        assert "different numbers of features across ranks ([10, 11])" in r["bad_features"]["error"]


# ----------------------------------------------------------------------------- partial_fit
def test_partial_fit_streams_chunks_and_keeps_optimizer_state(digits_split):
    Y_tr, Y_te, *_ = digits_split
    vae = lvm.VAE(2, hidden_sizes=HIDDEN, batch_size=128, random_state=0)
    chunks = np.array_split(Y_tr, 4)
    vae.partial_fit(chunks[0])
    first = vae.score(Y_te)

    def steps():
        return max(int(s["step"]) for s in vae._global_optimizer.state_dict()["state"].values())

    assert steps() == 3  # ceil(360 / 128)
    for _ in range(3):
        for chunk in chunks:
            vae.partial_fit(chunk)
    assert steps() == 3 + 3 * 12
    assert len(vae.history_) == vae.n_epochs_ == 13
    assert vae.score(Y_te) > first + 1


def test_partial_fit_is_deterministic_and_fit_starts_over(digits_split):
    Y = digits_split[0][:400]
    a = lvm.VAE(2, hidden_sizes=(16,), random_state=3).partial_fit(Y[:200]).partial_fit(Y[200:])
    b = lvm.VAE(2, hidden_sizes=(16,), random_state=3).partial_fit(Y[:200]).partial_fit(Y[200:])
    np.testing.assert_array_equal(a.transform(Y), b.transform(Y))
    a.set_params(max_epochs=100).fit(Y)
    assert a.n_epochs_ <= a.max_epochs and a.history_[0]["epoch"] == 1


def test_partial_fit_with_changed_features_is_an_error(digits_split):
    Y = digits_split[0][:100]
    vae = lvm.VAE(2, hidden_sizes=(8,)).partial_fit(Y)
    with pytest.raises(ValueError, match="X has 63 features, but VAE is expecting 64 features"):
        vae.partial_fit(Y[:, 1:])
