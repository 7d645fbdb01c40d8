"""What one protocol switch does to the headline gains (issue 21): the same grid run once
with the baseline's switches and once with one switch flipped, compared pair by pair.

:func:`switch_effects` takes the baseline's results table and one table per flipped arm
(each with the switches it ran under), pairs every arm's (arch, source, target, variant,
run) with the baseline's, and reports per arm and per gain (performance, convergence) the
mean gain of both, the mean paired difference with a seeded percentile-bootstrap 95 %
interval, and the two-sided Wilcoxon signed-rank p of the differences
(:func:`tstransfer.analysis.gains.wilcoxon_p`). Only pairs usable in both runs count.
``bench/switch_effects.py`` runs the arms and prints the table.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..protocol import selection_curve
from ..seeding import rng_for
from . import stats
from .gains import wilcoxon_p

GAINS = ("gain_performance", "gain_convergence")
BOOTSTRAP = 10_000  # resamples of the paired differences for the interval
COLUMNS = ["arm", "gain", "n_pairs", "baseline_mean", "arm_mean", "mean_difference", "ci_low", "ci_high",
           "wilcoxon_p"]


def _usable_pairs(table: pd.DataFrame, switches: Mapping[str, bool]) -> pd.DataFrame:
    pairs = stats.paired_runs(table, selection_curve(switches))
    return pairs[pairs["usable"]].set_index(stats.GRID_KEYS)[list(GAINS)]


def bootstrap_interval(differences: np.ndarray, *, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Seeded percentile-bootstrap interval of the mean of ``differences``."""
    differences = np.asarray(differences, dtype=float)
    if len(differences) == 0:
        return np.nan, np.nan
    draws = rng_for(seed, "switch-effects").integers(0, len(differences), size=(BOOTSTRAP, len(differences)))
    means = differences[draws].mean(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def switch_effects(baseline: pd.DataFrame, baseline_switches: Mapping[str, bool],
                   arms: Mapping[str, tuple[pd.DataFrame, Mapping[str, bool]]], *, seed: int = 0) -> pd.DataFrame:
    """One row per (arm, gain): see the module docstring. ``arms``: name -> (results
    table, the switches it ran under); each arm's grid choice follows its own switches
    (``test_curves``, ``ties_to_largest_multiplier``), as its own report would."""
    base = _usable_pairs(baseline, baseline_switches)
    rows = []
    for name, (table, switches) in arms.items():
        theirs = _usable_pairs(table, switches)
        both = base.add_suffix("_base").join(theirs.add_suffix("_arm"), how="inner")
        for gain in GAINS:
            paired = both[[f"{gain}_base", f"{gain}_arm"]].dropna()
            before, after = paired[f"{gain}_base"].to_numpy(), paired[f"{gain}_arm"].to_numpy()
            low, high = bootstrap_interval(after - before, seed=seed)
            rows.append({
                "arm": name, "gain": gain, "n_pairs": len(paired),
                "baseline_mean": float(before.mean()) if len(paired) else np.nan,
                "arm_mean": float(after.mean()) if len(paired) else np.nan,
                "mean_difference": float((after - before).mean()) if len(paired) else np.nan,
                "ci_low": low, "ci_high": high, "wilcoxon_p": wilcoxon_p(before, after),
            })
    return pd.DataFrame(rows, columns=COLUMNS)


__all__ = ["switch_effects", "bootstrap_interval", "GAINS", "COLUMNS"]
