"""LOMAX, LEN-DB and STEAD (both layouts): synthetic raw files -> store -> subsets.

Each case writes small synthetic raw files in the real format, converts them with
``tstransfer.store.convert`` and checks the store against an independent plain-h5py /
pandas reading of the same raw files (``seismic_readers``). Bad raw input must raise a
DataError naming the dataset, the file and the trace, and leave no store behind.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from tstransfer import store
from tstransfer.datasets import lendb, lomax, stead, write_synthetic
from tstransfer.datasets.base import DataError
from tstransfer.seeding import rng_for

try:  # tests/ is on sys.path as a rootdir-less folder; as a package if one adds __init__
    import seismic_readers as helpers
    from shared_data import LOMAX_KEEP_LIST, require
except ImportError:  # pragma: no cover
    from tests import seismic_readers as helpers
    from tests.shared_data import LOMAX_KEEP_LIST, require


SEED = 20221025
LOG = logging.getLogger("test_datasets_seismic")


def _write_keep_list(raw: Path, path: Path) -> tuple[set[str], set[str]]:
    """A keep-list that drops about a third of each test group, in both line styles."""
    qualified, bare = set(), set()
    lines = ["# authors' keep-list format: group-qualified names; bare names also allowed"]
    with h5py.File(raw / lomax.FILE, "r") as f:
        for group in ("test/events", "test2/events"):
            for i, name in enumerate(sorted(f[group])):
                if i % 3 == 2:
                    continue  # not on the list: dropped
                if i % 2:
                    bare.add(name)
                    lines.append(name)
                else:
                    qualified.add(f"{group}/{name}")
                    lines.append(f"{group}/{name}")
        noise_name = next(iter(f["test/noise"]))
    lines.append(f"test/noise/{noise_name}")  # noise entries select nothing
    lines.append("")
    path.write_text("\n".join(lines))
    return qualified, bare


CASES = ["lomax", "lendb", "stead-chunks", "stead-single"]


@pytest.fixture(scope="module", params=CASES)
def converted(request, tmp_path_factory):
    """(case, module, raw, store path, summary, expected traces, noise names, extra)."""
    case = request.param
    base = tmp_path_factory.mktemp(case)
    raw = base / "raw"
    rng = rng_for(SEED, "test-synthetic", case)
    extra = {}
    if case == "lomax":
        module = lomax
        write_synthetic(module.INFO.name, raw, {"n_instances": 200, "length": 1001}, rng)
        qualified, bare = _write_keep_list(raw, base / "keep.txt")
        params = {"keep_list": str(base / "keep.txt")}
        traces, keep_dropped, duplicates, noise = helpers.expected_lomax(raw, qualified, bare)
        extra = {"keep_dropped": keep_dropped, "duplicates": duplicates}
    elif case == "lendb":
        module = lendb
        write_synthetic(module.INFO.name, raw, {"n_instances": 200, "length": 540}, rng)
        params = {}
        traces, noise = helpers.expected_lendb(raw)
    else:
        module = stead
        layout = case.split("-")[1]
        write_synthetic(module.INFO.name, raw,
                        {"n_instances": 100, "length": 6000, "layout": layout, "n_chunks": 3}, rng)
        params = {"layout": layout, "chunks": [1, 2, 3]} if layout == "chunks" else {"layout": layout}
        traces, noise = helpers.expected_stead(raw, layout, [1, 2, 3])
    out = base / "store.zarr"
    # A small chunk size so the stores have several chunks (and STEAD chunks span files).
    summary = store.convert(module, raw, out, params, seed=SEED, chunk_size=32, log=LOG)
    return case, module, raw, out, summary, traces, noise, extra


def _load(out: Path) -> dict[str, np.ndarray]:
    ds = store.open_store(out)
    return {name: ds[name].values
            for name in ("waveform", "label", "stream_max", "split", "key", "raw_index", "mask")}


def test_counts_keys_and_labels(converted):
    case, module, raw, out, summary, traces, noise, extra = converted
    data = _load(out)
    keys = [str(k) for k in data["key"]]
    assert len(keys) == len(set(keys)) == len(traces) == summary["n_instances"]
    assert set(keys) == set(traces)
    assert not set(keys) & noise  # noise traces excluded
    # stored in a seeded random order; raw_index gives back the extraction's order
    raw_keys = module.list_instances(raw, summary["extraction"], LOG).table["key"].tolist()
    assert summary["instance_order"] == "shuffled"
    assert np.array_equal(np.sort(data["raw_index"]), np.arange(len(keys)))
    assert [keys[i] for i in np.argsort(data["raw_index"])] == raw_keys != keys
    expected_labels = np.array([traces[k][0] for k in keys], dtype=np.float32)
    np.testing.assert_array_equal(data["label"], expected_labels)
    if case == "lomax":
        assert extra["duplicates"] == 1 and extra["keep_dropped"] > 0
        assert summary["dropped"]["duplicate trace names (first kept)"] == 1
        assert summary["dropped"]["test events not on the keep-list"] == extra["keep_dropped"]
        assert summary["dropped"]["noise traces (*/noise groups)"] == len(noise)
    else:
        assert sum(summary["dropped"].values()) == len(noise)


def test_shapes_scaling_and_stream_max(converted):
    case, module, raw, out, summary, traces, noise, extra = converted
    data = _load(out)
    keys = [str(k) for k in data["key"]]
    first = traces[keys[0]][1]
    assert first.shape[1] == 3  # time x channel after the module's transposition (LEN-DB)
    assert data["waveform"].shape == (len(keys), *first.shape)
    assert summary["length"] == first.shape[0] and summary["channels"] == 3
    wave = data["waveform"]
    lo, hi = wave.min(axis=(1, 2)), wave.max(axis=(1, 2))
    np.testing.assert_array_equal(lo, 0.0)
    np.testing.assert_allclose(hi, 1.0, atol=1e-6)
    for i, key in enumerate(keys):
        raw_trace = traces[key][1].astype(np.float64)
        r_lo, r_hi = raw_trace.min(), raw_trace.max()
        np.testing.assert_allclose(data["stream_max"][i], max(abs(r_lo), abs(r_hi)), rtol=1e-6)
        np.testing.assert_allclose(wave[i], (raw_trace - r_lo) / (r_hi - r_lo), atol=2e-6)


def test_splits_mask_and_subset(converted, tmp_path):
    case, module, raw, out, summary, traces, noise, extra = converted
    data = _load(out)
    n = len(data["key"])
    counts = np.bincount(data["split"], minlength=3)
    assert counts.tolist() == [round(0.7 * n), round(0.15 * n), n - round(0.7 * n) - round(0.15 * n)]
    train = data["split"] == 0
    np.testing.assert_allclose(data["mask"], data["waveform"][train].mean(axis=0, dtype=np.float64), atol=1e-6)
    size = 40
    store.make_subset(out, tmp_path / "subset.npz", variant="small", size=size, run=0, seed=SEED)
    indices, mask, meta = store.load_subset(tmp_path / "subset.npz")
    assert len(indices) == len(set(indices.tolist())) == size == meta["size"]
    assert train[indices].all()
    np.testing.assert_allclose(mask, data["waveform"][indices].mean(axis=0, dtype=np.float64), atol=1e-6)


def test_magnitude_is_learnable(converted):
    """Raw peak amplitude rises with magnitude; the scaled waveform's spectrum falls."""
    case, module, raw, out, summary, traces, noise, extra = converted
    data = _load(out)
    keys = [str(k) for k in data["key"]]
    magnitude = np.array([traces[k][0] for k in keys])
    log_peak = np.log10([np.abs(traces[k][1]).max() for k in keys])
    assert np.corrcoef(log_peak, magnitude)[0, 1] > 0.8
    # Without stream_max (STEAD) the magnitude must still show in the scaled waveform.
    spectrum = np.abs(np.fft.rfft(data["waveform"] - data["waveform"].mean(axis=1, keepdims=True), axis=1)) ** 2
    frequency = np.arange(spectrum.shape[1])
    centroid = (spectrum.sum(axis=2) * frequency).sum(axis=1) / spectrum.sum(axis=(1, 2))
    assert np.corrcoef(centroid, magnitude)[0, 1] < -0.7


