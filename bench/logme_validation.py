"""Do the source-selection estimators pick the source to transfer from? Their validation
on a finished run (LogME and every other estimator of tstransfer.selection).

    snakemake --cores 2 && snakemake --cores 2 zoo      # a finished run and its zoo
    python bench/logme_validation.py [RUN_DIR]          # RUN_DIR: the workflow folder (default .)
    python bench/logme_validation.py --partial RUN_DIR  # a run still going: what is finished so far
    ... --estimators logme,hscore,leep                  # a choice (default: all that need no training)

For every (target, variant, run) of the run and every compatible zoo model (architecture,
source), each estimator on the target's training subset of that run (the training set the
fine-tuning used): the frozen penultimate-layer features, the source head's class
probabilities (the head's softmax applied to those features, where the source is a
classification dataset), and for ``dtw_dba`` the raw series of target and source (at most
tstransfer.zoo.study.DTW_PER_CLASS instances per class, a seeded sample, interpolated to at most DTW_LENGTH
points). Scores are averaged over runs; the gain is the mean per-run performance gain of
the grid-selected model over its referent (tstransfer.selection.validation.mean_gains).
The fine-tuning proxy trains and is not run here.

Prints, per estimator, the harness's summary (tstransfer.selection.validation) in two
views: choosing a model (architecture and source) per (target, variant), and choosing a
source per (target, variant, architecture), each beside a random pick; writes
RUN_DIR/results/zoo_validation/ (cells.csv, per_target_*.csv, summary_*.csv).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from tstransfer import selection, zoo
from tstransfer.analysis import results
from tstransfer.fsutil import write_text
from tstransfer.store import store_attrs
from tstransfer.zoo import study
from tstransfer.selection import similarity, validation

KEYS = ["arch", "source", "target", "variant"]


def partial_run(run_dir: Path) -> tuple[Path, pd.DataFrame]:
    """A run still in progress: a zoo of the models selected so far (results/zoo_partial)
    and a table of the referent and fine-tuning jobs finished so far."""
    zoo_dir = run_dir / "results" / "zoo_partial"
    cards = []
    for selection_json in sorted((run_dir / "results" / "pretrain").glob("*/*/selected/selection.json")):
        arch, source = selection_json.parts[-4], selection_json.parts[-3]
        folder = zoo_dir / zoo.model_name(arch, source)
        zoo.export_model(arch, source, selection_json=selection_json, model=selection_json.parent / "model.keras",
                         store=run_dir / "results" / "data" / f"{source}.zarr", out_dir=folder)
        cards.append(folder / zoo.CARD_JSON)
    zoo.write_index(zoo_dir, cards, {"partial": True})
    paths = [p for kind in ("referent", "finetune") for p in (run_dir / "results" / kind).rglob("result.json")]
    return zoo_dir, results.build_results_table(paths)


def dtw_averages(waveform: np.ndarray, labels, task: str, dataset: str) -> list[np.ndarray]:
    """The workflow's DTW sample and averages (tstransfer.zoo.study), seeded with 0 here."""
    return study.dtw_averages(waveform, labels, task, dataset, 0)


def model_inputs(zoo_dir: Path, entry: dict, waveform, stream_max, labels, task: str) -> selection.Inputs:
    """Features and (for a classification source) the source head's probabilities."""
    import keras

    model = zoo.load(entry["arch"], entry["source"], zoo_dir)
    inputs = zoo.model_inputs(model, entry, waveform, stream_max, labels, task)
    del model
    keras.backend.clear_session()
    return inputs


def score_cell(estimators, inputs: selection.Inputs, target_averages, source_averages) -> dict[str, float]:
    dtw_score = -similarity.averages_distance(target_averages, source_averages)
    return zoo.ranking.estimator_scores(estimators, inputs, dtw_score=dtw_score)


def scores_of_run(run_dir: Path, zoo_dir: Path, finetuned: pd.DataFrame, estimators) -> pd.DataFrame:
    """(arch, source, target, variant, estimator, score), the mean over the runs that
    were fine-tuned (the ``finetuned`` rows of the results table)."""
    data = run_dir / "results" / "data"
    source_averages: dict[str, list] = {}
    rows = []
    for (target, variant), cell in finetuned.groupby(["target", "variant"]):
        store = data / f"{target}.zarr"
        attrs = store_attrs(store)
        models, _ = zoo.compatible_models(zoo.read_index(zoo_dir), attrs)
        for run in sorted(cell["run"].unique()):
            subset = data / "subsets" / target / variant / f"run{run}.npz"
            waveform, stream_max, labels = zoo.target_training_data(store, subset)
            target_averages = dtw_averages(waveform, labels, attrs["task"], f"{target}/{variant}/{run}")
            for entry in models:
                source = entry["source"]
                if source not in source_averages:
                    source_data = zoo.target_training_data(data / f"{source}.zarr")
                    source_averages[source] = dtw_averages(source_data[0], source_data[2], entry["output"]["task"], source)
                inputs = model_inputs(zoo_dir, entry, waveform, stream_max, labels, attrs["task"])
                for name, value in score_cell(estimators, inputs, target_averages, source_averages[source]).items():
                    rows.append({"arch": entry["arch"], "source": source, "target": target, "variant": variant,
                                 "run": run, "estimator": name, "score": value})
    return pd.DataFrame(rows).groupby(KEYS + ["estimator"], as_index=False, sort=False)["score"].mean()


def main(run_dir: Path, partial: bool = False, names: list[str] | None = None) -> dict[str, pd.DataFrame]:
    estimators = study.study_estimators(names or [selection.ALL])
    if partial:
        zoo_dir, table = partial_run(run_dir)
    else:
        zoo_dir = run_dir / "results" / "zoo"
        table = results.read_table(run_dir / "results" / "tables" / "results.parquet")
    gains = validation.mean_gains(table, keys=KEYS)
    finetuned = table[table["kind"] == "finetune"]
    cells = validation.cells(scores_of_run(run_dir, zoo_dir, finetuned, estimators), gains, keys=KEYS)
    views = {  # what is chosen: a model per (target, variant), a source per (target, variant, arch)
        "model": (cells.assign(source=cells["arch"] + "-" + cells["source"]), ["target", "variant"]),
        "source": (cells, ["target", "variant", "arch"]),
    }
    out = run_dir / "results" / "zoo_validation"
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "cells.csv", cells.to_csv(index=False))
    tables = {"cells": cells}
    for view, (frame, within) in views.items():
        per_target, summary = validation.validate(frame, within=within)
        write_text(out / f"per_target_{view}.csv", per_target.to_csv(index=False))
        write_text(out / f"summary_{view}.csv", summary.to_csv(index=False))
        print(f"\nchoosing a {view} per ({', '.join(within)}):")
        print(summary.to_string(index=False, float_format=lambda value: f"{value:.3f}"))
        tables[f"per_target_{view}"], tables[f"summary_{view}"] = per_target, summary
    return tables


if __name__ == "__main__":
    arguments = sys.argv[1:]
    chosen = None
    if "--estimators" in arguments:
        at = arguments.index("--estimators")
        chosen = arguments[at + 1].split(",")
        del arguments[at:at + 2]
    folders = [a for a in arguments if a != "--partial"]
    main(Path(folders[0] if folders else "."), partial="--partial" in arguments, names=chosen)
