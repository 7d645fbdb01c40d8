"""A dataset by one config entry (datasets.<name> with format:): the readers, on real
UCR/UEA files and on small files of each format, and a tiny grid through the workflow
with BasicMotions (6 channels, 4 classes) as a target and as a source."""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from tstransfer import datasets, registry, store
from tstransfer.analysis.tables import format_percent
from tstransfer.datasets.custom import CustomDataset, pad_or_cut
from tstransfer.datasets.readers import read_ts
from html_tables import html_tables, table_cells
from ucr_data import ucr
from workflow_runs import ROOT, snakemake, tiny_config

LOG = logging.getLogger("test")


@pytest.fixture(autouse=True)
def _clean_registry():
    yield
    datasets.register_config({"datasets": {}})  # drop what a test registered


# --------------------------------------------------------------------------- .ts, real files
def test_ts_reader_on_the_real_archives():
    basic = read_ts("basicmotions", ucr("BasicMotions") / "BasicMotions_TRAIN.ts")
    assert len(basic.x) == 40 and {x.shape for x in basic.x} == {(100, 6)}
    assert basic.task == "classification"
    assert basic.class_names == ("Standing", "Running", "Walking", "Badminton")
    vowels = read_ts("jv", ucr("JapaneseVowels") / "JapaneseVowels_TRAIN.ts")
    lengths = sorted({len(x) for x in vowels.x})
    assert lengths[0] == 7 and lengths[-1] == 26 and {x.shape[1] for x in vowels.x} == {12}
    covid = read_ts("covid", ucr("Covid3Month") / "Covid3Month_TRAIN.ts")
    assert covid.task == "regression" and covid.y.dtype == np.float64


def test_ucr_split_keeps_test_and_draws_validation_from_train(tmp_path):
    dataset = datasets.register("basicmotions", {"format": "ts", "path": str(ucr("BasicMotions")),
                                                 "domain": "motion", "title": "BasicMotions"})
    summary = store.convert(dataset, ucr("BasicMotions"), tmp_path / "b.zarr", {}, seed=3, log=LOG)
    assert summary["split_counts"]["test"] == 40  # BasicMotions_TEST.ts as it is
    assert summary["split_counts"]["train"] + summary["split_counts"]["val"] == 40
    assert (summary["channels"], summary["length"], summary["n_outputs"]) == (6, 100, 4)
    # Stratified: each class's training-file instances are split 70 : 15 on their own. Every
    # one of the 4 classes has 10 of the training file's 40 and 10 of the test file's 40, and
    # 15/85 of 10 rounds to 2: each class has 8 in train, 2 in val, and its 10 in test.
    opened = store.open_store(tmp_path / "b.zarr")
    labels, codes = opened["label"].values, opened["split"].values
    per_class = {int(c): tuple(int(((labels == c) & (codes == s)).sum()) for s in (0, 1, 2))
                 for c in np.unique(labels)}
    assert per_class == dict.fromkeys(range(4), (8, 2, 10)), per_class
    assert summary["split_counts"]["val"] == 8
    again = store.convert(dataset, ucr("BasicMotions"), tmp_path / "c.zarr", {}, seed=3, log=LOG)
    split = store.open_store(tmp_path / "b.zarr")["split"].values
    np.testing.assert_array_equal(split, store.open_store(tmp_path / "c.zarr")["split"].values)
    assert again["split_counts"] == summary["split_counts"]


def test_variable_length_is_padded_with_the_last_value_or_cut():
    x = np.arange(6, dtype=float).reshape(3, 2)
    np.testing.assert_array_equal(pad_or_cut(x, 5)[3:], [[4, 5], [4, 5]])
    np.testing.assert_array_equal(pad_or_cut(x, 2), x[:2])
    dataset = CustomDataset("jv", {"format": "ts", "path": str(ucr("JapaneseVowels")), "domain": "speech",
                                   "train": "JapaneseVowels_TRAIN.ts", "test": "JapaneseVowels_TEST.ts",
                                   "length": 20})
    info, series, labels, split, _ = dataset._load()
    assert {x.shape for x in series} == {(20, 12)} and info.n_outputs == 9


# --------------------------------------------------------------------------- each format
def _arrays(n=30, length=12, channels=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, length, channels)), rng.integers(0, 3, size=n)


def _check(dataset, x, y):
    info, series, labels, split, _ = dataset._load()
    np.testing.assert_allclose(np.stack(series), x)
    assert info.task == "classification" and info.channels == x.shape[2]
    np.testing.assert_array_equal(labels, y)  # classes 0, 1, 2 sort as themselves


