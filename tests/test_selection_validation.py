"""The estimators' validation harness (tstransfer.selection.validation) on hand cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tstransfer.analysis import results
from tstransfer.selection import validation


def _cells(estimator, target, scores, gains):
    return pd.DataFrame({"target": target, "source": [f"s{i}" for i in range(len(scores))],
                         "estimator": estimator, "score": scores, "gain": gains})


def test_per_target_spearman_top1_and_regret_of_a_hand_case():
    # score ranks 1 4 3 2, gain ranks 4 2 3 1: sum d^2 = 14, rho = 1 - 6 * 14 / (4 * 15) = -0.4.
    frame = _cells("e", "t", [0.1, 0.4, 0.3, 0.2], [5.0, 1.0, 3.0, -2.0])
    row = validation.per_target(frame).iloc[0]
    assert row["spearman"] == pytest.approx(-0.4)
    assert (row["top1"], row["regret"], row["picked_source"], row["best_source"]) == (0.0, 4.0, "s1", "s0")
    assert row["top1_random"] == 0.25 and row["regret_random"] == pytest.approx(5.0 - 7.0 / 4)


def test_a_tie_at_the_top_counts_as_a_random_pick_among_the_tied():
    frame = _cells("e", "t", [2.0, 2.0, 1.0], [4.0, 0.0, 1.0])
    row = validation.per_target(frame).iloc[0]
    assert (row["top1"], row["regret"], row["picked_source"]) == (0.5, 2.0, "s0,s1")
    assert np.isnan(validation.per_target(_cells("e", "t", [1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))["spearman"].iloc[0])


def test_summary_averages_over_targets_beside_the_exact_random_pick():
    frame = pd.concat([
        _cells("good", "t1", [3.0, 2.0, 1.0], [9.0, 5.0, 1.0]),
        _cells("good", "t2", [3.0, 2.0, 1.0, 0.0], [1.0, 2.0, 3.0, 4.0]),
        _cells("bad", "t1", [1.0, 2.0, 3.0], [9.0, 5.0, 1.0]),
        _cells("bad", "t2", [np.nan, 2.0, 1.0, 0.0], [1.0, 2.0, 3.0, 4.0]),  # an unscored source drops out
    ])
    targets, summary = validation.validate(frame)
    summary = summary.set_index("estimator")
    assert summary.loc["good", ["n_targets", "spearman", "top1", "regret"]].tolist() == [2, 0.0, 0.5, 1.5]
    # bad picks gain 1 of 9 on t1 and gain 2 of 4 on t2 (the unscored s0 is out): regrets 8 and 2.
    assert summary.loc["bad", ["spearman", "top1", "regret"]].tolist() == pytest.approx([-1.0, 0.0, 5.0])
    # bad's t2 has 3 sources (gains 2, 3, 4): its own chance there is 1/3 and regret 1.
    assert summary.loc["bad", "top1_random"] == pytest.approx((1 / 3 + 1 / 3) / 2)
    # The random row: each target on its widest source set (t1: 9, 5, 1; t2: 1, 2, 3, 4).
    assert summary.loc["random", ["spearman", "top1", "regret"]].tolist() == pytest.approx(
        [0.0, (1 / 3 + 1 / 4) / 2, ((9 - 5) + (4 - 2.5)) / 2])
    assert list(summary.index) == ["good", "bad", "random"]
    assert len(targets) == 4


def test_validation_refuses_repeated_or_incomplete_cells():
    frame = _cells("e", "t", [1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="repeat"):
        validation.per_target(pd.concat([frame, frame]))
    with pytest.raises(ValueError, match=r"lack the column\(s\) \['gain'\]"):
        validation.per_target(frame.drop(columns="gain"))


def _job(kind, arch, target, run, *, source=None, omega=None, val=None, test):
    return {"kind": kind, "arch": arch, "source": source, "target": target, "variant": "1k5", "run": run,
            "omega": omega, "seed": run, "stream_max": True, "task": "classification", "status": "ok",
            "best_epoch": 3, "last_epoch": 9, "metric": "f1_weighted", "val_metric": test if val is None else val,
            "test_metric": test, "convergence_rate": 0.5, "convergence_rate_val": 0.5,
            "convergence_rate_test": None, "runtime_s": 1.0}


def _study():
    """EMG as target of LOMAX and SPEECH, 2 architectures x 2 runs, a grid of 2 multipliers.
    Referent F1 0.5 (MagNet's run 1: 0.4); LOMAX's multiplier 0.1 wins on validation
    (F1 0.6), 1.0 on test (0.9); SPEECH's tie on validation goes to 0.1 (F1 0.45)."""
    jobs = []
    for arch in ("magnet", "tcn"):
        for run in (0, 1):
            jobs.append(_job("referent", arch, "emg", run, test=0.4 if (arch, run) == ("magnet", 1) else 0.5))
            jobs += [_job("finetune", arch, "emg", run, source="lomax", omega=0.1, val=0.9, test=0.6),
                     _job("finetune", arch, "emg", run, source="lomax", omega=1.0, val=0.8, test=0.9),
                     _job("finetune", arch, "emg", run, source="speech", omega=0.1, val=0.7, test=0.45),
                     _job("finetune", arch, "emg", run, source="speech", omega=1.0, val=0.7, test=0.55)]
    return results.table_from_records(results.record_from_job(job) for job in jobs)


def test_mean_gains_pool_the_paired_runs_of_a_finished_study():
    gains = validation.mean_gains(_study()).set_index("source")
    # LOMAX: +20 % thrice, (0.6 - 0.4) / 0.4 = +50 % once; SPEECH: -10 % thrice, +12.5 % once.
    assert gains.loc["lomax", "gain"] == pytest.approx((3 * 20 + 50) / 4)
    assert gains.loc["speech", "gain"] == pytest.approx((-3 * 10 + 12.5) / 4)
    assert gains["n_pairs"].tolist() == [4, 4]
    by_test = validation.mean_gains(_study(), protocol="paper").set_index("source")
    assert by_test.loc["lomax", "gain"] == pytest.approx((3 * 80 + 125) / 4)
    per_arch = validation.mean_gains(_study(), keys=("arch", "target", "source"))
    assert per_arch.loc[per_arch["arch"] == "tcn", "gain"].tolist() == pytest.approx([20.0, -10.0])
    with pytest.raises(ValueError, match="not among"):
        validation.mean_gains(_study(), keys=("target", "estimator"))


def test_cells_join_scores_to_gains_and_drop_unmeasured_sources():
    gains = validation.mean_gains(_study())
    scores = pd.DataFrame({"target": "emg", "source": ["lomax", "speech", "stead"], "estimator": "x",
                           "score": [1.0, 2.0, 3.0]})
    joined = validation.cells(scores, gains)
    assert joined["source"].tolist() == ["lomax", "speech"]
    row = validation.per_target(joined).iloc[0]
    assert (row["picked_source"], row["top1"], row["regret"]) == ("speech", 0.0, pytest.approx(27.5 + 4.375))


def _three_sources(gain_of: dict[str, float]):
    """One target, one architecture, 2 runs: referent F1 0.5, each source's single
    multiplier scoring 0.5 * (1 + gain / 100) on validation and test."""
    jobs = []
    for run in (0, 1):
        jobs.append(_job("referent", "magnet", "emg", run, test=0.5))
        jobs += [_job("finetune", "magnet", "emg", run, source=source, omega=1.0, test=0.5 * (1 + gain / 100))
                 for source, gain in gain_of.items()]
    return results.table_from_records(results.record_from_job(job) for job in jobs)


def test_a_repeat_of_the_study_scores_as_an_estimator_of_its_gains():
    first = _three_sources({"lomax": 20.0, "speech": -10.0, "stead": 5.0})
    _, same = validation.repeat_agreement(first, first)
    row = same.set_index("estimator").loc[validation.REPEAT]
    assert (row["spearman"], row["top1"], row["regret"]) == pytest.approx((1.0, 1.0, 0.0))
    # a repeat that ranks the sources the other way round picks the worst: regret 20 - (-10)
    reversed_gains = _three_sources({"lomax": -10.0, "speech": 20.0, "stead": 5.0})
    targets, summary = validation.repeat_agreement(first, reversed_gains)
    row = summary.set_index("estimator").loc[validation.REPEAT]
    assert (row["spearman"], row["top1"], row["regret"]) == pytest.approx((-1.0, 0.0, 30.0))
    assert targets["picked_source"].tolist() == ["speech"] and targets["best_source"].tolist() == ["lomax"]
    assert summary["estimator"].tolist() == [validation.REPEAT, validation.RANDOM]
