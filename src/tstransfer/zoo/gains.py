"""The gains of a zoo transfer with the paper's statistics, its Markdown report, and how
well LogME predicted them."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats

from ..protocol import selection_curve
from .cards import model_name


def gain_tables(paths: Iterable[Path], protocol: Mapping[str, Any],
                ranking: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """``results`` (the jobs' result.json), ``pairs``, ``gains`` (per zoo model) and
    ``gains_by_source`` (per source over architectures) by the paper's statistics,
    with the LogME ``ranking`` (:func:`~tstransfer.zoo.rank`) joined to the gains when given."""
    # The analysis package imports statsmodels and matplotlib, which the data env (it
    # imports this package for `snakemake zoo`) lacks; only `transfer` needs them.
    from ..analysis import results as results_table
    from ..analysis import stats

    table = results_table.build_results_table(paths)
    pairs = stats.paired_runs(table, selection_curve(protocol["switches"]))
    keys = ["arch", "source", "target", "variant"]
    by_model = stats.per_architecture_tables(pairs, "performance").merge(
        stats.per_architecture_tables(pairs, "convergence")[keys + ["value", "p"]],
        on=keys, suffixes=("", "_convergence"))
    by_model = by_model.rename(columns={"value": "gain_performance", "p": "p_performance",
                                        "value_convergence": "gain_convergence"})
    chosen = pairs.groupby(["arch", "source"])["omega"].agg(lambda s: s.mode().iloc[0] if s.notna().any() else math.nan)
    by_model["omega_mode"] = [chosen.get((a, s), math.nan) for a, s in zip(by_model["arch"], by_model["source"])]
    if ranking is not None:
        by_model = by_model.merge(ranking[["arch", "source", "logme", "rank"]], on=["arch", "source"], how="left")
        by_model = by_model.rename(columns={"rank": "logme_rank"})
    by_model.insert(0, "model", [model_name(a, s) for a, s in zip(by_model["arch"], by_model["source"])])
    return {"results": table, "pairs": pairs, "gains": by_model,
            "gains_by_source": stats.domain_tables(pairs, "performance")}


def _number(value, digits=3) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}g}"


def gain_report(by_model, by_source, *, target: str, runs: int, omegas: Sequence[float], size: int,
                skipped: Mapping[str, str]) -> str:
    """The gain tables as Markdown (what ``transfer`` prints)."""
    lines = [f"# Transfer to {target}: {size} training instances, {runs} run(s), multipliers "
             f"{', '.join(repr(float(w)) for w in omegas)}", "",
             "Gain: mean over runs of the per-run gain (%) of the grid-selected fine-tuned model over "
             "the referent trained from scratch; p: Wilcoxon signed-rank on the paired metrics "
             "(uncorrected per model, as the paper's per-architecture tables; Benjamini-Krieger-Yekutieli "
             "corrected per source, as its Tables 6-9); * significant at 0.05.", "",
             "| model | LogME | LogME rank | gain perf. % | p | gain conv. % | omega (mode) | runs |",
             "|---|---|---|---|---|---|---|---|"]
    order = by_model.sort_values("logme_rank") if "logme_rank" in by_model else by_model
    for row in order.itertuples():
        star = "*" if row.significant else ""
        lines.append(f"| {row.model} | {_number(getattr(row, 'logme', None), 4)} | {getattr(row, 'logme_rank', '')} "
                     f"| {_number(row.gain_performance)}{star} | {_number(row.p_performance)} "
                     f"| {_number(row.gain_convergence)} | {_number(row.omega_mode)} | {row.n_pairs} |")
    lines += ["", "| source (all architectures) | gain perf. % | p corrected | pairs |", "|---|---|---|---|"]
    for row in by_source.itertuples():
        star = "*" if row.significant else ""
        lines.append(f"| {row.source} | {_number(row.value)}{star} | {_number(row.p_corrected)} | {row.n_pairs} |")
    if skipped:
        lines += ["", "Not compatible: " + "; ".join(f"{k} ({v})" for k, v in skipped.items())]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- validation
def _spearman(frame: pd.DataFrame) -> float:
    """Spearman's correlation of LogME and gain over ``frame``'s cells (nan when undefined)."""
    if len(frame) < 3 or frame["logme"].nunique() < 2 or frame["gain"].nunique() < 2:
        return math.nan
    return float(scipy.stats.spearmanr(frame["logme"], frame["gain"]).statistic)


def _top_hits(cells: pd.DataFrame, group_keys: list[str]) -> dict[str, Any]:
    """Per group of ``group_keys``: whether LogME's first is the best gain; the rate, and a random pick's."""
    hits, chance, groups = 0, 0.0, 0
    for _, frame in cells.groupby(group_keys):
        if len(frame) < 2:
            continue
        groups += 1
        hits += int(frame.loc[frame["logme"].idxmax(), "gain"] == frame["gain"].max())
        chance += 1.0 / len(frame)
    return {"hits": hits, "groups": groups, "rate": hits / groups if groups else math.nan,
            "chance": chance / groups if groups else math.nan}


def validate_ranking(scores, gains) -> dict[str, Any]:
    """How well LogME predicts the fine-tuning gain, over (arch, source, target, variant) cells.

    ``scores``: columns arch, source, target, variant, logme; ``gains``: the same keys and
    ``gain`` (mean per-run performance gain, %). Returns the Spearman correlation pooled
    over all cells and per target (LogME is meant to compare models on one target),
    and top-1 hit rates: per (target, variant, arch), whether the source LogME ranks
    first is the source with the best gain (``top_source``), and per (target, variant)
    over all models (``top_model``), each with the hit rate a random pick would have.
    """
    keys = ["arch", "source", "target", "variant"]
    cells = scores[keys + ["logme"]].merge(gains[keys + ["gain"]], on=keys).dropna(subset=["logme", "gain"])
    per_target = {f"{t}/{v}": _spearman(frame) for (t, v), frame in cells.groupby(["target", "variant"])}
    per_target_arch = {f"{t}/{v}/{a}": _spearman(frame)
                       for (t, v, a), frame in cells.groupby(["target", "variant", "arch"])}
    defined = [value for value in per_target.values() if not math.isnan(value)]
    return {
        "n_cells": int(len(cells)),
        "spearman_pooled": _spearman(cells),
        "spearman_per_target_mean": float(np.mean(defined)) if defined else math.nan,
        "spearman_per_target": per_target,
        "spearman_per_target_arch": per_target_arch,
        "top_source": _top_hits(cells, ["target", "variant", "arch"]),
        "top_model": _top_hits(cells, ["target", "variant"]),
    }