def test_numpy_hdf5_xarray_and_csv_read_the_same_data(tmp_path):
    import h5py
    import xarray as xr

    x, y = _arrays()
    np.savez(tmp_path / "d.npz", X=x, y=y)
    _check(CustomDataset("a", {"format": "numpy", "path": str(tmp_path / "d.npz"), "domain": "d"}), x, y)
    with h5py.File(tmp_path / "d.h5", "w") as handle:
        handle["data/x"], handle["data/y"] = x, y
    _check(CustomDataset("b", {"format": "hdf5", "path": str(tmp_path / "d.h5"), "domain": "d",
                               "x": "data/x", "y": "data/y"}), x, y)
    xr.Dataset({"signal": (("trial", "step", "sensor"), x), "target": (("trial",), y)}).to_netcdf(
        tmp_path / "d.nc")
    dims = {"instance": "trial", "time": "step", "channel": "sensor"}
    _check(CustomDataset("c", {"format": "xarray", "path": str(tmp_path / "d.nc"), "domain": "d",
                               "x": "signal", "y": "target", "dims": dims}), x, y)
    long = pd.DataFrame([{"id": i, "time": t, "channel": c, "value": x[i, t, c], "label": y[i]}
                         for i in range(len(x)) for t in range(x.shape[1]) for c in range(x.shape[2])])
    long.to_csv(tmp_path / "long.csv", index=False)
    _check(CustomDataset("d", {"format": "csv", "layout": "long", "path": str(tmp_path / "long.csv"),
                               "domain": "d", "columns": {"channel": "channel"}}), x, y)
    wide = pd.DataFrame(x[:, :, 0]).assign(label=y)
    wide.to_csv(tmp_path / "wide.csv", index=False)
    _check(CustomDataset("e", {"format": "csv", "path": str(tmp_path / "wide.csv"), "domain": "d"}),
           x[:, :, :1], y)


def test_split_from_the_data_and_regression_from_float_labels(tmp_path):
    x, _ = _arrays(n=20)
    split = np.array(["train"] * 14 + ["val"] * 3 + ["test"] * 3)
    np.savez(tmp_path / "d.npz", X=x, y=np.linspace(0, 1, 20), part=split)
    dataset = CustomDataset("r", {"format": "numpy", "path": str(tmp_path / "d.npz"), "domain": "d",
                                  "split": "part"})
    summary = store.convert(dataset, tmp_path, tmp_path / "r.zarr", {}, seed=0, log=LOG)
    assert summary["task"] == "regression" and summary["split_method"] == "given"
    assert summary["split_counts"] == {"train": 14, "val": 3, "test": 3}


def test_bad_entries_name_the_config_key(tmp_path):
    with pytest.raises(ValueError, match="datasets.mine.format"):
        CustomDataset("mine", {"format": "parquet", "path": "x", "domain": "d"})
    with pytest.raises(FileNotFoundError, match="datasets.mine.path"):
        CustomDataset("mine", {"format": "ts", "path": str(tmp_path / "none"), "domain": "d"}).INFO
    with pytest.raises(ValueError, match="lomax is a built-in dataset"):
        datasets.register("lomax", {"format": "ts", "path": "x", "domain": "d"})
    with pytest.raises(ValueError, match="targets: mine has no entry"):
        datasets.register_config({"datasets": {}, "targets": ["mine"]})
    np.savez(tmp_path / "d.npz", X=np.zeros((4, 5, 2)), y=np.arange(4))
    with pytest.raises(ValueError, match="channels is 3 but the data has 2"):
        CustomDataset("mine", {"format": "numpy", "path": str(tmp_path / "d.npz"), "domain": "d",
                               "channels": 3}).INFO


