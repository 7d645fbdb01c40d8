"""Wins and losses: the paper's Tables 3, 4, 5 and 10 from the paired runs.

A triplet (architecture, source, target variant) is a TL win when the mean over its
usable runs of the fine-tuned models beats the referents' mean; the tables count wins
per domain group (with the sign test) and per architecture, and set convergence against
performance outcomes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tstransfer import registry
from tstransfer.analysis.gains import convergence_gain, performance_gain, sign_test
from tstransfer.analysis.study import GROUP_ROWS, TRIPLET_KEYS, domain_group, group_labels

ARCHITECTURES = registry.ARCHITECTURES


def triplet_comparisons(pairs: pd.DataFrame) -> pd.DataFrame:
    """7-run-mean comparison per (arch, source, target, variant) triplet.

    The referent and TL scores of a triplet are the means over its usable runs; the
    triplet is a TL win when the mean-based gain is positive, a loss when negative
    (ties count as neither, as in the authors' scripts). ``n_runs`` usable pairs,
    ``n_missing`` unusable ones and ``n_diverged`` diverged models are kept; a triplet
    without a usable run has NaN outcomes.
    """
    usable = pairs[pairs["usable"]]
    means = usable.groupby(TRIPLET_KEYS, sort=True).agg(
        metric=("metric", "first"),
        ref_mean=("ref_metric", "mean"),
        tl_mean=("tl_metric", "mean"),
        ref_cr_mean=("ref_cr", "mean"),
        tl_cr_mean=("tl_cr", "mean"),
        n_runs=("usable", "size"),
    )
    counts = pairs.groupby(TRIPLET_KEYS, sort=True).agg(
        n_pairs=("usable", "size"), n_usable=("usable", "sum"), n_diverged=("n_diverged", "sum")
    )
    triplets = counts.join(means, how="left").reset_index()
    triplets["n_runs"] = triplets["n_runs"].fillna(0).astype(int)
    triplets["n_missing"] = triplets["n_pairs"] - triplets["n_usable"]
    has = triplets["n_runs"] > 0
    diff_perf = np.full(len(triplets), np.nan)
    diff_conv = np.full(len(triplets), np.nan)
    if has.any():
        diff_perf[has] = performance_gain(
            triplets.loc[has, "ref_mean"], triplets.loc[has, "tl_mean"],
            triplets.loc[has, "metric"].astype(str).to_numpy(),
        )
        diff_conv[has] = convergence_gain(triplets.loc[has, "ref_cr_mean"], triplets.loc[has, "tl_cr_mean"])
    triplets["gain_performance"] = diff_perf
    triplets["gain_convergence"] = diff_conv
    for which, diff in (("performance", diff_perf), ("convergence", diff_conv)):
        outcome = np.where(np.isnan(diff), "missing", np.where(diff > 0, "win", np.where(diff < 0, "loss", "tie")))
        triplets[f"outcome_{which}"] = outcome
    triplets["domain_group"] = [domain_group(s, t) for s, t in zip(triplets["source"], triplets["target"])]
    return triplets.drop(columns=["n_usable"])


def wins_by_group(triplets: pd.DataFrame, which: str = "performance") -> pd.DataFrame:
    """Table 3 (``which="performance"``) or Table 4 (``"convergence"``).

    Rows: intra-domain, cross-domain and its three parts, total. Columns: wins,
    losses, ties, missing, n (wins + losses + ties), win and loss percentages of n,
    sign-test critical value and exact binomial p.
    """
    outcome = triplets[f"outcome_{which}"]
    labels = group_labels([*triplets["source"], *triplets["target"]])
    rows = []
    for key, groups in GROUP_ROWS.items():
        mask = triplets["domain_group"].isin(groups)
        counts = outcome[mask].value_counts()
        wins, losses = int(counts.get("win", 0)), int(counts.get("loss", 0))
        ties, missing = int(counts.get("tie", 0)), int(counts.get("missing", 0))
        n = wins + losses + ties
        test = sign_test(wins, losses)
        rows.append(
            {
                "group": key,
                "label": labels[key],
                "wins": wins,
                "losses": losses,
                "ties": ties,
                "missing": missing,
                "n": n,
                "win_pct": 100.0 * wins / n if n else np.nan,
                "loss_pct": 100.0 * losses / n if n else np.nan,
                "critical_value": test["critical_value"],
                "significant": test["significant"],
                "p_binomial": test["p_binomial"],
                "n_diverged": int(triplets.loc[mask, "n_diverged"].sum()),
            }
        )
    return pd.DataFrame(rows)


def convergence_vs_performance(triplets: pd.DataFrame) -> pd.DataFrame:
    """Table 5: counts of triplets by (convergence outcome, performance outcome).

    Rows ``convergence`` worse/better, columns ``performance`` worse/better; cells
    hold counts, with the share of all compared triplets beside them. Triplets with a
    tie or a missing outcome in either are left out and reported in ``excluded``.
    """
    perf = triplets["outcome_performance"]
    conv = triplets["outcome_convergence"]
    decided = perf.isin(["win", "loss"]) & conv.isin(["win", "loss"])
    total = int(decided.sum())
    rows = []
    for conv_key, conv_label in (("loss", "TL models are worse"), ("win", "TL models are better")):
        for perf_key, perf_label in (("loss", "TL models are worse"), ("win", "TL models are better")):
            count = int((decided & (conv == conv_key) & (perf == perf_key)).sum())
            rows.append(
                {
                    "convergence": conv_label,
                    "performance": perf_label,
                    "count": count,
                    "pct": 100.0 * count / total if total else np.nan,
                }
            )
    table = pd.DataFrame(rows)
    table.attrs["excluded"] = int((~decided).sum())
    return table


def wins_per_architecture(triplets: pd.DataFrame, which: str = "performance") -> pd.DataFrame:
    """Table 10: per architecture and domain-group row, TL wins out of compared triplets."""
    outcome = triplets[f"outcome_{which}"]
    labels = group_labels([*triplets["source"], *triplets["target"]])
    # the paper's four, and FCN (registered for the real-data study) only where it ran
    archs = registry.architectures_shown(triplets["arch"])
    rows = []
    for key, groups in GROUP_ROWS.items():
        for arch in archs:
            mask = triplets["domain_group"].isin(groups) & (triplets["arch"] == arch)
            counts = outcome[mask].value_counts()
            wins, losses = int(counts.get("win", 0)), int(counts.get("loss", 0))
            n = wins + losses + int(counts.get("tie", 0))
            rows.append(
                {
                    "group": key,
                    "label": labels[key],
                    "arch": arch,
                    "wins": wins,
                    "losses": losses,
                    "n": n,
                    "missing": int(counts.get("missing", 0)),
                    "win_pct": 100.0 * wins / n if n else np.nan,
                }
            )
    return pd.DataFrame(rows)
