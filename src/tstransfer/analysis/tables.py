"""The paper's tables as data: values for CSV, display strings and significance marks.

Each :class:`Table` carries a long-form ``data`` frame (what goes to CSV: values,
p, corrected p, significance, counts of missing/diverged runs), a ``display`` frame
of strings laid out like the paper's table, and a ``marks`` frame of the same shape
saying which cells are significant and in which direction. :mod:`render` turns them
into Markdown and LaTeX; :mod:`figures` draws from the same statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.stats

from tstransfer import registry
from tstransfer.analysis import competence, stats
from tstransfer.analysis.study import Study, dataset_label, dataset_order, table_group

ARCH_LABELS = {**registry.ARCHITECTURE_LABELS, "average": "Average"}  # Table 2's average row
MARK_POSITIVE = "positive"
MARK_NEGATIVE = "negative"
# Beside a cell's mean (the paper's headline): its median, and this mark where the mean
# is driven by a single run (stats.robust_summary).
SINGLE_RUN_MARK = "†"
ROBUST_NOTE = (
    f"Beside each mean: the median of the same per-run gains; {SINGLE_RUN_MARK} marks a mean "
    "driven by a single run: leaving out the run furthest from the mean flips its sign or "
    f"moves it by more than {stats.SINGLE_RUN_SHIFT:.0%} of its size (or the mean is of one run)."
)

# The paper's numbers of the wins tables (by which measure) and of the four domain
# tables (by measure and target group); file stems, titles, heatmap names and the
# comparison with the published tables all take them from here.
WINS_TABLES = {"performance": 3, "convergence": 4}
DOMAIN_TABLES = {
    ("performance", "seismology"): 6,
    ("performance", "other"): 7,
    ("convergence", "seismology"): 8,
    ("convergence", "other"): 9,
}


def domain_table_name(which: str, group: str) -> str:
    """File stem of a domain table: ``table6_performance_seismology`` ..."""
    return f"table{DOMAIN_TABLES[(which, group)]}_{which}_{group}"


def domain_table_title(which: str, group: str, targets: tuple[str, ...]) -> str:
    """Title of a domain table, naming its measure and its target columns (``targets``)."""
    measure = "performance" if which == "performance" else "convergence-rate"
    if group == "seismology" or not targets:
        targets = "seismology" if group == "seismology" else "other-domain"
    else:
        *others, last = [dataset_label(d) for d in targets]
        targets = f"{', '.join(others)} and {last}" if others else last  # SPEECH, EMG and S&P 500
    return f"Table {DOMAIN_TABLES[(which, group)]}: {measure} gain of TL over referent models, {targets} targets"


@dataclass
class Table:
    """One output table: CSV data, display strings and significance marks."""

    name: str
    title: str
    data: pd.DataFrame
    display: pd.DataFrame
    marks: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    # Secondary text per display cell (the median and the single-run mark), or None.
    extras: pd.DataFrame | None = None


def robust_text(median: float, single_run_driven: bool) -> str:
    """The text beside a mean: ``median 8.21%``, with the single-run mark where flagged."""
    text = f"median {_percent(median)}" if np.isfinite(median) else ""
    return f"{text} {SINGLE_RUN_MARK}".strip() if single_run_driven else text


def format_percent(value: float, significant: int = 3, max_decimals: int = 2) -> str:
    """A gain as the paper prints it: 3 significant digits, at most 2 decimals, no exponent.

    8.2134 -> "8.21", 870.6 -> "871", 1213.0 -> "1210", 0.0716 -> "0.07", 9.9996 -> "10".
    The authors' reports print 3 significant digits; the paper then drops trailing
    zeros and keeps at most two decimals.
    """
    if value is None or not np.isfinite(value):
        return ""
    if value == 0:
        return "0"
    rounded = float(f"{value:.{significant}g}")
    rounded = round(rounded, max_decimals)
    text = np.format_float_positional(rounded, trim="-")
    return "0" if text in ("-0", "0") else text


def _percent(value: float) -> str:
    text = format_percent(value)
    return f"{text}%" if text else "n/a"


def _variant_column(target: str, variant: str, short: frozenset = frozenset()) -> str:
    mark = f" {competence.SHORT_MARK}" if (target, variant) in short else ""
    return f"{dataset_label(target)} {variant}{mark}"


def domain_table(cells: pd.DataFrame, which: str, group: str, study: Study, *,
                 short: frozenset[tuple[str, str]] = frozenset(), short_note: str = "") -> Table:
    """Table 6, 7, 8 or 9 from :func:`stats.domain_tables` output: the study's sources as
    rows, its targets of ``group`` times its variants as columns. With ``short_note`` (a
    referent check is configured, :mod:`.competence`), the (target, variant)s in ``short``
    carry its mark in their column and the data a ``referent_short`` column."""
    targets = study.table_targets(group)
    name, title = domain_table_name(which, group), domain_table_title(which, group, targets)
    data = cells[cells["target"].isin(targets)].reset_index(drop=True)
    if short_note:
        data["referent_short"] = [(t, v) in short for t, v in zip(data["target"], data["variant"])]
    columns = [_variant_column(t, v, short) for t in targets for v in study.variants]
    rows = [dataset_label(s) for s in study.sources] if columns else []  # no targets: no cells
    display = pd.DataFrame("-", index=rows, columns=columns)
    marks = pd.DataFrame("", index=rows, columns=columns)
    extras = pd.DataFrame("", index=rows, columns=columns)
    for cell in data.itertuples(index=False):
        row, column = dataset_label(cell.source), _variant_column(cell.target, cell.variant, short)
        display.loc[row, column] = _percent(cell.value)
        extras.loc[row, column] = robust_text(cell.median, cell.single_run_driven)
        if cell.significant:
            marks.loc[row, column] = MARK_POSITIVE if cell.value > 0 else MARK_NEGATIVE
    display.index.name = "Source"
    # The pooled pair count comes from the data (the paper: 4 architectures x 7 runs = 28);
    # a demo or partial run pools fewer, and the note must say so.
    pairs = sorted(set(int(n) for n in data["n_pairs"])) if len(data) else []
    pooled = "/".join(map(str, pairs)) if pairs else "no"
    notes = [
        f"Cell: mean over {pooled} (architecture, run) pairs of the per-run gain in percent "
        "(positive = TL better).",
        "Marked cells: Wilcoxon signed-rank test, Benjamini-Krieger-Yekutieli corrected "
        "over the cells of the table pair, corrected p <= 0.05.",
    ]
    missing = int(data["n_missing"].sum()) if len(data) else 0
    diverged = int(data["n_diverged"].sum()) if len(data) else 0
    notes.append(f"Pairs missing: {missing}; diverged models: {diverged}.")
    notes.append(ROBUST_NOTE)
    if short_note and any(key in short for key in zip(data["target"], data["variant"])):
        notes.append(short_note)
    return Table(name, title, data, display, marks, notes, extras)


def wins_table(wins: pd.DataFrame, which: str) -> Table:
    """Table 3 (performance) or Table 4 (convergence)."""
    number = WINS_TABLES[which]
    measure = "performance" if which == "performance" else "convergence rate"
    display = pd.DataFrame(
        {
            "TL wins": [f"{w} ({_pct(p)})" for w, p in zip(wins["wins"], wins["win_pct"])],
            "TL losses": [f"{l} ({_pct(p)})" for l, p in zip(wins["losses"], wins["loss_pct"])],
            "Number of cases": wins["n"].astype(str).tolist(),
            "Sign test p": [f"{p:.3g}" if np.isfinite(p) else "" for p in wins["p_binomial"]],
        },
        index=wins["label"].tolist(),
    )
    marks = pd.DataFrame("", index=display.index, columns=display.columns)
    for label, significant in zip(wins["label"], wins["significant"]):
        if significant:
            marks.loc[label, "TL wins"] = MARK_POSITIVE
    total = wins[wins["group"] == "total"].iloc[0]
    notes = [
        f"Wins compare means over the runs per (architecture, source, target variant) triplet, by {measure}.",
        f"Sign test: {total['wins']} wins of N = {total['wins'] + total['losses']} "
        f"(critical value {total['critical_value']}); marked where the wins reach the "
        "critical value (N + 1.96 sqrt(N)) / 2; p is the exact two-sided binomial test.",
        f"Ties: {int(wins['ties'].iloc[-1])}; triplets missing: {int(wins['missing'].iloc[-1])}; "
        f"diverged models: {int(wins['n_diverged'].iloc[-1])}.",
    ]
    return Table(f"table{number}_wins_{which}", f"Table {number}: TL against referent models, wins and losses by {measure}", wins, display, marks, notes)


def _pct(value: float) -> str:
    return f"{value:.0f}%" if np.isfinite(value) else "n/a"


def convergence_performance_table(table5: pd.DataFrame) -> Table:
    """Table 5: convergence outcome against performance outcome."""
    rows = ["Convergence: TL models are worse", "Convergence: TL models are better"]
    columns = ["Performance: TL models are worse", "Performance: TL models are better"]
    display = pd.DataFrame("", index=rows, columns=columns)
    for cell in table5.itertuples(index=False):
        display.loc[f"Convergence: {cell.convergence}", f"Performance: {cell.performance}"] = (
            f"{cell.count} ({_pct(cell.pct)})"
        )
    notes = [f"Triplets with a tie or a missing outcome (left out): {table5.attrs.get('excluded', 0)}."]
    return Table("table5_convergence_vs_performance", "Table 5: change in convergence rate against change in performance", table5, display, None, notes)


def architecture_wins_table(table10: pd.DataFrame) -> Table:
    """Table 10: wins per architecture and domain group."""
    # The labels as the statistics wrote them: the other-domains row names the run's datasets.
    rows = list(dict.fromkeys(table10["label"]))
    columns = [ARCH_LABELS[a] for a in registry.architectures_shown(table10["arch"])]
    display = pd.DataFrame("", index=rows, columns=columns)
    for cell in table10.itertuples(index=False):
        display.loc[cell.label, ARCH_LABELS[cell.arch]] = f"{_pct(cell.win_pct)} ({cell.wins}/{cell.n})"
    return Table("table10_wins_per_architecture", "Table 10: how often each TL model outperformed its referent model", table10, display, None, [])


def per_architecture_table(cells: pd.DataFrame, which: str, study: Study, *,
                           short: frozenset[tuple[str, str, str]] = frozenset(), short_note: str = "") -> Table:
    """Supplementary tables: per (architecture, source) row and target-variant column, 7 runs a cell.
    With ``short_note`` (a referent check is configured), a cell whose (architecture,
    target, variant) is in ``short`` carries the mark, and the data a ``referent_short``
    column: here each architecture answers for its own referents."""
    if short_note:
        cells = cells.assign(referent_short=[(a, t, v) in short for a, t, v in
                                             zip(cells["arch"], cells["target"], cells["variant"])])
    columns = [_variant_column(t, v) for t in study.targets for v in study.variants]
    rows = [f"{ARCH_LABELS[a]} [{dataset_label(s)}]" for s in study.sources
            for a in registry.architectures_shown(cells["arch"])]
    display = pd.DataFrame("-", index=rows, columns=columns)
    marks = pd.DataFrame("", index=rows, columns=columns)
    extras = pd.DataFrame("", index=rows, columns=columns)
    for cell in cells.itertuples(index=False):
        row = f"{ARCH_LABELS[cell.arch]} [{dataset_label(cell.source)}]"
        column = _variant_column(cell.target, cell.variant)
        p = f" (p={cell.p:.4g})" if np.isfinite(cell.p) else ""
        short_mark = f" {competence.SHORT_MARK}" if (cell.arch, cell.target, cell.variant) in short else ""
        display.loc[row, column] = _percent(cell.value) + p + short_mark
        extras.loc[row, column] = robust_text(cell.median, cell.single_run_driven)
        if cell.significant:
            marks.loc[row, column] = MARK_POSITIVE if cell.value > 0 else MARK_NEGATIVE
    notes = ["Cell: mean of the per-run gains; marked where the uncorrected Wilcoxon p < 0.05.", ROBUST_NOTE]
    if short_note and cells["referent_short"].any():
        notes.append(short_note)
    return Table(f"per_architecture_{which}", f"Per-architecture {which} gain of TL over referent models", cells, display, marks, notes, extras)


def stream_max_table(table2: pd.DataFrame) -> Table:
    """Table 2: gain from the stream_max input per architecture and dataset."""
    datasets = dataset_order(table2["target"])
    archs = [a for a in (*stats.ARCHITECTURES, "average") if a in set(table2["arch"])]
    display = pd.DataFrame("", index=[ARCH_LABELS[a] for a in archs], columns=[dataset_label(d) for d in datasets])
    extras = pd.DataFrame("", index=display.index, columns=display.columns)
    for cell in table2.itertuples(index=False):
        row, column = ARCH_LABELS[cell.arch], dataset_label(cell.target)
        display.loc[row, column] = f"{cell.gain:.2f}%" if np.isfinite(cell.gain) else "n/a"
        extras.loc[row, column] = robust_text(cell.median, cell.single_run_driven)
    notes = [
        "Positive: lower MAE (regression) or higher weighted F1 (classification) with stream_max.",
        "Cell: mean over seeds of the per-seed gain; the Average row averages the architectures "
        "(its median: of their medians; marked when any of them is).",
        ROBUST_NOTE,
    ]
    return Table("table2_stream_max", "Table 2: performance gain when using stream_max", table2, display, None, notes, extras)


def figure8_table(figure8: pd.DataFrame) -> Table:
    """Figure 8's numbers: mean gain per architecture and fixed multiplier."""
    omegas = sorted(set(figure8["omega"]))
    display = pd.DataFrame("", index=[f"{ARCH_LABELS[a]} ({w})" for w in ("performance", "convergence")
                                   for a in registry.architectures_shown(figure8["arch"])], columns=[f"{o:g}" for o in omegas])
    extras = pd.DataFrame("", index=display.index, columns=display.columns)
    for cell in figure8.itertuples(index=False):
        for which in ("performance", "convergence"):
            row, column = f"{ARCH_LABELS[cell.arch]} ({which})", f"{cell.omega:g}"
            display.loc[row, column] = _percent(getattr(cell, f"gain_{which}"))
            extras.loc[row, column] = robust_text(
                getattr(cell, f"median_{which}"), getattr(cell, f"single_run_driven_{which}")
            )
    notes = [
        "Mean per-run gain over all (source, target variant, run) at a fixed multiplier (no grid search).",
        ROBUST_NOTE,
    ]
    return Table("figure8_data", "Figure 8 data: gain against learning-rate multiplier", figure8, display, None, notes, extras)