def test_synthetic_is_deterministic(tmp_path):
    for name in ("a", "b"):
        write_synthetic("lendb", tmp_path / name, {"n_instances": 12, "length": 540}, rng_for(SEED, "det"))
    with h5py.File(tmp_path / "a" / lendb.FILE) as fa, h5py.File(tmp_path / "b" / lendb.FILE) as fb:
        assert list(fa["EQ"]) == list(fb["EQ"])
        for key in fa["EQ"]:
            np.testing.assert_array_equal(fa["EQ"][key][()], fb["EQ"][key][()])
            assert fa["EQ"][key].dtype == np.float64 and fa["EQ"][key].shape == (3, 540)


def test_stead_metadata_columns(tmp_path):
    write_synthetic("stead", tmp_path, {"n_instances": 8, "length": 600, "layout": "single"}, rng_for(SEED, "cols"))
    table = pd.read_csv(tmp_path / stead.SINGLE_CSV)
    assert tuple(table.columns) == stead.METADATA_COLUMNS and len(stead.METADATA_COLUMNS) == 35
    assert set(table["trace_category"]) == {"earthquake_local", "noise"}
    assert table.loc[table["trace_category"] == "noise", "source_magnitude"].isna().all()
    with h5py.File(tmp_path / stead.SINGLE_HDF5) as f:
        assert set(f) == {"earthquake", "non_earthquake"}
        name = table.loc[table["trace_category"] == "noise", "trace_name"].iloc[0]
        assert f[f"non_earthquake/noise/{name}"].dtype == np.float32


