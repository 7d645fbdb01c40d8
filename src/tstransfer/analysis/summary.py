"""The report's summary page: what a reader needs before the tables.

:func:`build_summary` gathers, from the results table and the analysis, the sign tests
of Tables 3, 4 and 10, the number of significant (and single-run-driven) cells per table,
the protocol and the switches in force, the run's size (training jobs expected and
done, diverged models, missing pairs and cells) and, where the authors' results were
imported, how our tables compare with theirs; and, where the study validated its
source-selection estimators (rules/selection.smk), their summary. :func:`summary_page`
renders it as one HTML page, opening on the study's answer at a glance (a source x
target heatmap of the gains, given as PNG bytes, beside the estimator table); the
report's landing page (report/workflow.rst) inlines that page.
"""

from __future__ import annotations

import base64
import html as html_lib
from collections.abc import Mapping

import numpy as np
import pandas as pd

from tstransfer.analysis import html, stats
from tstransfer.analysis.competence import SHORT_MARK
from tstransfer.analysis.study import dataset_label
from tstransfer.analysis.tables import ARCH_LABELS, DOMAIN_TABLES, SINGLE_RUN_MARK, WINS_TABLES, domain_table_name
from tstransfer.plan import TRAINING_KINDS as KINDS
from tstransfer.protocol import SWITCHES

TITLE = "Transfer learning for time series: summary of this run"


def _count_table(cells: pd.DataFrame) -> dict[str, int]:
    tested = cells["p"].notna()
    return {
        "cells": int(len(cells)),
        "tested": int(tested.sum()),
        "significant_positive": int((cells["significant"] & (cells["value"] > 0)).sum()),
        "significant_negative": int((cells["significant"] & (cells["value"] < 0)).sum()),
        "single_run_driven": int(cells["single_run_driven"].sum()),
        "median_sign_differs": int((np.sign(cells["median"]) != np.sign(cells["value"]))[tested].sum()),
    }


def build_summary(
    results_df: pd.DataFrame,
    protocol: str,
    *,
    label: str | None = None,
    switches: Mapping[str, bool] | None = None,
    expected_jobs: Mapping[str, int] | None = None,
    comparison: pd.DataFrame | None = None,
    selection: Mapping[str, object] | None = None,
    analysis: Mapping[str, object] | None = None,
    referent_check: pd.DataFrame | None = None,
    referent_note: str = "",
) -> dict[str, object]:
    """Every number of the summary page, as plain data (also written as JSON).

    ``protocol`` is the selection protocol the analysis ran under (``validation`` or
    ``paper``); ``label`` names the procedure in force, ``switches`` its switches,
    ``expected_jobs`` the training jobs the config asks for per kind, ``comparison``
    the output of :func:`tables.compare_with_published` (None: nothing imported),
    ``selection`` the estimators' validation (``{"summary": rows, "best": row or None}``,
    rows as :func:`tstransfer.selection.validation.summarise` writes them; None: not
    run), ``analysis`` :func:`stats.analyse` of ``results_df`` when the caller has it,
    ``referent_check`` :func:`tstransfer.analysis.competence.referent_check` with the
    ``referent_note`` explaining its mark (None: no published figures configured).
    """
    if analysis is None:
        analysis = stats.analyse(results_df, protocol)
    # Plain Python values; write_json takes numpy's too.
    sign_tests = {which: analysis[f"table{number}"].to_dict("records") for which, number in WINS_TABLES.items()}
    table10 = analysis["table10"]
    per_arch = {}
    for row in table10[table10["group"] == "total"].itertuples():  # one row per architecture
        per_arch[row.arch] = {**stats.sign_test(int(row.wins), int(row.losses)), "cases": int(row.n)}
    return {
        "protocol": protocol,
        "label": label or protocol,
        # every switch: those the params leave out (protocol.recorded) are off
        "switches": {**dict.fromkeys(SWITCHES, False), **dict(switches or {})} if switches else {},
        "sign_tests": sign_tests,
        "wins_per_architecture": per_arch,
        "significant_cells": _significant_cells(analysis),
        "size": _run_size(results_df, analysis, expected_jobs),
        "robust_rule": {"shift": stats.SINGLE_RUN_SHIFT},
        "published": _published_summary(comparison) if comparison is not None else None,
        "selection": dict(selection) if selection is not None else None,
        "referent_check": (None if referent_check is None else
                           {"rows": referent_check.to_dict("records"), "note": referent_note}),
    }


