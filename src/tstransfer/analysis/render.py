"""Render tables as Markdown and LaTeX, and write every analysis output.

The renderers are small and self-contained (no ``tabulate``), so the output format does
not depend on an optional package. Significant cells are bold in both formats, with an
arrow in Markdown (up: TL better, down: TL worse) and a green/red cell colour in LaTeX
(``\\usepackage[table]{xcolor}``), like the authors' reports.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from tstransfer.analysis import competence, figures, html, stats
from tstransfer.analysis.tables import (
    DOMAIN_TABLES, MARK_NEGATIVE, MARK_POSITIVE, SINGLE_RUN_MARK, WINS_TABLES, Table, build_tables,
)
from tstransfer.fsutil import atomic_path, write_json, write_text

_MARKDOWN_ESCAPES = str.maketrans({"|": r"\|"})
_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def _mark(table: Table, row: object, column: object) -> str:
    if table.marks is None:
        return ""
    return table.marks.loc[row, column]


def _extra(table: Table, row: object, column: object) -> str:
    if table.extras is None:
        return ""
    return str(table.extras.loc[row, column])


def render_markdown(table: Table) -> str:
    """GitHub-flavoured Markdown: title, one pipe table, notes."""
    header = [str(table.display.index.name or "")] + [str(c) for c in table.display.columns]
    lines = [f"### {table.title}", ""]
    lines.append("| " + " | ".join(h.translate(_MARKDOWN_ESCAPES) for h in header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * len(table.display.columns)) + "|")
    for row, values in table.display.iterrows():
        cells = [str(row).translate(_MARKDOWN_ESCAPES)]
        for column, value in values.items():
            text = str(value).translate(_MARKDOWN_ESCAPES)
            mark = _mark(table, row, column)
            if mark == MARK_POSITIVE:
                text = f"**{text}** ↑"
            elif mark == MARK_NEGATIVE:
                text = f"**{text}** ↓"
            extra = _extra(table, row, column).translate(_MARKDOWN_ESCAPES)
            cells.append(f"{text} ({extra})" if extra else text)
        lines.append("| " + " | ".join(cells) + " |")
    notes = list(table.notes)
    if table.marks is not None:
        notes.append("Bold with ↑ / ↓: significant, TL better / worse.")
    if notes:
        lines.append("")
        lines.extend(f"- {note}" for note in notes)
    return "\n".join(lines) + "\n"


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters in plain text."""
    return "".join(_LATEX_ESCAPES.get(char, char) for char in text)


def render_latex(table: Table) -> str:
    """A ``table`` float with a ``tabular``; needs ``\\usepackage[table]{xcolor}``."""
    n_columns = len(table.display.columns)
    header = [latex_escape(str(table.display.index.name or ""))]
    header += [r"\textbf{" + latex_escape(str(c)) + "}" for c in table.display.columns]
    lines = [
        "% Requires \\usepackage[table]{xcolor} for the cell colours of significant cells.",
        r"\begin{table}[htbp]",
        r"\centering",
        r"\caption{" + latex_escape(table.title) + "}",
        r"\begin{tabular}{l" + "r" * n_columns + "}",
        r"\hline",
        " & ".join(header) + r" \\",
        r"\hline",
    ]
    for row, values in table.display.iterrows():
        cells = [latex_escape(str(row))]
        for column, value in values.items():
            text = latex_escape(str(value))
            mark = _mark(table, row, column)
            if mark == MARK_POSITIVE:
                text = r"\cellcolor{green!25}\textbf{" + text + "}"
            elif mark == MARK_NEGATIVE:
                text = r"\cellcolor{red!25}\textbf{" + text + "}"
            extra = latex_escape(_extra(table, row, column)).replace(SINGLE_RUN_MARK, r"\dag{}")
            if extra:
                text += r" {\scriptsize (" + extra + ")}"
            cells.append(text)
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\hline", r"\end{tabular}"]
    if table.notes:
        lines.append(r"\par\smallskip\footnotesize " + " ".join(latex_escape(n) for n in table.notes))
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def write_table_files(table: Table, folder: str | os.PathLike) -> list[Path]:
    """``<name>.csv`` (long-form data), ``<name>.md``, ``<name>.tex`` and ``<name>.html`` in ``folder``."""
    folder = Path(folder)
    csv_path = folder / f"{table.name}.csv"
    with atomic_path(csv_path) as tmp:
        table.data.to_csv(tmp, index=False)
    return [
        csv_path,
        write_text(folder / f"{table.name}.md", render_markdown(table)),
        write_text(folder / f"{table.name}.tex", render_latex(table)),
        write_text(folder / f"{table.name}.html", html.table_page(table)),
    ]


