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
series of a few hundred points takes milliseconds without compiled code, and DBA aligns
its average to a whole batch of series at once. Packages: tslearn 0.10.0 and dtaidistance
2.5.1 both resolve against the project's pins (``pip install --dry-run`` with numpy
2.4.6, pandas 3.1.1, scipy 1.17.1, 2026-12-06); tslearn brings scikit-learn, numba and
llvmlite with it, dtaidistance only numpy (a compiled wheel). Neither was added: this
module is small, tested against a plain double loop, and the core then needs nothing new.

Two choices of ours, where the paper (univariate classification only) says nothing: a
regression dataset (no classes) is averaged as one class, and when the two datasets'
channel counts differ the averages are compared on their mean over channels. Every
instance enters its class's average (no sample is drawn): the cost is one DTW per
instance and iteration, meant for the few hundred points and instances of UCR/UEA sets.
"""

from __future__ import annotations

import numpy as np

from .inputs import check_task

DBA_ITERATIONS = 10  # the inertia falls most at first (bench/estimators.py's series: -25 % in the 1st, -0.15 % in the 10th)
DBA_TOLERANCE = 1e-4  # relative fall of the inertia below which an iteration counts as no gain


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


BATCH_CELLS = 2**24  # cost-matrix cells filled at once (128 MiB of float64) when aligning many series


def _cost_matrices(a: np.ndarray, batch: np.ndarray) -> np.ndarray:
    """(n, k, m) accumulated DTW costs of series ``a`` (n, ch) against each of ``batch``
    (k, m, ch); all k matrices are filled together, one row of each per step (the row
    index first, so that a step reads and writes contiguous memory)."""
    if a.shape[1] != batch.shape[2]:
        raise ValueError(f"DTW of series with {a.shape[1]} and {batch.shape[2]} channels")
    local = np.zeros((len(a), len(batch), batch.shape[1]))
    for channel in range(a.shape[1]):  # a sum over a short last axis would be a slow reduction
        local += (a[:, None, None, channel] - batch[None, :, :, channel]) ** 2
    cost = np.empty_like(local)
    cost[0] = np.cumsum(local[0], axis=1)
    wall = np.full((len(batch), 1), np.inf)
    for i in range(1, len(local)):
        above = cost[i - 1]
        reach = local[i] + np.minimum(above, np.concatenate([wall, above[:, :-1]], axis=1))
        running = np.cumsum(local[i], axis=1)
        cost[i] = running + np.minimum.accumulate(reach - running, axis=1)
    return cost


def dtw_distance(a, b) -> float:
    """DTW distance of two series (length,) or (length, channels): sqrt of the optimal path's cost."""
    cost = _cost_matrices(_as_series(a, "first series"), _as_series(b, "second series")[None])
    return float(np.sqrt(max(cost[-1, 0, -1], 0.0)))


def _predecessors(cost: np.ndarray) -> np.ndarray:
    """(k, n, m) int8 from (n, k, m) cost matrices: each cell's cheapest predecessor,
    0 diagonal, 1 up, 2 left, the first of equals in that order."""
    step = np.empty(cost.shape, dtype=np.int8)
    step[0], step[1:, :, 0] = 2, 1  # the first row can only come from the left, the first column from above
    diagonal, up, left = cost[:-1, :, :-1], cost[:-1, :, 1:], cost[1:, :, :-1]
    inner = np.where(up <= left, 1, 2).astype(np.int8)
    inner[(diagonal <= up) & (diagonal <= left)] = 0
    step[1:, :, 1:] = inner
    return step.transpose(1, 0, 2)


def _walk_back(step: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The optimal path through one (n, m) predecessor matrix, as index arrays from (0, 0);
    byte lookups, the choices having been made for all cells at once."""
    n, m = step.shape
    steps = step.tobytes()
    i, j = n - 1, m - 1
    rows, columns = [i], [j]
    while i or j:
        move = steps[i * m + j]
        i, j = i - (move != 2), j - (move != 1)
        rows.append(i)
        columns.append(j)
    return np.array(rows[::-1]), np.array(columns[::-1])


def dtw_path(a, b) -> tuple[np.ndarray, np.ndarray, float]:
    """``(i, j, distance)``: the optimal warping path as index arrays from (0, 0) to the
    last points, and the DTW distance. Ties prefer the diagonal step."""
    cost = _cost_matrices(_as_series(a, "first series"), _as_series(b, "second series")[None])
    rows, columns = _walk_back(_predecessors(cost)[0])
    return rows, columns, float(np.sqrt(max(cost[-1, 0, -1], 0.0)))


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


def _dba_update(average: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, float]:
    """One DBA iteration: ``(new average, inertia of the old)``, the inertia being the sum
    of squared DTW distances of the series ``x`` (n, length, ch) to ``average``."""
    sums, counts, inertia = np.zeros_like(average), np.zeros(len(average)), 0.0
    chunk = max(1, BATCH_CELLS // (len(average) * x.shape[1]))
    for first in range(0, len(x), chunk):
        batch = x[first:first + chunk]
        cost = _cost_matrices(average, batch)
        inertia += float(np.sum(cost[-1, :, -1]))
        for instance, step in zip(batch, _predecessors(cost)):
            rows, columns = _walk_back(step)
            np.add.at(sums, rows, instance[columns])
            np.add.at(counts, rows, 1.0)
    return sums / counts[:, None], inertia


def dba(series, *, init=None, iterations: int = DBA_ITERATIONS, tolerance: float = DBA_TOLERANCE) -> np.ndarray:
    """DBA average (length, channels) of ``series`` (n, length[, channels]).

    Each iteration aligns every series to the current average by DTW and replaces each
    point of the average by the mean of the series' points aligned to it, which never
    raises the inertia (the sum of squared DTW distances to the average); the iterations
    stop when an iteration lowered it by less than ``tolerance`` of its value, or after
    ``iterations``. ``init``: the starting average; by default the series nearest
    (Euclidean) to the arithmetic mean, a deterministic start that needs no random draw.
    """
    x = _check_collection(series, "series")
    if init is None:
        init = x[np.argmin(np.sum((x - x.mean(axis=0)) ** 2, axis=(1, 2)))]
    average, previous = _as_series(init, "init").copy(), np.inf
    for _ in range(iterations):
        average, inertia = _dba_update(average, x)
        if previous - inertia <= tolerance * inertia:
            break  # the last update gained (next to) nothing: a fixed point
        previous = inertia
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
