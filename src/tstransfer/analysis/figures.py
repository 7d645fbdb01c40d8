"""Figures: Figure 8 (gain against multiplier), heatmaps of Tables 6-9 and the summary
page's heatmap of every source and target variant.

Matplotlib with the Agg backend (no display on a cluster node). Every figure is saved
as PNG and SVG, each atomically.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402

from tstransfer.analysis import competence, stats  # noqa: E402
from tstransfer.analysis.study import Study, dataset_label  # noqa: E402
from tstransfer.analysis.tables import ARCH_LABELS, format_percent  # noqa: E402
from tstransfer.fsutil import atomic_path  # noqa: E402
# Figure 8's gain axis turns symmetric-log, linear within +-5 %, where some bar passes 50 %.
SYMLOG_ABOVE_PERCENT = 50.0
SYMLOG_LINEAR_PERCENT = 5.0
# Heatmap colours run linearly over +-(this percentile of the table's |mean gains|) and
# saturate beyond, so one outlier (SPEECH targets reach 1800 %) does not wash out the rest.
CLIP_PERCENTILE = 90.0


def colour_limit(values, percentile: float = CLIP_PERCENTILE) -> float:
    """The heatmap's symmetric colour limit: ``percentile`` of the finite |values| (1 if none or 0)."""
    finite = np.abs(np.asarray(values, dtype=float))
    finite = finite[np.isfinite(finite)]
    limit = float(np.percentile(finite, percentile)) if finite.size else 0.0
    return limit if limit > 0 else 1.0


def _save(figure: plt.Figure, stem: Path) -> list[Path]:
    paths = []
    for suffix in (".png", ".svg"):
        path = stem.with_suffix(suffix)
        with atomic_path(path) as tmp:
            # The temporary name has no extension, so the format is given explicitly.
            figure.savefig(tmp, format=suffix[1:], dpi=150, bbox_inches="tight")
        paths.append(path)
    plt.close(figure)
    return paths


def _save_empty(message: str, stem: Path) -> list[Path]:
    """A figure that only says why it is empty (a rule's fixed outputs still exist)."""
    figure, axis = plt.subplots(figsize=(6, 1.5))
    axis.axis("off")
    axis.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    return _save(figure, stem)


def plot_figure8(figure8: pd.DataFrame, stem: str | os.PathLike) -> list[Path]:
    """Gain against learning-rate multiplier as the paper draws it: bars per architecture and multiplier.

    Two panels: performance gain (the paper's Figure 8) and convergence-rate gain. In
    each, one group of bars per architecture, one bar per multiplier (the paper's
    headline: the mean per-run gain), with the median of the same gains as a black
    diamond on the bar and a dagger above bars whose mean is driven by a single run
    (stats.robust_summary). Where some bar exceeds 50 % the gain axis is symmetric-log,
    linear within +-5 %, so one runaway mean does not flatten the others.
    Writes ``<stem>.png`` and ``<stem>.svg``.
    """
    stem = Path(stem)
    figure, axes = plt.subplots(2, 1, figsize=(12, 8.5))
    omegas = sorted(set(figure8["omega"]))  # the run's grid; none: empty panels
    archs = [a for a in stats.ARCHITECTURES if a in set(figure8["arch"])] or list(stats.ARCHITECTURES)
    width = 0.8 / max(len(omegas), 1)
    colours = plt.get_cmap("viridis")(np.linspace(0.05, 0.95, max(len(omegas), 1)))
    for axis, which, label in (
        (axes[0], "performance", "Performance gain (%)"),
        (axes[1], "convergence", "Convergence-rate gain (%)"),
    ):
        extreme = 0.0
        for k, omega in enumerate(omegas):
            rows = figure8[figure8["omega"] == omega].set_index("arch")
            x = np.arange(len(archs)) + (k - (len(omegas) - 1) / 2) * width
            means = np.array([rows[f"gain_{which}"].get(a, np.nan) for a in archs], dtype=float)
            medians = np.array([rows[f"median_{which}"].get(a, np.nan) for a in archs], dtype=float)
            flagged = np.array([bool(rows[f"single_run_driven_{which}"].get(a, False)) for a in archs])
            axis.bar(x, np.nan_to_num(means), width, color=colours[k], label=f"ω = {omega:g}")
            axis.scatter(x, medians, marker="D", s=14, color="black", zorder=3,
                         label="median" if k == 0 else None)
            for xi, mean in zip(x[flagged], means[flagged]):
                axis.annotate("†", (xi, mean), ha="center", va="bottom" if mean >= 0 else "top",
                              fontsize=9, color="#b7791f")
            finite = np.abs(np.concatenate([means, medians]))
            finite = finite[np.isfinite(finite)]
            extreme = max(extreme, float(finite.max()) if finite.size else 0.0)
        if extreme > SYMLOG_ABOVE_PERCENT:
            axis.set_yscale("symlog", linthresh=SYMLOG_LINEAR_PERCENT)
            label += ", symmetric log scale"
        axis.axhline(0.0, color="black", linewidth=0.8)
        axis.set_xticks(range(len(archs)), [ARCH_LABELS[a] for a in archs])
        axis.set_ylabel(label)
        axis.set_title(label.split(" (")[0] + " of TL over referent models, per architecture and multiplier")
        axis.grid(axis="y", alpha=0.4)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        axes[0].legend(handles, labels, ncol=min(len(labels), 6), fontsize=8, loc="best")
    figure.suptitle(
        "Mean gain over all (source, target variant, run) at a fixed multiplier; "
        "diamond: median; †: mean driven by a single run"
    )
    figure.tight_layout()
    return _save(figure, stem)