def _significant_cells(analysis: Mapping[str, object]) -> dict[str, dict[str, object]]:
    """Per gain table its cells' counts (:func:`_count_table`); per wins table its rows'."""
    study = analysis["study"]
    significant_cells = {}
    for (which, group), number in DOMAIN_TABLES.items():
        cells = analysis[f"domains_{which}"]
        cells = cells[cells["target"].isin(study.table_targets(group))]
        significant_cells[f"Table {number}"] = {"name": domain_table_name(which, group), **_count_table(cells)}
    for which in ("performance", "convergence"):
        significant_cells[f"Per-architecture {which}"] = {
            "name": f"per_architecture_{which}", **_count_table(analysis[f"per_architecture_{which}"])
        }
    for which, number in WINS_TABLES.items():
        wins = analysis[f"table{number}"]
        significant_cells[f"Table {number}"] = {
            "name": f"table{number}_wins_{which}",
            "rows": int(len(wins)),
            "significant_rows": int(wins["significant"].sum()),
        }
    return significant_cells


def _run_size(
    results_df: pd.DataFrame, analysis: Mapping[str, object], expected_jobs: Mapping[str, int] | None
) -> dict[str, object]:
    """Training jobs expected, done and diverged per kind; pairs, triplets and cells missing."""
    kinds = results_df.groupby("kind")["status"] if len(results_df) else None
    jobs = {}
    for kind in KINDS:
        statuses = kinds.get_group(kind) if kinds is not None and kind in kinds.groups else pd.Series(dtype=object)
        jobs[kind] = {
            "expected": int(expected_jobs[kind]) if expected_jobs and kind in expected_jobs else None,
            "done": int(len(statuses)),
            "diverged": int((statuses != "ok").sum()),
        }
    pairs, triplets = analysis["pairs"], analysis["triplets"]
    domain_cells = analysis["domains_performance"]
    return {
        "jobs": jobs,
        "pairs": int(len(pairs)),
        "pairs_missing": int((~pairs["usable"]).sum()) if len(pairs) else 0,
        "pairs_by_status": {k: int(v) for k, v in pairs["pair_status"].value_counts().items()} if len(pairs) else {},
        "triplets": int(len(triplets)),
        "triplets_missing": int((triplets["outcome_performance"] == "missing").sum()) if len(triplets) else 0,
        "domain_cells": int(len(domain_cells)),
        "domain_cells_missing": int(domain_cells["value"].isna().sum()),
    }


def _published_summary(comparison: pd.DataFrame) -> list[dict[str, object]]:
    """Per compared table: cells, sign and significance agreement, differences."""
    rows = []
    for table, group in comparison.groupby("table", sort=False):
        cells = group.dropna(subset=["ours"])
        is_gain = not str(table).startswith("wins")
        rows.append(
            {
                "table": str(table),
                "cells": int(len(group)),
                "compared": int(len(cells)),
                "same_sign": int(cells["same_sign"].sum()),
                "same_significance": int(cells["same_significance"].sum()) if is_gain else None,
                "ours_significant": int(cells["ours_significant"].sum()) if is_gain else None,
                "published_significant": int(cells["published_significant"].sum()) if is_gain else None,
                "median_abs_difference": float(cells["difference"].abs().median()) if len(cells) else float("nan"),
                "ours_total": float(cells["ours"].sum()) if not is_gain else None,
                "published_total": float(cells["published"].sum()) if not is_gain else None,
            }
        )
    return rows


# ---------------------------------------------------------------------- rendering