def test_raw_files_and_lomax_without_keep_list(tmp_path, caplog):
    assert stead.raw_files({}) == [f"chunk{k}.{ext}" for k in range(1, 7) for ext in ("hdf5", "csv")]
    assert stead.raw_files({"layout": "single"}) == [stead.SINGLE_HDF5, stead.SINGLE_CSV]
    assert lendb.raw_files({}) == ["LEN-DB.hdf5"] and lomax.raw_files({}) == [lomax.FILE]
    write_synthetic("lomax", tmp_path, {"n_instances": 20, "length": 50}, rng_for(SEED, "nokeep"))
    with caplog.at_level(logging.WARNING):
        index = lomax.list_instances(tmp_path, {"keep_list": None}, LOG)
    assert "no keep-list" in caplog.text
    assert len(index) == 19 and index.dropped["duplicate trace names (first kept)"] == 1


# --------------------------------------------------------------------------- bad input


def _small(module, raw: Path, **extra) -> None:
    write_synthetic(module.INFO.name, raw,
                    {"n_instances": 24, "length": module.LENGTH if module is not stead else 600, **extra},
                    rng_for(SEED, "bad", module.INFO.name))


def _assert_fails(module, raw: Path, out: Path, params, *parts: str) -> DataError:
    with pytest.raises(DataError, match=f"\\A{re.escape(module.INFO.name)}: ") as info:
        store.convert(module, raw, out, params, seed=SEED, chunk_size=8, log=LOG)
    message = str(info.value)
    for part in (module.INFO.name, *parts):
        assert part in message, f"{part!r} not in {message!r}"
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]  # no temp store left
    return info.value


def _last_key(module, raw: Path, params, group: str | None = None) -> str:
    """The last trace the conversion reads (of ``group``, for LOMAX): by then the store
    has written chunks, so a failure must also remove them."""
    table = module.list_instances(raw, params, LOG).table
    if group is not None:
        table = table[table["group"] == group]
    return str(table["key"].iloc[-1])


def test_missing_label_attribute(tmp_path):
    _small(lendb, tmp_path / "raw")
    path = tmp_path / "raw" / lendb.FILE
    key = _last_key(lendb, tmp_path / "raw", {})
    with h5py.File(path, "a") as f:
        del f["EQ"][key].attrs["mag"]
    err = _assert_fails(lendb, tmp_path / "raw", tmp_path / "out.zarr", {}, lendb.FILE, key, "mag")
    assert err.trace == f"EQ/{key}"


def test_lomax_missing_magnitude(tmp_path):
    _small(lomax, tmp_path / "raw")
    path = tmp_path / "raw" / lomax.FILE
    key = _last_key(lomax, tmp_path / "raw", {"keep_list": None}, "test2/events")
    with h5py.File(path, "a") as f:
        del f["test2/events"][key].attrs["magnitude"]
    _assert_fails(lomax, tmp_path / "raw", tmp_path / "out.zarr", {"keep_list": None}, lomax.FILE, key, "magnitude")


def test_wrong_trace_shape(tmp_path):
    _small(lendb, tmp_path / "raw")
    path = tmp_path / "raw" / lendb.FILE
    key = _last_key(lendb, tmp_path / "raw", {})
    with h5py.File(path, "a") as f:
        mag = f["EQ"][key].attrs["mag"]
        del f["EQ"][key]
        f["EQ"].create_dataset(key, data=np.zeros((3, 500)))  # 500 samples instead of 540
        f["EQ"][key].attrs["mag"] = mag
    _assert_fails(lendb, tmp_path / "raw", tmp_path / "out.zarr", {}, lendb.FILE, key, "(3, 500)")


def test_lomax_transposed_trace(tmp_path):
    _small(lomax, tmp_path / "raw")
    path = tmp_path / "raw" / lomax.FILE
    key = _last_key(lomax, tmp_path / "raw", {"keep_list": None}, "validate/events")
    with h5py.File(path, "a") as f:
        data, mag = f["validate/events"][key][()], f["validate/events"][key].attrs["magnitude"]
        del f["validate/events"][key]
        f["validate/events"].create_dataset(key, data=data.T)  # channel x time: wrong orientation
        f["validate/events"][key].attrs["magnitude"] = mag
    _assert_fails(lomax, tmp_path / "raw", tmp_path / "out.zarr", {"keep_list": None}, lomax.FILE, key)


