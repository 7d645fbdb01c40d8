"""The whole DAG end to end on a tiny synthetic config, then partial reruns.

One workflow run (every rule from raw files to the archive, through the job server)
is shared by the tests of this module; it takes about a minute here.

Snakemake runs here as on a fresh machine where nothing is activated: the virtual
environment's ``bin/`` is off PATH, and the ``python`` on PATH is a real interpreter that
cannot import tstransfer (started with ``-I -S``: no site-packages, no PYTHONPATH). A job
that ran a bare ``python -m tstransfer...`` fails here, on any machine, whatever its
system Python has installed.
"""

import json
import math
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

try:  # tests/ is on sys.path as a rootdir-less folder; as a package if one adds __init__
    from shared_data import REAL_SP500, require
except ImportError:  # pragma: no cover
    from tests.shared_data import REAL_SP500, require

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def tiny_config() -> dict:
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    config.update(
        architectures=["convnetquake_ingv"],
        sources=["emg", "sp500"],
        targets=["emg", "sp500"],
        variants={"1k5": 60},
        runs=2,
        omegas=[0.5, 1.0],
        pretrain={"seeds": 2},
        stream_max_study={"datasets": ["sp500"], "seeds": 1},
    )
    config["training"]["max_epochs"] = 2
    config["synthetic"].update(
        lomax={"n_instances": 60, "length": 60},
        lendb={"n_instances": 60, "length": 60},
        stead={"n_instances": 60, "length": 60, "layout": "chunks", "n_chunks": 2},
        speech={"clips_per_word": 3, "n_samples": 200},
        sp500={"n_days": 400},
    )
    config["datasets"]["speech"]["extract"]["n_samples"] = 100
    return config


def environment_without_the_project(shim_dir: Path) -> dict[str, str]:
    """os.environ with no activated venv, and a ``python`` on PATH that lacks tstransfer."""
    venv_bins = {Path(sys.executable).parent.resolve(), (Path(sys.prefix) / "bin").resolve()}
    path = [
        entry for entry in os.environ.get("PATH", "").split(os.pathsep)
        if entry and Path(entry).resolve() not in venv_bins
    ]
    base_interpreter = os.path.realpath(sys.executable)  # the venv's python links to it
    shim_dir.mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3"):
        shim = shim_dir / name
        shim.write_text(f'#!/bin/sh\nexec {shlex.quote(base_interpreter)} -I -S "$@"\n')
        shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "TSTRANSFER_PYTHON")}
    env["PATH"] = os.pathsep.join([str(shim_dir), *path])
    return env


@pytest.fixture(scope="module")
def bare_env(tmp_path_factory):
    env = environment_without_the_project(tmp_path_factory.mktemp("bin"))
    # The guard itself: python on this PATH runs, and cannot import the project.
    runs = subprocess.run(["python", "-c", "print(6 * 7)"], env=env, capture_output=True, text=True)
    assert runs.returncode == 0 and runs.stdout.strip() == "42", runs.stderr
    for python in ("python", "python3"):
        imports = subprocess.run([python, "-c", "import tstransfer"], env=env, capture_output=True, text=True)
        assert imports.returncode != 0 and "No module named 'tstransfer'" in imports.stderr
    return env


def snakemake(workdir: Path, env: dict[str, str], *args: str, check: bool = True,
              configfile: str = "config.yaml") -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
         "--configfile", configfile, "--replace-workflow-config", *args],
        cwd=workdir, capture_output=True, text=True, env=env,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{done.stdout[-5000:]}\n{done.stderr[-5000:]}")
    return done


def planned_jobs(output: str) -> list[tuple[str, dict]]:
    """(rule, wildcards) of every job a dry run plans."""
    jobs, rule = [], None
    for line in output.splitlines():
        match = re.match(r"\s*(?:local)?rule (\w+):", line)
        if match:
            rule = match.group(1)
            jobs.append((rule, {}))
            continue
        match = re.match(r"\s*wildcards: (.*)", line)
        if match and jobs:
            jobs[-1][1].update(item.split("=", 1) for item in match.group(1).split(", "))
    return jobs


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, bare_env):
    workdir = tmp_path_factory.mktemp("tiny")
    (workdir / "config.yaml").write_text(yaml.safe_dump(tiny_config()))
    snakemake(workdir, bare_env, "--cores", "2")
    return workdir


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
    from tstransfer.protocol import job_spec

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
         "--out", str(tmp_path / "cell")],
        cwd=finished_run, env=env, check=True, capture_output=True,
    )
    alone = json.loads((tmp_path / "cell" / "result.json").read_text())
    for key in ("status", "best_epoch", "last_epoch", "val_metric", "test_metric", "seed"):
        assert alone[key] == served[key], key


def test_config_change_reruns_only_the_jobs_it_shapes(finished_run, bare_env):
    config = yaml.safe_load((finished_run / "config.yaml").read_text())
    config["datasets"]["emg"]["stream_max"] = not config["datasets"]["emg"]["stream_max"]
    changed = finished_run / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    done = snakemake(finished_run, bare_env, "-n", configfile=str(changed))
    training = [(rule, wc) for rule, wc in planned_jobs(done.stdout)
                if rule in ("pretrain", "referent", "finetune", "stream_max_study")]
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


def test_verify_names_changed_and_missing_files_without_rebuilding(finished_run, bare_env):
    """Last in this module: it damages the finished tree."""
    assert snakemake(finished_run, bare_env, "--cores", "1", "verify").returncode == 0
    results = finished_run / "results"
    (results / "tables" / "results.csv").write_text("tampered\n")
    (results / "analysis" / "done").unlink()
    done = snakemake(finished_run, bare_env, "--cores", "1", "verify", check=False)
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
