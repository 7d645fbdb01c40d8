"""The runs' training subsets (rule subset, tstransfer.store.make_subset): drawn from the
training split only, stratified by class (each class within one instance of its share of
the training split), the same for the same (seed, dataset, variant, run) and different
between runs, variants and seeds (seeding.rng_for's parts: README's 7 runs are 7 draws)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from tstransfer import store
from tstransfer.datasets.base import SPLIT_CODES
from tstransfer.datasets.custom import CustomDataset

LOG = logging.getLogger("test")
# An unbalanced three-class set: 60 %, 30 %, 10 %.
CLASS_SHARES = (0.6, 0.3, 0.1)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """A classification and a regression store of 400 instances each."""
    folder = tmp_path_factory.mktemp("subsets")
    rng = np.random.default_rng(5)
    n = 400
    x = rng.normal(size=(n, 16, 1))
    labels = np.repeat(np.arange(3), [int(n * s) for s in CLASS_SHARES])[rng.permutation(n)]
    made = {}
    for name, y in (("classes", labels), ("numbers", rng.normal(size=n))):
        np.savez(folder / f"{name}.npz", X=x, y=y)
        dataset = CustomDataset(name, {"format": "numpy", "path": str(folder / f"{name}.npz"), "domain": "d"})
        store.convert(dataset, folder, folder / f"{name}.zarr", {}, seed=11, log=LOG)
        made[name] = folder / f"{name}.zarr"
    return made


def _draw(zarr_path, out, *, variant="1k5", size=60, run=0, seed=20221025):
    meta = store.make_subset(zarr_path, out, variant=variant, size=size, run=run, seed=seed)
    with np.load(out) as subset:
        return subset["indices"], subset["mask"], meta


def _train(zarr_path):
    opened = store.open_store(zarr_path)
    split = opened["split"].values
    return np.flatnonzero(split == SPLIT_CODES["train"]), opened["label"].values


@pytest.mark.parametrize("size", [60, 59, 9])  # 59, 9: two places go by remainder
def test_subsets_keep_the_training_splits_class_proportions(stores, tmp_path, size):
    train, labels = _train(stores["classes"])
    for run in range(3):
        indices, _, meta = _draw(stores["classes"], tmp_path / f"run{run}.npz", size=size, run=run)
        assert meta["stratified"] and meta["size"] == size == len(indices)
        assert len(set(indices)) == size and set(indices) <= set(train)  # training split only
        assert (np.diff(indices) > 0).all()  # sorted, as the store reads them
        counts = np.bincount(labels[indices], minlength=3)
        share = np.bincount(labels[train], minlength=3) / len(train)
        # each class within one instance of its share of the training split
        assert np.all(np.abs(counts - size * share) < 1), (counts, size * share)


def test_same_seed_same_subset_and_runs_variants_seeds_differ(stores, tmp_path):
    zarr_path = stores["classes"]
    first, mask, _ = _draw(zarr_path, tmp_path / "a.npz", run=0)
    again, mask_again, _ = _draw(zarr_path, tmp_path / "b.npz", run=0)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(mask, mask_again)
    others = {
        "run 1": _draw(zarr_path, tmp_path / "c.npz", run=1)[0],
        "run 2": _draw(zarr_path, tmp_path / "d.npz", run=2)[0],
        "another variant": _draw(zarr_path, tmp_path / "e.npz", variant="9k")[0],
        "another seed": _draw(zarr_path, tmp_path / "f.npz", seed=7)[0],
    }
    for what, indices in others.items():
        assert len(indices) == len(first)
        assert not np.array_equal(indices, first), what
    assert not np.array_equal(others["run 1"], others["run 2"])
    # The mask is the mean waveform of exactly the drawn instances.
    waveform = store.open_store(zarr_path)["waveform"].values
    np.testing.assert_allclose(mask, waveform[first].mean(axis=0), rtol=1e-5, atol=1e-6)


def test_a_regression_subset_is_a_plain_seeded_draw(stores, tmp_path):
    train, _ = _train(stores["numbers"])
    indices, _, meta = _draw(stores["numbers"], tmp_path / "r.npz", size=50)
    assert not meta["stratified"] and len(set(indices)) == 50 and set(indices) <= set(train)
    np.testing.assert_array_equal(indices, _draw(stores["numbers"], tmp_path / "s.npz", size=50)[0])
    assert not np.array_equal(indices, _draw(stores["numbers"], tmp_path / "t.npz", size=50, run=1)[0])


@pytest.mark.slow
def test_the_workflows_subsets_are_stratified_and_differ_between_runs(finished_run, tmp_path):
    """The subsets rule subset wrote in the shared finished run (variant 1k5 = 60)."""
    results = finished_run / "results" / "data"
    config_seed = json.loads((finished_run / "results" / "PROVENANCE.json").read_text())["config"]["seed"]
    for dataset in ("emg", "sp500"):
        zarr_path = results / f"{dataset}.zarr"
        train, labels = _train(zarr_path)
        runs = []
        for run in (0, 1):
            path = results / "subsets" / dataset / "1k5" / f"run{run}.npz"
            with np.load(path) as subset:
                indices, meta = subset["indices"], json.loads(str(subset["meta"]))
            assert meta["size"] == len(indices) == 60 and set(indices) <= set(train)
            if meta["stratified"]:
                counts = np.unique(labels[indices], return_counts=True)
                share = dict(zip(*np.unique(labels[train], return_counts=True)))
                for value, count in zip(*counts):
                    assert abs(count - 60 * share[value] / len(train)) < 1, (dataset, value)
            runs.append(indices)
        assert meta["stratified"] == (dataset == "emg")
        assert not np.array_equal(runs[0], runs[1]), dataset
        # the rule's draw is make_subset's with the config seed: redrawn here, the same
        again = store.make_subset(zarr_path, tmp_path / f"redraw-{dataset}.npz", variant="1k5",
                                  size=60, run=1, seed=config_seed)
        assert again["seed"] == config_seed
        with np.load(tmp_path / f"redraw-{dataset}.npz") as subset:
            np.testing.assert_array_equal(subset["indices"], runs[1])