def sign_tests_table(table3: pd.DataFrame, table4: pd.DataFrame) -> Table:
    """The two overall sign tests (performance, convergence) in one small table."""
    rows = []
    for which, wins in (("performance", table3), ("convergence", table4)):
        total = wins[wins["group"] == "total"].iloc[0]
        rows.append(
            {
                "which": which,
                "wins": int(total["wins"]),
                "losses": int(total["losses"]),
                "n": int(total["wins"] + total["losses"]),
                "critical_value": int(total["critical_value"]),
                "significant": bool(total["significant"]),
                "p_binomial": float(total["p_binomial"]),
            }
        )
    data = pd.DataFrame(rows)
    display = data.set_index("which").astype(str)
    return Table("sign_tests", "Sign tests over all triplets", data, display, None, [])


def build_tables(analysis: dict[str, pd.DataFrame | Study]) -> dict[str, Table]:
    """Every output table from :func:`stats.analyse` output, keyed by file stem; they lay
    out the datasets and variants of the analysed table (``analysis["study"]``)."""
    study = analysis["study"]
    short = {"short": analysis.get("referents_short", frozenset()), "short_note": analysis.get("referents_note", "")}
    short_cells = {"short": analysis.get("referents_short_cells", frozenset()),
                   "short_note": analysis.get("referents_note_cells", "")}
    tables = [
        stream_max_table(analysis["table2"]),
        *(wins_table(analysis[f"table{number}"], which) for which, number in WINS_TABLES.items()),
        convergence_performance_table(analysis["table5"]),
        *(domain_table(analysis[f"domains_{which}"], which, group, study, **short) for which, group in DOMAIN_TABLES),
        architecture_wins_table(analysis["table10"]),
        *(per_architecture_table(analysis[f"per_architecture_{which}"], which, study, **short_cells)
          for which in ("performance", "convergence")),
        figure8_table(analysis["figure8"]),
        sign_tests_table(analysis["table3"], analysis["table4"]),
    ]
    return {table.name: table for table in tables}


