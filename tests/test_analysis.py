"""Unit tests of the analysis package on small synthetic results."""

from __future__ import annotations

import io
import json
import math
import tarfile

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from tstransfer.analysis import results, stats
from tstransfer.analysis.published import load_published, parse_model_name
from tstransfer.analysis.render import render_latex, render_markdown, write_all_outputs
from tstransfer.analysis.tables import build_tables, compare_referents, compare_with_published, format_percent

REGRESSION = {"lomax", "lendb", "stead", "sp500"}


def job(kind="finetune", arch="magnet", source="lomax", target="lendb", variant="1k5", run=0,
        omega=0.1, val=1.0, test=1.0, cr=0.5, status="ok", seed=7, stream_max=True):
    """A job JSON as the training code writes it (REFERENCE section 5 fields)."""
    task = "regression" if target in REGRESSION else "classification"
    return {
        "kind": kind,
        "arch": arch,
        "source": None if kind in ("referent", "stream_max") else source,
        "target": target,
        "variant": None if kind == "pretrain" else variant,
        "run": None if kind == "pretrain" else run,
        "omega": omega if kind == "finetune" else None,
        "seed": seed,
        "stream_max": stream_max,
        "task": task,
        "status": status,
        "best_epoch": 5,
        "last_epoch": 15,
        "metric": "mae" if task == "regression" else "f1_weighted",
        "val_metric": val,
        "test_metric": test,
        "convergence_rate": cr,
        "convergence_rate_val": cr,
        "convergence_rate_test": None,
        "runtime_s": 12.5,
        "history": {"loss": [1.0, 0.5]},
        "config": {},
        "versions": {},
    }


def table(jobs):
    return results.table_from_records(results.record_from_job(j) for j in jobs)


# ------------------------------------------------------------------------- gains


def test_performance_gain_signs_follow_the_metric():
    assert stats.performance_gain(2.0, 1.5, "mae") == pytest.approx(25.0)  # lower MAE is better
    assert stats.performance_gain(0.5, 0.6, "f1_weighted") == pytest.approx(20.0)  # higher F1 is better
    assert stats.performance_gain(2.0, 2.5, "mae") == pytest.approx(-25.0)
    mixed = stats.performance_gain([2.0, 0.5], [1.0, 0.25], ["mae", "f1_weighted"])
    np.testing.assert_allclose(mixed, [50.0, -50.0])
    with pytest.raises(ValueError, match="unknown metric 'accuracy'; known: mae, f1_weighted"):
        stats.performance_gain(1.0, 1.0, "accuracy")


def test_convergence_gain_is_relative_to_referent():
    assert stats.convergence_gain(0.8, 0.88) == pytest.approx(10.0)
    assert stats.convergence_gain(0.5, 0.4) == pytest.approx(-20.0)


def test_sign_test_critical_value_and_binomial_p():
    assert stats.sign_test_critical_value(240) == 136
    assert stats.sign_test_critical_value(48) == 31
    assert stats.sign_test(136, 104)["significant"]
    assert not stats.sign_test(135, 105)["significant"]
    result = stats.sign_test(204, 36)
    assert result["n"] == 240 and result["critical_value"] == 136
    assert result["p_binomial"] == pytest.approx(scipy.stats.binomtest(204, 240, 0.5).pvalue)
    assert stats.sign_test(120, 120)["p_binomial"] == pytest.approx(1.0)


def test_domain_groups_follow_tables_3_and_4():
    assert stats.domain_group("lomax", "stead") == "intra"
    assert stats.domain_group("stead", "emg") == "seismology_to_other"
    assert stats.domain_group("speech", "lendb") == "other_to_seismology"
    assert stats.domain_group("sp500", "emg") == "other_to_other"


@pytest.mark.parametrize(
    "value, text",
    [(8.2134, "8.21"), (870.6, "871"), (1213.0, "1210"), (0.0716, "0.07"), (9.9996, "10"),
     (-0.515, "-0.52"), (45.66, "45.7"), (-7.234, "-7.23"), (0.0, "0"), (float("nan"), "")],
)
def test_format_percent_matches_paper_precision(value, text):
    assert format_percent(value) == text


# --------------------------------------------------------------- grid selection


# The paper's multiplier grid (config/config.yaml omegas) and its variants.
PAPER_OMEGAS = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
PAPER_VARIANTS = ("1k5", "9k")


def grid(target="lendb", run=0, vals=(), tests=(), statuses=None, arch="magnet", source="lomax"):
    statuses = statuses or ["ok"] * len(vals)
    return [
        job(arch=arch, source=source, target=target, run=run, omega=omega, val=v, test=t, status=s, cr=0.1 * (i + 1))
        for i, (omega, v, t, s) in enumerate(zip(PAPER_OMEGAS, vals, tests, statuses))
    ]


def test_select_grid_validation_and_paper_protocols_differ():
    # Validation prefers omega 0.05 (val 0.9), the test set prefers 0.1 (test 0.7).
    df = table(grid(vals=[1.0, 0.9, 1.1], tests=[1.0, 0.8, 0.7]))
    by_val = stats.select_grid(df, "validation")
    by_test = stats.select_grid(df, "paper")
    assert len(by_val) == len(by_test) == 1
    assert by_val.loc[0, "omega"] == 0.05
    assert by_val.loc[0, "convergence_rate"] == pytest.approx(0.2)  # the winner's own rate
    assert by_test.loc[0, "omega"] == 0.1
    assert by_val.loc[0, "selected_by"] == "val_metric"
    with pytest.raises(ValueError, match="protocol must be one of .*, got 'test'"):
        stats.select_grid(df, "test")


