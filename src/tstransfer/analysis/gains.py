"""Per-run gains and the tests on them (REFERENCE.md section 5).

The numbers every table is made of: the relative performance and convergence gains of a
fine-tuned model over its referent, the sign test of Tables 3 and 4, the Wilcoxon
signed-rank test of Tables 6-9, and the robust summary (median, single-run flag) that
stands beside every mean gain.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.stats

from tstransfer.metrics import lower_is_better

ALPHA = 0.05
SIGN_TEST_Z = 1.96
# A cell's mean is "driven by a single run" (see robust_summary) when leaving out its
# most influential run flips the mean's sign or moves it by more than this share of it.
SINGLE_RUN_SHIFT = 0.5
ROBUST_COLUMNS = ["median", "mean_without_extreme", "single_run_driven"]


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


def robust_columns(grouped, column: str) -> tuple[list, list[bool]]:
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
