"""DTW, DBA and the DTW/DBA dataset similarity (tstransfer.selection.similarity) against a
plain double loop, known small cases and the arithmetic mean of aligned series."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tstransfer.selection.similarity import (averages_distance, class_averages, dba, dba_similarity, dtw_distance,
                                             dtw_path)


def _dtw_by_double_loop(a, b):
    """The textbook O(nm) recurrence, one cell at a time."""
    a, b = np.asarray(a, float).reshape(len(a), -1), np.asarray(b, float).reshape(len(b), -1)
    cost = np.full((len(a) + 1, len(b) + 1), np.inf)
    cost[0, 0] = 0.0
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            local = float(np.sum((a[i - 1] - b[j - 1]) ** 2))
            cost[i, j] = local + min(cost[i - 1, j], cost[i, j - 1], cost[i - 1, j - 1])
    return math.sqrt(cost[-1, -1])


@pytest.mark.parametrize("n, m, channels", [(30, 30, 1), (17, 41, 1), (25, 12, 3), (1, 9, 2)])
def test_dtw_matches_the_double_loop(n, m, channels):
    rng = np.random.default_rng(n * m + channels)
    a, b = rng.normal(size=(n, channels)).cumsum(axis=0), rng.normal(size=(m, channels)).cumsum(axis=0)
    assert dtw_distance(a, b) == pytest.approx(_dtw_by_double_loop(a, b), rel=1e-10)
    assert dtw_distance(b, a) == pytest.approx(dtw_distance(a, b), rel=1e-10)


def test_dtw_of_known_small_cases():
    assert dtw_distance([1, 2, 3], [1, 2, 2, 2, 3]) == 0.0  # a repeated point warps away
    assert dtw_distance([0.0], [1.0, 2.0]) == pytest.approx(math.sqrt(5))  # one point meets both
    assert dtw_distance([0, 0, 1], [0, 1, 1]) == 0.0
    assert dtw_distance([0, 0, 0], [1, 1, 1]) == pytest.approx(math.sqrt(3))  # the diagonal, 3 unit costs
    series = np.sin(np.linspace(0, 6, 80))
    assert dtw_distance(series, series) == 0.0


def test_dtw_path_is_a_warping_path_whose_cost_is_the_distance():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=23).cumsum(), rng.normal(size=31).cumsum()
    rows, columns, distance = dtw_path(a, b)
    assert (rows[0], columns[0], rows[-1], columns[-1]) == (0, 0, 22, 30)
    steps = np.column_stack([np.diff(rows), np.diff(columns)])
    assert set(map(tuple, steps)) <= {(1, 0), (0, 1), (1, 1)}
    assert math.sqrt(np.sum((a[rows] - b[columns]) ** 2)) == pytest.approx(distance, rel=1e-10)
    assert distance == pytest.approx(_dtw_by_double_loop(a, b), rel=1e-10)


def _aligned_series(seed, n=6, length=50):
    """A steep, smooth base plus small noise: every DTW path to their mean is the diagonal."""
    rng = np.random.default_rng(seed)
    time = np.arange(length)
    base = 0.1 * time + 0.3 * np.sin(time / 4)
    return base + 1e-3 * rng.normal(size=(n, length))


def test_dba_of_aligned_series_is_their_arithmetic_mean():
    series = _aligned_series(2)
    mean = series.mean(axis=0)
    for instance in series:  # the premise: aligning to the mean warps nothing
        rows, columns, _ = dtw_path(mean, instance)
        assert np.array_equal(rows, columns)
    # Started from one of the series, not the mean: DBA has to move to it.
    average = dba(series, init=series[0])
    np.testing.assert_allclose(average[:, 0], mean, atol=1e-12)
    np.testing.assert_array_equal(dba(np.repeat(series[:1], 4, axis=0))[:, 0], series[0])


def test_dba_lowers_the_sum_of_squared_dtw_distances_of_warped_series():
    time = np.linspace(0, 1, 60)
    series = np.stack([np.exp(-((time - centre) / 0.08) ** 2) for centre in (0.3, 0.45, 0.6, 0.5)])

    def inertia(average):
        return sum(dtw_distance(average, instance) ** 2 for instance in series)

    assert inertia(dba(series)) < 0.5 * inertia(series.mean(axis=0))
    assert inertia(dba(series)) <= inertia(series[np.argmin([inertia(s) for s in series])]) + 1e-12


def test_dataset_similarity_is_minus_the_closest_pair_of_class_averages():
    rng = np.random.default_rng(3)
    shapes = rng.normal(size=(4, 40)).cumsum(axis=1)
    target = np.repeat(shapes[:2], 3, axis=0)  # classes 0, 1: DBA of identical series is the series
    source = np.repeat(shapes[2:], 2, axis=0)
    target_labels, source_labels = np.repeat([0, 1], 3), np.repeat(["x", "y"], 2)
    expected = min(_dtw_by_double_loop(a, b) for a in shapes[:2] for b in shapes[2:])
    score = dba_similarity(target, target_labels, task="classification", source_series=source,
                           source_labels=source_labels)
    assert score == pytest.approx(-expected, rel=1e-10)
    assert dba_similarity(target, target_labels, task="classification", source_series=target,
                          source_labels=target_labels) == 0.0
    # A regression target is one average; a source of other channels is compared on its channel mean.
    three_channels = np.repeat(source[:, :, None], 3, axis=2)
    assert dba_similarity(target, None, task="regression", source_series=three_channels) == pytest.approx(
        -averages_distance(class_averages(target), class_averages(source)), rel=1e-10)


def test_similarity_refuses_bad_series():
    series = np.ones((4, 10))
    series[1, 3] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        class_averages(series)
    with pytest.raises(ValueError, match="3 labels for 4 series"):
        class_averages(np.ones((4, 10)), [0, 1, 0])
    with pytest.raises(ValueError, match="non-finite"):
        dtw_distance([0.0, np.inf], [1.0])
    with pytest.raises(ValueError, match="task must be"):
        dba_similarity(np.ones((2, 5)), [0, 1], task="ranking", source_series=np.ones((2, 5)))