def test_select_grid_maximises_f1_for_classification():
    df = table(grid(target="emg", vals=[0.5, 0.7, 0.6], tests=[0.5, 0.7, 0.6]))
    assert stats.select_grid(df, "validation").loc[0, "omega"] == 0.05


def test_diverged_runs_never_win_but_are_counted():
    df = table(grid(vals=[0.1, 0.9, 1.1], tests=[0.1, 0.9, 1.1], statuses=["diverged", "ok", "ok"]))
    selected = stats.select_grid(df, "validation")
    assert selected.loc[0, "omega"] == 0.05
    assert selected.loc[0, "n_diverged"] == 1
    assert selected.loc[0, "n_candidates"] == 3


def test_fully_diverged_grid_is_kept_as_a_diverged_row():
    df = table(
        grid(run=0, vals=[1.0, 1.0], tests=[1.0, 1.0], statuses=["diverged", "diverged"])
        + grid(run=1, vals=[1.0, 0.5], tests=[1.0, 0.5])
    )
    selected = stats.select_grid(df, "validation").set_index("run")
    assert selected.loc[0, "status"] == "diverged"
    assert math.isnan(selected.loc[0, "test_metric"])
    assert selected.loc[0, "n_diverged"] == 2
    assert selected.loc[1, "status"] == "ok"


def test_select_grid_ties_go_to_the_smallest_multiplier():
    df = table(grid(vals=[0.5, 0.5, 0.5], tests=[0.3, 0.2, 0.1]))
    assert stats.select_grid(df, "validation").loc[0, "omega"] == 0.01


# ---------------------------------------------------------- pairing and policies


def experiment(rng, archs=("magnet", "tcn"), sources=("lomax", "speech"), targets=("lendb", "emg"),
               runs=7, effect=0.1, omegas=(0.1, 1.0), variants=PAPER_VARIANTS):
    """A small full-factorial experiment with TL better than scratch by ``effect``."""
    jobs = []
    for arch in archs:
        for target in targets:
            for variant in variants:
                for run in range(runs):
                    ref = 0.5 + 0.1 * rng.random()
                    jobs.append(job("referent", arch, None, target, variant, run, val=ref, test=ref, cr=0.5))
                    for source in sources:
                        if source == target:
                            continue
                        for omega in omegas:
                            better = ref * (1 - effect) if target in REGRESSION else ref * (1 + effect)
                            noise = 1 + 0.01 * rng.standard_normal()
                            jobs.append(job("finetune", arch, source, target, variant, run, omega,
                                            val=better * noise, test=better * noise, cr=0.55 * noise))
    return table(jobs)


def test_diverged_referent_makes_its_pairs_missing_and_counted():
    rng = np.random.default_rng(0)
    df = experiment(rng)
    index = df[(df["kind"] == "referent") & (df["arch"] == "magnet") & (df["target"] == "lendb")
               & (df["variant"] == "1k5") & (df["run"] == 3)].index
    df.loc[index, "status"] = "diverged"
    pairs = stats.paired_runs(df, "validation")
    broken = pairs[pairs["pair_status"] == "referent_diverged"]
    assert len(broken) == 2  # one pair per source into that target
    assert not broken["usable"].any() and broken["gain_performance"].isna().all()
    assert (broken["n_diverged"] == 1).all()
    triplets = stats.triplet_comparisons(pairs).set_index(stats.TRIPLET_KEYS)
    row = triplets.loc[("magnet", "lomax", "lendb", "1k5")]
    assert row["n_runs"] == 6 and row["n_missing"] == 1 and row["outcome_performance"] == "win"
    cells = stats.domain_tables(pairs, "performance").set_index(stats.CELL_KEYS)
    assert cells.loc[("lomax", "lendb", "1k5"), "n_pairs"] == 13
    assert cells.loc[("lomax", "lendb", "1k5"), "n_missing"] == 1
    assert cells.loc[("lomax", "lendb", "1k5"), "n_diverged"] == 1


def test_missing_referent_is_reported():
    rng = np.random.default_rng(1)
    df = experiment(rng, archs=("magnet",), targets=("lendb",), sources=("lomax",), runs=2)
    df = df[~((df["kind"] == "referent") & (df["run"] == 1))]
    pairs = stats.paired_runs(df, "validation")
    assert set(pairs.loc[pairs["run"] == 1, "pair_status"]) == {"referent_missing"}


def test_wins_and_domain_tables_on_a_clear_effect():
    rng = np.random.default_rng(2)
    df = experiment(rng)
    analysis = stats.analyse(df, "validation")
    table3 = analysis["table3"].set_index("group")
    n_triplets = 2 * 2 * 2 * 2  # arch x (source, target) x variant, no source == target here
    assert table3.loc["total", "wins"] == n_triplets and table3.loc["total", "losses"] == 0
    cells = analysis["domains_performance"]
    assert (cells["value"] > 9).all() and (cells["value"] < 11.5).all()
    assert cells["significant"].all()
    # 14 pairs, all TL better: the normal approximation without continuity correction.
    n = 14
    z = (0 - n * (n + 1) / 4) / math.sqrt(n * (n + 1) * (2 * n + 1) / 24)
    assert cells["p"].to_numpy() == pytest.approx(2 * scipy.stats.norm.sf(abs(z)))
    per_arch = analysis["per_architecture_performance"]
    assert len(per_arch) == 16 and (per_arch["value"] > 0).all()


