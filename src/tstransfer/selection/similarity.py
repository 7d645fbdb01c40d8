"""Dataset similarity by DTW between per-class DBA averages (Ismail Fawaz, Forestier,
Weber, Idoumghar and Muller, "Transfer learning for time series classification", IEEE Big
Data 2018): each dataset is summarised by one DBA average per class (Petitjean, Ketterlin
and Gancarski, "A global averaging method for dynamic time warping", Pattern Recognition
2011), and the distance between two datasets is the smallest DTW distance between a
class average of one and a class average of the other. The score is minus that distance:
higher is a more similar, so better, source. Needs no model: it reads the raw series.

DTW here: squared Euclidean local cost between time points (all channels at once), no
warping window, distance = square root of the cost of the optimal path. The cost matrix
is filled one row at a time, each row in closed form: with ``a_j = c_ij + min(D[i-1, j],
D[i-1, j-1])`` the row's recurrence ``D_ij = min(a_j, D[i, j-1] + c_ij)`` is solved by
``D_i = C + cummin(a - C)``, ``C`` the running sum of the row's costs, so a pair of
series of a few hundred points takes milliseconds without compiled code. (tslearn and
dtaidistance were not used: neither is a dependency of the project, and tslearn pulls in
scikit-learn and numba.)

Two choices of ours, where the paper (univariate classification only) says nothing: a
regression dataset (no classes) is averaged as one class, and when the two datasets'
channel counts differ the averages are compared on their mean over channels. Every
instance enters its class's average (no sample is drawn): the cost is one DTW per
instance and iteration, meant for the few hundred points and instances of UCR/UEA sets.
"""

from __future__ import annotations

import numpy as np

from .inputs import check_task

DBA_ITERATIONS = 10  # Petitjean et al. converge in a handful; the loop stops earlier when still
DBA_TOLERANCE = 1e-6  # largest change of the average, relative to its scale, that counts as still


def _as_series(x, name: str) -> np.ndarray:
    """A series as a float64 (length, channels) array with finite values."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or not x.size:
        raise ValueError(f"{name} must be a non-empty (length,) or (length, channels) series, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} holds non-finite values (NaN or inf)")
    return x


def _cost_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) accumulated DTW cost of series ``a`` (n, ch) and ``b`` (m, ch)."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"DTW of series with {a.shape[1]} and {b.shape[1]} channels")
    local = np.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=2)
    cost = np.empty_like(local)
    cost[0] = np.cumsum(local[0])
    for i in range(1, len(local)):
        above = cost[i - 1]
        reach = local[i] + np.minimum(above, np.concatenate(([np.inf], above[:-1])))
        running = np.cumsum(local[i])
        cost[i] = running + np.minimum.accumulate(reach - running)
    return cost


def dtw_distance(a, b) -> float:
    """DTW distance of two series (length,) or (length, channels): sqrt of the optimal path's cost."""
    cost = _cost_matrix(_as_series(a, "first series"), _as_series(b, "second series"))
    return float(np.sqrt(max(cost[-1, -1], 0.0)))


def dtw_path(a, b) -> tuple[np.ndarray, np.ndarray, float]:
    """``(i, j, distance)``: the optimal warping path as index arrays from (0, 0) to the
    last points, and the DTW distance. Ties prefer the diagonal step."""
    cost = _cost_matrix(_as_series(a, "first series"), _as_series(b, "second series"))
    i, j = cost.shape[0] - 1, cost.shape[1] - 1
    path = [(i, j)]
    while i or j:
        if not i:
            j -= 1
        elif not j:
            i -= 1
        else:
            steps = ((i - 1, j - 1), (i - 1, j), (i, j - 1))
            i, j = min(steps, key=lambda step: cost[step])
        path.append((i, j))
    rows, columns = np.array(path[::-1]).T
    return rows, columns, float(np.sqrt(max(cost[-1, -1], 0.0)))


def _check_collection(series, name: str) -> np.ndarray:
    """A set of series as a float64 (n, length, channels) array with finite values."""
    x = np.asarray(series, dtype=np.float64)
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3 or not x.size:
        raise ValueError(f"{name} must be a non-empty (n, length) or (n, length, channels) array, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} hold non-finite values (NaN or inf)")
    return x


def dba(series, *, init=None, iterations: int = DBA_ITERATIONS, tolerance: float = DBA_TOLERANCE) -> np.ndarray:
    """DBA average (length, channels) of ``series`` (n, length[, channels]).

    Each iteration aligns every series to the current average by DTW and replaces each
    point of the average by the mean of the series' points aligned to it. ``init``: the
    starting average; by default the series nearest (Euclidean) to the arithmetic mean,
    a deterministic start that needs no random draw.
    """
    x = _check_collection(series, "series")
    if init is None:
        init = x[np.argmin(np.sum((x - x.mean(axis=0)) ** 2, axis=(1, 2)))]
    average = _as_series(init, "init").copy()
    scale = max(float(np.max(np.abs(x))), np.finfo(float).tiny)
    for _ in range(iterations):
        sums, counts = np.zeros_like(average), np.zeros(len(average))
        for instance in x:
            rows, columns, _ = dtw_path(average, instance)
            np.add.at(sums, rows, instance[columns])
            np.add.at(counts, rows, 1.0)
        updated = sums / counts[:, None]
        change = float(np.max(np.abs(updated - average)))
        average = updated
        if change <= tolerance * scale:
            break
    return average


def class_averages(series, labels=None) -> list[np.ndarray]:
    """One DBA average per class of ``labels`` (all series as one class when None)."""
    x = _check_collection(series, "series")
    if labels is None:
        return [dba(x)]
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(x):
        raise ValueError(f"{len(labels)} labels for {len(x)} series")
    return [dba(x[labels == value]) for value in np.unique(labels)]


def _common_channels(averages: list[np.ndarray], channels: int) -> list[np.ndarray]:
    return [a if a.shape[1] == channels else a.mean(axis=1, keepdims=True) for a in averages]


def averages_distance(first: list[np.ndarray], second: list[np.ndarray]) -> float:
    """Smallest DTW distance between an average of ``first`` and one of ``second``
    (compared on their mean over channels where the channel counts differ)."""
    if not first or not second:
        raise ValueError("averages_distance needs at least one average on each side")
    channels = {a.shape[1] for a in first} | {a.shape[1] for a in second}
    if len(channels) > 1:
        first, second = _common_channels(first, 1), _common_channels(second, 1)
    return min(dtw_distance(a, b) for a in first for b in second)


def dba_similarity(target_series, target_labels, *, task: str, source_series, source_labels=None) -> float:
    """Minus the smallest DTW distance between the target's and the source's per-class DBA
    averages. ``task`` is the target's: a regression target is averaged as one class;
    ``source_labels`` None averages the source as one class (a regression source)."""
    check_task(task)
    target = class_averages(target_series, target_labels if task == "classification" else None)
    return -averages_distance(target, class_averages(source_series, source_labels))


__all__ = ["dtw_distance", "dtw_path", "dba", "class_averages", "averages_distance", "dba_similarity"]