def write_frame(frame: pd.DataFrame, csv_path: str | os.PathLike, title: str, intro: str = "") -> list[Path]:
    """A plain frame as ``<stem>.csv`` and a readable ``<stem>.html`` from the same data."""
    csv_path = Path(csv_path)
    with atomic_path(csv_path) as tmp:
        frame.to_csv(tmp, index=False)
    return [csv_path, write_text(csv_path.with_suffix(".html"), html.frame_page(title, frame, intro))]


def write_all_outputs(results_df: pd.DataFrame, out_dir: str | os.PathLike, protocol: str,
                      config: Mapping[str, Any] | None = None) -> list[Path]:
    """Compute every statistic and write all tables, figures and a summary under ``out_dir``.

    Stable names: ``tables/<table>.{csv,md,tex,html}`` (table2_stream_max, table3_wins_performance,
    table4_wins_convergence, table5_convergence_vs_performance,
    table6_performance_seismology, table7_performance_other,
    table8_convergence_seismology, table9_convergence_other,
    table10_wins_per_architecture, per_architecture_{performance,convergence},
    figure8_data, sign_tests), ``tables/grid_selection.{csv,html}``, ``tables/pairs.{csv,html}``,
    ``figures/figure8.{png,svg}``, ``figures/table{6,7,8,9}_heatmap.{png,svg}`` and
    ``summary.json``; with config ``referent_check`` (``config``, :mod:`.competence`) also
    ``tables/referent_check.{csv,html}``, and the gain tables and heatmaps mark the targets
    whose referents fall short. Returns the paths written.
    """
    out_dir = Path(out_dir)
    analysis = stats.analyse(results_df, protocol)
    check = add_referent_check(analysis, results_df, config)
    tables = build_tables(analysis)
    written: list[Path] = []
    for table in tables.values():
        written += write_table_files(table, out_dir / "tables")
    for name, frame, title in (
        ("grid_selection", stats.select_grid(results_df, protocol), "Grid search: the selected multiplier per run"),
        ("pairs", analysis["pairs"], "Selected fine-tuned models beside their referents, per run"),
        *([("referent_check", check, "Referents beside the published test accuracy of their family")]
          if check is not None else []),
    ):
        written += write_frame(frame, out_dir / "tables" / f"{name}.csv", title)
    figure_dir = out_dir / "figures"
    written += figures.plot_figure8(analysis["figure8"], figure_dir / "figure8")
    for (which, group), number in DOMAIN_TABLES.items():
        written += figures.plot_domain_heatmap(
            analysis[f"domains_{which}"], which, group, analysis["study"], figure_dir / f"table{number}_heatmap",
            short=analysis.get("referents_short", frozenset()), short_note=analysis.get("referents_note", ""),
        )
    written.append(_write_summary(results_df, analysis, protocol, out_dir / "summary.json"))
    return written


def add_referent_check(analysis: dict, results_df: pd.DataFrame,
                       config: Mapping[str, Any] | None) -> pd.DataFrame | None:
    """The referent check of config ``referent_check`` (None when it names no dataset); its
    short targets, short (architecture, target, variant)s and note go into ``analysis``
    (``referents_short``, ``referents_short_cells``, ``referents_note``,
    ``referents_note_cells``), where the gain
    tables and heatmaps read them."""
    published, margin, source = competence.settings(config)
    if not published:
        return None
    check = competence.referent_check(results_df, published, margin=margin)
    analysis["referents_short"] = competence.short_targets(check)
    analysis["referents_short_cells"] = competence.short_cells(check)
    analysis["referents_note"] = competence.note(margin, source)
    analysis["referents_note_cells"] = competence.note(margin, source, per_architecture=True)
    return check


def _write_summary(results_df: pd.DataFrame, analysis: dict[str, pd.DataFrame], protocol: str, path: Path) -> Path:
    pairs = analysis["pairs"]
    counts = results_df.groupby(["kind", "status"]).size()
    wins = {which: analysis[f"table{number}"] for which, number in WINS_TABLES.items()}
    summary = {
        "protocol": protocol,
        "models": {f"{kind}/{status}": int(n) for (kind, status), n in counts.items()},
        "pairs": int(len(pairs)),
        "pairs_usable": int(pairs["usable"].sum()),
        "pairs_by_status": {k: int(v) for k, v in pairs["pair_status"].value_counts().items()},
        "diverged_in_pairs": int(pairs["n_diverged"].sum()),
        "sign_tests": {
            which: {
                key: (value.item() if hasattr(value, "item") else value)
                for key, value in table[table["group"] == "total"].iloc[0].items()
                if key not in ("group", "label")
            }
            for which, table in wins.items()
        },
    }
    write_json(path, summary)
    return path
