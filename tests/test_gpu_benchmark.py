"""benchmarks/gpu.py's functions on the CPU with tiny sizes: what the GPU run relies on."""

import importlib.util
from pathlib import Path

import pytest
import torch

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"
_spec = importlib.util.spec_from_file_location("benchmarks_gpu", _PATH)
gpu = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu)

CPU = torch.device("cpu")
TINY = {  # (function, rows, keyword arguments): seconds in all on one thread
    "PPCA": (gpu.run_ppca, 300, {"d": 8}),
    "VAE": (gpu.run_vae, 300, {"d": 5, "epochs": 3, "batch_size": 64}),
    "SVI GPLVM": (gpu.run_svi_gplvm, 200, {"d": 5, "epochs": 3, "batch_size": 64}),
    "collapsed GPLVM": (gpu.run_collapsed_gplvm, 60, {"d": 5, "iters": 40}),
    "DiffusionModel": (gpu.run_diffusion, 300, {"d": 5, "epochs": 3, "batch_size": 64}),
}


@pytest.mark.parametrize("name", list(TINY))
def test_each_family_runs_on_the_device_asked_with_finite_outputs(name):
    fn, n, kwargs = TINY[name]
    r = fn(CPU, n, **kwargs)
    assert r["family"] == name and r["rows"] == n
    assert r["model_on_device"] and r["outputs_on_device"] and r["finite"]
    assert r["fit_s"] > 0 and r["score_s"] > 0 and r["fit_rows"] >= n
    assert type(r["syncs"]) is int and r["syncs"] == 0  # the CPU has nothing to wait for
    if name == "PPCA":
        assert r["steps_per_epoch"] is None
    else:
        assert isinstance(r["steps_per_epoch"], int) and r["steps_per_epoch"] >= 1


def test_syncs_are_counted_per_epoch_between_the_markers():
    marks, syncs = [10, 20, 30], [1, 2, 3, 11, 12, 25]  # the set-up's 3, then 2 and 1
    assert gpu.most_per_epoch(marks, syncs) == 2
    assert gpu.most_per_epoch([10], syncs) == 6  # one epoch: the whole call
    assert type(gpu.syncs_per_epoch(lambda: None, CPU)) is int


def test_the_profiler_sees_one_marker_per_epoch():
    import lvm

    Y = gpu.make_data(100, CPU, torch.float64, d=6)
    model = lvm.FactorAnalysis(2, max_iter=40, tol=0.0, device="cpu")  # an epoch: 10 EM steps
    marks, syncs = gpu.profiled(lambda: model.fit(Y))
    assert len(marks) == model.n_iter_ // 10 == 4
    assert syncs == []  # the CPU has nothing to wait for


def test_model_on_sees_a_tensor_left_elsewhere():
    import lvm

    model = lvm.PPCA(2, device="cpu").fit(gpu.make_data(50, CPU, torch.float64, d=4))
    assert gpu.model_on(model, CPU)
    assert not gpu.model_on(model, torch.device("meta"))
    model._W = model._W.to("meta")
    assert not gpu.model_on(model, CPU)


def test_without_cuda_main_says_so_and_exits_0(capsys):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available: main would run the benchmark")
    assert gpu.main([]) == 0
    assert "no CUDA" in capsys.readouterr().out


def test_report_prints_one_row_per_family_with_its_ratios(capsys):
    r = gpu.run_ppca(CPU, 300, d=8)
    gpu.report([r], [r], floor=r["fit_s"] / 2, cpu_fraction=1.0)  # the CPU against itself
    row = next(line.split() for line in capsys.readouterr().out.splitlines()
               if line.split()[:2] == ["PPCA", "300"])
    assert row[3] == "2"  # x floor
    row = " ".join(row)
    assert row.count("1.0x") == 2 and "0/fit" in row and row.count("True") == 2


def test_a_failing_family_is_reported_and_the_others_still_run(capsys, monkeypatch):
    def broken(device, n):
        raise RuntimeError("planted")

    monkeypatch.setitem(gpu.RUNS, "VAE", broken)
    results = gpu.run_all(CPU, {"VAE": 50, "PPCA": 100})
    assert results[0] == {"family": "VAE", "rows": 50, "error": "RuntimeError: planted"}
    assert results[1]["family"] == "PPCA" and results[1]["finite"]
    gpu.report(results, results, floor=1.0, cpu_fraction=1.0)
    out = capsys.readouterr().out
    assert "VAE              failed: RuntimeError: planted" in out and "planted" in out