def _heatmap_grid(cells: pd.DataFrame, sources: list[str], columns: list[tuple[str, str]]):
    """Mean, median, significance and single-run flag per (source, (target, variant)) cell."""
    values = np.full((len(sources), len(columns)), np.nan)
    medians = np.full_like(values, np.nan)
    significant = np.zeros_like(values, dtype=bool)
    flagged = np.zeros_like(values, dtype=bool)
    for cell in cells.itertuples(index=False):
        i, j = sources.index(cell.source), columns.index((cell.target, cell.variant))
        values[i, j] = cell.value
        medians[i, j] = cell.median
        significant[i, j] = bool(cell.significant)
        flagged[i, j] = bool(cell.single_run_driven)
    return values, medians, significant, flagged


def plot_domain_heatmap(
    cells: pd.DataFrame, which: str, group: str, study: Study, stem: str | os.PathLike, *,
    short: frozenset[tuple[str, str]] = frozenset(), short_note: str = "",
) -> list[Path]:
    """Heatmap of one of Tables 6-9: the study's sources x its target variants of ``group``.

    Diverging colormap centred at 0 (green: TL better, red: worse), linear over
    +-the 90th percentile of the table's |mean gains| (:func:`colour_limit`) and saturated
    beyond, as the colour bar says. The printed numbers are the table's mean, with the
    median below it and a dagger where the mean is driven by a single run.
    Significant cells (corrected p <= 0.05) are outlined and starred; target variants in
    ``short`` (referents short of the published figure, :mod:`.competence`) carry its mark
    on their label and ``short_note`` under the legend. A study without sources or without
    targets of ``group`` gets a figure that says so.
    """
    stem = Path(stem)
    targets = study.table_targets(group)
    columns = [(t, v) for t in targets for v in study.variants]
    sources = list(study.sources)
    if not columns or not sources:
        return _save_empty(f"No {'seismology' if group == 'seismology' else 'other-domain'} targets "
                           f"with fine-tuned models in this study: no {which} heatmap.", stem)
    grid = _heatmap_grid(cells[cells["target"].isin(targets)], sources, columns)
    figure = _draw_heatmap(grid, sources, columns, which,
                           "* significant (BKY-corrected p <= 0.05); † mean driven by a single run",
                           short=short, short_note=short_note)
    return _save(figure, stem)


