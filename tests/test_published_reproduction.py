"""The authors' per-run results reproduce the paper's Tables 3, 4, 6-10 with our code.

Expected values are transcribed from the published paper (Otovic et al., Tables 3, 4,
6-10; ``shared/paper``). The paper's text version has lost the cell colours that mark
significance in Tables 6-9, so the significant cells are transcribed from the authors'
published reports of the same tables (repository ecokeco/tstl, commit f3497acd,
``our_reports/domains_comparison_{performance,convergence_rate}.tex``: green = TL
significantly better, red = significantly worse), which the paper's prose agrees with
(checked below as well).

Skips when ``../shared/data/published-results`` is absent (fails under ``CI=true``).
"""

from __future__ import annotations

import json
import re
import tarfile
from collections import defaultdict

import pytest

from tstransfer import registry
from tstransfer.analysis import stats
from tstransfer.analysis.published import load_published
from tstransfer.analysis.tables import compare_with_published, format_percent

try:  # tests/ is on sys.path as a rootdir-less folder; as a package if one adds __init__
    from shared_data import PUBLISHED_RESULTS as ARCHIVE
    from shared_data import require
except ImportError:  # pragma: no cover
    from tests.shared_data import PUBLISHED_RESULTS as ARCHIVE
    from tests.shared_data import require


@pytest.fixture(autouse=True, scope="module")
def _published_archive():
    """Every test here reads the authors' archive: skip without it (fail under CI=true)."""
    require(ARCHIVE, "the authors' published results")

SOURCES = ["lomax", "lendb", "stead", "speech", "emg", "sp500"]
SEISMIC_COLUMNS = [("lomax", "1k5"), ("lomax", "9k"), ("lendb", "1k5"), ("lendb", "9k"), ("stead", "1k5"), ("stead", "9k")]
OTHER_COLUMNS = [("speech", "1k5"), ("speech", "9k"), ("emg", "1k5"), ("emg", "9k"), ("sp500", "1k5"), ("sp500", "9k")]

# Paper tables as printed, percent; rows in SOURCES order, None where source == target.
TABLE6 = [
    [None, None, "8.21", "3.17", "6.63", "3.96"],
    ["8.25", "4.01", None, None, "2.49", "2.52"],
    ["1.16", "-1.87", "0.56", "-0.52", None, None],
    ["9.29", "3.58", "4.47", "3.19", "-2.31", "0.07"],
    ["9.12", "5.34", "-0.06", "0.41", "1.15", "2.04"],
    ["0.12", "0.12", "-0.92", "1.14", "-7.23", "-2.29"],
]
TABLE7 = [
    ["45.7", "871", "24.2", "17.6", "45.4", "22.8"],
    ["309", "1210", "21.9", "12.1", "44.4", "22.1"],
    ["323", "1080", "18.7", "10", "44.3", "22.7"],
    [None, None, "13.5", "9.87", "44.1", "21.6"],
    ["367", "1820", None, None, "41.8", "18.2"],
    ["122", "885", "15.2", "11.9", None, None],
]
TABLE8 = [
    [None, None, "9.08", "-3.15", "16.6", "11.6"],
    ["11.6", "6.72", None, None, "17.5", "11.8"],
    ["16.5", "4.59", "22.6", "7.59", None, None],
    ["10.2", "3.19", "5.45", "1.35", "6.73", "8.71"],
    ["10.1", "5.76", "14.9", "-0.31", "8.98", "12.8"],
    ["4.04", "4.33", "13.8", "-1.39", "9.76", "13.9"],
]
TABLE9 = [
    ["0.12", "4.55", "13.3", "-1.89", "6.37", "5.39"],
    ["1.13", "7.87", "17.0", "-3.67", "6.43", "3.66"],
    ["2.35", "3.4", "17.3", "-7.19", "6.16", "9.7"],
    [None, None, "13.9", "-5.11", "6.13", "3.13"],
    ["5.76", "9.35", None, None, "6.2", "8.25"],
    ["4.8", "5.75", "8.12", "-6.09", None, None],
]
# One misprint: the paper prints S&P 500 -> LOMAX 9k as 0.12 %, but the authors' own
# report of the same table (our_reports/domains_comparison_performance.tex) prints
# 0.106 %, which is what the data give (0.11 at the paper's precision).
MISPRINTS = {("performance", "sp500", "lomax", "9k"): ("0.12", "0.106")}

