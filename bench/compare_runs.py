"""Whether two finished runs give the same results: ``python bench/compare_runs.py OLD NEW``.

OLD and NEW are workflow folders holding ``results/`` (for example fresh clones of two
commits, each after ``make demo``). Prints, for the results table (matched on the job
identity) and for every CSV table under ``results/analysis/tables`` present in both, the
columns that differ; the recorded training seconds (``runtime_s``) are expected to. Exit
status 1 when anything else differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from tstransfer.analysis.results import IDENTITY

EXPECTED = {"runtime_s"}  # wall seconds of training: differ between any two runs


def differing(old: pd.DataFrame, new: pd.DataFrame) -> list[str]:
    """Columns whose values differ (a column in one table only counts as differing)."""
    columns = set(old.columns) | set(new.columns)
    if len(old) != len(new):
        return sorted(columns)
    return sorted(c for c in columns if c not in old or c not in new or not old[c].equals(new[c]))


def _tables(run_dir: Path) -> set[str]:
    return {path.name for path in (run_dir / "results" / "analysis" / "tables").glob("*.csv")}


def main(old_dir: Path, new_dir: Path) -> int:
    old, new = (pd.read_parquet(d / "results" / "tables" / "results.parquet").sort_values(IDENTITY)
                .reset_index(drop=True) for d in (old_dir, new_dir))
    unexpected = 0
    columns = differing(old, new)
    print(f"results table: {len(old)} / {len(new)} jobs, differing columns {columns}")
    unexpected += bool(set(columns) - EXPECTED)
    both = sorted(_tables(old_dir) & _tables(new_dir))
    for name in both:
        columns = differing(*(pd.read_csv(d / "results" / "analysis" / "tables" / name) for d in (old_dir, new_dir)))
        if columns:
            print(f"{name}: differing columns {columns}")
            unexpected += bool(set(columns) - EXPECTED)
    only = sorted(_tables(old_dir) ^ _tables(new_dir))
    print(f"{len(both)} CSV tables compared; in one run only: {only or 'none'}")
    return 1 if unexpected or only else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