def test_no_effect_is_not_significant():
    rng = np.random.default_rng(3)
    # One multiplier: with a grid, picking the best of several noisy runs would itself
    # favour TL (a real selection effect), which is not what this test is about.
    df = experiment(rng, effect=0.0, omegas=(1.0,))
    cells = stats.analyse(df, "validation")["domains_performance"]
    assert not cells["significant"].any()
    assert (cells["p_corrected"] >= cells["p"] - 1e-12).all()


def test_identical_values_give_p_one():
    assert stats.wilcoxon_p([1.0, 2.0], [1.0, 2.0]) == 1.0
    assert math.isnan(stats.wilcoxon_p([], []))


# ------------------------------------------- the corrections and tests, by hand


def _step_up(p: np.ndarray, q: float) -> np.ndarray:
    """The linear step-up procedure (Benjamini-Hochberg) at level ``q``: reject the k
    smallest p-values, k the largest i with p_(i) <= i q / m."""
    m = len(p)
    order = np.argsort(p)
    below = p[order] <= q * np.arange(1, m + 1) / m
    k = int(np.nonzero(below)[0].max()) + 1 if below.any() else 0
    reject = np.zeros(m, dtype=bool)
    reject[order[:k]] = True
    return reject


def _bh_adjusted(p: np.ndarray) -> np.ndarray:
    """BH-adjusted p: min over j >= i of p_(j) m / j, capped at 1, in the input's order."""
    m = len(p)
    order = np.argsort(p)
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    out = np.empty(m)
    out[order] = adjusted
    return out


