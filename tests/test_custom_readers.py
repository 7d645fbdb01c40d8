"""Each reader of a dataset given by format: on a small file of its kind, beside what
tests/test_own_dataset.py covers: the NumPy folder, an HDF5 `split`, a zarr store read
through xarray, separate `train:`/`val:`/`test:` files, `task:` overriding the labels'
type, and the `.ts` reader's values against an independent parse (a few lines here, and
the UCR archive's `.tsv` copy of the same training sets)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from tstransfer import store
from tstransfer.datasets.base import SPLIT_CODES, TRAIN_OR_VAL
from tstransfer.datasets.custom import CustomDataset
from tstransfer.datasets.readers import read_ts, read_ucr_tsv
from ucr_data import ucr

LOG = logging.getLogger("test")


def _arrays(n=24, length=10, channels=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, length, channels)), rng.integers(0, 3, size=n)


def _split(n):
    rng = np.random.default_rng(n)
    split = np.array(["train"] * (n - 8) + ["val"] * 4 + ["test"] * 4)
    return split[rng.permutation(n)]  # interleaved, so that order matters


def _loaded(spec):
    info, series, labels, split, _ = CustomDataset("mine", {"domain": "d", **spec})._load()
    return info, np.stack(series), labels, split


# --------------------------------------------------------------------------- numpy folder
def test_numpy_folder_reads_its_npy_files_by_the_names_given(tmp_path):
    x, y = _arrays()
    split = _split(len(x))
    folder = tmp_path / "arrays"
    folder.mkdir()
    np.save(folder / "signals.npy", x)
    np.save(folder / "labels.npy", y)
    np.save(folder / "part.npy", split)
    np.save(folder / "X.npy", x[::-1])  # the default name, here a decoy
    info, got, labels, got_split = _loaded({"format": "numpy", "path": str(folder), "x": "signals",
                                            "y": "labels", "split": "part"})
    np.testing.assert_array_equal(got, x)
    np.testing.assert_array_equal(labels, y)
    np.testing.assert_array_equal(got_split, split)
    assert (info.channels, info.task, info.class_names) == (2, "classification", ("0", "1", "2"))
    # the defaults X.npy and y.npy
    np.save(folder / "y.npy", y[::-1])
    _, got, labels, got_split = _loaded({"format": "numpy", "path": str(folder)})
    np.testing.assert_array_equal(got, x[::-1])
    np.testing.assert_array_equal(labels, y[::-1])
    assert set(got_split) == {""}  # no split named: the store draws one


# --------------------------------------------------------------------------- hdf5 split
def test_hdf5_split_is_kept_per_instance_through_the_store(tmp_path):
    import h5py

    x, y = _arrays(n=30)
    split = _split(len(x))
    with h5py.File(tmp_path / "d.h5", "w") as handle:
        handle["g/x"], handle["g/y"] = x, y
        handle["g/split"] = split.astype("S")  # h5py stores strings as bytes
    spec = {"format": "hdf5", "path": str(tmp_path / "d.h5"), "x": "g/x", "y": "g/y", "split": "g/split"}
    _, got, labels, got_split = _loaded(spec)
    np.testing.assert_array_equal(got, x)
    np.testing.assert_array_equal(got_split, split)
    dataset = CustomDataset("mine", {"domain": "d", **spec})
    summary = store.convert(dataset, tmp_path, tmp_path / "d.zarr", {}, seed=0, log=LOG)
    assert summary["split_method"] == "given"
    assert summary["split_counts"] == {"train": 22, "val": 4, "test": 4}
    converted = store.open_store(tmp_path / "d.zarr")
    # each split holds the labels of the instances the file put there
    for name, code in SPLIT_CODES.items():
        got_labels = converted["label"].values[converted["split"].values == code]
        assert sorted(got_labels.tolist()) == sorted(y[split == name].tolist()), name


# --------------------------------------------------------------------------- zarr via xarray
def test_zarr_store_is_read_through_xarray_with_named_dims(tmp_path):
    import xarray as xr

    x, y = _arrays(n=20, channels=3)
    split = _split(len(x))
    # stored (sensor, trial, step): the reader transposes by the names in dims
    xr.Dataset({
        "signal": (("sensor", "trial", "step"), x.transpose(2, 0, 1)),
        "target": (("trial",), y),
        "part": (("trial",), split),
    }).to_zarr(tmp_path / "d.zarr")
    spec = {"format": "xarray", "path": str(tmp_path / "d.zarr"), "x": "signal", "y": "target",
            "split": "part", "dims": {"instance": "trial", "time": "step", "channel": "sensor"}}
    info, got, labels, got_split = _loaded(spec)
    np.testing.assert_array_equal(got, x)
    np.testing.assert_array_equal(labels, y)
    np.testing.assert_array_equal(got_split, split)
    assert info.channels == 3


# --------------------------------------------------------------------------- train:/val:/test:
def test_train_val_test_files_give_the_split_in_their_order(tmp_path):
    parts = {name: _arrays(n=n, seed=seed) for name, n, seed in (("train", 12, 1), ("val", 5, 2), ("test", 7, 3))}
    for name, (x, y) in parts.items():
        np.savez(tmp_path / f"{name}_part.npz", X=x, y=y)
    np.savez(tmp_path / "other.npz", X=np.zeros((3, 10, 2)), y=np.zeros(3))  # in the folder, not named
    spec = {"format": "numpy", "path": str(tmp_path), "train": "train_part.npz", "val": "val_part.npz",
            "test": "test_part.npz"}
    _, got, labels, split = _loaded(spec)
    np.testing.assert_array_equal(got, np.concatenate([parts[n][0] for n in ("train", "val", "test")]))
    np.testing.assert_array_equal(labels, np.concatenate([parts[n][1] for n in ("train", "val", "test")]))
    assert split.tolist() == ["train"] * 12 + ["val"] * 5 + ["test"] * 7
    summary = store.convert(CustomDataset("mine", {"domain": "d", **spec}), tmp_path, tmp_path / "s.zarr", {},
                            seed=0, log=LOG)
    assert summary["split_method"] == "given"
    assert summary["split_counts"] == {"train": 12, "val": 5, "test": 7}
    # without val: the training file is split by the store, the test file kept
    del spec["val"]
    _, _, _, split = _loaded(spec)
    assert split.tolist() == [TRAIN_OR_VAL] * 12 + ["test"] * 7


def test_train_without_test_is_refused_naming_the_entry(tmp_path):
    np.savez(tmp_path / "a.npz", X=np.zeros((3, 4)), y=np.arange(3))
    with pytest.raises(ValueError, match=r"config datasets\.mine: give both train and test"):
        _loaded({"format": "numpy", "path": str(tmp_path), "train": "a.npz"})


# --------------------------------------------------------------------------- task:
def test_task_overrides_what_the_labels_suggest(tmp_path):
    x, _ = _arrays(n=12)
    whole = np.array([3, 1, 2, 10] * 3)
    np.savez(tmp_path / "ints.npz", X=x, y=whole)
    info, _, labels, _ = _loaded({"format": "numpy", "path": str(tmp_path / "ints.npz")})
    assert info.task == "classification" and info.class_names == ("1", "2", "3", "10")
    np.testing.assert_array_equal(labels, [2, 0, 1, 3] * 3)  # class indices, natural order
    info, _, labels, _ = _loaded({"format": "numpy", "path": str(tmp_path / "ints.npz"), "task": "regression"})
    assert info.task == "regression" and info.class_names == ()
    assert labels.dtype == np.float64
    np.testing.assert_array_equal(labels, whole.astype(float))

    floats = np.array([0.5, 1.5, 0.5, 2.0] * 3)
    np.savez(tmp_path / "floats.npz", X=x, y=floats)
    info, _, labels, _ = _loaded({"format": "numpy", "path": str(tmp_path / "floats.npz")})
    assert info.task == "regression"
    info, _, labels, _ = _loaded({"format": "numpy", "path": str(tmp_path / "floats.npz"),
                                  "task": "classification"})
    assert info.task == "classification" and info.class_names == ("0.5", "1.5", "2.0")
    np.testing.assert_array_equal(labels, [0, 1, 0, 2] * 3)
    with pytest.raises(ValueError, match=r"datasets\.mine\.task must be classification or regression"):
        _loaded({"format": "numpy", "path": str(tmp_path / "floats.npz"), "task": "ranking"})


def test_task_regression_on_text_labels_names_the_entry(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.zeros((4, 5)), y=np.array(["a", "b", "a", "b"]))
    with pytest.raises(ValueError, match=r"config datasets\.mine: task regression but a label is not a number"):
        _loaded({"format": "numpy", "path": str(tmp_path / "d.npz"), "task": "regression"})


# --------------------------------------------------------------------------- .ts values
def _parse_ts(path: Path) -> tuple[list[np.ndarray], list[str]]:
    """A minimal independent .ts parser: everything after the @data line; per line the
    label after the last ':', each channel a comma list ('?' missing)."""
    text = path.read_text()
    body = text[text.lower().index("@data") + len("@data"):]
    series, labels = [], []
    for line in body.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        *channels, label = line.strip().split(":")
        series.append(np.array([[np.nan if v == "?" else float(v) for v in c.split(",")] for c in channels]).T)
        labels.append(label.strip())
    return series, labels


@pytest.mark.parametrize("problem", ["BasicMotions", "JapaneseVowels", "Covid3Month", "GunPoint"])
def test_ts_values_equal_an_independent_parse(problem):
    path = ucr(problem) / f"{problem}_TRAIN.ts"
    got = read_ts(problem, path)
    series, labels = _parse_ts(path)
    assert len(got.x) == len(series) > 0
    for mine, theirs in zip(got.x, series, strict=True):
        np.testing.assert_array_equal(mine, theirs)
    if got.task == "regression":
        np.testing.assert_array_equal(got.y, np.array(labels, dtype=float))
    else:
        assert got.y.tolist() == labels


@pytest.mark.parametrize("problem", ["GunPoint", "ArrowHead"])
def test_ts_values_equal_the_archives_tsv_copy(problem):
    """The UCR archive ships these training sets as .ts and as .tsv: the same numbers."""
    folder = ucr(problem)
    table = np.loadtxt(folder / f"{problem}_TRAIN.tsv", delimiter="\t")
    got = read_ts(problem, folder / f"{problem}_TRAIN.ts")
    np.testing.assert_array_equal(np.stack(got.x)[:, :, 0], table[:, 1:])
    assert got.y.tolist() == [str(int(v)) for v in table[:, 0]]
    tsv = read_ucr_tsv(problem, folder / f"{problem}_TRAIN.tsv")
    np.testing.assert_array_equal(np.stack(tsv.x), np.stack(got.x))


def test_ts_missing_values_and_channels_in_a_small_file(tmp_path):
    path = tmp_path / "small.ts"
    path.write_text(
        "# a comment\n@problemName small\n@timeStamps false\n@missing true\n@univariate false\n"
        "@dimensions 2\n@equalLength false\n@classLabel true up down\n@data\n"
        "1,2,3:4,5,6:up\n"
        "0.5,?,1e3:-1,-2,-3:down\n"
        "7,8:9,10:up\n"
    )
    got = read_ts("small", path)
    assert got.class_names == ("up", "down") and got.y.tolist() == ["up", "down", "up"]
    np.testing.assert_array_equal(got.x[0], [[1, 4], [2, 5], [3, 6]])
    np.testing.assert_array_equal(got.x[1], [[0.5, -1], [np.nan, -2], [1000, -3]])
    np.testing.assert_array_equal(got.x[2], [[7, 9], [8, 10]])
    for mine, theirs in zip(got.x, _parse_ts(path)[0], strict=True):
        np.testing.assert_array_equal(mine, theirs)
