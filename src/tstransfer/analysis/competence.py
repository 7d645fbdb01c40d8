"""Are the referents competent? Our models trained from scratch beside the published test
accuracy of their family on the same problem.

A transfer gain is a ratio over a referent (a model of the same architecture trained from
scratch on the same reduced target): against a referent far below what the architecture's
family reaches on that problem, a "gain" measures the weak referent more than transfer.
Config ``referent_check`` gives, per dataset, a published test accuracy (for the UCR/UEA
problems, FCN/ResNet in Ismail Fawaz et al. 2019) and a margin (0.10: ten points);
:func:`referent_check` compares each (architecture, target, variant)'s referents with it
and :func:`short_targets` names the target variants whose gains the tables, heatmaps and
summary page mark (:data:`SHORT_MARK`); the per-architecture tables mark the cells of
:func:`short_cells` alone.

Our side is the mean test accuracy of the finished referent runs (``test_accuracy`` of
their result.json). Results written before that key existed carry only the weighted F1
(``test_metric``): it stands in, and the table's ``measure`` column says so. Weighted F1 is
not accuracy and can lie on either side of it; on the real problems (README "Transfer on
real data") F1 was 0-5 points below accuracy for referents above 0.4 accuracy and up to
17 points below near chance.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

SHORT_MARK = "‡"
DEFAULT_MARGIN = 0.10
CHECK_COLUMNS = ["arch", "target", "variant", "n_runs", "measure", "ours", "published", "gap_points", "competent"]


def settings(config: Mapping[str, Any] | None) -> tuple[dict[str, float], float, str]:
    """``(published accuracy per dataset, margin, source)`` of config ``referent_check``
    (absent or null: nothing to check)."""
    check = (config or {}).get("referent_check") or {}
    published = {str(name): float(value) for name, value in (check.get("accuracy") or {}).items()}
    return published, float(check.get("margin", DEFAULT_MARGIN)), str(check.get("source", ""))


def referent_check(table: pd.DataFrame, published: Mapping[str, float], *,
                   margin: float = DEFAULT_MARGIN) -> pd.DataFrame:
    """Per (arch, target, variant) with referent runs of a classification target that has a
    published figure: the mean of our runs' test accuracy (``measure`` accuracy) or, where
    no run recorded it, of their weighted F1 (``measure`` f1_weighted); the published
    figure; ``gap_points`` = 100 x (published - ours); ``competent`` = ours >= published -
    margin. Diverged runs count as failures (0), as a referent that did not train is no
    referent. Columns: :data:`CHECK_COLUMNS`."""
    if not 0 <= margin <= 1:
        raise ValueError(f"referent_check.margin must lie in [0, 1], got {margin}")
    referents = table[(table["kind"] == "referent") & (table["task"] == "classification")
                      & table["target"].isin(list(published))]
    rows = []
    for (arch, target, variant), runs in referents.groupby(["arch", "target", "variant"], sort=True):
        accuracy = runs["test_accuracy"] if "test_accuracy" in runs else pd.Series(np.nan, index=runs.index)
        use_accuracy = bool(accuracy.notna().any())
        values = (accuracy if use_accuracy else runs["test_metric"]).astype(float)
        values = values.where(runs["status"] == "ok", 0.0).fillna(0.0)
        ours, figure = float(values.mean()), float(published[target])
        rows.append({"arch": arch, "target": target, "variant": variant, "n_runs": len(runs),
                     "measure": "accuracy" if use_accuracy else "f1_weighted", "ours": ours,
                     "published": figure, "gap_points": 100 * (figure - ours),
                     "competent": bool(ours >= figure - margin - 1e-12)})
    return pd.DataFrame(rows, columns=CHECK_COLUMNS).astype({"competent": bool})


def short_targets(check: pd.DataFrame) -> frozenset[tuple[str, str]]:
    """The (target, variant)s where the referents of any architecture fall short: their
    gains pool that architecture's runs, so the whole cell is marked."""
    short = check[~check["competent"].astype(bool)]
    return frozenset(zip(short["target"], short["variant"]))


def short_cells(check: pd.DataFrame) -> frozenset[tuple[str, str, str]]:
    """The (arch, target, variant)s whose referents fall short: what the per-architecture
    tables mark, cell by cell (a target short for one architecture may not be for another)."""
    short = check[~check["competent"].astype(bool)]
    return frozenset(zip(short["arch"], short["target"], short["variant"]))


def note(margin: float, source: str, *, per_architecture: bool = False) -> str:
    """The line that explains :data:`SHORT_MARK` under a table or figure (``per_architecture``:
    under a per-architecture table, whose marks are cells)."""
    cited = f" ({source})" if source else ""
    what = "cell whose architecture's referents" if per_architecture else "target whose referents"
    return (f"{SHORT_MARK} {what} (trained from scratch) fall more than "
            f"{100 * margin:g} points short of the published test accuracy of their family{cited}: "
            "its gains measure a weak referent more than transfer (tables/referent_check.csv).")


__all__ = ["CHECK_COLUMNS", "DEFAULT_MARGIN", "SHORT_MARK", "note", "referent_check", "settings", "short_cells",
           "short_targets"]