# Significant cells (corrected p <= 0.05): (source, target, variant) -> +1 green / -1 red.
SIGNIFICANT_PERFORMANCE = {
    **{("lomax", t, v): 1 for t in ("lendb", "stead", "speech", "emg", "sp500") for v in ("1k5", "9k")},
    **{("lendb", t, v): 1 for t in ("lomax", "stead", "speech", "emg", "sp500") for v in ("1k5", "9k")},
    **{("stead", t, v): 1 for t in ("speech", "emg", "sp500") for v in ("1k5", "9k")},
    ("speech", "lomax", "1k5"): 1, ("speech", "lomax", "9k"): 1,
    ("speech", "lendb", "1k5"): 1, ("speech", "lendb", "9k"): 1,
    ("speech", "stead", "1k5"): -1,
    ("speech", "emg", "1k5"): 1, ("speech", "sp500", "1k5"): 1, ("speech", "sp500", "9k"): 1,
    ("emg", "lomax", "1k5"): 1, ("emg", "lomax", "9k"): 1, ("emg", "stead", "9k"): 1,
    **{("emg", t, v): 1 for t in ("speech", "sp500") for v in ("1k5", "9k")},
    ("sp500", "stead", "1k5"): -1, ("sp500", "stead", "9k"): -1,
    **{("sp500", t, v): 1 for t in ("speech", "emg") for v in ("1k5", "9k")},
}
SIGNIFICANT_CONVERGENCE = {
    ("lomax", "emg", "1k5"): 1, ("lomax", "sp500", "1k5"): 1, ("lomax", "sp500", "9k"): 1,
    ("lendb", "lomax", "1k5"): 1, ("lendb", "speech", "9k"): 1, ("lendb", "emg", "1k5"): 1,
    ("lendb", "sp500", "1k5"): 1,
    ("stead", "lomax", "1k5"): 1, ("stead", "lendb", "1k5"): 1, ("stead", "emg", "1k5"): 1,
    ("stead", "emg", "9k"): -1, ("stead", "sp500", "1k5"): 1, ("stead", "sp500", "9k"): 1,
    ("speech", "lendb", "1k5"): 1, ("speech", "emg", "1k5"): 1, ("speech", "sp500", "1k5"): 1,
    ("speech", "sp500", "9k"): 1,
    ("emg", "speech", "9k"): 1, ("emg", "sp500", "1k5"): 1, ("emg", "sp500", "9k"): 1,
    ("sp500", "stead", "1k5"): 1, ("sp500", "emg", "9k"): -1,
}

# Tables 3 and 4: group -> (wins, losses).
TABLE3 = {"intra": (43, 5), "cross": (161, 31), "seismology_to_other": (66, 6),
          "other_to_seismology": (52, 20), "other_to_other": (43, 5), "total": (204, 36)}
TABLE4 = {"intra": (28, 20), "cross": (125, 67), "seismology_to_other": (52, 20),
          "other_to_seismology": (36, 36), "other_to_other": (37, 11), "total": (153, 87)}
# Table 10: group -> wins per architecture (ConvNetQuake INGV, MagNet, MLSTM FCN, TCN), of n.
TABLE10 = {
    "intra": ((9, 12, 12, 10), 12),
    "cross": ((42, 42, 39, 38), 48),
    "seismology_to_other": ((17, 18, 14, 17), 18),
    "other_to_seismology": ((13, 13, 15, 11), 18),
    "other_to_other": ((12, 11, 10, 10), 12),
    "total": ((51, 54, 51, 48), 60),
}


@pytest.fixture(scope="module")
def published():
    return load_published(ARCHIVE)


@pytest.fixture(scope="module")
def analysis(published):
    return stats.analyse(published, "paper")


def _expected_cells(which):
    tables = (TABLE6, TABLE7) if which == "performance" else (TABLE8, TABLE9)
    for table, columns in zip(tables, (SEISMIC_COLUMNS, OTHER_COLUMNS)):
        for source, row in zip(SOURCES, table):
            for (target, variant), printed in zip(columns, row):
                if printed is not None:
                    yield source, target, variant, printed


