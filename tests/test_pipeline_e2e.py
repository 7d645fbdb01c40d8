"""The whole DAG end to end on a tiny synthetic config, then partial reruns.

One workflow run (every rule from raw files to the archive, through the job server;
``finished_run`` in conftest.py) is shared by these tests and the SLURM tests; it takes
about a minute here. It runs with a PATH on which ``python`` cannot import the project
(tests/workflow_runs.py).
"""

import json
import math
import os
import shutil
import subprocess
import sys

import pytest
import yaml
from shared_data import REAL_SP500, require
from workflow_runs import ROOT, TRAINING_KINDS, planned_jobs, snakemake

pytestmark = pytest.mark.slow


def test_every_output_exists(finished_run, bare_env):
    results = finished_run / "results"
    for dataset in ("lomax", "lendb", "stead", "speech", "emg", "sp500"):
        assert (results / "data" / f"{dataset}.zarr" / "zarr.json").is_file()
    cells = sorted(results.glob("finetune/*/*/*/*/run*/omega*/result.json"))
    assert len(cells) == 1 * 2 * 1 * 2 * 2  # arch x (source, target) pairs x variant x runs x omegas
    training = sorted(results.glob("*/**/result.json"))
    kinds = [path.relative_to(results).parts[0] for path in training]
    assert {kind: kinds.count(kind) for kind in set(kinds)} == {
        "pretrain": 2 * 2,  # sources x seeds
        "referent": 2 * 1 * 2,  # targets x variant x runs
        "finetune": len(cells),
        "stream_max": 2,  # with and without, one seed
    }
    for path in training:
        result = json.loads(path.read_text())
        # Every model of this config trains normally: a diverged or failed run is a bug here.
        assert result["status"] == "ok", path
        assert math.isfinite(result["test_metric"]) and math.isfinite(result["val_metric"]), path
        assert result["kind"] == path.relative_to(results).parts[0], path
    assert (results / "tables" / "results.parquet").is_file()
    assert (results / "analysis" / "done").is_file()
    assert any((results / "analysis" / "figures").glob("*.png"))
    # The fine-tuning proxy (rule selection_proxy): run 0 at omega 1.0 read as a 2-epoch run,
    # which these runs are (max_epochs 2), so each run's own validation metric, oriented.
    import pandas as pd

    proxy = pd.read_csv(results / "analysis" / "selection_proxy_scores.csv")
    assert len(proxy) == 2 and set(proxy["estimator"]) == {"finetune_proxy"}
    for row in proxy.itertuples():
        run0 = results / "finetune" / row.arch / row.source / row.target / row.variant / "run0" / "omega1.0"
        cell = json.loads((run0 / "result.json").read_text())
        assert row.score == pytest.approx(cell["val_metric"] * (1 if cell["task"] == "classification" else -1))
    manifest = (results / "MANIFEST.sha256").read_text().splitlines()
    assert any(line.endswith("tables/results.csv") for line in manifest)
    assert not any(".zarr/" in line or line.endswith(".keras") for line in manifest)
    provenance = json.loads((results / "PROVENANCE.json").read_text())
    assert provenance["config"]["architectures"] == ["convnetquake_ingv"]
    assert "ended with 0" in (results / "logs" / "jobserver.log").read_text()
    # Nothing left to do: the run is complete and up to date.
    assert "Nothing to be done" in snakemake(finished_run, bare_env, "-n").stdout


def test_job_server_and_in_process_runs_agree(finished_run, tmp_path):
    cell = "results/finetune/convnetquake_ingv/emg/sp500/1k5/run1/omega0.5"
    served = json.loads((finished_run / cell / "result.json").read_text())
    # result.json records exactly the spec the workflow built for the job, in one place
    from tstransfer.plan import job_spec

    config = yaml.safe_load((finished_run / "config.yaml").read_text())
    assert served["config"] == job_spec(config, kind="finetune", arch="convnetquake_ingv", dataset="sp500")
    spec = json.dumps(served["config"])
    env = {k: v for k, v in os.environ.items() if k != "TSTRANSFER_JOBSERVER"}
    subprocess.run(
        [sys.executable, "-m", "tstransfer.cli", "finetune", "--spec", spec,
         "--arch", "convnetquake_ingv", "--source", "emg", "--target", "sp500", "--variant", "1k5",
         "--run", "1", "--omega", "0.5",
         "--pretrained", "results/pretrain/convnetquake_ingv/emg/selected/model.keras",
         "--store", "results/data/sp500.zarr", "--subset", "results/data/subsets/sp500/1k5/run1.npz",
         "--out", str(tmp_path / "cell"), "--threads", "1"],
        cwd=finished_run, env=env, check=True, capture_output=True,
    )
    alone = json.loads((tmp_path / "cell" / "result.json").read_text())
    for key in ("status", "best_epoch", "last_epoch", "val_metric", "test_metric", "seed"):
        assert alone[key] == served[key], key
    # the rule's one thread reached TensorFlow in the server's forked child and in a process of its own
    assert served["tf_threads"] == alone["tf_threads"] == {"intra_op": 1, "inter_op": 1}


