"""Referents on the real problems beside the published accuracy of their family.

    python bench/referents_real.py [--config config/real.yaml] [--problems gunpoint ...]
        [--archs magnet mlstm_fcn] [--runs 2] [--set training.min_steps=1500 ...]
        [--workdir DIR]

Per classification problem of the config (``make ucr-data`` extracts them): the store is
converted with the study's preprocessing (``pipeline.convert``), then per architecture and
run the config's first variant is drawn (``store.make_subset``) and a referent trained from
scratch through the workflow's own job function (``jobs.referent``). Printed per problem and
architecture: the referents' test accuracy and weighted F1 (mean over runs, and each run's
best and last epoch), the published accuracy of the FCN/ResNet family on the same
train/test split (``PUBLISHED``, each with its source), and a 1-nearest-neighbour
(Euclidean) classifier on the same store, the archive's whole training file (train + val)
against its test file. ``--set key=value`` (a dotted config key, a YAML value) changes one
setting, for measuring one factor at a time; ``--workdir`` keeps the stores for reuse.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from tstransfer import datasets, jobs, pipeline, store
from tstransfer.datasets.base import SPLIT_CODES
from tstransfer.devtools import bench_config
from tstransfer.metrics import weighted_f1

ROOT = Path(__file__).resolve().parents[1]

FAWAZ_2019 = ("Ismail Fawaz et al. 2019, Deep learning for time series classification: a review, "
              "DMKD 33 (UCR 2015 archive, mean of 10 runs), as its repository gives them: "
              "github.com/hfawaz/dl-4-tsc results/results-uea-avg-std.csv @ e0233ef")
FAWAZ_2019_MTS = ("Ismail Fawaz et al. 2019 (Baydogan's MTS archive, mean of 10 runs), as its repository "
                  "gives them: github.com/hfawaz/dl-4-tsc results/results-mts-avg-std.csv @ e0233ef")
FAWAZ_UCR128 = ("github.com/hfawaz/dl-4-tsc results/results-ucr-128.csv @ e0233ef (UCR 2018 "
                "archive, the review's code; mean accuracy of its 5 iterations, computed here)")
RUIZ_2021 = ("Ruiz et al. 2021, The great multivariate time series classification bake off, DMKD 35 "
             "(UEA 2018 archive, default train/test split; no FCN), as its group's repository gives "
             "them: github.com/time-series-machine-learning/tsml-eval "
             "results/tsml/MultivariateDefaultTrainTest.csv @ 4fca0f1")
# Published test accuracy (%) of FCN and ResNet on each problem's own train/test split
# (None: not published there).
PUBLISHED: dict[str, dict[str, Any]] = {
    "ArrowHead": {"fcn": 84.3, "resnet": 84.5, "source": FAWAZ_2019},
    "GunPoint": {"fcn": 100.0, "resnet": 99.1, "source": FAWAZ_2019},
    "ItalyPowerDemand": {"fcn": 96.1, "resnet": 96.3, "source": FAWAZ_2019},
    "OSULeaf": {"fcn": 97.7, "resnet": 97.9, "source": FAWAZ_2019},
    "JapaneseVowels": {"fcn": 99.3, "resnet": 99.2, "source": FAWAZ_2019_MTS},
    "ACSF1": {"fcn": 89.8, "resnet": 91.6, "source": FAWAZ_UCR128},
    "PickupGestureWiimoteZ": {"fcn": 74.4, "resnet": 70.4, "source": FAWAZ_UCR128},
    # BasicMotions (UEA 2018) is in neither of Fawaz's files; the bake-off ran ResNet, not FCN.
    "BasicMotions": {"fcn": None, "resnet": 100.0, "source": RUIZ_2021},
}


def nearest_neighbour(store_path: Path) -> tuple[float, float]:
    """Accuracy and weighted F1 of 1-NN (Euclidean) from train + val to test."""
    data = store.open_store(store_path)
    x = np.asarray(data["waveform"].values, dtype=np.float64).reshape(len(data["split"]), -1)
    y, split = np.asarray(data["label"].values), np.asarray(data["split"].values)
    fit, test = split != SPLIT_CODES["test"], split == SPLIT_CODES["test"]
    a, b = x[fit], x[test]
    distance = (b**2).sum(1)[:, None] - 2 * b @ a.T + (a**2).sum(1)[None, :]
    predicted = y[fit][np.argmin(distance, axis=1)]
    n_classes = int(max(y.max(), predicted.max()) + 1)
    return float(np.mean(predicted == y[test])), weighted_f1(y[test], predicted, n_classes)


def test_accuracy(store_path: Path, subset: Path, out: Path, record: dict) -> float:
    """The saved referent's accuracy on the test split."""
    from tstransfer.feed import Feed
    from tstransfer.models.common import input_channels

    model = jobs.load_model(out / "model.keras")
    feed = Feed.from_subset(store_path, subset, use_stream_max=record["stream_max"], seed=0,
                            model_channels=input_channels(model))
    predicted = np.argmax(feed.predict(model, "test"), axis=1)
    return float(np.mean(predicted == np.asarray(feed.test.labels)))