def test_archive_imports_every_model(published):
    counts = published["kind"].value_counts()
    assert counts["referent"] == 336
    assert counts["finetune"] == 16800
    assert set(published["arch"]) == set(registry.PAPER_ARCHITECTURES)
    assert set(published["target"]) == set(stats.DATASETS)
    assert (published["status"] == "ok").all()
    assert published["val_metric"].isna().all()


@pytest.mark.parametrize("which", ["performance", "convergence"])
def test_domain_tables_match_paper_values(analysis, which):
    cells = analysis[f"domains_{which}"].set_index(["source", "target", "variant"])
    assert len(cells) == 60
    assert (cells["n_pairs"] == 28).all()
    mismatches = []
    for source, target, variant, printed in _expected_cells(which):
        value = cells.loc[(source, target, variant), "value"]
        misprint = MISPRINTS.get((which, source, target, variant))
        if misprint is not None:
            # Paper misprint: ours must equal the authors' own report and differ from the paper.
            assert f"{value:.3g}" == misprint[1]
            assert float(format_percent(value)) != float(misprint[0])
            continue
        # Numbers at the paper's printed precision (3 significant digits, at most 2 decimals).
        if float(format_percent(value)) != float(printed):
            mismatches.append((source, target, variant, printed, value))
    assert not mismatches, mismatches


@pytest.mark.parametrize(
    "which, expected",
    [("performance", SIGNIFICANT_PERFORMANCE), ("convergence", SIGNIFICANT_CONVERGENCE)],
)
def test_domain_tables_match_paper_significance(analysis, which, expected):
    cells = analysis[f"domains_{which}"]
    significant = {
        (c.source, c.target, c.variant): (1 if c.value > 0 else -1)
        for c in cells.itertuples()
        if c.significant
    }
    assert significant == expected


def test_paper_prose_on_significance(analysis):
    perf = analysis["domains_performance"].set_index(["source", "target", "variant"]).sort_index()
    conv = analysis["domains_convergence"].set_index(["source", "target", "variant"]).sort_index()
    # "models pre-trained on [STEAD] had no statistically significant differences" (Table 6).
    assert not perf.loc[("stead", "lomax")]["significant"].any()
    assert not perf.loc[("stead", "lendb")]["significant"].any()
    # "negative transfer was only observed when the source was SPEECH or S&P 500 and the target STEAD".
    negative = perf[perf["significant"] & (perf["value"] < 0)].index
    assert {(s, t) for s, t, _ in negative} == {("speech", "stead"), ("sp500", "stead")}
    # "LOMAX and LEN-DB did not significantly accelerate the convergence on STEAD" (Table 8).
    assert not conv.loc[(["lomax", "lendb"], "stead"), "significant"].any()
    # EMG targets: significantly slower convergence on 9k occurs, faster on 1k5.
    emg = conv.xs("emg", level="target")
    assert (emg[emg["significant"]].xs("9k", level="variant")["value"] < 0).all()
    assert (emg[emg["significant"]].xs("1k5", level="variant")["value"] > 0).all()


@pytest.mark.parametrize("which, expected", [("table3", TABLE3), ("table4", TABLE4)])
def test_wins_and_losses_by_domain_group(analysis, which, expected):
    table = analysis[which].set_index("group")
    got = {group: (int(table.loc[group, "wins"]), int(table.loc[group, "losses"])) for group in expected}
    assert got == expected
    assert table.loc["total", "critical_value"] == 136
    assert bool(table.loc["total", "significant"])


def test_wins_per_architecture(analysis):
    # the paper's four rows; FCN (registered for the real-data study) ran in none of its jobs
    assert set(analysis["table10"]["arch"]) == set(registry.PAPER_ARCHITECTURES)
    table = analysis["table10"].set_index(["group", "arch"])
    for group, (wins, n) in TABLE10.items():
        got = tuple(int(table.loc[(group, arch), "wins"]) for arch in registry.PAPER_ARCHITECTURES)
        assert got == wins, group
        assert all(table.loc[(group, arch), "n"] == n for arch in registry.PAPER_ARCHITECTURES)
    losses = tuple(int(table.loc[("total", arch), "losses"]) for arch in registry.PAPER_ARCHITECTURES)
    assert losses == (9, 6, 9, 12)