def test_truncated_file(tmp_path):
    """HDF5 notices a truncated file when opening it, before any trace is read."""
    _small(lendb, tmp_path / "raw")
    path = tmp_path / "raw" / lendb.FILE
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.truncate(int(size * 0.7))
    _assert_fails(lendb, tmp_path / "raw", tmp_path / "out.zarr", {}, lendb.FILE, "truncated")


def test_corrupt_trace_data(tmp_path):
    """Damaged samples of one trace (a compressed chunk that no longer decodes)."""
    _small(lendb, tmp_path / "raw")
    path = tmp_path / "raw" / lendb.FILE
    key = _last_key(lendb, tmp_path / "raw", {})
    with h5py.File(path, "a") as f:
        data, mag = f["EQ"][key][()], f["EQ"][key].attrs["mag"]
        del f["EQ"][key]
        dset = f["EQ"].create_dataset(key, data=data, chunks=data.shape, compression="gzip")
        dset.attrs["mag"] = mag
        offset = dset.id.get_chunk_info(0).byte_offset
    with open(path, "r+b") as handle:
        handle.seek(offset + 2)
        handle.write(b"\xff" * 64)
    _assert_fails(lendb, tmp_path / "raw", tmp_path / "out.zarr", {}, lendb.FILE, key, "cannot read")


def test_nan_samples(tmp_path):
    _small(stead, tmp_path / "raw", n_chunks=2)
    path = tmp_path / "raw" / "chunk2.hdf5"
    key = _last_key(stead, tmp_path / "raw", {"chunks": [1, 2]})
    with h5py.File(path, "a") as f:
        f["data"][key][100, 1] = np.nan
    _assert_fails(stead, tmp_path / "raw", tmp_path / "out.zarr", {"chunks": [1, 2]}, "chunk2.hdf5", key, "non-finite")


def test_stead_missing_magnitude_in_table(tmp_path):
    _small(stead, tmp_path / "raw", n_chunks=2)
    table = pd.read_csv(tmp_path / "raw" / "chunk2.csv")
    key = table["trace_name"].iloc[5]
    table.loc[5, "source_magnitude"] = np.nan
    table.to_csv(tmp_path / "raw" / "chunk2.csv", index=False)
    _assert_fails(stead, tmp_path / "raw", tmp_path / "out.zarr", {"chunks": [1, 2]}, "chunk2.csv", key, "source_magnitude")


def test_stead_trace_missing_from_hdf5(tmp_path):
    _small(stead, tmp_path / "raw", layout="single")
    table = pd.read_csv(tmp_path / "raw" / stead.SINGLE_CSV)
    key = table.loc[table["trace_category"] == "earthquake_local", "trace_name"].iloc[-1]
    with h5py.File(tmp_path / "raw" / stead.SINGLE_HDF5, "a") as f:
        del f[f"earthquake/local/{key}"]
    _assert_fails(stead, tmp_path / "raw", tmp_path / "out.zarr", {"layout": "single"}, stead.SINGLE_HDF5, key, "not found")


def test_missing_raw_file(tmp_path):
    _small(stead, tmp_path / "raw", n_chunks=2)
    shutil.move(tmp_path / "raw" / "chunk2.hdf5", tmp_path / "elsewhere.hdf5")
    _assert_fails(stead, tmp_path / "raw", tmp_path / "out.zarr", {"chunks": [1, 2]}, "chunk2.hdf5", "not found")


def test_label_attribute_storage_variants(tmp_path):
    """Numeric scalars of any type, one-element arrays and numeric strings are labels;
    an attribute with two values is an error (and must never be read past its end)."""
    _small(lendb, tmp_path / "raw")
    path = tmp_path / "raw" / lendb.FILE
    with h5py.File(path, "a") as f:
        keys = sorted(f["EQ"])
        f["EQ"][keys[0]].attrs["mag"] = np.float32(4.5)
        f["EQ"][keys[1]].attrs["mag"] = np.array([3.25])
        f["EQ"][keys[2]].attrs["mag"] = "5.75"
        f["EQ"][keys[3]].attrs["mag"] = np.int16(6)
    index = lendb.list_instances(tmp_path / "raw", {}, LOG)
    labels = {
        key: label for chunk in lendb.read_chunks(tmp_path / "raw", {}, index, 8)
        for key, label in zip(chunk.keys, chunk.labels)
    }
    assert [labels[key] for key in keys[:4]] == [4.5, 3.25, 5.75, 6.0]
    with h5py.File(path, "a") as f:
        f["EQ"][keys[-1]].attrs["mag"] = np.array([4.0, 5.0])
    _assert_fails(lendb, tmp_path / "raw", tmp_path / "out.zarr", {}, lendb.FILE, keys[-1], "not a number")


