"""What the study's source-selection rules (rules/selection.smk) cost on a finished run.

    python bench/selection_study.py [RUN_DIR] [--estimators all]   # RUN_DIR: the workflow folder (default .)

Reads RUN_DIR's config.yaml (else config/demo.yaml), its zoo (results/zoo; exported
into a scratch folder from the selected models when the run has none, as `snakemake
zoo` would), stores, run-0 subsets and results table, then times
tstransfer.zoo.study.score_study (rule selection_scores: every zoo model loaded once,
every estimator that needs no training) and
tstransfer.selection.validation.study_tables (rule selection_validation), and prints the seconds and the validation's summary.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import yaml

from tstransfer import zoo
from tstransfer.analysis import results
from tstransfer.layout import STORE, SUBSET
from tstransfer.selection import validation
from tstransfer.zoo import study


def zoo_of(run_dir: Path, config: dict, scratch: Path) -> Path:
    """The run's zoo, or one exported into ``scratch`` from its selected models."""
    if (run_dir / "results" / "zoo" / zoo.INDEX).exists():
        return run_dir / "results" / "zoo"
    cards = []
    for arch in config["architectures"]:
        for source in config["sources"]:
            selected = run_dir / "results" / "pretrain" / arch / source / "selected"
            if not (selected / "selection.json").exists():
                continue
            folder = scratch / zoo.model_name(arch, source)
            zoo.export_model(arch, source, selection_json=selected / "selection.json", model=selected / "model.keras",
                             store=run_dir / STORE.format(dataset=source), out_dir=folder)
            cards.append(folder / zoo.CARD_JSON)
    zoo.write_index(scratch, cards, {"bench": True})
    return scratch


def main(run_dir: Path, names: list[str]) -> None:
    configfile = run_dir / "config.yaml"
    config = yaml.safe_load((configfile if configfile.exists() else Path("config/demo.yaml")).read_text())
    targets = [(t, v, run_dir / STORE.format(dataset=t), run_dir / SUBSET.format(dataset=t, variant=v, run=0))
               for t in config["targets"] for v in config["variants"]]
    stores = {s: run_dir / STORE.format(dataset=s) for s in config["sources"]}
    with tempfile.TemporaryDirectory() as scratch:
        zoo_dir = zoo_of(run_dir, config, Path(scratch))
        n_models = len(zoo.read_index(zoo_dir)["models"])
        start = time.perf_counter()
        scores = study.score_study(zoo_dir, targets, stores, names, seed=config["seed"])
        scored = time.perf_counter() - start
    start = time.perf_counter()
    table = results.read_table(run_dir / "results" / "tables" / "results.parquet")
    # protocol None: the curve the run's switches recorded
    per_target, summary = validation.study_tables(scores, table, protocol=None)
    validated = time.perf_counter() - start
    print(f"selection_scores: {n_models} models x {len(targets)} (target, variant): {len(scores)} scores "
          f"in {scored:.1f} s (TensorFlow's import not counted)")
    print(f"selection_validation: {len(per_target)} (estimator, target) rows in {validated:.2f} s")
    print(summary.to_string(index=False, float_format=lambda value: f"{value:.3f}"))


if __name__ == "__main__":
    arguments = sys.argv[1:]
    chosen = ["all"]
    if "--estimators" in arguments:
        at = arguments.index("--estimators")
        chosen = arguments[at + 1].split(",")
        del arguments[at:at + 2]
    main(Path(arguments[0] if arguments else "."), chosen)