# The paper's printed Table 5, rows convergence worse/better, columns performance worse/better.
PRINTED_TABLE5 = [10, 77, 13, 140]


def _table5_by_hand(archive_path) -> list[int]:
    """Table 5 straight from the authors' metrics.json files, by a plain loop.

    Independent of tstransfer's importer and statistics: parse each model name, take the
    test metric at the best epoch, pick each run's multiplier by the best test metric
    (the authors' rule; ties to the smaller multiplier), average the 7 runs of each
    (arch, source, target, variant) triplet for the referent and the transfer model,
    and classify the triplet by the sign of the two mean differences.
    Returns counts for (conv worse, perf worse), (conv worse, perf better),
    (conv better, perf worse), (conv better, perf better).
    """
    classification = {"speech8khz", "emg"}
    name_re = re.compile(r"^(?:\./)?our_models/([^/]+)/metrics\.json$")
    target_re = re.compile(r"^(.+?)(1k5|9k)_(\d+)$")
    referents = {}  # (arch, target, variant, run) -> (metric, convergence rate)
    grids = defaultdict(list)  # (arch, source, target, variant, run) -> [(omega, metric, cr)]
    with tarfile.open(archive_path, mode="r|gz") as archive:
        for member in archive:
            match = name_re.match(member.name)
            if not match or not member.isfile():
                continue
            metrics = json.load(archive.extractfile(member))
            parts = match[1].split("-")
            target, variant, run = target_re.match(parts[-1] if len(parts) == 2 else parts[2]).groups()
            curve = metrics["f1"] if target in classification else metrics["mae"]
            value = (curve[metrics["bestEpoch"] - 1], metrics["convergence_rate"])
            if len(parts) == 2:
                referents[(parts[0], target, variant, run)] = value
            else:
                grids[(parts[0], parts[1], target, variant, run)].append((float(parts[3]), *value))
    triplets = defaultdict(lambda: {"ref": [], "tl": [], "ref_cr": [], "tl_cr": []})
    for (arch, source, target, variant, run), grid in grids.items():
        higher_better = target in classification
        best = None
        for omega, value, cr in sorted(grid):
            if best is None or (value > best[0] if higher_better else value < best[0]):
                best = (value, cr)
        ref_value, ref_cr = referents[(arch, target, variant, run)]
        cell = triplets[(arch, source, target, variant, higher_better)]
        cell["ref"].append(ref_value)
        cell["tl"].append(best[0])
        cell["ref_cr"].append(ref_cr)
        cell["tl_cr"].append(best[1])
    counts = [0, 0, 0, 0]
    for key, cell in triplets.items():
        assert len(cell["ref"]) == 7, key
        mean = {name: sum(values) / len(values) for name, values in cell.items()}
        higher_better = key[-1]
        perf_better = mean["tl"] > mean["ref"] if higher_better else mean["tl"] < mean["ref"]
        conv_better = mean["tl_cr"] > mean["ref_cr"]
        assert mean["tl"] != mean["ref"] and mean["tl_cr"] != mean["ref_cr"], key  # no ties here
        counts[2 * conv_better + perf_better] += 1
    return counts


def test_table5_from_a_direct_loop_over_the_published_runs(analysis):
    # The paper's Table 5 (10 / 77 / 13 / 140) cannot be reproduced: its "TL better"
    # performance column sums to 217, contradicting the 204 performance wins of its own
    # Table 3. The data give a Table 5 whose margins are Tables 3 and 4.
    by_hand = _table5_by_hand(ARCHIVE)
    assert analysis["table5"]["count"].tolist() == by_hand
    assert sum(by_hand) == 240
    assert by_hand[1] + by_hand[3] == TABLE3["total"][0]  # performance wins, Table 3
    assert by_hand[2] + by_hand[3] == TABLE4["total"][0]  # convergence wins, Table 4
    assert PRINTED_TABLE5[1] + PRINTED_TABLE5[3] != TABLE3["total"][0]  # the paper's inconsistency
    assert by_hand != PRINTED_TABLE5


