"""Grid-search selection, gains and the paper's statistics (REFERENCE.md section 5).

Pipeline of the numbers:

1. :func:`select_grid` keeps, per (arch, source, target, variant, run), the multiplier
   with the best performance (validation by default; the test set under the authors'
   ``paper`` protocol).
2. :func:`paired_runs` pairs each selected fine-tuned model with the referent model of
   the same (arch, target, variant, run) and computes the per-run gains.
3. Everything else aggregates those pairs: 7-run-mean wins/losses per triplet (Tables
   3, 4, 5, 10) with the sign test, per-domain-pair Wilcoxon tests with the
   Benjamini-Krieger-Yekutieli correction (Tables 6-9), per-architecture tests, the
   fixed-multiplier means of Figure 8 and the stream_max study of Table 2.

Diverged runs: a diverged fine-tune never wins the grid search but is counted; a pair
whose referent diverged, or whose whole grid diverged, is missing (no gain, excluded
from tests and means) and counted in ``n_diverged`` / ``n_missing`` columns everywhere.

Checked against the authors' per-run results (tests/test_published_reproduction.py):
Tables 3, 4, 6-9 (values and significance) and 10 reproduce exactly, as do the authors'
per-architecture p-values. Two printed numbers of the paper do not: Table 6's
S&P 500 -> LOMAX 9k (printed 0.12 %, the data and the authors' own report give 0.106 %),
and Table 5 (printed 10 / 77 / 13 / 140; its "TL better" column sums to 217, against the
204 performance wins of Table 3; the data give 16 / 71 / 20 / 133, whose margins are
Tables 3 and 4). Table 3's printed total percentages (76 % / 24 %) are also off: 204 of
240 is 85 %.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import scipy.stats
from statsmodels.stats.multitest import multipletests

from tstransfer import registry
from tstransfer.metrics import lower_is_better

# The architectures, in the tables' order. The datasets (DATASETS, SEISMOLOGY,
# OTHER_DOMAINS, and what depends on them: TABLE_TARGETS, DOMAIN_GROUPS, GROUP_LABELS)
# are read from the registry when asked (module __getattr__ below), so that datasets a
# config registers after this module is imported are among them.
ARCHITECTURES = registry.ARCHITECTURES
VARIANTS = ("1k5", "9k")
OMEGAS = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
PROTOCOLS = ("validation", "paper")
ALPHA = 0.05
SIGN_TEST_Z = 1.96
# A cell's mean is "driven by a single run" (see robust_summary) when leaving out its
# most influential run flips the mean's sign or moves it by more than this share of it.
SINGLE_RUN_SHIFT = 0.5
ROBUST_COLUMNS = ["median", "mean_without_extreme", "single_run_driven"]

GRID_KEYS = ["arch", "source", "target", "variant", "run"]
TRIPLET_KEYS = ["arch", "source", "target", "variant"]
CELL_KEYS = ["source", "target", "variant"]

# Paper Tables 3, 4 and 10: the domain groups (keys of DOMAIN_GROUPS) and which of them
# each row pools.
DOMAIN_GROUP_KEYS = ("intra", "seismology_to_other", "other_to_seismology", "other_to_other")
GROUP_ROWS = {
    "intra": ("intra",),
    "cross": ("seismology_to_other", "other_to_seismology", "other_to_other"),
    "seismology_to_other": ("seismology_to_other",),
    "other_to_seismology": ("other_to_seismology",),
    "other_to_other": ("other_to_other",),
    "total": DOMAIN_GROUP_KEYS,
}


def _domain_groups() -> dict[str, str]:
    """Domain group -> its row label; the last names the registered other domains."""
    others = ", ".join(registry.DATASET_LABELS[d] for d in registry.OTHER_DOMAINS)  # SPEECH, EMG, S&P 500
    return {
        "intra": "Intra-domain (TL between different seismology datasets)",
        "seismology_to_other": "TL from seismology to other domains",
        "other_to_seismology": "TL from other domains to seismology",
        "other_to_other": f"TL between other domains ({others})",
    }


def _group_labels() -> dict[str, str]:
    """Row of GROUP_ROWS -> its label, in GROUP_ROWS' order."""
    labels = {**_domain_groups(), "cross": "Cross-domain", "total": "Total"}
    return {key: labels[key] for key in GROUP_ROWS}


