"""``lvm.datasets.load_table`` on its own: delimiters, header sniffing, row-index and label columns,
missing cells, .npy / .npz, and an error naming the row and column for every file it rejects."""

import numpy as np
import pytest

import lvm.cli
from lvm.datasets import load_table
from tests.tables import cells, write_csv


def quiet(message):
    """A ``note`` that drops the notes."""


def test_the_command_line_reads_with_the_same_function():
    assert lvm.cli.load_table is load_table and "load_table" in lvm.cli.__all__


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|", " ", "   "])
@pytest.mark.parametrize("header", [True, False])
def test_delimiter_and_header_are_sniffed(tmp_path, wine, delimiter, header):
    Y, _, names = wine
    lines = ([delimiter.join(names)] if header else []) + [delimiter.join(cells(r)) for r in Y]
    path = tmp_path / "d.txt"
    path.write_text("\n".join(lines) + "\n")
    Z, labels = load_table(path)
    np.testing.assert_array_equal(Z, Y)  # the header row, when there is one, is not data
    assert labels is None


@pytest.mark.parametrize("suffix, delimiter", [(".csv", ","), (".tsv", "\t")])
def test_one_column_files(tmp_path, suffix, delimiter):
    # Nothing to sniff a delimiter from: the suffix's own is used.
    path = tmp_path / f"one{suffix}"
    path.write_text("height\n1.5\n2.5\n")
    Z, _ = load_table(path)
    np.testing.assert_array_equal(Z, [[1.5], [2.5]])


@pytest.mark.parametrize("first_line", [",0,1,2", "0,1,2"])
def test_numbered_header_of_a_frame_made_from_an_array(tmp_path, first_line):
    Y = np.random.default_rng(0).standard_normal((30, 3))
    indexed = first_line.startswith(",")
    rows = [([i] if indexed else []) + cells(r) for i, r in enumerate(Y)]
    path = write_csv(tmp_path / "f.csv", first_line.split(","), rows)
    Z, _ = load_table(path, note=quiet)
    np.testing.assert_array_equal(Z, Y)


def test_labels_by_name_by_index_and_from_the_end_and_text_labels(tmp_path, wine):
    Y, y, names = wine
    path = write_csv(tmp_path / "w.csv", ["kind"] + names,
                     [[f"cultivar {c}", *cells(r)] for r, c in zip(Y, y)])
    for spec in ("kind", 0, "0", -14):
        Z, labels = load_table(path, spec)
        np.testing.assert_array_equal(Z, Y)
        assert labels.dtype.kind == "U" and labels[0] == "cultivar 0" and len(set(labels)) == 3


def test_whole_number_labels_come_back_as_integers(tmp_path, wine):
    Y, y, names = wine
    path = write_csv(tmp_path / "w.csv", names + ["class"],
                     [[*cells(r), float(c)] for r, c in zip(Y, y)])
    Z, labels = load_table(path, "class")
    np.testing.assert_array_equal(Z, Y)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, y)


def test_a_label_like_column_is_a_feature_with_a_note(tmp_path, wine):
    Y, y, names = wine
    path = write_csv(tmp_path / "w.csv", names + ["class"],
                     [[*cells(r), int(c)] for r, c in zip(Y, y)])
    with pytest.warns(UserWarning, match=r"column 'class' looks like labels .*--labels class"):
        Z, labels = load_table(path)
    assert Z.shape == (178, 14) and labels is None
    notes = []
    load_table(path, note=notes.append)  # the command line's notes: the same text, no warning
    assert len(notes) == 1 and notes[0].startswith("column 'class' looks like labels")


def test_an_unnamed_first_column_is_a_row_index(tmp_path, wine):
    Y, _, names = wine
    path = write_csv(tmp_path / "p.csv", [""] + names, [[i, *cells(r)] for i, r in enumerate(Y)])
    notes = []
    Z, _ = load_table(path, note=notes.append)
    np.testing.assert_array_equal(Z, Y)
    assert notes == ["dropped column 0 ('') of p.csv as a row index: it is unnamed, as pandas and "
                     "R write a row index (keep_index=True, or --keep-index, keeps it)."]


def test_an_index_column_0_to_n_minus_1_is_dropped_unless_kept(tmp_path, wine):
    Y, _, names = wine
    path = write_csv(tmp_path / "i.csv", ["index"] + names,
                     [[i, *cells(r)] for i, r in enumerate(Y)])
    with pytest.warns(UserWarning, match=r"its values are 0, 1, \.\.\., n-1"):
        Z, _ = load_table(path)
    np.testing.assert_array_equal(Z, Y)
    Z, _ = load_table(path, keep_index=True)
    np.testing.assert_array_equal(Z, np.column_stack([np.arange(178), Y]))


@pytest.mark.parametrize("missing", ["", "NA", "nan", "n/a", "null", "None", "-"])
def test_missing_cells_are_nan_with_a_note(tmp_path, missing):
    Y = np.arange(15, dtype=float).reshape(5, 3)
    rows = [cells(r) for r in Y]
    rows[1][2] = missing
    rows[3][0] = missing
    path = write_csv(tmp_path / "m.csv", ["a", "b", "c"], rows)
    notes = []
    Z, _ = load_table(path, note=notes.append)
    expected = Y.copy()
    expected[1, 2] = expected[3, 0] = np.nan
    np.testing.assert_array_equal(Z, expected)  # NaN compares equal to NaN here
    assert notes == ["m.csv: 2 missing value(s) (NaN, 13.3% of the entries): the models score the "
                     "observed entries of each row."]


