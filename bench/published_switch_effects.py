"""The effect of the switches that act in the analysis alone, measured on the authors' own
published runs (issue 21):

    python bench/published_switch_effects.py ../shared/data/published-results/tstl_published_results.tar.gz
        [--out published_switch_effects.csv]

``ties_to_largest_multiplier`` changes nothing that is trained: it decides which multiplier
the grid choice behind a convergence-rate gain takes when two multipliers tie. The authors'
archive holds every run of their grid (4 architectures, 10 multipliers, 7 runs), read as
the ``paper`` protocol reads it (test-set curves); the baseline is that protocol with the
switch off (ties to the smallest multiplier, as our performance gains take them), the arm
with it on (the authors' scan from 2.0 down). Printed per gain: the paired runs, both
means, the mean paired difference with a seeded bootstrap 95 % interval and the Wilcoxon
p (``tstransfer.analysis.switch_effects``), and how many grid choices there are and how
many move to another multiplier (those whose best metric ties). Nothing is trained.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from tstransfer import protocol
from tstransfer.analysis import stats
from tstransfer.analysis.published import ResultsError, load_published
from tstransfer.analysis.switch_effects import switch_effects
from tstransfer.fsutil import atomic_path

ANALYSIS_SWITCHES = ("ties_to_largest_multiplier",)


def tie_counts(table: pd.DataFrame, curve: str) -> tuple[int, int]:
    """``(runs, runs whose grid choice moves)`` when ties go to the largest multiplier
    instead of the smallest, the grid choosing by ``curve``'s metric: a choice moves only
    where the best metric ties between multipliers."""
    keys = stats.GRID_KEYS
    smallest = stats.select_grid(table, curve).set_index(keys)["omega"]
    largest = stats.select_grid(table, curve, ties="largest").set_index(keys)["omega"].reindex(smallest.index)
    chosen = smallest.notna()
    return int(chosen.sum()), int((smallest[chosen] != largest[chosen]).sum())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("published", type=Path, help="the authors' results archive (.tar.gz) or folder")
    parser.add_argument("--out", type=Path, default=Path("published_switch_effects.csv"))
    args = parser.parse_args(argv)
    try:
        table = load_published(args.published)
    except (ResultsError, OSError) as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    rows = []
    for name in ANALYSIS_SWITCHES:
        off = protocol.resolve("paper", {name: False})
        on = protocol.resolve("paper")
        effect = switch_effects(table, off, {name: (table, on)})
        runs, moved = tie_counts(table, protocol.selection_curve(off))
        rows.append(effect.assign(grid_choices=runs, choices_moved=moved))
    result = pd.concat(rows, ignore_index=True)
    with atomic_path(args.out) as tmp:
        result.to_csv(tmp, index=False)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.precision", 4):
        print(result.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