def __getattr__(name: str):
    if name in ("DATASETS", "SEISMOLOGY", "OTHER_DOMAINS"):
        return getattr(registry, name)
    if name == "TABLE_TARGETS":
        # Tables 6/8 have the seismology targets as columns, Tables 7/9 the other domains.
        return {"seismology": registry.SEISMOLOGY, "other": registry.OTHER_DOMAINS}
    if name == "DOMAIN_GROUPS":
        return _domain_groups()
    if name == "GROUP_LABELS":
        return _group_labels()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def domain_group(source: str, target: str) -> str:
    """The paper's domain group of a (source, target) pair (keys of DOMAIN_GROUPS)."""
    seismology = registry.SEISMOLOGY
    source_seismic, target_seismic = source in seismology, target in seismology
    if source_seismic and target_seismic:
        return "intra"
    if source_seismic:
        return "seismology_to_other"
    if target_seismic:
        return "other_to_seismology"
    return "other_to_other"


# --------------------------------------------------------------------------- gains


def performance_gain(referent, transfer, metric) -> np.ndarray | float:
    """Per-run performance gain in percent; positive means TL is better.

    Regression (MAE): ``(ref - tl) / ref * 100``; classification (F1):
    ``(tl - ref) / ref * 100``. ``metric`` may be a scalar or an array of metric names.
    """
    referent = np.asarray(referent, dtype=float)
    transfer = np.asarray(transfer, dtype=float)
    gain = better_sign(metric) * (transfer - referent) / referent * 100.0
    return gain if gain.ndim else float(gain)


def better_sign(metric) -> np.ndarray:
    """+1 where a higher value of the metric is better, -1 where a lower one is.

    ``metric`` is a metric name or an array of them; the direction is
    :func:`tstransfer.metrics.lower_is_better`'s (an unknown name is a ValueError).
    """
    metric = np.asarray(metric, dtype=object)
    names = metric.ravel().tolist()
    signs = {name: -1.0 if lower_is_better(name) else 1.0 for name in set(names)}
    return np.array([signs[name] for name in names], dtype=float).reshape(metric.shape)


def convergence_gain(referent, transfer) -> np.ndarray | float:
    """Per-run convergence-rate gain in percent, ``(tl - ref) / ref * 100``."""
    referent = np.asarray(referent, dtype=float)
    transfer = np.asarray(transfer, dtype=float)
    gain = (transfer - referent) / referent * 100.0
    return gain if gain.ndim else float(gain)


# ------------------------------------------------------------------ grid selection


def _check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    return "val_metric" if protocol == "validation" else "test_metric"


def select_grid(df: pd.DataFrame, protocol: str = "validation") -> pd.DataFrame:
    """The grid-search winner per (arch, source, target, variant, run).

    ``protocol="validation"`` picks the multiplier with the best ``val_metric``;
    ``protocol="paper"`` picks by ``test_metric``, the authors' rule. Lower is better
    for MAE, higher for F1. Diverged runs (or runs without the selection metric) never
    win; ties go to the smallest multiplier (the authors' scan order in their domain
    tables). Returns one row per group with the winner's columns plus ``n_candidates``,
    ``n_diverged`` and ``selected_by``; a group whose every run diverged keeps a row
    with ``status="diverged"`` and NaN metrics, so it is counted rather than lost.
    """
    by = _check_protocol(protocol)
    finetune = df[df["kind"] == "finetune"]
    if finetune.empty:
        columns = list(df.columns) + ["n_candidates", "n_diverged", "selected_by"]
        return pd.DataFrame(columns=columns)
    finetune = finetune.reset_index(drop=True)
    diverged = finetune["status"] != "ok"
    counts = finetune.assign(_diverged=diverged).groupby(GRID_KEYS, dropna=False, sort=True).agg(
        n_candidates=("_diverged", "size"), n_diverged=("_diverged", "sum")
    )
    eligible = finetune[~diverged & finetune[by].notna()].copy()
    # Orient the score so that larger is always better, then take the first maximum.
    eligible["_score"] = better_sign(eligible["metric"]) * eligible[by].to_numpy(dtype=float)
    eligible = eligible.sort_values(GRID_KEYS + ["omega"], kind="stable")
    best_index = eligible.groupby(GRID_KEYS, dropna=False, sort=True)["_score"].idxmax()
    winners = eligible.loc[best_index.to_numpy()].drop(columns="_score").set_index(GRID_KEYS)
    selected = counts.join(winners, how="left").reset_index()
    no_winner = selected["kind"].isna()
    if no_winner.any():
        # Every candidate diverged: keep the group, visibly, with no metric values.
        template = finetune.drop_duplicates(GRID_KEYS).set_index(GRID_KEYS)
        fill = template.loc[pd.MultiIndex.from_frame(selected.loc[no_winner, GRID_KEYS])]
        for column in ("kind", "task", "metric", "stream_max"):
            selected.loc[no_winner, column] = fill[column].to_numpy()
        selected.loc[no_winner, "status"] = "diverged"
    selected["selected_by"] = by
    ordered = [c for c in df.columns if c in selected.columns]
    extra = ["n_candidates", "n_diverged", "selected_by"]
    return selected[ordered + extra].astype({"n_candidates": "int64", "n_diverged": "int64"})