def _table(header: list[str], rows: list[list[object]], first_is_header: bool = True) -> str:
    head = "".join(f"<th>{html_lib.escape(str(h))}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            text = value if isinstance(value, _Raw) else html_lib.escape(html.format_value(value))
            tag = "th" if i == 0 and first_is_header else "td"
            cells.append(f"<{tag}>{text}</{tag}>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>" + "".join(body) + "</tbody></table>\n"


class _Raw(str):
    """Cell text that is already HTML."""


def _verdict(significant: bool) -> _Raw:
    return _Raw('<span class="good">yes</span>' if significant else "no")


def _p(value: float) -> str:
    return f"{value:.3g}" if value == value else ""


def summary_fragment(summary: Mapping[str, object], heatmap_png: bytes | None = None) -> str:
    """The summary's HTML body; summary_page puts it in ``<div class="tstl" id="tstl-summary">``.
    ``heatmap_png``: the gain heatmap, embedded as a data URI (the page is inlined)."""
    parts = [f"<h1>{html_lib.escape(TITLE)}</h1>"]
    parts.append(
        f"<p>Protocol in force: <b>{html_lib.escape(str(summary['label']))}</b> "
        f"(grid search selects by the {'validation' if summary['protocol'] == 'validation' else 'test'} curve). "
        "Headline numbers are the paper's (means of per-run gains, its tests), so that they compare "
        "with the published tables; medians and single-run flags stand beside them in every gain table.</p>"
    )
    parts += _answer_section(summary, heatmap_png)
    for section in (_referents_section, _sign_tests_section, _architectures_section, _cells_section, _switches_section,
                    _size_section, _published_section):
        parts += section(summary)
    return "\n".join(parts)


def _answer_section(summary: Mapping[str, object], heatmap_png: bytes | None) -> list[str]:
    """The study's answer at a glance: the gain heatmap beside the estimators' validation."""
    parts = ['<h2>The study at a glance: gains, and which estimator predicts them</h2>',
             '<div class="glance" style="display:flex;flex-wrap:wrap;gap:1.5rem;align-items:flex-start">']
    if heatmap_png:
        data = base64.b64encode(heatmap_png).decode("ascii")
        parts.append('<figure style="flex:1 1 28rem;margin:0"><img id="tstl-gain-heatmap" alt="Mean performance gain '
                     f'per source and target variant" style="max-width:100%;max-height:34rem" src="data:image/png;base64,{data}">'
                     "<figcaption>Mean performance gain (%) of fine-tuning over the referents per source (rows) "
                     "and target variant (columns), all architectures and runs pooled; * and outline: "
                     "significant (Wilcoxon, BKY-corrected).</figcaption></figure>")
    parts.append('<div style="flex:1 1 24rem">' + "\n".join(_selection_section(summary.get("selection"))) + "</div>")
    return parts + ["</div>"]


def _number(value: object) -> str:
    return html.format_value(value) or "n/a"


def _selection_section(selection: Mapping[str, object] | None) -> list[str]:
    if selection is None:
        return ["<p>Source selection was not validated on this study (config <code>selection.estimators</code> "
                "names none).</p>"]
    rows = [[row["estimator"], row["n_targets"], row["spearman"], row["top1"], row["regret"]]
            for row in selection["summary"]]
    best = selection.get("best")
    if best is None:
        verdict = ("<p>No target had two or more scored sources with a measured gain: "
                   "no estimator could be validated.</p>")
    else:
        targets = int(best["n_targets"])
        verdict = (f"<p>Best estimator on this study: <b>{html_lib.escape(str(best['estimator']))}</b> "
                   f"(lowest mean regret; on its {targets} target{'s' if targets != 1 else ''}: regret "
                   f"{_number(best['regret'])} points, top-1 hit rate {_number(best['top1'])}, mean Spearman "
                   f"{_number(best['spearman'])}; a random pick on the same targets: regret "
                   f"{_number(best['regret_random'])}, top-1 {_number(best['top1_random'])}).</p>")
    return [
        "<h3>Source-selection estimators against the measured gains</h3>",
        verdict,
        _table(["Estimator", "targets", "mean Spearman", "top-1 hit rate", "mean regret (points)"], rows),
        '<p class="notes">Per (target, variant, architecture): the rank correlation of the estimator\'s score '
        "with the mean gain over the sources, whether its top-scored source has the best gain, and the best "
        "gain minus the picked source's; means over targets. <i>random</i>: a random pick's exact "
        "expectations on the same sources (Spearman 0).</p>",
    ]


def _referents_section(summary: Mapping[str, object]) -> list[str]:
    """The referents beside the published accuracy of their family (config referent_check)."""
    check = summary.get("referent_check")
    if not check:
        return []
    rows, short = [], 0
    for row in check["rows"]:
        short += not row["competent"]
        rows.append([ARCH_LABELS.get(row["arch"], row["arch"]), dataset_label(row["target"]), row["variant"],
                     row["n_runs"], row["measure"], row["ours"], row["published"], f"{row['gap_points']:.1f}",
                     _verdict_text(row["competent"])])
    targets = {(row["target"], row["variant"]) for row in check["rows"] if not row["competent"]}
    return [
        "<h2>Are the referents competent?</h2>",
        f"<p>{short} of {len(rows)} (architecture, target) referent sets fall short of the published "
        f"accuracy by more than the margin; {len(targets)} target variant{'s' if len(targets) != 1 else ''} "
        f"carr{'y' if len(targets) != 1 else 'ies'} the mark in the gain tables and heatmaps.</p>",
        _table(["Architecture", "Target", "variant", "runs", "ours: measure", "ours", "published",
                "gap (points)", "within margin"], rows),
        f'<p class="notes">{html_lib.escape(check["note"])}</p>',
    ]


def _verdict_text(competent: bool) -> str:
    return "yes" if competent else f"no {SHORT_MARK}"


def _sign_tests_section(summary: Mapping[str, object]) -> list[str]:
    rows = []
    perf = {row["group"]: row for row in summary["sign_tests"]["performance"]}
    conv = {row["group"]: row for row in summary["sign_tests"]["convergence"]}
    for group, row in perf.items():
        c = conv[group]
        rows.append([
            row["label"],
            f"{row['wins']} / {row['losses']}", row["critical_value"], _p(row["p_binomial"]), _verdict(row["significant"]),
            f"{c['wins']} / {c['losses']}", c["critical_value"], _p(c["p_binomial"]), _verdict(c["significant"]),
        ])
    return [
        "<h2>Does transfer help? Wins and losses with the sign test (Tables 3 and 4)</h2>",
        _table(["Domain group", "Performance: TL wins / losses", "critical wins", "sign-test p", "significant",
                "Convergence: TL wins / losses", "critical wins", "sign-test p", "significant"], rows),
        "<p class=\"notes\">A win: the mean over the runs of the TL models beats the referents' of the same "
        "(architecture, source, target variant). Significant where the wins reach the critical value "
        "(N + 1.96 √N) / 2 of the paper's two-tailed sign test; p is the exact binomial test.</p>",
    ]


def _architectures_section(summary: Mapping[str, object]) -> list[str]:
    # Architectures the run did not train have no cases: they stay in Table 10's CSV (the
    # paper's shape) but would only be empty rows here.
    arch_rows = [[ARCH_LABELS.get(arch, arch), f"{v['wins']} / {v['losses']}",
                  f"{100 * v['wins'] / v['cases']:.0f}%" if v["cases"] else "n/a",
                  v["critical_value"], _p(v["p_binomial"]), _verdict(v["significant"])]
                 for arch, v in summary["wins_per_architecture"].items() if v["cases"]]
    return [
        "<h2>Wins per architecture (Table 10, all domain groups, performance)</h2>",
        _table(["Architecture", "TL wins / losses", "share of cases", "critical wins", "sign-test p",
                "significant"], arch_rows),
    ]


def _cells_section(summary: Mapping[str, object]) -> list[str]:
    rows = []
    for name, counts in summary["significant_cells"].items():
        if "cells" in counts:
            rows.append([name, counts["cells"], counts["tested"], counts["significant_positive"],
                         counts["significant_negative"], counts["single_run_driven"], counts["median_sign_differs"]])
        else:
            rows.append([name, counts["rows"], counts["rows"], counts["significant_rows"], "", "", ""])
    shift = summary["robust_rule"]["shift"]
    return [
        "<h2>Significant cells per table</h2>",
        _table(["Table", "cells", "tested", "significant, TL better", "significant, TL worse",
                f"mean driven by a single run ({SINGLE_RUN_MARK})", "median's sign differs from mean's"], rows),
        "<p class=\"notes\">Tables 6-9: Wilcoxon signed-rank, Benjamini-Krieger-Yekutieli corrected over the "
        "table pair, corrected p ≤ 0.05. Per-architecture tables: uncorrected p &lt; 0.05. Tables 3 and 4: rows "
        f"whose sign test is significant. {SINGLE_RUN_MARK}: leaving out the run furthest from the mean flips "
        f"the mean's sign or moves it by more than {shift:.0%} of its size (or the mean is of one run).</p>",
    ]


def _switches_section(summary: Mapping[str, object]) -> list[str]:
    switch_rows = [[name, "on" if value else "off"] for name, value in summary["switches"].items()]
    return [
        "<h2>Protocol and switches in force</h2>",
        _table(["Switch", "value"], switch_rows) if switch_rows else "<p>No switches recorded.</p>",
    ]


def _size_section(summary: Mapping[str, object]) -> list[str]:
    size = summary["size"]
    job_rows = [[kind, v["expected"] if v["expected"] is not None else "", v["done"], v["diverged"]]
                for kind, v in size["jobs"].items()]
    total = [sum(v[key] or 0 for v in size["jobs"].values()) for key in ("expected", "done", "diverged")]
    if all(v["expected"] is None for v in size["jobs"].values()):
        total[0] = ""  # not known: no config given
    job_rows.append(["all training jobs", *total])
    return [
        "<h2>Size of this run</h2>",
        _table(["Training jobs", "in the config", "with a result", "diverged"], job_rows),
        f"<p>Fine-tuning pairs (selected model beside its referent): {size['pairs']}, of which missing "
        f"(a diverged referent or grid, or no referent): {size['pairs_missing']}. "
        f"Triplets without an outcome: {size['triplets_missing']} of {size['triplets']}. "
        f"Cells of Tables 6/7 without a value: {size['domain_cells_missing']} of {size['domain_cells']}.</p>",
    ]


def _published_section(summary: Mapping[str, object]) -> list[str]:
    published = summary.get("published")
    parts = ["<h2>Beside the published results</h2>"]
    if not published:
        return parts + ["<p>No published results were imported (config <code>published_results</code> is empty).</p>"]
    rows = []
    for row in published:
        if row["same_significance"] is not None:
            rows.append([f"Table {row['table']}", row["compared"], f"{row['same_sign']} of {row['compared']}",
                         f"{row['same_significance']} of {row['compared']}",
                         f"{row['ours_significant']} / {row['published_significant']}",
                         f"{row['median_abs_difference']:.3g} points"])
        else:
            rows.append([row["table"], row["compared"], f"{row['same_sign']} of {row['compared']}", "",
                         f"ours {row['ours_total']:.0f}, published {row['published_total']:.0f} (sum of counts)",
                         f"{row['median_abs_difference']:.3g}"])
    return parts + [
        _table(["Compared table", "cells", "same sign", "same significance",
                "significant cells: ours / published", "median |difference|"], rows),
        "<p class=\"notes\">Cell by cell in the category \"Comparison with the paper\".</p>",
    ]


# Inlined into the Snakemake report's landing page, the summary sits in a narrow text
# column of a container that centres its content vertically (and so cuts off the top of
# anything taller than the window): these rules, which match only a page holding the
# summary, widen the column and start the page at the top.
REPORT_LAYOUT = """
.prose:has(#tstl-summary) { max-width: min(70rem, 92vw); }
div.h-screen:has(#tstl-summary) { align-items: flex-start; justify-content: flex-start; }
"""


def summary_page(summary: Mapping[str, object], heatmap_png: bytes | None = None) -> str:
    """The summary as a complete HTML document (style scoped under ``.tstl``)."""
    return html.page(TITLE, summary_fragment(summary, heatmap_png), extra_style=REPORT_LAYOUT,
                     div_id="tstl-summary")