def test_missing_cells_of_a_large_file(tmp_path):
    # 200 x 5 with 10 % holes, the fast reader's path.
    rng = np.random.default_rng(0)
    Y = rng.standard_normal((200, 5))
    holes = rng.random(Y.shape) < 0.1
    lines = ["a,b,c,d,e"] + [",".join("" if h else repr(float(v)) for v, h in zip(r, hr))
                             for r, hr in zip(Y, holes)]
    (tmp_path / "holes.csv").write_text("\n".join(lines) + "\n")
    Z, _ = load_table(tmp_path / "holes.csv", note=quiet)
    np.testing.assert_array_equal(np.isnan(Z), holes)
    np.testing.assert_array_equal(Z[~holes], Y[~holes])


def test_npz_and_npy_with_labels(tmp_path):
    Y = np.random.default_rng(0).standard_normal((40, 4))
    Y[3, 1] = np.nan
    y = np.arange(40) % 3
    np.savez(tmp_path / "d.npz", Y=Y, labels=y, group=y + 10)
    Z, labels = load_table(tmp_path / "d.npz", note=quiet)
    np.testing.assert_array_equal(Z, Y)
    np.testing.assert_array_equal(labels, y)
    _, labels = load_table(tmp_path / "d.npz", "group", note=quiet)
    np.testing.assert_array_equal(labels, y + 10)
    np.savez(tmp_path / "first.npz", data=Y)  # no array Y: the first one, no labels
    Z, labels = load_table(tmp_path / "first.npz", note=quiet)
    np.testing.assert_array_equal(Z, Y)
    assert labels is None
    np.save(tmp_path / "d.npy", np.column_stack([Y, y]))
    Z, labels = load_table(tmp_path / "d.npy", -1, note=quiet)
    np.testing.assert_array_equal(Z, Y)
    np.testing.assert_array_equal(labels, y)
    np.save(tmp_path / "ints.npy", np.arange(6).reshape(3, 2))
    Z, _ = load_table(tmp_path / "ints.npy")
    assert Z.dtype == np.float64 and Z.tolist() == [[0, 1], [2, 3], [4, 5]]


# ----------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "content, message",
    [
        ("a,b\n1,2\n3,x\n", r"column 'b' is not numeric \(row 2 holds 'x'\); drop or encode it, "
                            r"or pass it as labels \(--labels b\)"),
        ("1,2\n3,4\nfive,6\n", r"column 0 \(0-based\) is not numeric \(row 3 holds 'five'\)"),
        ("1,2\n3,inf\n5,6\n", r"1 infinite value\(s\) \(first at row 2, feature 2\)"),
        ("a,b\n1,2\n,\n", r"row 2 has no observed value; drop it"),
        ("1,2\n3\n", r"row 2 \(line 2\) has 1 fields, expected 2"),
        ("1,2,3\n4,5,6,7\n", r"row 2 \(line 2\) has 4 fields, expected 3"),
        ("", r"is empty"),
        ("\n\n", r"is empty"),
    ],
)
def test_a_file_that_is_not_a_table_of_numbers_names_the_cell(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_table(path)


def test_bad_labels_option(tmp_path, wine):
    Y, y, names = wine
    path = write_csv(tmp_path / "w.csv", names + ["class"],
                     [[*cells(r), int(c)] for r, c in zip(Y, y)])
    with pytest.raises(ValueError, match=r"no column named 'colour' for the labels; its columns "
                                         r"are 'alcohol', .*, \.\.\."):
        load_table(path, "colour")
    with pytest.raises(ValueError, match=r"labels=14: .*w.csv has 14 columns \(0 to 13\)"):
        load_table(path, 14)
    bare = write_csv(tmp_path / "bare.csv", None, [cells(r) for r in Y[:5]])
    with pytest.raises(ValueError, match=r"no column named 'class' for the labels; it has no "
                                         r"header, so give a 0-based index"):
        load_table(bare, "class")
    one = write_csv(tmp_path / "one.csv", ["class"], [[c] for c in y[:5]])
    with pytest.raises(ValueError, match=r"no feature columns besides the labels"):
        load_table(one, "class")


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cannot read .*nope.csv: no such file"):
        load_table(tmp_path / "nope.csv")
    (tmp_path / "x.parquet").write_bytes(b"PAR1")
    with pytest.raises(ValueError, match=r"use a \.csv, \.tsv, \.txt, \.npy or \.npz file"):
        load_table(tmp_path / "x.parquet")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match=r"cannot read .*junk.npy: "):
        load_table(tmp_path / "junk.npy")
    np.save(tmp_path / "text.npy", np.array([["a", "b"]]))
    with pytest.raises(ValueError, match=r"holds non-numeric data \(dtype <U1\)"):
        load_table(tmp_path / "text.npy")
    np.save(tmp_path / "flat.npy", np.arange(3.0))
    with pytest.raises(ValueError, match=r"must hold a 2-D table .*got shape \(3,\)"):
        load_table(tmp_path / "flat.npy")
    np.save(tmp_path / "col.npy", np.arange(3.0).reshape(3, 1))
    with pytest.raises(ValueError, match=r"has no feature columns left"):
        load_table(tmp_path / "col.npy", 0)
    np.savez(tmp_path / "empty.npz")
    with pytest.raises(ValueError, match=r"holds no arrays"):
        load_table(tmp_path / "empty.npz")
    np.savez(tmp_path / "d.npz", Y=np.ones((4, 2)), labels=np.arange(3))
    with pytest.raises(ValueError, match=r"3 labels for 4 rows"):
        load_table(tmp_path / "d.npz")
    with pytest.raises(ValueError, match=r"has no array 'group' for the labels; it holds Y, "
                                         r"labels"):
        load_table(tmp_path / "d.npz", "group")