# ------------------------------------------------------------------------- pairing


def paired_runs(df: pd.DataFrame, protocol: str = "validation") -> pd.DataFrame:
    """Selected fine-tuned model beside its referent, one row per (arch, source, target, variant, run).

    Columns: the keys, ``task``, ``metric``, ``omega`` (selected), ``ref_metric``,
    ``tl_metric``, ``ref_cr``, ``tl_cr``, ``gain_performance``, ``gain_convergence``,
    ``n_diverged`` (diverged fine-tunes in the grid plus a diverged referent),
    ``pair_status`` (``ok``, ``referent_diverged``, ``grid_diverged``,
    ``referent_missing``) and ``usable`` (the pair enters means and tests).
    """
    selected = select_grid(df, protocol)
    referents = df[df["kind"] == "referent"][
        ["arch", "target", "variant", "run", "status", "test_metric", "convergence_rate"]
    ].rename(
        columns={"status": "ref_status", "test_metric": "ref_metric", "convergence_rate": "ref_cr"}
    )
    if referents.duplicated(["arch", "target", "variant", "run"]).any():
        raise ValueError("more than one referent model per (arch, target, variant, run)")
    pairs = selected.rename(
        columns={"test_metric": "tl_metric", "convergence_rate": "tl_cr", "status": "tl_status"}
    )[GRID_KEYS + ["task", "metric", "omega", "tl_status", "tl_metric", "tl_cr", "n_candidates", "n_diverged"]]
    pairs = pairs.merge(referents, on=["arch", "target", "variant", "run"], how="left")
    ref_missing = pairs["ref_status"].isna()
    ref_diverged = pairs["ref_status"].eq("diverged").fillna(False).astype(bool)
    grid_diverged = pairs["tl_status"].ne("ok").fillna(True).astype(bool)
    status = np.select(
        [ref_missing.to_numpy(), ref_diverged.to_numpy(), grid_diverged.to_numpy()],
        ["referent_missing", "referent_diverged", "grid_diverged"],
        default="ok",
    )
    pairs["pair_status"] = status
    pairs["n_diverged"] = pairs["n_diverged"] + ref_diverged.astype(int)
    pairs["usable"] = pairs["pair_status"] == "ok"
    usable = pairs["usable"].to_numpy()
    metric = pairs["metric"].astype(str).to_numpy()
    gain_performance = np.full(len(pairs), np.nan)
    gain_convergence = np.full(len(pairs), np.nan)
    if usable.any():
        gain_performance[usable] = performance_gain(
            pairs.loc[usable, "ref_metric"], pairs.loc[usable, "tl_metric"], metric[usable]
        )
        gain_convergence[usable] = convergence_gain(
            pairs.loc[usable, "ref_cr"], pairs.loc[usable, "tl_cr"]
        )
    pairs["gain_performance"] = gain_performance
    pairs["gain_convergence"] = gain_convergence
    pairs["domain_group"] = [domain_group(s, t) for s, t in zip(pairs["source"], pairs["target"])]
    return pairs.drop(columns=["ref_status", "tl_status"])


# ------------------------------------------------------------- wins and sign test


def sign_test_critical_value(n: int, z: float = SIGN_TEST_Z) -> int:
    """Wins needed for significance at 0.05 in a two-tailed sign test: ceil((N + 1.96 sqrt N) / 2)."""
    return math.ceil((n + z * math.sqrt(n)) / 2)


def sign_test(wins: int, losses: int) -> dict[str, object]:
    """Sign test of ``wins`` against ``losses`` (ties dropped, as in the paper).

    Returns N, the critical value of the normal approximation the paper uses, whether
    the wins reach it, and the exact two-sided binomial p from scipy.
    """
    n = int(wins) + int(losses)
    critical = sign_test_critical_value(n) if n else 0
    p = scipy.stats.binomtest(int(wins), n, 0.5, alternative="two-sided").pvalue if n else np.nan
    return {
        "n": n,
        "wins": int(wins),
        "losses": int(losses),
        "critical_value": critical,
        "significant": bool(n and wins >= critical),
        "p_binomial": float(p),
    }


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
    labels = _group_labels()
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
    labels = _group_labels()
    rows = []
    for key, groups in GROUP_ROWS.items():
        for arch in ARCHITECTURES:
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


# ------------------------------------------------------------ robust summaries