def test_compare_with_published_measures_a_known_change(published):
    """Ours: the authors' runs with every fine-tuned model's test metric scaled by c.

    The grid search (by test metric, protocol "paper") picks the same multipliers, so
    each per-run performance gain g becomes c g + s 100 (c - 1) (s = +1 for F1, -1 for
    MAE), and so does each cell's mean; the convergence rates are untouched, so Tables 8
    and 9 and the convergence wins must come out equal, significance included.
    """
    c = 0.9
    ours = published.copy()
    finetune = ours["kind"] == "finetune"
    ours.loc[finetune, "test_metric"] = ours.loc[finetune, "test_metric"] * c
    comparison = compare_with_published(ours, published, protocol="paper")
    assert set(comparison["table"]) >= {"6", "7", "8", "9", "wins_performance", "wins_convergence"}

    metric = published.drop_duplicates("target").set_index("target")["metric"]
    sign = {target: -1.0 if name == "mae" else 1.0 for target, name in metric.items()}
    assert set(metric) == {"mae", "f1_weighted"}
    performance = comparison[comparison["table"].isin(["6", "7"])]
    assert len(performance) == 60 and performance["published"].notna().all()
    targets = performance["column"].str.split().str[0]
    expected = c * performance["published"] + targets.map(sign) * 100 * (c - 1)
    assert performance["ours"].to_numpy() == pytest.approx(expected.to_numpy(), rel=1e-9, abs=1e-9)
    assert (performance["difference"] - (expected - performance["published"])).abs().max() < 1e-9
    assert (performance["difference"].abs() > 0.1).all()  # a change of 10 % of the metric shows
    assert (performance["same_sign"] == ((expected > 0) == (performance["published"] > 0))).all()

    unchanged = comparison[comparison["table"].isin(["8", "9", "wins_convergence"])]
    assert len(unchanged) > 60
    assert (unchanged["difference"].abs() < 1e-12).all()
    assert unchanged["same_significance"].all()


# Supplementary per-architecture table (authors' our_reports/performance_per_model.tex):
# (arch, source, target, variant) -> (printed gain, printed uncorrected p, coloured).
PER_ARCHITECTURE = {
    ("convnetquake_ingv", "lomax", "lendb", "1k5"): ("13.6", "0.01796", True),
    ("convnetquake_ingv", "lomax", "lendb", "9k"): ("0.226", "0.7353", False),
    ("convnetquake_ingv", "lomax", "speech", "1k5"): ("-29.6", "0.02799", True),
    ("magnet", "lomax", "lendb", "9k"): ("0.7", "1.0", False),
    ("magnet", "lomax", "speech", "1k5"): ("28.1", "0.04252", True),
    ("tcn", "lendb", "lomax", "1k5"): ("16.3", "0.06298", False),
    ("mlstm_fcn", "stead", "lomax", "9k"): ("1.75", "0.09097", False),
    ("tcn", "emg", "lendb", "1k5"): ("-7.43", "0.01796", True),
    ("convnetquake_ingv", "emg", "speech", "9k"): ("4.07e+03", "0.01796", True),
}


def test_per_architecture_cells_match_authors_supplementary_table(analysis):
    cells = analysis["per_architecture_performance"].set_index(stats.TRIPLET_KEYS)
    assert len(cells) == 240 and (cells["n_pairs"] == 7).all()
    for key, (gain, p, coloured) in PER_ARCHITECTURE.items():
        row = cells.loc[key]
        assert f"{row['value']:.3}" == gain, key  # the authors' own "{:.3}" format
        assert f"{row['p']:.4}" == p, key  # normal approximation, as the authors' scipy
        assert bool(row["significant"]) == coloured, key


def test_figure8_best_multipliers_as_described(analysis):
    figure8 = analysis["figure8"]
    assert (figure8["n_pairs"] == 420).all()  # 6 sources x 5 targets x 2 variants x 7 runs
    gains = figure8.pivot(index="omega", columns="arch", values="gain_performance")
    # "ConvNetQuake INGV ... the best performance was achieved when it was 0.25".
    assert gains["convnetquake_ingv"].idxmax() == 0.25
    # "TCN was found to perform best using multipliers 0.75 and above".
    assert gains["tcn"].idxmax() >= 0.75