PUBLISHED_PROTOCOL = "paper (the authors' code and published runs)"


def compare_with_published(
    ours_df: pd.DataFrame, published_df: pd.DataFrame, protocol: str = "validation",
    label: str | None = None,
) -> pd.DataFrame:
    """Our Tables 6-9 cells and win counts beside the published ones, cell by cell.

    ``ours_df`` is analysed under ``protocol``; ``published_df`` (from
    :func:`published.load_published`, test-set values only) under the authors'
    ``paper`` protocol. One row per domain-table cell (``table`` 6..9) and per win
    count (``wins_performance`` / ``wins_convergence`` by domain group,
    ``wins_per_architecture``): ours and published value, corrected p and
    significance, the difference and whether sign and significance agree.
    ``ours_protocol`` / ``published_protocol`` name each side's procedure (``label``:
    ours, from :func:`tstransfer.protocol.label`; default ``protocol``).
    """
    ours = stats.analyse(ours_df, protocol)
    theirs = stats.analyse(published_df, "paper")
    rows = []
    keys = ["source", "target", "variant"]
    for which in ("performance", "convergence"):
        mine = ours[f"domains_{which}"].set_index(keys)
        pub = theirs[f"domains_{which}"].set_index(keys)
        index = pub.index.union(mine.index, sort=False)
        mine, pub = mine.reindex(index), pub.reindex(index)
        for key in index:
            group = table_group(key[1])
            ours_value, pub_value = mine.loc[key, "value"], pub.loc[key, "value"]
            rows.append(
                {
                    "table": str(DOMAIN_TABLES[(which, group)]),
                    "row": key[0],
                    "column": f"{key[1]} {key[2]}",
                    "ours": ours_value,
                    "published": pub_value,
                    "difference": ours_value - pub_value,
                    "ours_p_corrected": mine.loc[key, "p_corrected"],
                    "published_p_corrected": pub.loc[key, "p_corrected"],
                    "ours_significant": bool(mine.loc[key, "significant"]) if pd.notna(mine.loc[key, "significant"]) else False,
                    "published_significant": bool(pub.loc[key, "significant"]) if pd.notna(pub.loc[key, "significant"]) else False,
                    "ours_n_pairs": mine.loc[key, "n_pairs"],
                    "ours_n_diverged": mine.loc[key, "n_diverged"],
                }
            )
    for which in ("performance", "convergence"):
        mine = ours[f"table{WINS_TABLES[which]}"].set_index("group")
        pub = theirs[f"table{WINS_TABLES[which]}"].set_index("group")
        for group in stats.GROUP_ROWS:
            for count in ("wins", "losses"):
                rows.append(_count_row(f"wins_{which}", group, count, mine.loc[group, count], pub.loc[group, count]))
    mine = ours["table10"].set_index(["group", "arch"])
    pub = theirs["table10"].set_index(["group", "arch"])
    for group in stats.GROUP_ROWS:
        for arch in registry.PAPER_ARCHITECTURES:
            rows.append(_count_row("wins_per_architecture", group, arch, mine.loc[(group, arch), "wins"], pub.loc[(group, arch), "wins"]))
    comparison = pd.DataFrame(rows)
    comparison["same_sign"] = np.sign(comparison["ours"]) == np.sign(comparison["published"])
    comparison["same_significance"] = comparison["ours_significant"] == comparison["published_significant"]
    comparison["ours_protocol"] = label or protocol
    comparison["published_protocol"] = PUBLISHED_PROTOCOL
    return comparison