def _draw_heatmap(grid, sources: list[str], columns: list[tuple[str, str]], which: str, legend: str, *,
                  short: frozenset[tuple[str, str]] = frozenset(), short_note: str = "") -> plt.Figure:
    """The heatmap of :func:`_heatmap_grid`'s arrays: colours symmetric around 0 (green:
    TL better), clipped at :func:`colour_limit`; significant cells outlined and starred."""
    values, medians, significant, flagged = grid
    limit = colour_limit(values)
    figure, axis = plt.subplots(figsize=(1.5 * len(columns) + 2, 0.8 * len(sources) + 1.5))
    # Symmetric limits keep 0 at the colormap's centre; beyond +-limit the colour saturates.
    norm = Normalize(vmin=-limit, vmax=limit, clip=True)
    image = axis.imshow(values, cmap="RdYlGn", norm=norm, aspect="auto")
    for i in range(len(sources)):
        for j in range(len(columns)):
            if not np.isfinite(values[i, j]):
                axis.text(j, i, "-", ha="center", va="center", color="grey")
                continue
            text = f"{format_percent(values[i, j])}%" + ("*" if significant[i, j] else "")
            if np.isfinite(medians[i, j]):
                text += f"\nmed {format_percent(medians[i, j])}%"
            text += " †" if flagged[i, j] else ""
            axis.text(j, i, text, ha="center", va="center", fontsize=7.5,
                      fontweight="bold" if significant[i, j] else "normal")
            if significant[i, j]:
                axis.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=1.5))
    marked = [(t, v) in short for t, v in columns]
    labels = [f"{dataset_label(t)} {v}" + (f" {competence.SHORT_MARK}" if m else "") for (t, v), m in zip(columns, marked)]
    axis.set_xticks(range(len(columns)), labels, rotation=30, ha="right")
    if short_note and any(marked):
        legend = f"{legend}; {short_note}"
    axis.set_yticks(range(len(sources)), [dataset_label(s) for s in sources])
    axis.set_xlabel("Target (variant)")
    axis.set_ylabel("Source")
    # Wrapped to the axes' width, the figure's less the colour bar and the row labels
    # (about 11 characters per inch of the figure at 9 pt): wider ran off the figure.
    title = f"{which.capitalize()} gain (%): mean, median below; {legend}"
    axis.set_title("\n".join(textwrap.wrap(title, int(11 * figure.get_figwidth()))), fontsize=9)
    colorbar = figure.colorbar(image, ax=axis, extend="both")
    # two lines: in one, the label of a figure of a few rows was taller than the figure
    colorbar.set_label(f"{which} gain (%), colour clipped at ±{format_percent(limit)}%\n"
                       f"(the {CLIP_PERCENTILE:g}th percentile of |mean gain|)", fontsize=8)
    figure.tight_layout()
    return figure


def plot_study_heatmap(cells: pd.DataFrame, study: Study, stem: str | os.PathLike, *,
                       short: frozenset[tuple[str, str]] = frozenset(), short_note: str = "") -> list[Path]:
    """The summary page's heatmap: the mean performance gain (%) of every source (rows)
    on every target variant of the study (columns), all domain groups in one figure,
    drawn as :func:`plot_domain_heatmap` draws one table (``cells``: Tables 6+7's,
    stats.domain_tables). A study without fine-tuned cells gets a figure that says so."""
    stem = Path(stem)
    columns = [(t, v) for t in study.targets for v in study.variants]
    sources = list(study.sources)
    if not columns or not sources:
        return _save_empty("No fine-tuned models in this study: no gain heatmap.", stem)
    figure = _draw_heatmap(_heatmap_grid(cells, sources, columns), sources, columns, "performance",
                           "* significant (Wilcoxon, BKY-corrected over Tables 6+7, p <= 0.05); "
                           "† mean driven by a single run", short=short, short_note=short_note)
    return _save(figure, stem)
