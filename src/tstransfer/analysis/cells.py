"""Gain tables: the cells of Tables 6-9 and the per-architecture tables, Figure 8's
fixed-multiplier means and Table 2's stream_max gains.

Every cell holds the mean of per-run gains (the paper's headline) with its robust summary
(:func:`tstransfer.analysis.gains.robust_summary`) and, for Tables 6-9 and the
per-architecture tables, the Wilcoxon p of the paired raw values; a pair with a diverged
model is left out of the mean and counted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from tstransfer import registry
from tstransfer.analysis.gains import (
    ALPHA, ROBUST_COLUMNS, convergence_gain, performance_gain, robust_columns, robust_summary, wilcoxon_p,
)
from tstransfer.analysis.study import CELL_KEYS, TRIPLET_KEYS, table_group

ARCHITECTURES = registry.ARCHITECTURES


def _cell_statistics(pairs: pd.DataFrame, keys: list[str], which: str) -> pd.DataFrame:
    ref_col, tl_col = ("ref_metric", "tl_metric") if which == "performance" else ("ref_cr", "tl_cr")
    gain_col = f"gain_{which}"
    rows = []
    for key, group in pairs.groupby(keys, sort=True):
        usable = group[group["usable"]]
        rows.append(
            dict(
                zip(keys, key),
                value=float(usable[gain_col].mean()) if len(usable) else np.nan,
                **robust_summary(usable[gain_col]),
                p=wilcoxon_p(usable[ref_col], usable[tl_col]),
                n_pairs=int(len(usable)),
                n_missing=int((~group["usable"]).sum()),
                n_diverged=int(group["n_diverged"].sum()),
            )
        )
    columns = keys + ["value", *ROBUST_COLUMNS, "p", "n_pairs", "n_missing", "n_diverged"]
    return pd.DataFrame(rows, columns=columns).astype({"single_run_driven": bool})


def domain_tables(pairs: pd.DataFrame, which: str = "performance", alpha: float = ALPHA) -> pd.DataFrame:
    """Tables 6+7 (``which="performance"``) or 8+9 (``"convergence"``), long form.

    One row per (source, target, variant) cell, pooling 4 architectures x 7 runs:
    ``value`` = mean of per-run gains (the paper's headline), beside it ``median``,
    ``mean_without_extreme`` and ``single_run_driven`` (:func:`robust_summary`),
    ``p`` = Wilcoxon on the paired raw values
    (metric or convergence rate), ``p_corrected`` = Benjamini-Krieger-Yekutieli over
    all cells of the table pair (60 in the paper), ``significant`` where
    ``p_corrected <= alpha``; ``table`` says which of the pair (``seismology`` target
    or ``other``) the cell belongs to. Cells without a usable pair get NaN and stay
    out of the correction.
    """
    cells = _cell_statistics(pairs, CELL_KEYS, which)
    cells["p_corrected"] = np.nan
    tested = cells["p"].notna().to_numpy()
    if tested.any():
        _, corrected, _, _ = multipletests(cells.loc[tested, "p"], alpha=alpha, method="fdr_tsbky")
        cells.loc[tested, "p_corrected"] = corrected
    cells["significant"] = (cells["p_corrected"] <= alpha).fillna(False).astype(bool)
    cells["table"] = [table_group(t) for t in cells["target"]]
    cells["which"] = which
    return order_cells(cells)


def per_architecture_tables(pairs: pd.DataFrame, which: str = "performance", alpha: float = ALPHA) -> pd.DataFrame:
    """Per (arch, source, target, variant): mean gain over 7 runs and the uncorrected Wilcoxon p.

    As in the authors' supplementary tables, no multiple-comparison correction;
    ``significant`` where ``p < alpha``.
    """
    cells = _cell_statistics(pairs, TRIPLET_KEYS, which)
    cells["significant"] = (cells["p"] < alpha).fillna(False).astype(bool)
    cells["which"] = which
    return order_cells(cells)


def order_cells(cells: pd.DataFrame) -> pd.DataFrame:
    order = {name: i for i, name in enumerate(registry.DATASETS)}
    arch_order = {name: i for i, name in enumerate(ARCHITECTURES)}
    sort_keys = [c for c in ("source", "arch", "target", "variant", "omega") if c in cells.columns]

    def key(column: pd.Series) -> pd.Series:
        if column.name in ("source", "target"):
            return column.map(order).fillna(len(order))
        if column.name == "arch":
            return column.map(arch_order).fillna(len(arch_order))
        return column

    return cells.sort_values(sort_keys, key=key, ignore_index=True)


def gain_by_multiplier(df: pd.DataFrame) -> pd.DataFrame:
    """Figure 8 data: per (arch, omega) the mean per-run gain at that fixed multiplier.

    No grid search: every fine-tuned model is paired with its referent and the gains
    are averaged over all (source, target variant, run). Pairs with a diverged model
    are left out and counted (``n_diverged``). ``median_<which>`` and
    ``single_run_driven_<which>`` (:func:`robust_summary`) stand beside each mean.
    """
    finetune = df[df["kind"] == "finetune"]
    referents = df[df["kind"] == "referent"][
        ["arch", "target", "variant", "run", "status", "test_metric", "convergence_rate"]
    ].rename(columns={"status": "ref_status", "test_metric": "ref_metric", "convergence_rate": "ref_cr"})
    merged = finetune.merge(referents, on=["arch", "target", "variant", "run"], how="left")
    ok = (merged["status"] == "ok") & (merged["ref_status"] == "ok")
    ok = ok.fillna(False).astype(bool).to_numpy()
    merged["gain_performance"] = np.nan
    merged["gain_convergence"] = np.nan
    if ok.any():
        merged.loc[ok, "gain_performance"] = performance_gain(
            merged.loc[ok, "ref_metric"], merged.loc[ok, "test_metric"], merged.loc[ok, "metric"].astype(str).to_numpy()
        )
        merged.loc[ok, "gain_convergence"] = convergence_gain(merged.loc[ok, "ref_cr"], merged.loc[ok, "convergence_rate"])
    merged["_ok"] = ok
    merged["_diverged"] = (merged["status"] == "diverged").to_numpy() | merged["ref_status"].eq("diverged").fillna(False).to_numpy()
    grouped = merged.groupby(["arch", "omega"], sort=True)
    table = grouped.agg(
        gain_performance=("gain_performance", "mean"),
        gain_convergence=("gain_convergence", "mean"),
        n_pairs=("_ok", "sum"),
        n_diverged=("_diverged", "sum"),
    ).reset_index()
    for which in ("performance", "convergence"):
        table[f"median_{which}"], table[f"single_run_driven_{which}"] = robust_columns(grouped, f"gain_{which}")
    table["n_pairs"] = table["n_pairs"].astype(int)
    table["n_diverged"] = table["n_diverged"].astype(int)
    return order_cells(table)


def stream_max_gains(df: pd.DataFrame) -> pd.DataFrame:
    """Table 2: per (arch, dataset) the performance gain of adding the stream_max input.

    From ``kind == "stream_max"`` rows: models with (``stream_max`` True) and without
    the input are paired by seed; the cell is the mean of per-seed gains (positive =
    lower MAE / higher F1 with stream_max), plus an ``Average`` row per dataset over
    architectures. A pair with a diverged model is left out and counted. ``median``
    and ``single_run_driven`` (:func:`robust_summary`, over seeds) stand beside it.
    """
    study = df[df["kind"] == "stream_max"]
    columns = ["arch", "target", "gain", "median", "single_run_driven", "n_pairs", "n_diverged"]
    if study.empty:
        return pd.DataFrame(columns=columns)
    keys = ["arch", "target", "seed"]
    with_input = study[study["stream_max"].astype(bool)][keys + ["status", "test_metric", "metric"]]
    without = study[~study["stream_max"].astype(bool)][keys + ["status", "test_metric"]]
    joined = with_input.merge(without, on=keys, how="outer", suffixes=("_with", "_without")).set_index(keys)
    ok = (joined["status_with"] == "ok") & (joined["status_without"] == "ok")
    ok = ok.fillna(False).astype(bool)
    joined["gain"] = np.nan
    if ok.any():
        joined.loc[ok, "gain"] = performance_gain(
            joined.loc[ok, "test_metric_without"], joined.loc[ok, "test_metric_with"],
            joined.loc[ok, "metric"].astype(str).to_numpy(),
        )
    joined["_ok"] = ok
    joined["_diverged"] = joined["status_with"].eq("diverged").fillna(False) | joined["status_without"].eq("diverged").fillna(False)
    grouped = joined.reset_index().groupby(["arch", "target"], sort=True)
    table = grouped.agg(
        gain=("gain", "mean"), n_pairs=("_ok", "sum"), n_diverged=("_diverged", "sum")
    ).reset_index()
    table["median"], table["single_run_driven"] = robust_columns(grouped, "gain")
    # The average row is the paper's mean over architectures; its median is the median
    # of the architectures' medians, and it is flagged when any of them is.
    average = table.groupby("target", sort=True).agg(
        gain=("gain", "mean"), n_pairs=("n_pairs", "sum"), n_diverged=("n_diverged", "sum"),
        median=("median", "median"), single_run_driven=("single_run_driven", "any"),
    ).reset_index()
    average["arch"] = "average"
    table = pd.concat([table, average[columns]], ignore_index=True)
    table["n_pairs"] = table["n_pairs"].astype(int)
    table["n_diverged"] = table["n_diverged"].astype(int)
    return table[columns]
