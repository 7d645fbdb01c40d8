"""Figures: Figure 8 (gain against multiplier) and heatmaps of Tables 6-9.

Matplotlib with the Agg backend (no display on a cluster node). Every figure is saved
as PNG and SVG, each atomically.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import Normalize, SymLogNorm  # noqa: E402

from tstransfer.analysis import stats  # noqa: E402
from tstransfer.analysis.tables import ARCH_LABELS, DATASET_LABELS, format_percent  # noqa: E402
from tstransfer.fsutil import atomic_path  # noqa: E402
# Tables whose largest |gain| exceeds 50 % (SPEECH targets reach 1800 %) are coloured on
# a symmetric log scale, linear within +-5 %; others on a plain linear scale.
SYMLOG_ABOVE_PERCENT = 50.0
SYMLOG_LINEAR_PERCENT = 5.0


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


def plot_figure8(figure8: pd.DataFrame, stem: str | os.PathLike) -> list[Path]:
    """Gain against learning-rate multiplier, one line per architecture.

    Two panels: performance gain (the paper's Figure 8) and convergence-rate gain.
    The multiplier axis is categorical, as in the paper, so the ten values are evenly
    spaced. Writes ``<stem>.png`` and ``<stem>.svg``.
    """
    stem = Path(stem)
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    omegas = sorted(set(figure8["omega"])) if len(figure8) else list(stats.OMEGAS)
    positions = {omega: i for i, omega in enumerate(omegas)}
    for axis, column, label in (
        (axes[0], "gain_performance", "Performance gain (%)"),
        (axes[1], "gain_convergence", "Convergence-rate gain (%)"),
    ):
        for arch in stats.ARCHITECTURES:
            rows = figure8[figure8["arch"] == arch].sort_values("omega")
            if rows.empty:
                continue
            axis.plot([positions[o] for o in rows["omega"]], rows[column], marker="o", label=ARCH_LABELS[arch])
        axis.axhline(0.0, color="black", linewidth=0.8)
        axis.set_xticks(range(len(omegas)), [f"{o:g}" for o in omegas])
        axis.set_xlabel("Learning-rate multiplier")
        axis.set_ylabel(label)
        axis.grid(axis="y", alpha=0.4)
    axes[0].set_title("Performance")
    axes[1].set_title("Convergence rate")
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend()
    figure.suptitle("Mean gain over all (source, target variant, run) at a fixed multiplier")
    figure.tight_layout()
    return _save(figure, stem)


def plot_domain_heatmap(cells: pd.DataFrame, which: str, group: str, stem: str | os.PathLike) -> list[Path]:
    """Heatmap of one of Tables 6-9: sources x target variants.

    Diverging colormap centred at 0 (green: TL better, red: worse); where gains reach
    beyond 50 % (SPEECH columns, above 1000 %) a symmetric log scale keeps the
    few-percent cells visible. The printed numbers are the table's.
    Significant cells (corrected p <= 0.05) are outlined and starred.
    """
    stem = Path(stem)
    targets = stats.TABLE_TARGETS[group]
    columns = [(t, v) for t in targets for v in stats.VARIANTS]
    sources = list(stats.DATASETS)
    values = np.full((len(sources), len(columns)), np.nan)
    significant = np.zeros_like(values, dtype=bool)
    for cell in cells[cells["target"].isin(targets)].itertuples(index=False):
        i, j = sources.index(cell.source), columns.index((cell.target, cell.variant))
        values[i, j] = cell.value
        significant[i, j] = bool(cell.significant)
    finite = np.abs(values[np.isfinite(values)])
    limit = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    figure, axis = plt.subplots(figsize=(1.3 * len(columns) + 2, 0.7 * len(sources) + 1.5))
    # Symmetric limits keep 0 at the colormap's centre in both scales.
    if limit > SYMLOG_ABOVE_PERCENT:
        norm, scale = SymLogNorm(linthresh=SYMLOG_LINEAR_PERCENT, vmin=-limit, vmax=limit), "symmetric log scale"
    else:
        norm, scale = Normalize(vmin=-limit, vmax=limit), "linear scale"
    image = axis.imshow(values, cmap="RdYlGn", norm=norm, aspect="auto")
    for i in range(len(sources)):
        for j in range(len(columns)):
            if not np.isfinite(values[i, j]):
                axis.text(j, i, "-", ha="center", va="center", color="grey")
                continue
            text = f"{format_percent(values[i, j])}%" + ("*" if significant[i, j] else "")
            axis.text(j, i, text, ha="center", va="center", fontsize=8,
                      fontweight="bold" if significant[i, j] else "normal")
            if significant[i, j]:
                axis.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=1.5))
    axis.set_xticks(range(len(columns)), [f"{DATASET_LABELS[t]} {v}" for t, v in columns], rotation=30, ha="right")
    axis.set_yticks(range(len(sources)), [DATASET_LABELS[s] for s in sources])
    axis.set_xlabel("Target (variant)")
    axis.set_ylabel("Source")
    axis.set_title(f"{which.capitalize()} gain (%), * = significant (BKY-corrected p <= 0.05)")
    figure.colorbar(image, ax=axis, label=f"{which} gain (%), {scale}")
    figure.tight_layout()
    return _save(figure, stem)