def test_config_change_reruns_only_the_jobs_it_shapes(finished_run, bare_env):
    config = yaml.safe_load((finished_run / "config.yaml").read_text())
    config["datasets"]["emg"]["stream_max"] = not config["datasets"]["emg"]["stream_max"]
    changed = finished_run / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    done = snakemake(finished_run, bare_env, "-n", configfile=str(changed))
    training = [(rule, wc) for rule, wc in planned_jobs(done.stdout)
                if rule in TRAINING_KINDS]
    assert training, "flipping datasets.emg.stream_max reran nothing"
    for rule, wc in training:
        assert "emg" in (wc.get("source"), wc.get("target"), wc.get("dataset")), (rule, wc)
    rules = {rule for rule, _ in training}
    assert {"pretrain", "referent", "finetune"} <= rules
    assert not any(rule == "referent" and wc["target"] == "sp500" for rule, wc in training)


def test_forcerun_of_one_cell_reruns_that_cell_alone(finished_run, bare_env):
    cell = "results/finetune/convnetquake_ingv/sp500/emg/1k5/run0/omega1.0/result.json"
    done = snakemake(finished_run, bare_env, "-n", "-f", cell)
    jobs = planned_jobs(done.stdout)
    assert [rule for rule, _ in jobs] == ["finetune"]
    assert jobs[0][1] == {
        "arch": "convnetquake_ingv", "source": "sp500", "target": "emg",
        "variant": "1k5", "run": "0", "omega": "1.0",
    }


def test_verify_names_changed_and_missing_files_without_rebuilding(finished_run, bare_env, tmp_path):
    run = tmp_path / "run"  # a copy: it damages the tree, which other modules share
    shutil.copytree(finished_run, run, symlinks=True)
    assert snakemake(run, bare_env, "--cores", "1", "verify").returncode == 0
    results = run / "results"
    (results / "tables" / "results.csv").write_text("tampered\n")
    (results / "analysis" / "done").unlink()
    done = snakemake(run, bare_env, "--cores", "1", "verify", check=False)
    assert done.returncode != 0
    log = (results / "logs" / "verify.log").read_text()
    assert "changed: tables/results.csv" in log
    assert "missing: analysis/done" in log
    assert not (results / "analysis" / "done").exists()  # verify reported, it did not rebuild


def test_sp500_path_naming_the_real_file_converts_through_the_workflow(tmp_path, bare_env):
    """README: `datasets.<name>.path` may name the raw file itself, with nothing else set."""
    require(REAL_SP500, "the real S&P 500 file")
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    config["raw_data"] = "download"
    config["datasets"]["sp500"]["path"] = str(REAL_SP500)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(tmp_path, bare_env, "--cores", "1", "results/data/sp500.zarr")
    store = tmp_path / "results" / "data" / "sp500.zarr"
    attrs = json.loads((store / "zarr.json").read_text())["attributes"]
    assert attrs["n_instances"] == 22_684
    assert attrs["extraction"]["file"] == REAL_SP500.name
    assert not (tmp_path / config["raw_dir"]).exists()  # nothing was downloaded


def test_the_report_opens_on_the_summary_in_a_browser(finished_run, bare_env, tmp_path):
    """`snakemake --report`: the landing page inlines the summary; every table has its HTML page."""
    from browser import dump_dom, ink_fraction, require_chromium, screenshot

    chromium = require_chromium()
    summary = json.loads((finished_run / "results" / "analysis" / "summary_page.json").read_text())
    total = next(row for row in summary["sign_tests"]["performance"] if row["group"] == "total")
    assert summary["size"]["jobs"]["finetune"] == {"expected": 8, "done": 8, "diverged": 0}
    report = tmp_path / "report.html"
    snakemake(finished_run, bare_env, "--report", str(report))
    text = report.read_text()
    for stem in ("table3_wins_performance", "table6_performance_seismology", "figure8_data"):
        assert f"{stem}.html" in text and f"{stem}.csv" in text, stem
    assert "results.html" in text
    dom = dump_dom(chromium, report.as_uri(), tmp_path / "profile")
    assert "Wins and losses with the sign test" in dom  # on the landing page, built by the report's JS
    assert f"{total['wins']} / {total['losses']}" in dom
    assert "Size of this run" in dom and "Protocol and switches in force" in dom
    # It opens on the gain heatmap beside the source-selection estimators (rules/selection.smk).
    assert 'id="tstl-gain-heatmap"' in dom and "Source-selection estimators against the measured gains" in dom
    png = screenshot(chromium, report.as_uri(), tmp_path / "report.png", tmp_path / "profile")
    assert ink_fraction(png) > 0.02, "the report's landing page rendered (nearly) blank"