def compare_referents(
    ours_df: pd.DataFrame, published_df: pd.DataFrame, label: str | None = None
) -> pd.DataFrame:
    """Our referent models' test metric beside the authors', per (arch, target, variant).

    For every (arch, target, variant) whose referents ran on our side: the number of
    usable runs, median and quartiles of each side's test metric (MAE or weighted F1;
    diverged runs left out and counted), and a two-sided Mann-Whitney U test of the two
    samples (exact for these small samples without ties; NaN with fewer than 2 runs on
    a side). ``ours_protocol`` / ``published_protocol`` name each side's procedure.
    """
    keys = ["arch", "target", "variant"]
    ours = ours_df[ours_df["kind"] == "referent"]
    theirs = published_df[published_df["kind"] == "referent"].set_index(keys).sort_index()
    rows = []
    for key, group in ours.groupby(keys, sort=True):
        mine = group.loc[group["status"] == "ok", "test_metric"].dropna().to_numpy(float)
        pub = (theirs.loc[[key], "test_metric"].dropna().to_numpy(float)
               if key in theirs.index else np.array([]))
        row = dict(zip(keys, key))
        row["metric"] = group["metric"].iloc[0]
        for side, values in (("ours", mine), ("published", pub)):
            quartiles = np.percentile(values, [25, 50, 75]) if len(values) else [np.nan] * 3
            row.update({f"{side}_n": len(values), f"{side}_q1": quartiles[0],
                        f"{side}_median": quartiles[1], f"{side}_q3": quartiles[2]})
        row["ours_n_diverged"] = int((group["status"] != "ok").sum())
        row["median_ratio"] = row["ours_median"] / row["published_median"] if len(pub) else np.nan
        if len(mine) >= 2 and len(pub) >= 2:
            test = scipy.stats.mannwhitneyu(mine, pub, alternative="two-sided")
            row["mannwhitney_u"], row["p"] = float(test.statistic), float(test.pvalue)
        else:
            row["mannwhitney_u"] = row["p"] = np.nan
        rows.append(row)
    comparison = pd.DataFrame(rows)
    comparison["ours_protocol"] = label or "validation"
    comparison["published_protocol"] = PUBLISHED_PROTOCOL
    return comparison


def _count_row(table: str, row: str, column: str, ours: float, published: float) -> dict[str, object]:
    return {
        "table": table,
        "row": row,
        "column": column,
        "ours": float(ours),
        "published": float(published),
        "difference": float(ours) - float(published),
        "ours_p_corrected": math.nan,
        "published_p_corrected": math.nan,
        "ours_significant": False,
        "published_significant": False,
        "ours_n_pairs": math.nan,
        "ours_n_diverged": math.nan,
    }
