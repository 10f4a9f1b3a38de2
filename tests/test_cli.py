"""The command line: the main job end to end, and clear errors with a non-zero status."""

import subprocess
import sys

import numpy as np
import pytest

from lvm.cli import main


def test_embed_writes_coordinates(tmp_path, capsys):
    Y = np.random.default_rng(0).standard_normal((60, 5))
    np.save(tmp_path / "Y.npy", Y)
    assert main(["embed", "--data", str(tmp_path / "Y.npy"), "--model", "ppca",
                 "--out", str(tmp_path / "X.csv")]) == 0
    X = np.loadtxt(tmp_path / "X.csv", delimiter=",", skiprows=1)
    assert X.shape == (60, 2)


def test_compare_on_csv_with_header(tmp_path, capsys):
    Y = np.random.default_rng(0).standard_normal((80, 4))
    path = tmp_path / "data.csv"
    np.savetxt(path, Y, delimiter=",", header="a,b,c,d", comments="")
    assert main(["compare", "--data", str(path), "--models", "ppca,fa", "--out",
                 str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "held-out" in out and "ppca" in out and "fa" in out
    assert (tmp_path / "out" / "comparison.csv").is_file()
    assert (tmp_path / "out" / "comparison.png").stat().st_size > 5_000


@pytest.mark.parametrize(
    "content, message",
    [
        ("a,b\n1,2\n3,x\n", "column 'b' is not numeric"),
        ("1,2\n3,nan\n5,6\n", "missing or infinite"),
        ("1,2\n3\n", "row 2 has 1 fields"),
        ("", "is empty"),
    ],
)
def test_bad_csv_is_rejected(tmp_path, capsys, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert main(["compare", "--data", str(path), "--models", "ppca"]) == 2
    assert message in capsys.readouterr().err


def test_missing_and_unknown_files(tmp_path, capsys):
    assert main(["embed", "--data", str(tmp_path / "nope.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "x.parquet").write_bytes(b"PAR1")
    assert main(["embed", "--data", str(tmp_path / "x.parquet")]) == 2
    assert "use a .csv, .npy or .npz" in capsys.readouterr().err
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    assert main(["embed", "--data", str(tmp_path / "junk.npy")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_unknown_model(tmp_path, capsys):
    np.save(tmp_path / "Y.npy", np.ones((10, 3)))
    assert main(["compare", "--data", str(tmp_path / "Y.npy"), "--models", "pca9"]) == 2
    assert "unknown model 'pca9'" in capsys.readouterr().err


def test_console_script_exit_status(tmp_path):
    r = subprocess.run([sys.executable, "-m", "lvm", "embed", "--data", str(tmp_path / "no.npy")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "error" in r.stderr


def test_demo_end_to_end(tmp_path, capsys):
    # The README's main job, every family, as the user runs it (about half a minute on 2 cores).
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in ("ppca", "fa", "vae", "gplvm"):
        assert f"\n{name} " in out
    assert "exact" in out and "importance-weighted estimate" in out and "held-out" in out
    assert (tmp_path / "demo.png").stat().st_size > 50_000