def _two_stage_bky(p: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini, Krieger & Yekutieli (2006), Definition 6, the two-stage linear step-up
    procedure: stage 1 is the step-up at q' = q / (1 + q), rejecting r1; with r1 = 0
    nothing and with r1 = m everything is rejected; otherwise m0 = m - r1 and stage 2 is
    the step-up at q* = q' m / m0. The adjusted p-values follow statsmodels' fdr_tsbky
    (maxiter=1): the BH-adjusted p times (1 + q) m0 / m (m0 = m when r1 is 0 or m), capped
    at 1, so that adjusted <= q is stage 2's decision. Returns (reject, adjusted)."""
    m = len(p)
    q_prime = q / (1 + q)
    r1 = int(_step_up(p, q_prime).sum())
    if r1 in (0, m):
        reject = np.full(m, r1 == m)
        m0 = m
    else:
        m0 = m - r1
        reject = _step_up(p, q_prime * m / m0)
    return reject, np.minimum(_bh_adjusted(p) * (1 + q) * m0 / m, 1.0)


def _wilcoxon_normal_p(positive_ranks: float, negative_ranks: float, n: int, ties=()) -> float:
    """Two-sided p of the signed-rank statistic's normal approximation, no continuity
    correction: mean n(n+1)/4, variance n(n+1)(2n+1)/24 - sum(t^3 - t)/48 over tie groups."""
    mean = n * (n + 1) / 4
    variance = n * (n + 1) * (2 * n + 1) / 24 - sum(t**3 - t for t in ties) / 48
    z = (min(positive_ranks, negative_ranks) - mean) / math.sqrt(variance)
    return 2 * scipy.stats.norm.sf(abs(z))


def test_domain_tables_correct_by_the_two_stage_bky_procedure_not_bh():
    """Tables 6-9's correction, checked without the reference data: ten cells whose
    Wilcoxon p-values are set by the signs of 14 paired differences of sizes 1..14 (no
    ties, no zeros), so each p is the normal approximation of its rank sum T+ alone. At
    q = 0.05 plain BH rejects 3 of them, the two-stage procedure 7; fdr_bh in stats
    would fail both the values and the decisions."""
    n = 14
    positive_rank_sums = [0, 7, 12, 16, 18, 19, 20, 35, 45, 52]
    rows = []
    for cell, total in enumerate(positive_rank_sums):
        positive, left = set(), total
        for rank in range(n, 0, -1):  # a set of distinct ranks 1..14 summing to T+
            if rank <= left:
                positive.add(rank)
                left -= rank
        assert left == 0 and sum(positive) == total
        for rank in range(1, n + 1):
            difference = 0.01 * rank * (1 if rank in positive else -1)  # referent - transfer
            rows.append({"arch": "magnet", "source": "lomax", "target": "lendb", "variant": f"v{cell}",
                         "run": rank, "usable": True, "ref_metric": 10.0, "tl_metric": 10.0 - difference,
                         "gain_performance": 10.0 * difference, "n_diverged": 0})
    pairs = pd.DataFrame(rows)
    cells = stats.domain_tables(pairs, "performance").set_index("variant").loc[
        [f"v{cell}" for cell in range(len(positive_rank_sums))]]

    all_ranks = n * (n + 1) // 2
    p = np.array([_wilcoxon_normal_p(t, all_ranks - t, n) for t in positive_rank_sums])
    np.testing.assert_allclose(cells["p"].to_numpy(), p, rtol=1e-10)
    reject, adjusted = _two_stage_bky(p, stats.ALPHA)
    # What the test tells apart: BH's adjusted values and decisions are other ones.
    assert reject.sum() == 7 and _step_up(p, stats.ALPHA).sum() == 3
    assert not np.allclose(adjusted, _bh_adjusted(p), rtol=1e-3)
    np.testing.assert_allclose(cells["p_corrected"].to_numpy(), adjusted, rtol=1e-10)
    assert cells["significant"].tolist() == reject.tolist()


def test_wilcoxon_drops_zero_differences_and_corrects_the_variance_for_ties():
    """stats.wilcoxon_p is scipy's zero_method="wilcox" (zero differences dropped before
    ranking), without continuity correction: checked against the statistic by hand on
    pairs with three zero differences and a tie among the others."""
    referent = np.array([5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0])
    difference = np.array([0.0, 0.5, 0.0, -0.5, 1.0, 1.5, 2.0, 0.0, 2.5, -3.0, 3.5, 4.0, 4.5, 5.0])
    transfer = referent - difference  # halves: every difference exact in binary
    # Zeros dropped: 11 differences; |d| = 0.5 twice share ranks 1 and 2 (1.5 each); the
    # others rank 3..11 by size; -0.5 and -3.0 (rank 7) are the negative ones.
    n = 11
    negative_ranks = 1.5 + 7
    positive_ranks = n * (n + 1) / 2 - negative_ranks
    expected = _wilcoxon_normal_p(positive_ranks, negative_ranks, n, ties=(2,))
    assert stats.wilcoxon_p(referent, transfer) == pytest.approx(expected, rel=1e-12)
    # What the test tells apart: keeping the zeros, or a continuity correction, gives other p.
    for other in ({"zero_method": "pratt"}, {"zero_method": "zsplit"}, {"correction": True}):
        options = {"zero_method": "wilcox", "correction": False, "method": "approx", **other}
        assert abs(scipy.stats.wilcoxon(referent, transfer, **options).pvalue - expected) > 1e-3, other


def test_figure8_averages_every_multiplier_without_grid_search():
    jobs = [
        job("referent", "tcn", None, "lendb", "1k5", 0, test=2.0, cr=0.5),
        job("finetune", "tcn", "lomax", "lendb", "1k5", 0, 0.1, test=1.0, cr=0.6),
        job("finetune", "tcn", "lomax", "lendb", "1k5", 0, 1.0, test=3.0, cr=0.4),
        job("finetune", "tcn", "stead", "lendb", "1k5", 0, 0.1, test=1.5, cr=0.5, status="diverged"),
    ]
    fig8 = stats.gain_by_multiplier(table(jobs)).set_index("omega")
    assert fig8.loc[0.1, "gain_performance"] == pytest.approx(50.0)
    assert fig8.loc[0.1, "n_pairs"] == 1 and fig8.loc[0.1, "n_diverged"] == 1
    assert fig8.loc[1.0, "gain_performance"] == pytest.approx(-50.0)
    assert fig8.loc[1.0, "gain_convergence"] == pytest.approx(-20.0)


def test_stream_max_gain_pairs_with_and_without_by_seed():
    jobs = [
        job("stream_max", "magnet", None, "sp500", None, None, test=10.0, stream_max=False, seed=0),
        job("stream_max", "magnet", None, "sp500", None, None, test=1.0, stream_max=True, seed=0),
        job("stream_max", "magnet", None, "emg", None, None, test=0.5, stream_max=False, seed=0),
        job("stream_max", "magnet", None, "emg", None, None, test=0.55, stream_max=True, seed=0),
    ]
    gains = stats.stream_max_gains(table(jobs)).set_index(["arch", "target"])
    assert gains.loc[("magnet", "sp500"), "gain"] == pytest.approx(90.0)
    assert gains.loc[("magnet", "emg"), "gain"] == pytest.approx(10.0)
    assert gains.loc[("average", "emg"), "gain"] == pytest.approx(10.0)


# ------------------------------------------------------------- results table


def test_build_results_table_from_manifest_and_round_trip(tmp_path):
    jobs = [job("referent", target="lendb", run=r, test=0.5) for r in range(40)]
    jobs += [job(run=r, omega=o, test=0.4) for r in range(40) for o in (0.1, 1.0)]
    jobs.append(job("pretrain", source=None, target="lomax", variant=None, run=None))
    folder = tmp_path / "jobs"
    folder.mkdir()
    names = []
    for i, content in enumerate(jobs):
        (folder / f"{i}.json").write_text(json.dumps(content))
        names.append(f"jobs/{i}.json")
    manifest = tmp_path / "manifest.txt"
    manifest.write_text("# results\n" + "\n".join(names) + "\n\n")
    df = results.build_results_table(manifest)  # > 64 files: thread-pool path
    assert list(df.columns) == list(results.COLUMNS)
    assert len(df) == len(jobs)
    referent = df[df["kind"] == "referent"].iloc[0]
    assert referent["source"] == "" and math.isnan(referent["omega"])
    pretrain = df[df["kind"] == "pretrain"].iloc[0]
    assert pretrain["variant"] == "" and pd.isna(pretrain["run"])
    assert df["convergence_rate_test"].isna().all()
    results.write_table(df, tmp_path / "out" / "results.parquet", tmp_path / "out" / "results.csv")
    for path in ("results.parquet", "results.csv"):
        back = results.read_table(tmp_path / "out" / path)
        pd.testing.assert_frame_equal(back, df, check_exact=False)
    assert not list((tmp_path / "out").glob(".*tmp"))  # atomic writes leave no debris


def test_results_table_rejects_bad_jobs(tmp_path):
    bad = job()
    del bad["status"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(results.ResultsError, match="missing keys"):
        results.build_results_table([path])
    path.write_text(json.dumps(job(kind="mystery")))
    with pytest.raises(results.ResultsError, match="unknown kind"):
        results.build_results_table([path])
    other = tmp_path / "same.json"
    other.write_text(json.dumps(job()))
    with pytest.raises(results.ResultsError, match="share a model identity"):
        results.build_results_table([other, other])


# --------------------------------------------------------------- published


def _metrics(best, mae=None, f1=None, cr=0.7):
    return {"bestEpoch": best, "lastEpoch": best + 10, "mae": mae or [], "f1": f1 or [],
            "convergence_rate": cr, "mape": [], "mse": [], "recauc": [], "medianabsoluteerror": []}


PUBLISHED = {
    "convnetquakeingv-sp5001k5_3": _metrics(2, mae=[9.0, 4.0, 5.0]),
    "convnetquakeingv-speech8khz-sp5001k5_3-0.25": _metrics(3, mae=[9.0, 4.0, 2.0], cr=0.8),
    "mlstm_fcn-speech8khz9k_0": _metrics(1, f1=[0.3, 0.2]),
    "mlstm_fcn-lendb-speech8khz9k_0-2.0": _metrics(2, f1=[0.3, 0.6]),
}


def test_parse_model_name_maps_names():
    assert parse_model_name("convnetquakeingv-speech8khz-sp5001k5_3-0.25") == {
        "kind": "finetune", "arch": "convnetquake_ingv", "source": "speech", "target": "sp500",
        "variant": "1k5", "run": 3, "omega": 0.25,
    }
    referent = parse_model_name("tcn-lomax9k_6")
    assert referent["kind"] == "referent" and referent["source"] == "" and math.isnan(referent["omega"])
    with pytest.raises(results.ResultsError, match="not an authors' model name: 'tcn-lomax9k'"):
        parse_model_name("tcn-lomax9k")


@pytest.mark.parametrize("as_tar", [False, True])
def test_load_published_from_folder_and_tar(tmp_path, as_tar):
    root = tmp_path / "extracted"
    for name, metrics in PUBLISHED.items():
        (root / "our_models" / name).mkdir(parents=True)
        (root / "our_models" / name / "metrics.json").write_text(json.dumps(metrics))
    path = root
    if as_tar:
        path = tmp_path / "published.tar.gz"
        with tarfile.open(path, "w:gz") as archive:
            archive.add(root / "our_models", arcname="our_models")
            payload = b"not a metrics file"
            info = tarfile.TarInfo("our_models/README")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    df = load_published(path).set_index(["arch", "source", "target", "variant", "run"])
    assert len(df) == 4
    finetune = df.loc[("convnetquake_ingv", "speech", "sp500", "1k5", 3)]
    assert finetune["test_metric"] == 2.0 and finetune["omega"] == 0.25 and finetune["metric"] == "mae"
    assert finetune["convergence_rate"] == 0.8 and finetune["stream_max"]
    referent = df.loc[("convnetquake_ingv", "", "sp500", "1k5", 3)]
    assert referent["test_metric"] == 4.0 and referent["kind"] == "referent"
    classification = df.loc[("mlstm_fcn", "lendb", "speech", "9k", 0)]
    assert classification["test_metric"] == 0.6 and classification["metric"] == "f1_weighted"
    assert df["val_metric"].isna().all() and (df["status"] == "ok").all()


# ---------------------------------------------------------------- rendering


def test_write_all_outputs_writes_every_table_and_figure(tmp_path):
    rng = np.random.default_rng(4)
    df = experiment(rng, runs=3)
    written = write_all_outputs(df, tmp_path, "validation")
    assert all(path.exists() and path.stat().st_size > 0 for path in written)
    names = {path.relative_to(tmp_path).as_posix() for path in written}
    for stem in ("table3_wins_performance", "table4_wins_convergence", "table5_convergence_vs_performance",
                 "table6_performance_seismology", "table7_performance_other", "table8_convergence_seismology",
                 "table9_convergence_other", "table10_wins_per_architecture", "table2_stream_max",
                 "per_architecture_performance", "figure8_data", "sign_tests"):
        for suffix in ("csv", "md", "tex"):
            assert f"tables/{stem}.{suffix}" in names
    for stem in ("figure8", "table6_heatmap", "table7_heatmap", "table8_heatmap", "table9_heatmap"):
        assert f"figures/{stem}.png" in names and f"figures/{stem}.svg" in names
    assert (tmp_path / "figures" / "figure8.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (tmp_path / "figures" / "table6_heatmap.svg").read_text()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["sign_tests"]["performance"]["wins"] == 16
    table6 = pd.read_csv(tmp_path / "tables" / "table6_performance_seismology.csv")
    assert {"value", "p", "p_corrected", "significant", "n_pairs", "n_diverged"} <= set(table6.columns)
    assert not list(tmp_path.rglob(".*.tmp"))


def test_markdown_and_latex_mark_significant_cells():
    rng = np.random.default_rng(5)
    # Every dataset a source and every seismic one a target: a table lays out only the
    # datasets its results hold, here the paper's six rows and 3 x 2 columns.
    df = experiment(rng, sources=("lomax", "lendb", "stead", "speech", "emg", "sp500"),
                    targets=("lomax", "lendb", "stead"))
    tables = build_tables(stats.analyse(df, "validation"))
    table6 = tables["table6_performance_seismology"]
    value = table6.data.set_index(stats.CELL_KEYS).loc[("lomax", "lendb", "1k5"), "value"]
    cell = f"{format_percent(value)}%"
    markdown = render_markdown(table6)
    assert f"**{cell}** ↑" in markdown
    assert "| LOMAX |" in markdown and "| S&P 500 |" in markdown
    header, rule = markdown.splitlines()[2:4]
    assert header.count("|") == rule.count("|") == 8  # row label + 6 target variants
    latex = render_latex(table6)
    assert latex.count(r"\begin{tabular}") == latex.count(r"\end{tabular}") == 1
    assert r"\begin{table}" in latex and r"\end{table}" in latex
    assert r"\cellcolor{green!25}\textbf{" + cell.replace("%", r"\%") + "}" in latex
    assert r"S\&P 500" in latex and "S&P" not in latex.replace(r"S\&P", "")
    body = [line for line in latex.splitlines() if line.endswith(r"\\")]
    assert len(body) == 7  # header + 6 sources
    assert all(line.count(" & ") == 6 for line in body)


def test_compare_with_published_reports_exactly_the_changed_cell():
    """"Published": a copy of ours with one cell's fine-tuned test MAE scaled by c (speech
    into LenDB 9k, every run and multiplier). Only that cell of Table 6 may differ, by the
    amount the scaling implies: each run's gain g = 100 (r - f) / r becomes c g - 100 (c - 1),
    and so does the cell's value (the grid search by test metric picks the same multiplier)."""
    rng = np.random.default_rng(6)
    ours = experiment(rng)
    theirs = ours.copy()
    c = 1.02
    changed = ((theirs["kind"] == "finetune") & (theirs["source"] == "speech") & (theirs["target"] == "lendb")
               & (theirs["variant"] == "9k"))
    assert changed.sum() == 2 * 7 * 2  # 2 architectures x 7 runs x 2 multipliers
    theirs.loc[changed, "test_metric"] = theirs.loc[changed, "test_metric"] * c
    comparison = compare_with_published(ours, theirs, protocol="paper")
    cells = comparison[comparison["table"].isin(["6", "7", "8", "9"])]
    assert len(cells) == 2 * 8  # (performance, convergence) x 8 non-empty cells
    assert cells["published"].notna().all() and cells["ours"].notna().all()
    moved = cells[cells["difference"] != 0]
    assert list(zip(moved["table"], moved["row"], moved["column"])) == [("6", "speech", "lendb 9k")]
    cell = moved.iloc[0]
    assert cell["published"] == pytest.approx(c * cell["ours"] - 100 * (c - 1), rel=1e-12)
    assert cell["difference"] == pytest.approx(cell["ours"] - cell["published"], rel=1e-12)
    # the convergence rates were not touched: neither are the convergence win counts
    convergence = comparison[comparison["table"] == "wins_convergence"]
    assert len(convergence) == 2 * len(stats.GROUP_ROWS) and (convergence["difference"] == 0).all()
    wins = comparison[comparison["table"] == "wins_performance"]
    assert set(wins["row"]) == set(stats.GROUP_ROWS)


def test_comparison_names_the_protocol_of_each_side():
    rng = np.random.default_rng(6)
    ours = experiment(rng)
    comparison = compare_with_published(ours, ours.copy(), protocol="validation",
                                        label="validation (referents_as_regression=on)")
    assert set(comparison["ours_protocol"]) == {"validation (referents_as_regression=on)"}
    assert set(comparison["published_protocol"]) == {"paper (the authors' code and published runs)"}
    # The same runs on both sides, whose validation and test metrics are equal here: both
    # protocols select the same multipliers, and no cell or count differs.
    assert len(comparison) > 2 * 8 and comparison["published"].notna().all()
    assert (comparison["difference"] == 0).all()


def test_referents_beside_the_published_ones():
    ours_jobs, their_jobs = [], []
    for run in range(7):
        their_jobs.append(job("referent", arch="tcn", target="sp500", run=run, test=100.0 + run))
        their_jobs.append(job("referent", arch="tcn", target="emg", run=run, test=0.5))
    for run in range(5):  # clearly worse than theirs: every one above their largest
        ours_jobs.append(job("referent", arch="tcn", target="sp500", run=run, test=200.0 + 10 * run))
    ours_jobs.append(job("referent", arch="tcn", target="sp500", run=5, test=None, status="diverged"))
    comparison = compare_referents(table(ours_jobs), table(their_jobs), label="paper").set_index(
        ["arch", "target", "variant"])
    assert list(comparison.index) == [("tcn", "sp500", "1k5")]  # only targets whose referents ran
    row = comparison.loc[("tcn", "sp500", "1k5")]
    assert (row["ours_n"], row["published_n"], row["ours_n_diverged"]) == (5, 7, 1)
    assert row["ours_median"] == 220.0 and row["published_median"] == 103.0
    assert (row["ours_q1"], row["ours_q3"]) == (210.0, 230.0)
    assert (row["published_q1"], row["published_q3"]) == (101.5, 104.5)
    # complete separation of 5 and 7 values: the exact two-sided p is 2 / C(12, 5)
    assert row["p"] == pytest.approx(2 / math.comb(12, 5))
    assert row["ours_protocol"] == "paper" and row["median_ratio"] == pytest.approx(220 / 103)


def test_published_models_record_the_authors_switches(tmp_path):
    archive = tmp_path / "pub.tar.gz"
    metrics = json.dumps({"bestEpoch": 1, "lastEpoch": 2, "mae": [3.0, 2.0], "f1": [],
                          "convergence_rate": 0.5}).encode()
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("magnet-speech8khz-sp5001k5_0-0.5", "magnet-sp5001k5_0"):
            info = tarfile.TarInfo(f"our_models/{name}/metrics.json")
            info.size = len(metrics)
            tar.addfile(info, io.BytesIO(metrics))
    published = load_published(archive).set_index("kind")
    finetune, referent = published.loc["finetune"], published.loc["referent"]
    assert finetune["switch_adam_step_per_multiplier_group"] and finetune["switch_magnet_dropout_at_inference"]
    assert finetune["switch_test_curves"] and finetune["switch_duplicate_single_channel"]
    assert pd.isna(referent["switch_adam_step_per_multiplier_group"])  # does not shape a referent
    assert pd.isna(referent["switch_referents_as_regression"])  # S&P 500 is regression


def test_analysis_without_finetuned_models_is_empty_not_an_error():
    df = table([job("referent", target="lendb", run=0), job("pretrain", source=None, target="lomax", variant=None, run=None)])
    analysis = stats.analyse(df, "validation")
    assert analysis["pairs"].empty and analysis["domains_performance"].empty
    totals = analysis["table3"].set_index("group").loc["total"]
    assert totals["wins"] == 0 and totals["n"] == 0


def test_referents_command_prints_the_comparison(tmp_path, capsys):
    from tstransfer.analysis import referents

    for run in range(3):
        folder = tmp_path / "results" / "referent" / "tcn" / "sp500" / "1k5" / f"run{run}"
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps(job("referent", arch="tcn", target="sp500", run=run,
                                                           test=10.0 + run)))
    archive = tmp_path / "pub.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for run in range(7):
            body = json.dumps({"bestEpoch": 1, "lastEpoch": 1, "mae": [20.0 + run], "f1": [],
                               "convergence_rate": 0.5}).encode()
            info = tarfile.TarInfo(f"our_models/tcn-sp5001k5_{run}/metrics.json")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    assert referents.main([str(tmp_path / "results"), str(archive), "--label", "paper",
                           "--csv", str(tmp_path / "out.csv")]) == 0
    printed = capsys.readouterr().out
    assert "| tcn | sp500 | 1k5 | mae | 3 | 11 | 10.5 | 11.5 | 7 | 23 | 21.5 | 24.5 |" in printed
    assert "ours: paper; published: paper (the authors' code and published runs)" in printed
    assert pd.read_csv(tmp_path / "out.csv")["ours_n"].tolist() == [3]
    assert referents.main([str(tmp_path / "empty"), str(archive)]) == 2


# ------------------------------------------------------ robust summaries and HTML


@pytest.mark.parametrize(
    "gains, driven",
    [
        ([10.0, 11.0, 9.0, 10.0, 12.0], False),  # runs agree
        ([1.0, 1.0, 1.0, 1.0, 100.0], True),  # one run makes the mean 20.8; without it 1
        ([5.0, 5.0, 5.0, -40.0], True),  # one run flips the sign: mean -6.25, without it 5
        ([8.0, 10.0, 12.0], False),  # leaving out 8 moves the mean by 1 of 10
        ([0.0, 0.0, 3.0], True),  # mean 1, without the 3: 0 (moved by 100 %)
        ([4.0], True),  # a mean of one run is that run
        ([], False),
    ],
)
def test_single_run_rule(gains, driven):
    summary = stats.robust_summary(gains)
    assert summary["single_run_driven"] is driven
    if gains:
        assert summary["median"] == pytest.approx(np.median(gains))


def test_single_run_rule_threshold_and_nan():
    # Leaving out the 16 moves the mean from 7 to 4: by 3, i.e. 43 % of 7 (not flagged at 50 %).
    gains = [4.0, 4.0, 4.0, 16.0]
    assert stats.robust_summary(gains)["mean_without_extreme"] == pytest.approx(4.0)
    assert not stats.robust_summary(gains)["single_run_driven"]
    assert stats.robust_summary(gains, shift=0.4)["single_run_driven"]
    assert stats.robust_summary([np.nan, *gains]) == stats.robust_summary(gains)


def failed_finetune(df, arch="tcn", source="lomax", target="lendb", run=0, factor=30.0):
    """The fine-tuned models of one run barely trained: their MAE is ``factor`` times too large."""
    index = df[(df["kind"] == "finetune") & (df["arch"] == arch) & (df["source"] == source)
               & (df["target"] == target) & (df["run"] == run)].index
    df = df.copy()
    df.loc[index, ["test_metric", "val_metric"]] *= factor
    return df


def test_one_failed_run_is_flagged_and_the_median_resists_it():
    df = failed_finetune(experiment(np.random.default_rng(7), runs=5))
    analysis = stats.analyse(df, "validation")
    cells = analysis["domains_performance"].set_index(stats.CELL_KEYS)
    hit, clean = cells.loc[("lomax", "lendb", "1k5")], cells.loc[("lomax", "emg", "1k5")]
    pairs = analysis["pairs"].set_index(stats.CELL_KEYS).loc[("lomax", "lendb", "1k5")]
    assert hit["value"] == pytest.approx(pairs["gain_performance"].mean())  # the paper's headline stays
    assert hit["value"] < -200  # one run's -2900 % gain outweighs nine runs of +10 %
    assert hit["single_run_driven"] and not clean["single_run_driven"]
    assert hit["median"] == pytest.approx(10.0, abs=2.0)  # the planted 10 % effect
    figure8 = analysis["figure8"].set_index(["arch", "omega"])
    assert {"median_performance", "single_run_driven_performance"} <= set(figure8.columns)
    tables = build_tables(analysis)
    markdown = render_markdown(tables["table6_performance_seismology"])
    assert f"(median {format_percent(hit['median'])}% †)" in markdown
    assert "†" not in render_markdown(tables["table6_performance_seismology"]).split("LEN-DB 9k |")[0]
    assert r"\dag{}" in render_latex(tables["table6_performance_seismology"])
    for name in ("table2_stream_max", "figure8_data", "per_architecture_performance"):
        assert tables[name].extras is not None, name


def test_html_tables_carry_values_marks_and_flags(tmp_path):
    from tstransfer.analysis import html

    # S&P 500 a source too: a table's rows are the sources its results hold.
    df = failed_finetune(experiment(np.random.default_rng(8), runs=5, sources=("lomax", "speech", "sp500")))
    tables = build_tables(stats.analyse(df, "validation"))
    table6 = tables["table6_performance_seismology"]
    page = html.table_page(table6)
    assert page.count("<table>") == 1 and page.count("<tr>") == 1 + len(table6.display)
    cell = table6.data.set_index(stats.CELL_KEYS).loc[("lomax", "lendb", "1k5")]
    assert cell["single_run_driven"] and cell["significant"] and cell["value"] < 0
    assert f'<td class="negative flagged">{format_percent(cell["value"])}% ↓<span class="extra">median' in page
    assert '<td class="positive">' in page  # the other, significant cells
    assert "S&amp;P 500" in page and "S&P 500" not in page
    frame = pd.DataFrame({"a": range(5), "b": [0.123456, np.nan, 1.0, 2.0, 3.0],
                          "c": pd.array([1, None, 3, 4, 5], dtype="Int64")})
    text = html.frame_page("t", frame)
    # 4 significant digits; NaN and pandas' NA (nullable columns: results.html's run, seed) empty
    assert "<td>0</td><td>0.1235</td><td>1</td>" in text and "<td>1</td><td></td><td></td>" in text
    assert "The first 2 of 5 rows" in html.frame_fragment(frame, max_rows=2)


def test_heatmap_colour_limit_is_a_percentile():
    from tstransfer.analysis.figures import colour_limit

    values = np.array([[1.0, -2.0, 3.0, np.nan], [4.0, -5.0, 6.0, 7.0], [8.0, 9.0, -10.0, 5500.0]])
    limit = colour_limit(values)
    finite = np.abs(values[np.isfinite(values)])
    assert limit == pytest.approx(np.percentile(finite, 90)) and limit < 5500
    assert colour_limit(np.full((2, 2), np.nan)) == 1.0


def test_summary_counts_sign_tests_cells_jobs_and_the_published_comparison():
    from tstransfer.analysis import summary

    rng = np.random.default_rng(9)
    ours = experiment(rng, runs=4)
    index = ours[(ours["kind"] == "finetune") & (ours["arch"] == "magnet") & (ours["run"] == 1)].index
    ours.loc[index[:3], "status"] = "diverged"
    expected = {"pretrain": 4, "referent": 16, "finetune": 64, "stream_max": 0}
    theirs = experiment(np.random.default_rng(10), runs=4, effect=-0.1)
    comparison = compare_with_published(ours, theirs)
    numbers = summary.build_summary(ours, "validation", label="validation (x=on)", switches={"test_curves": False},
                                    expected_jobs=expected, comparison=comparison)
    analysis = stats.analyse(ours, "validation")
    total = analysis["table3"].set_index("group").loc["total"]
    page_total = next(r for r in numbers["sign_tests"]["performance"] if r["group"] == "total")
    assert (page_total["wins"], page_total["losses"]) == (total["wins"], total["losses"])
    table6 = analysis["domains_performance"]
    table6 = table6[table6["target"].isin(stats.SEISMOLOGY)]
    assert numbers["significant_cells"]["Table 6"]["significant_positive"] == int((table6["significant"] & (table6["value"] > 0)).sum())
    jobs = numbers["size"]["jobs"]
    assert jobs["finetune"] == {"expected": 64, "done": int((ours["kind"] == "finetune").sum()), "diverged": 3}
    published = {row["table"]: row for row in numbers["published"]}
    assert published["6"]["same_sign"] == 0  # ours gain 10 %, theirs lose 10 %: every sign differs
    page = summary.summary_page(numbers)
    assert "validation (x=on)" in page and "test_curves" in page
    assert f"{page_total['wins']} / {page_total['losses']}" in page
    # Table 10 on the page: the run's architectures (MagNet, TCN), not the ones it did not train.
    assert "MagNet" in page and "TCN" in page
    assert "ConvNetQuake INGV" not in page and "MLSTM FCN" not in page
    no_published = summary.summary_page(summary.build_summary(ours, "validation"))
    assert "No published results were imported" in no_published


def test_summary_opens_on_the_gain_heatmap_and_the_estimators_validation(tmp_path):
    """The summary's first section: the heatmap of every (source, target variant) and the
    harness's table, the best estimator named; a study without selection says so."""
    import base64

    from tstransfer.analysis import figures, summary
    from tstransfer.selection import validation

    ours = experiment(np.random.default_rng(12), runs=4)
    gains = validation.mean_gains(ours, keys=validation.STUDY_KEYS)
    # Two scorers of known quality: one ranks by the measured gain, one against it.
    scores = pd.concat([gains.assign(estimator="follows_gain", score=gains["gain"]),
                        gains.assign(estimator="against_gain", score=-gains["gain"])])
    per_target, estimators = validation.study_tables(scores, ours)
    assert set(per_target.groupby("estimator")["top1"].mean().items()) == {("follows_gain", 1.0), ("against_gain", 0.0)}
    best = validation.best_estimator(estimators)
    assert best["estimator"] == "follows_gain" and best["regret"] == 0.0
    analysis = stats.analyse(ours, "validation")
    png = figures.plot_study_heatmap(analysis["domains_performance"], analysis["study"], tmp_path / "heatmap")[0]
    numbers = summary.build_summary(ours, "validation", analysis=analysis,
                                    selection={"summary": estimators.to_dict("records"), "best": best})
    page = summary.summary_page(numbers, png.read_bytes())
    assert base64.b64encode(png.read_bytes()).decode() in page
    assert "Best estimator on this study: <b>follows_gain</b>" in page
    for name in ("follows_gain", "against_gain", validation.RANDOM):
        assert f"<tr><th>{name}</th>" in page
    assert page.index("tstl-gain-heatmap") < page.index("Does transfer help?")
    off = summary.summary_page(summary.build_summary(ours, "validation"))
    assert "Source selection was not validated on this study" in off and "tstl-gain-heatmap" not in off