def test_lendb_reads_in_file_order(tmp_path):
    """The synthetic file is written in random name order; the index follows the samples."""
    _small(lendb, tmp_path / "raw")
    index = lendb.list_instances(tmp_path / "raw", {}, LOG)
    keys = index.table["key"].tolist()
    with h5py.File(tmp_path / "raw" / lendb.FILE, "r") as f:
        offsets = [f["EQ"][key].id.get_offset() for key in keys]
        assert keys != sorted(keys)  # the name order would not have been file order here
        assert sorted(keys) == sorted(f["EQ"])
    assert np.all(np.diff(offsets) > 0)


def test_lomax_keep_list_from_authors_script(tmp_path):
    """The authors ship their keep-list as a Python set in filter_lomax.py."""
    write_synthetic("lomax", tmp_path / "raw", {"n_instances": 40, "length": 50}, rng_for(SEED, "script"))
    with h5py.File(tmp_path / "raw" / lomax.FILE) as f:
        test_names = sorted(f["test/events"])
        test2_names = sorted(f["test2/events"])
        noise_name = sorted(f["test/noise"])[0]
    kept = [f"test/events/{test_names[0]}", f"test2/events/{test2_names[-1]}", f"test/noise/{noise_name}"]
    script = tmp_path / "filter_lomax.py"
    script.write_text(
        "import h5py\n\nkept_keys = set([" + ", ".join(f"'{k}'" for k in kept) + "])\n\n"
        "for set_name in ('test', 'test2'):\n    pass\n"
    )
    index = lomax.list_instances(tmp_path / "raw", {"keep_list": str(script)}, LOG)
    kept_test = index.table.loc[index.table["group"].isin(["test/events", "test2/events"]), "key"]
    assert sorted(kept_test) == sorted([test_names[0], test2_names[-1]])
    assert index.dropped["test events not on the keep-list"] == len(test_names) + len(test2_names) - 2
    empty = tmp_path / "empty.py"
    empty.write_text("kept_keys = set()\n")
    with pytest.raises(DataError, match="empty.py"):
        lomax.list_instances(tmp_path / "raw", {"keep_list": str(empty)}, LOG)
    with pytest.raises(DataError, match="keep-list file"):
        lomax.list_instances(tmp_path / "raw", {"keep_list": str(tmp_path / "absent.txt")}, LOG)


def test_lomax_authors_real_keep_list_applied_to_a_synthetic_file(tmp_path):
    """The authors' real filter_lomax.py on a file whose test groups hold some listed names."""
    script = require(LOMAX_KEEP_LIST, "the authors' LOMAX keep-list")
    qualified, bare = lomax.read_keep_list(script)
    # 4,851 keys in kept_keys; the 3,777 under events filter (2,991 test, 786 test2).
    assert len(qualified) == 3_777 and not bare
    assert sum(k.startswith("test/events/") for k in qualified) == 2_991
    listed = {group: sorted(k.rsplit("/", 1)[1] for k in qualified if k.startswith(f"{group}/"))
              for group in ("test/events", "test2/events")}

    write_synthetic("lomax", tmp_path / "raw", {"n_instances": 60, "length": 50}, rng_for(SEED, "real-list"))
    renamed = {}
    with h5py.File(tmp_path / "raw" / lomax.FILE, "r+") as f:
        for group, take in (("test/events", 3), ("test2/events", 2)):
            names = sorted(f[group])
            assert len(names) > take  # some names stay off the list
            for old, new in zip(names[:take], listed[group][:take]):
                f.move(f"{group}/{old}", f"{group}/{new}")
            renamed[group] = listed[group][:take]
            renamed[f"{group} total"] = len(names)
    out = tmp_path / "lomax.zarr"
    summary = store.convert(lomax, tmp_path / "raw", out, {"keep_list": str(script)}, seed=SEED, log=LOG)
    kept_keys = {str(key) for key in store.open_store(out)["key"].values}
    for group in ("test/events", "test2/events"):
        assert set(renamed[group]) <= kept_keys  # listed: kept
    off_list = renamed["test/events total"] + renamed["test2/events total"] - 5
    assert summary["dropped"]["test events not on the keep-list"] == off_list