def referents(config: dict, name: str, arch: str, store_path: Path, work: Path, runs: int) -> list[dict]:
    variant, size = next(iter(config["variants"].items()))
    rows = []
    for run in range(runs):
        subset = work / f"{name}_run{run}.npz"
        store.make_subset(store_path, subset, variant=variant, size=size, run=run, seed=config["seed"])
        out = work / "referent" / arch / name / f"run{run}"
        record = jobs.referent(config, arch, name, variant, run, store_path, subset, out)
        rows.append({"f1": record["test_metric"], "accuracy": test_accuracy(store_path, subset, out, record),
                     "best": record["best_epoch"], "last": record["last_epoch"],
                     "seconds": record["timings"]["training"], "n_train": record["n_train"],
                     "n_val": record["n_val"]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "real.yaml")
    parser.add_argument("--problems", nargs="*", help="dataset names (default: every classification target)")
    parser.add_argument("--archs", nargs="*", help="default: the config's architectures")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    config = bench_config.load(args.config, args.set, ROOT)
    config["training"]["save_models"] = True  # the accuracy is read from the saved model
    datasets.register_config(config)
    problems = args.problems or [t for t in config["targets"] if datasets.get(t).INFO.task == "classification"]
    archs = args.archs or config["architectures"]
    with tempfile.TemporaryDirectory() as scratch:
        work = args.workdir or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        print(f"settings: {json.dumps(config['training'])}  {' '.join(args.set)}")
        header = (f"{'problem':<22} {'arch':<10} {'train/val/test':>14} {'acc':>6} {'sd':>5} {'F1':>6} "
                  f"{'best/last epoch':>16} {'train s':>7} {'1NN-ED':>6} {'FCN':>5} {'ResNet':>6} {'gap':>5}")
        print(header)
        sources = {}
        for name in problems:
            title = datasets.title(name)
            store_path = work / "stores" / f"{name}.zarr"
            if not store_path.exists():
                pipeline.convert(name, config["datasets"][name]["path"], store_path, {}, config["seed"])
            nn_acc, _ = nearest_neighbour(store_path)
            published = PUBLISHED.get(title)
            if published:
                sources[title] = published["source"]
            for arch in archs:
                rows = referents(config, name, arch, store_path, work, args.runs)
                acc = [r["accuracy"] for r in rows]
                best = max(v for v in (published["fcn"], published["resnet"]) if v is not None) if published else None
                gap = f"{100 * statistics.mean(acc) - best:>5.1f}" if best else "    -"
                epochs = " ".join(f"{r['best']}/{r['last']}" for r in rows)
                n_test = int((np.asarray(store.open_store(store_path)["split"].values) == SPLIT_CODES["test"]).sum())
                print(f"{title:<22} {arch:<10} {rows[0]['n_train']:>4}/{rows[0]['n_val']:>3}/{n_test:>4} "
                      f"{statistics.mean(acc):>6.3f} {statistics.pstdev(acc):>5.3f} "
                      f"{statistics.mean(r['f1'] for r in rows):>6.3f} "
                      f"{epochs:>16} "
                      f"{statistics.mean(r['seconds'] for r in rows):>7.1f} {nn_acc:>6.3f} "
                      f"{(published or {}).get('fcn') or '-':>5} {(published or {}).get('resnet') or '-':>6} {gap}",
                      flush=True)
        print("\nacc: test accuracy, mean over runs (sd: population); gap: acc in points minus the "
              "better of FCN/ResNet; 1NN-ED: 1-NN Euclidean, archive train file -> test file, same store")
        for title, source in sources.items():
            print(f"{title}: {source}")


if __name__ == "__main__":
    main()