def robust_summary(gains, shift: float = SINGLE_RUN_SHIFT) -> dict[str, object]:
    """Median of per-run gains and whether their mean is driven by a single run.

    The paper's cell value is the mean of per-run relative gains, which one run (a
    referent that barely trained, say) can dominate. The rule: leave out the most
    influential run, the one furthest from the mean (removing run i moves the mean by
    ``(mean - x_i) / (n - 1)``, so that run moves it most), and call the mean
    ``single_run_driven`` when the mean of the rest

    - has the opposite sign (one of the two is positive, the other negative), or
    - differs from the mean by more than ``shift`` (50 %) of ``|mean|``.

    A mean of one run is single-run driven by definition; with no run, nothing is
    flagged. NaN gains are ignored. Returns ``median``, ``mean_without_extreme``
    and ``single_run_driven``.
    """
    values = np.asarray(gains, dtype=float)
    values = values[np.isfinite(values)]
    n = len(values)
    if n == 0:
        return {"median": np.nan, "mean_without_extreme": np.nan, "single_run_driven": False}
    mean = float(values.mean())
    if n == 1:
        return {"median": float(values[0]), "mean_without_extreme": np.nan, "single_run_driven": True}
    extreme = int(np.argmax(np.abs(values - mean)))
    rest = float(np.delete(values, extreme).mean())
    flipped = (mean > 0 > rest) or (mean < 0 < rest)
    moved = abs(mean - rest) > shift * abs(mean)
    return {
        "median": float(np.median(values)),
        "mean_without_extreme": rest,
        "single_run_driven": bool(flipped or moved),
    }


# ------------------------------------------------------------------ Wilcoxon tables


def _robust_columns(grouped, column: str) -> tuple[list, list[bool]]:
    """robust_summary of ``column`` in each group, in the groups' order: (medians, flags)."""
    robust = [robust_summary(group[column]) for _, group in grouped]
    return [r["median"] for r in robust], [bool(r["single_run_driven"]) for r in robust]


def wilcoxon_p(referent, transfer) -> float:
    """Two-sided Wilcoxon signed-rank p of paired values (REFERENCE.md section 5).

    zero_method "wilcox" (zero differences dropped), no continuity correction, normal
    approximation. When no pair differs the test is undefined; p is then 1 (no
    evidence of a difference) rather than NaN, so it can enter the FDR correction.
    """
    referent = np.asarray(referent, dtype=float)
    transfer = np.asarray(transfer, dtype=float)
    if len(referent) == 0:
        return np.nan
    if not np.any(referent - transfer):
        return 1.0
    result = scipy.stats.wilcoxon(
        referent, transfer, zero_method="wilcox", correction=False,
        alternative="two-sided", method="approx",
    )
    return float(result.pvalue)


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
    cells["table"] = np.where(cells["target"].isin(registry.SEISMOLOGY), "seismology", "other")
    cells["which"] = which
    return _order_cells(cells)


def per_architecture_tables(pairs: pd.DataFrame, which: str = "performance", alpha: float = ALPHA) -> pd.DataFrame:
    """Per (arch, source, target, variant): mean gain over 7 runs and the uncorrected Wilcoxon p.

    As in the authors' supplementary tables, no multiple-comparison correction;
    ``significant`` where ``p < alpha``.
    """
    cells = _cell_statistics(pairs, TRIPLET_KEYS, which)
    cells["significant"] = (cells["p"] < alpha).fillna(False).astype(bool)
    cells["which"] = which
    return _order_cells(cells)


def _order_cells(cells: pd.DataFrame) -> pd.DataFrame:
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


# ------------------------------------------------------------------------ Figure 8


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
        table[f"median_{which}"], table[f"single_run_driven_{which}"] = _robust_columns(grouped, f"gain_{which}")
    table["n_pairs"] = table["n_pairs"].astype(int)
    table["n_diverged"] = table["n_diverged"].astype(int)
    return _order_cells(table)


# ------------------------------------------------------------------------- Table 2


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
    table["median"], table["single_run_driven"] = _robust_columns(grouped, "gain")
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


# ---------------------------------------------------------------- all statistics


def analyse(df: pd.DataFrame, protocol: str = "validation") -> dict[str, pd.DataFrame]:
    """Every statistic of the paper from one results table, keyed by name."""
    pairs = paired_runs(df, protocol)
    triplets = triplet_comparisons(pairs)
    performance_wins = wins_by_group(triplets, "performance")
    convergence_wins = wins_by_group(triplets, "convergence")
    return {
        "pairs": pairs,
        "triplets": triplets,
        "table2": stream_max_gains(df),
        "table3": performance_wins,
        "table4": convergence_wins,
        "table5": convergence_vs_performance(triplets),
        "domains_performance": domain_tables(pairs, "performance"),
        "domains_convergence": domain_tables(pairs, "convergence"),
        "table10": wins_per_architecture(triplets, "performance"),
        "per_architecture_performance": per_architecture_tables(pairs, "performance"),
        "per_architecture_convergence": per_architecture_tables(pairs, "convergence"),
        "figure8": gain_by_multiplier(df),
    }
