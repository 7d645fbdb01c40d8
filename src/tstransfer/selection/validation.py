"""Does an estimator pick the source to transfer from? Its validation against measured gains.

Input: one row per (target, source, estimator) with the estimator's ``score`` and the
measured mean fine-tuning ``gain`` of that source on that target (:func:`mean_gains`
computes it from a finished study's results table; :func:`cells` joins it to scores).
Per estimator and target (:func:`per_target`):

- ``spearman``: the rank correlation of score and gain over the target's sources (NaN
  with fewer than 3 sources, where it is +-1 and top-1 says the same, or a constant side);
- ``top1``: whether the source it scores highest has the best gain;
- ``regret``: the best source's gain minus the picked source's gain (0 is a perfect pick).

Where several sources share the top score the pick is one of them at random: ``top1`` and
``regret`` are then their expectations over the tie. Beside them, a random pick's
expectations on the same sources, computed exactly: ``top1_random`` = the share of sources
with the best gain (1 / n_sources without ties), ``regret_random`` = best gain minus the
mean gain; a random ranking's expected Spearman is 0. :func:`summarise` averages each
column over targets, per estimator, and adds the random pick as the row ``random``.

On a study (rules/selection.smk): :func:`study_tables` runs all of it on the scores of
every (arch, source, target, variant) and the study's results table, choosing a source
per (target, variant, architecture); :func:`best_estimator` names the summary's best.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.stats

from tstransfer.analysis import stats
from tstransfer.protocol import selection_curve

CELL_COLUMNS = ("target", "source", "estimator", "score", "gain")
RANDOM = "random"
PER_TARGET_COLUMNS = ["estimator", "n_sources", "spearman", "top1", "regret", "top1_random",
                      "regret_random", "best_source", "picked_source", "best_gain", "picked_gain"]
# A study's selection (rules/selection.smk): scores and gains per (arch, source, target,
# variant); a source is chosen per (target, variant, architecture), as the study
# fine-tunes every source into every target per architecture.
STUDY_KEYS = ["arch", "source", "target", "variant"]
STUDY_WITHIN = ["target", "variant", "arch"]
SUMMARY_COLUMNS = ["estimator", "n_targets", "n_spearman", "spearman", "top1", "regret",
                   "top1_random", "regret_random"]


def mean_gains(table: pd.DataFrame, *, keys: Sequence[str] = ("target", "source"),
               protocol: str | None = None) -> pd.DataFrame:
    """Mean per-run performance gain (%) per ``keys`` of a finished study's results table
    (tstransfer.analysis.results' columns), pooling architectures, variants and runs not
    in ``keys``: the grid-selected fine-tuned model against its referent, as the paper's
    tables compute it (tstransfer.analysis.stats.paired_runs), over usable pairs only.
    ``protocol``: the curve the grid search selects by; by default the one the study's
    switches recorded. Columns: ``keys``, gain, n_pairs."""
    keys = list(keys)
    missing = [key for key in keys if key not in stats.GRID_KEYS]
    if missing:
        raise ValueError(f"mean_gains: keys {missing} are not among {stats.GRID_KEYS}")
    if protocol is None:
        test_curves = table["switch_test_curves"].dropna() if "switch_test_curves" in table else []
        protocol = selection_curve({"test_curves": bool(len(test_curves) and test_curves.any())})
    pairs = stats.paired_runs(table, protocol)
    usable = pairs[pairs["usable"]]
    if usable.empty:
        raise ValueError("mean_gains: the results table holds no usable (referent, fine-tuned) pair")
    gains = usable.groupby(keys, sort=True)["gain_performance"].agg(gain="mean", n_pairs="size")
    return gains.reset_index()


def cells(scores: pd.DataFrame, gains: pd.DataFrame, *, keys: Sequence[str] = ("target", "source")) -> pd.DataFrame:
    """Scores (``keys``, estimator, score) beside the gains (``keys``, gain) of the same
    cells; a scored cell without a measured gain is dropped (it was not fine-tuned)."""
    keys = list(keys)
    for name, frame, needed in (("scores", scores, keys + ["estimator", "score"]), ("gains", gains, keys + ["gain"])):
        absent = [column for column in needed if column not in frame]
        if absent:
            raise ValueError(f"{name} lack the column(s) {absent}")
    return scores[keys + ["estimator", "score"]].merge(gains[keys + ["gain"]], on=keys, how="inner")


def _check_cells(frame: pd.DataFrame, within: list[str]) -> pd.DataFrame:
    absent = [column for column in [*CELL_COLUMNS, *within] if column not in frame]
    if absent:
        raise ValueError(f"validation cells lack the column(s) {absent}")
    repeated = frame.duplicated(["estimator", *within, "source"])
    if repeated.any():
        first = frame.loc[repeated, ["estimator", *within, "source"]].iloc[0].tolist()
        raise ValueError(f"validation cells repeat (estimator, {', '.join(within)}, source) {first}")
    return frame.dropna(subset=["score", "gain"])


def _one_target(sources: np.ndarray, score: np.ndarray, gain: np.ndarray) -> dict[str, object]:
    best = gain.max()
    picked = score == score.max()
    defined = len(score) >= 3 and np.ptp(score) > 0 and np.ptp(gain) > 0
    return {
        "n_sources": len(score),
        "spearman": float(scipy.stats.spearmanr(score, gain).statistic) if defined else np.nan,
        "top1": float(np.mean(gain[picked] == best)),
        "regret": float(best - gain[picked].mean()),
        "top1_random": float(np.mean(gain == best)),
        "regret_random": float(best - gain.mean()),
        "best_source": ",".join(sources[gain == best]),
        "picked_source": ",".join(sources[picked]),
        "best_gain": float(best),
        "picked_gain": float(gain[picked].mean()),
    }


def per_target(frame: pd.DataFrame, *, within: Sequence[str] = ("target",)) -> pd.DataFrame:
    """Per estimator and target (the ``within`` columns, e.g. target and variant): the
    columns of the module docstring. Targets with fewer than 2 scored sources have no
    choice to make and are left out."""
    within = list(within)
    frame = _check_cells(frame, within)
    rows = []
    for key, group in frame.groupby(["estimator", *within], sort=False):  # the estimators in the caller's order
        if len(group) < 2:
            continue
        result = _one_target(group["source"].astype(str).to_numpy(), group["score"].to_numpy(float),
                             group["gain"].to_numpy(float))
        rows.append({**dict(zip(["estimator", *within], key)), **result})
    columns = ["estimator", *within, *PER_TARGET_COLUMNS[1:]]
    return pd.DataFrame(rows, columns=columns)


def summarise(targets: pd.DataFrame, *, within: Sequence[str] = ("target",)) -> pd.DataFrame:
    """Per estimator, the means over its targets of :func:`per_target`'s columns
    (``spearman`` over the targets where it is defined, counted in ``n_spearman``), and a
    last row ``random``: a random pick on every target that any estimator was validated on."""
    grouped = targets.groupby("estimator", sort=False)
    summary = grouped[["spearman", "top1", "regret", "top1_random", "regret_random"]].mean()
    summary.insert(0, "n_spearman", grouped["spearman"].count())
    summary.insert(0, "n_targets", grouped.size())
    summary = summary.reset_index()
    # The random pick on each target's widest source set: estimators that skip a source
    # (a missing score) are compared with chance on their own sources in their own row.
    widest = targets.sort_values("n_sources", ascending=False).drop_duplicates(list(within))
    baseline = {"estimator": RANDOM, "n_targets": len(widest), "n_spearman": len(widest), "spearman": 0.0,
                "top1": widest["top1_random"].mean(), "regret": widest["regret_random"].mean(),
                "top1_random": widest["top1_random"].mean(), "regret_random": widest["regret_random"].mean()}
    if widest.empty:
        return summary[SUMMARY_COLUMNS]
    return pd.concat([summary, pd.DataFrame([baseline])], ignore_index=True)[SUMMARY_COLUMNS]


def validate(frame: pd.DataFrame, *, within: Sequence[str] = ("target",)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(per_target(frame), summarise(...))``: the harness on validation cells."""
    targets = per_target(frame, within=within)
    return targets, summarise(targets, within=within)


def study_tables(scores: pd.DataFrame, results_table: pd.DataFrame, *,
               protocol: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(per_target, summary)`` of the harness on ``scores`` beside the study's mean gains
    (the grid-selected model's, by ``protocol``'s curve): per estimator and (target,
    variant, arch), then per estimator with the random pick as the last row."""
    gains = mean_gains(results_table, keys=STUDY_KEYS, protocol=protocol)
    return validate(cells(scores, gains, keys=STUDY_KEYS), within=STUDY_WITHIN)


REPEAT = "repeat study"


def repeat_agreement(results_table: pd.DataFrame, repeat_table: pd.DataFrame, *,
                     protocol: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`study_tables` with a second run of the same study as the estimator: its
    measured mean gains as the score of each (arch, source, target, variant), against the
    first run's gains (estimator ``repeat study``).

    No estimator can predict the gains better than the study's own noise lets a repeat
    of it do: its Spearman, top-1 and regret are the ceiling for the estimators' rows.
    """
    gains = mean_gains(results_table, keys=STUDY_KEYS, protocol=protocol)
    again = mean_gains(repeat_table, keys=STUDY_KEYS, protocol=protocol).rename(columns={"gain": "score"})
    return validate(cells(again.assign(estimator=REPEAT), gains, keys=STUDY_KEYS), within=STUDY_WITHIN)


def best_estimator(summary: pd.DataFrame) -> dict | None:
    """The summary's best estimator row: lowest mean regret, then highest top-1 hit rate,
    then highest mean Spearman; None when no estimator was validated on any target."""
    rows = summary[(summary["estimator"] != RANDOM) & (summary["n_targets"] > 0)]
    if rows.empty:
        return None
    ranked = rows.assign(_spearman=rows["spearman"].fillna(-np.inf)).sort_values(
        ["regret", "top1", "_spearman"], ascending=[True, False, False], kind="stable")
    return ranked.drop(columns="_spearman").iloc[0].to_dict()


__all__ = ["mean_gains", "cells", "per_target", "summarise", "validate", "study_tables", "repeat_agreement",
           "best_estimator", "CELL_COLUMNS", "RANDOM", "REPEAT", "STUDY_KEYS", "STUDY_WITHIN"]
