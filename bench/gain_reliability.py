"""How far the noise of a study lets any estimator predict its gains: a repeat of the
study, used as the estimator.

    python bench/gain_reliability.py RESULTS REPEAT_RESULTS

Two finished runs of the same study (their ``results/`` folders: ``tables/results.parquet``
and ``analysis/selection_validation.csv``). Per (target, variant, architecture) the second
run's mean gain of each source is taken as its score and validated against the first's
gains with the selection harness (``validation.repeat_agreement``: within-target Spearman,
top-1, regret against a random pick), and the other way round. Beside it, each run's
estimators as its own selection validation gives them. A repeat is the best predictor
there can be of the gains of a study whose runs differ only by chance; where it ranks the
sources no better than an estimator, the estimator's figures are the noise's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from tstransfer.selection import validation

COLUMNS = ["estimator", "n_targets", "spearman", "top1", "regret", "regret_random"]


def load(results_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """A finished run's results table and its selection validation (None if it has none)."""
    table_path = results_dir / "tables" / "results.parquet"
    if not table_path.is_file():
        raise SystemExit(f"error: {table_path}: no results table (is {results_dir} a finished run's results/?)")
    table = pd.read_parquet(table_path)
    path = results_dir / "analysis" / "selection_validation.csv"
    per_target = pd.read_csv(path, dtype={"variant": str}) if path.is_file() else None
    return table, per_target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("repeat", type=Path)
    args = parser.parse_args()
    (first, first_targets), (second, second_targets) = load(args.results), load(args.repeat)
    rows = []
    for name, table, other in (("first", first, second), ("repeat", second, first)):
        _, summary = validation.repeat_agreement(table, other)
        rows.append(summary[summary["estimator"] == validation.REPEAT].assign(estimator=f"the other run, on the {name}"))
    for name, targets in (("first", first_targets), ("repeat", second_targets)):
        if targets is not None:
            summary = validation.summarise(targets, within=validation.STUDY_WITHIN)
            rows.append(summary.assign(estimator=summary["estimator"] + f" ({name})"))
    frame = pd.concat(rows, ignore_index=True)[COLUMNS]
    print(f"gains of {args.results} and {args.repeat}: means over (target, variant, architecture)")
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