def test_bad_real_world_files_are_refused_in_one_line_naming_file_and_problem(tmp_path):
    """Issue 20's four: mismatched X and y lengths, a missing value, a label column missing,
    ragged channels; each a DataError whose one-line message names the file and the problem."""
    from tstransfer.datasets.base import DataError

    np.savez(tmp_path / "short_y.npz", X=np.zeros((4, 5)), y=np.arange(3))
    np.savez(tmp_path / "split.npz", X=np.zeros((4, 5)), y=np.arange(4), s=np.array(["train"] * 5))
    x = np.ones((4, 5))
    x[2, 3] = np.nan
    np.savez(tmp_path / "nan.npz", X=x, y=np.arange(4))
    (tmp_path / "nolabel.csv").write_text("a,b,c\n1,2,3\n4,5,6\n")
    # ragged: the channels of one instance differ in length (series of different lengths
    # across instances are fine: they are padded, test_variable_length_is_padded...)
    (tmp_path / "ragged.ts").write_text("@problemName r\n@timeStamps false\n@univariate false\n@dimensions 2\n"
                                        "@equalLength false\n@classLabel true a b\n@data\n1,2,3:4,5,6:a\n1,2,3:4,5:b\n")
    cases = [
        ("short_y.npz", {"format": "numpy"}, "4 instances but 3 labels"),
        ("split.npz", {"format": "numpy", "split": "s"}, "4 instances but 5 split values"),
        ("nan.npz", {"format": "numpy"}, "missing or non-finite values"),
        ("nolabel.csv", {"format": "csv", "label": "label"}, "label"),
        ("ragged.ts", {"format": "ts"}, "line 9: channels of one instance differ in length"),
    ]
    for name, spec, problem in cases:
        entry = CustomDataset("mine", {**spec, "path": str(tmp_path / name), "domain": "d"})
        with pytest.raises(DataError, match=re.escape(problem)) as caught:
            entry.INFO
        message = str(caught.value)
        assert "\n" not in message and name in message and problem in message, message


def test_synthetic_raw_files_come_from_the_generator_named_like_the_dataset(tmp_path, monkeypatch):
    """The registry finds synthetic.<name> by the dataset's name; a dataset of one's own,
    or one without a generator module, gets an error naming why, and nothing is written."""
    (tmp_path / "sp500").mkdir()
    datasets.write_synthetic("sp500", tmp_path / "sp500", {"n_days": 30}, np.random.default_rng(0))
    assert sorted(p.name for p in (tmp_path / "sp500").iterdir()) == datasets.get("sp500").raw_files({})
    datasets.register("mine", {"format": "ts", "path": "unused", "domain": "d"})
    with pytest.raises(ValueError, match="config datasets.mine: a dataset given by format has no synthetic"):
        datasets.write_synthetic("mine", tmp_path / "mine", {}, np.random.default_rng(0))
    # A reader registered under a name that has no synthetic.<name> module.
    monkeypatch.setitem(datasets.REGISTRY, "nogenerator", datasets.get("lomax"))
    with pytest.raises(ValueError, match=r"no synthetic generator \(no module tstransfer.datasets.synthetic.nogenerator\)"):
        datasets.write_synthetic("nogenerator", tmp_path / "nogenerator", {}, np.random.default_rng(0))
    with pytest.raises(KeyError, match="unknown dataset 'nothing'"):
        datasets.write_synthetic("nothing", tmp_path / "nothing", {}, np.random.default_rng(0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sp500"]


def test_registry_lists_config_entries_in_their_domain_group():
    datasets.register_config({"datasets": {
        "basicmotions": {"format": "ts", "path": "unused", "domain": "motion", "title": "BasicMotions"},
        "quakes": {"format": "ts", "path": "unused", "domain": "seismology"}}})
    assert registry.DATASETS[-2:] == ("basicmotions", "quakes")
    assert registry.DATASET_LABELS["basicmotions"] == "BasicMotions"  # without reading the data
    assert "quakes" in registry.SEISMOLOGY and "basicmotions" in registry.OTHER_DOMAINS


def test_analysis_reads_entries_registered_after_its_import():
    # Imported first, as a script that imports before it calls register_config does.
    from tstransfer.analysis import stats, tables

    datasets.register_config({"datasets": {
        "basicmotions": {"format": "ts", "path": "unused", "domain": "motion", "title": "BasicMotions"},
        "quakes": {"format": "ts", "path": "unused", "domain": "seismology", "title": "Quakes"}}})
    assert stats.DATASETS[-2:] == ("basicmotions", "quakes")
    assert stats.TABLE_TARGETS["seismology"][-1] == "quakes"
    assert stats.TABLE_TARGETS["other"][-1] == "basicmotions"
    assert stats.domain_group("quakes", "lomax") == "intra"
    assert stats.domain_group("basicmotions", "emg") == "other_to_other"
    assert stats.GROUP_LABELS["other_to_other"].endswith("S&P 500, BasicMotions)")
    assert list(stats.GROUP_LABELS) == list(stats.GROUP_ROWS)
    assert tables._variant_column("quakes", "1k5") == "Quakes 1k5"
    # ... and forgets them when the config no longer has them.
    datasets.register_config({"datasets": {}})
    assert "quakes" not in stats.DATASETS
    assert stats.GROUP_LABELS["other_to_other"] == "TL between other domains (SPEECH, EMG, S&P 500)"


# --------------------------------------------------------------------------- the workflow
def test_basicmotions_as_target_and_source_through_the_workflow(tmp_path, bare_env):
    """The maintainers' check, small: one config entry, and the tables gain its row and column."""
    config = tiny_config()
    config["datasets"] = {
        "sp500": config["datasets"]["sp500"],
        "basicmotions": {"format": "ts", "path": str(ucr("BasicMotions")), "domain": "motion",
                         "title": "BasicMotions"},
    }
    config.update(sources=["sp500", "basicmotions"], targets=["sp500", "basicmotions"],
                  variants={"1k5": 60}, runs=2, omegas=[1.0], pretrain={"seeds": 1},
                  stream_max_study={"datasets": [], "seeds": 0})
    config["training"]["max_epochs"] = 1
    config["synthetic"] = {"sp500": config["synthetic"]["sp500"]}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    done = snakemake(tmp_path, bare_env, "--cores", "2")
    subset = np.load(tmp_path / "results/data/subsets/basicmotions/1k5/run0.npz")
    meta = json.loads(str(subset["meta"]))
    assert meta["requested_size"] == 60 and meta["size"] == len(subset["indices"]) < 60
    assert "exceeds its" in (tmp_path / "results/logs/subset/basicmotions/1k5/run0.log").read_text()
    table = pd.read_parquet(tmp_path / "results/tables/results.parquet")
    finetuned = table[table["kind"] == "finetune"]
    assert {("sp500", "basicmotions"), ("basicmotions", "sp500")} <= set(
        zip(finetuned["source"], finetuned["target"]))
    # Table 7 (gains on the other domains' targets), as the reader sees it: BasicMotions is a
    # row (a source) and a column (a target variant), and the cells where it is one end of a
    # fine-tuned pair carry the gains of the long-form data.
    tables = tmp_path / "results/analysis/tables"
    [rows] = html_tables((tables / "table7_performance_other.html").read_text(encoding="utf-8"))
    assert rows[0] == ["Source", "S&P 500 1k5", "BasicMotions 1k5"], (rows, done.stdout[-2000:])
    assert [row[0] for row in rows[1:]] == ["S&P 500", "BasicMotions"]
    shown = table_cells(rows)
    gains = pd.read_csv(tables / "table7_performance_other.csv").set_index(["source", "target"])["value"]
    for (source, target), label in {("sp500", "basicmotions"): ("S&P 500", "BasicMotions 1k5"),
                                    ("basicmotions", "sp500"): ("BasicMotions", "S&P 500 1k5")}.items():
        assert shown[label].startswith(f"{format_percent(gains[(source, target)])}% median "), shown
    assert shown[("BasicMotions", "BasicMotions 1k5")] == shown[("S&P 500", "S&P 500 1k5")] == "-"
    # ... and Table 3's group row names it beside the count of its fine-tuned pairs' wins.
    [wins] = html_tables((tables / "table3_wins_performance.html").read_text(encoding="utf-8"))
    group = {row[0]: row[1:] for row in wins[1:]}["TL between other domains (S&P 500, BasicMotions)"]
    counted = pd.read_csv(tables / "table3_wins_performance.csv").set_index("group").loc["other_to_other"]
    assert counted["n"] == 2 and group[2] == "2" and group[0].startswith(f"{counted['wins']} (")


def test_schema_takes_an_entry_by_format_and_names_a_bad_one():
    from snakemake.utils import validate
    from snakemake_interface_common.exceptions import WorkflowError

    schema = str(ROOT / "workflow" / "schemas" / "config.schema.yaml")
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    config["datasets"]["basicmotions"] = {"format": "ts", "path": "x", "domain": "motion"}
    config["targets"] = [*config["targets"], "basicmotions"]
    validate(config, schema)
    config["datasets"]["basicmotions"]["format"] = "parquet"
    with pytest.raises(WorkflowError, match="'parquet' is not one of") as caught:
        validate(config, schema)
    assert "'parquet' is not one of" in str(caught.value)
    assert "instance['datasets']['basicmotions']['format']" in str(caught.value)
    del config["datasets"]["basicmotions"]["format"]  # a typo of a built-in name, say
    with pytest.raises(WorkflowError, match="'format' is a required property"):
        validate(config, schema)
