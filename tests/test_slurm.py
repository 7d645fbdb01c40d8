"""The workflow on a real SLURM scheduler, through `snakemake --profile profiles/slurm`.

Jobs go through sbatch to a real slurmctld and slurmd (tstransfer.devtools.slurm_cluster), and their
fate is read back from sacct, as on a cluster. The test overlay on the profile is only how
often Snakemake polls (workflow_runs.SLURM_PROFILE_ARGS); partition, GPUs, CPUs and memory are the profile's.

    make test-slurm        these tests alone (they start and stop their own cluster)
"""

from __future__ import annotations

import json
import math
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_runs import (
    PACK_FINETUNE_ARGS, ROOT, SLURM_PROFILE_ARGS, TRAINING_KINDS, snakemake, snakemake_argv, tiny_config,
)

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

PROFILE = ROOT / "profiles" / "slurm"
RESULT_KEYS = ("status", "best_epoch", "last_epoch", "val_metric", "test_metric", "seed", "config")


def profile_set_resources() -> dict:
    return yaml.safe_load((PROFILE / "profile.yaml").read_text())["set-resources"]


def on_slurm(cluster, workdir: Path, env: dict, *args: str, check: bool = True, timeout: float = 1200):
    return snakemake(workdir, cluster.env(env), *SLURM_PROFILE_ARGS, *args,
                     check=check, prefix=cluster.command([], cwd=workdir), timeout=timeout)


def jobs_since(cluster, first_id: int) -> list[dict]:
    """sacct's allocation records (one per sbatch) with job id >= first_id, oldest first."""
    records = cluster.allocations("State", "AllocTRES", "Comment", "Elapsed", since=first_id)
    for record in records:
        record["rule"] = rule_of(record["Comment"])
    return records


def rule_of(comment: str) -> str:
    """The rule in the executor plugin's sbatch comment: rule_<name>[_wildcards_<...>].

    An unpacked fine-tuning cell is a plain job (rule_finetune_...); a packed one runs in a
    group job, whose comment names the group: ft_<arch>_<source>_... (PACK_FINETUNE_ARGS).
    """
    name = comment.removeprefix("rule_").split("_wildcards_")[0]
    return "finetune" if name.startswith("ft_") else name


def tres(record: dict) -> dict:
    return dict(item.split("=", 1) for item in record["AllocTRES"].split(",") if item)


def training_results(workdir: Path) -> dict[str, dict]:
    results = workdir / "results"
    return {
        str(path.relative_to(results)): {k: v for k, v in json.loads(path.read_text()).items() if k in RESULT_KEYS}
        for kind in ("pretrain", "referent", "finetune", "stream_max")
        for path in sorted((results / kind).glob("**/result.json"))
    }


def slurm_config() -> dict:
    """The tiny config cut to one (source, target) pair and its two datasets: every rule and
    every training kind still runs, as 28 jobs instead of 48 (on 2 cores each sbatch'd job
    pays for its own Snakemake and TensorFlow start-up). Its jobs are jobs of the tiny
    config too, with the same inputs and seeds, so their results must equal the local run's."""
    config = tiny_config()
    config.update(sources=["emg"], targets=["sp500"])
    for section in ("datasets", "synthetic"):
        config[section] = {name: entry for name, entry in config[section].items()
                           if name in ("emg", "sp500") or name not in config["datasets"]}
    return config


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster, bare_env, tmp_path_factory):
    """The tiny end-to-end config (cut to one pair), every job submitted through the SLURM profile."""
    workdir = tmp_path_factory.mktemp("tiny-slurm")
    (workdir / "config.yaml").write_text(yaml.safe_dump(slurm_config()))
    first = slurm_cluster.next_job_id()
    started = time.monotonic()
    done = on_slurm(slurm_cluster, workdir, bare_env)
    wall = time.monotonic() - started
    print(f"tiny config on SLURM: {wall:.0f} s")
    return {"workdir": workdir, "jobs": jobs_since(slurm_cluster, first), "log": done.stdout + done.stderr}


def test_every_training_job_is_its_own_slurm_job_with_one_v100_and_the_profiles_cpus(slurm_run):
    jobs = slurm_run["jobs"]
    assert jobs and all(job["State"] == "COMPLETED" for job in jobs), [(j["rule"], j["State"]) for j in jobs]
    training = [job for job in jobs if job["rule"] in TRAINING_KINDS]
    counts = {rule: sum(job["rule"] == rule for job in training) for rule in TRAINING_KINDS}
    # slurm_config: 1 source x 2 seeds; 1 target x 1 variant x 2 runs; 1 pair x 2 runs x
    # 2 omegas; with and without stream_max on one dataset
    assert counts == {"pretrain": 2, "referent": 2, "finetune": 4, "stream_max": 2}
    # unpacked, a cell is a plain job (finetune has no group: without PACK_FINETUNE_ARGS)
    assert all(job["Comment"].startswith("rule_finetune_wildcards_")
               for job in training if job["rule"] == "finetune"), [j["Comment"] for j in training]
    wanted = profile_set_resources()
    for job in training:
        allocated = tres(job)
        assert allocated.get("gres/gpu:v100") == "1", job
        assert allocated.get("gres/gpu") == "1", job
        # cpus_per_gpu from the profile, not a cpus_per_task default (the defect this guards)
        assert allocated["cpu"] == str(wanted[job["rule"]]["cpus_per_gpu"]), job
    others = [job for job in jobs if job["rule"] not in TRAINING_KINDS]
    assert others, "no data or analysis job went through SLURM"
    for job in others:
        assert "gres/gpu" not in job["AllocTRES"], job
    print("one training job's sacct line:", {k: training[0][k] for k in ("JobIDRaw", "State", "AllocTRES")})


def test_outputs_equal_those_of_a_local_run(slurm_run, finished_run):
    on_cluster, local = training_results(slurm_run["workdir"]), training_results(finished_run)
    # The cut's ten jobs are ten of the local run's eighteen, with the same results.
    assert len(on_cluster) == 10 and len(local) == 18 and on_cluster.keys() <= local.keys()
    for key in on_cluster:
        assert on_cluster[key] == local[key], key
    table = pd.read_parquet(slurm_run["workdir"] / "results" / "tables" / "results.parquet")
    reference = pd.read_parquet(finished_run / "results" / "tables" / "results.parquet")
    job = ["kind", "arch", "source", "target", "variant", "run", "omega", "seed", "stream_max"]
    reference = reference.merge(table[job], on=job).reset_index(drop=True)
    assert len(table) == len(reference) == 10
    columns = [c for c in reference.columns if c != "runtime_s"]  # wall time differs, nothing else
    pd.testing.assert_frame_equal(table[columns].reset_index(drop=True), reference[columns])
    for name in ("analysis/done", "MANIFEST.sha256"):
        assert (slurm_run["workdir"] / "results" / name).is_file()


def test_packed_grid_shares_one_allocation_and_one_job_server_per_group(slurm_cluster, slurm_run, bare_env):
    workdir = slurm_run["workdir"]
    before = training_results(workdir)
    first = slurm_cluster.next_job_id()
    on_slurm(slurm_cluster, workdir, bare_env, "--forcerun", "finetune", "--until", "finetune",
             *PACK_FINETUNE_ARGS)
    jobs = jobs_since(slurm_cluster, first)
    # 1 (source, target) pair x 1 variant x 2 runs: two allocations for the four cells
    assert len(jobs) == 2, [(j["JobIDRaw"], j["Comment"]) for j in jobs]
    for job in jobs:
        assert job["State"] == "COMPLETED", job
        allocated = tres(job)
        # one GPU per allocation (profile resources gpu=1, scope local): the cells run in series
        assert allocated.get("gres/gpu:v100") == "1" and allocated["cpu"] == "4", job
    logs = sorted((workdir / "results" / "logs" / "jobserver").glob("slurm-*.log"))
    assert {log.name for log in logs} == {f"slurm-{job['JobIDRaw']}.log" for job in jobs}
    for log in logs:
        text = log.read_text()
        assert "job server ready" in text and text.count("ended with 0") == 2, text
    after = training_results(workdir)
    assert after == before  # forked from a server, the cells' results are the same


# ----------------------------------------------------------------------------- faults
# Epochs of the fault tests' referents: ~0.3 s each here, so that a job is still training
# seconds after the test sees its first epochs (the SIGKILL test also suspends them).
SLOW_EPOCHS = 60


@pytest.fixture(scope="module")
def slow_job_dir(tmp_path_factory, bare_env):
    """A workdir with one dataset converted (locally) whose referent jobs train long
    enough (SLOW_EPOCHS) to be interrupted mid-way."""
    workdir = tmp_path_factory.mktemp("fault")
    config = tiny_config()
    # a checkpoint after every epoch (the default is every 30 s), so that a job cancelled
    # after its third epoch has one to resume from
    config["training"].update(max_epochs=SLOW_EPOCHS, batch_size=2, early_stopping={"patience": 1000},
                              checkpoint_interval_s=0)
    config["training"]["reduce_lr"]["patience"] = 1000
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(workdir, bare_env, "--cores", "2", *(f"results/data/subsets/emg/1k5/run{r}.npz" for r in (0, 1)))
    return workdir


def referent_dir(run: int) -> str:
    return f"results/referent/convnetquake_ingv/emg/1k5/run{run}"


def copy_workdir(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True)
    return target


def epochs_done(workdir: Path, run: int) -> int:
    history = workdir / referent_dir(run) / "history.csv"
    return max(0, len(history.read_text().splitlines()) - 1) if history.exists() else 0


def start_on_slurm(cluster, workdir: Path, env: dict, *args: str) -> subprocess.Popen:
    argv = snakemake_argv(workdir, *SLURM_PROFILE_ARGS, *args)
    log = open(workdir / "snakemake-background.log", "w")
    return subprocess.Popen(cluster.command(argv, cwd=workdir), cwd=workdir, env=cluster.env(env),
                            stdout=log, stderr=subprocess.STDOUT, text=True)


def wait_for(condition, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def running_jobs(cluster, rule: str, state: str = "RUNNING") -> list[str]:
    """The ids of ``rule``'s jobs in SLURM state ``state`` (squeue's names)."""
    out = cluster.run(["squeue", "--noheader", f"--states={state}", "--format=%i|%k"]).stdout
    return [line.split("|")[0] for line in out.splitlines() if rule_of(line.split("|", 1)[1]) == rule]


def test_a_cancelled_training_job_is_reported_then_resumed_from_its_checkpoint(
        slurm_cluster, slow_job_dir, bare_env, tmp_path):
    workdir = copy_workdir(slow_job_dir, tmp_path / "cancelled")
    reference = copy_workdir(slow_job_dir, tmp_path / "uninterrupted")
    target = f"{referent_dir(0)}/result.json"
    first = slurm_cluster.next_job_id()
    run = start_on_slurm(slurm_cluster, workdir, bare_env, target)
    wait_for(lambda: epochs_done(workdir, 0) >= 3, "three epochs with a checkpoint")
    (job_id,) = running_jobs(slurm_cluster, "referent")
    slurm_cluster.run(["scancel", job_id])
    assert run.wait(timeout=600) == 0  # the profile's retry (retries: 1) finishes it
    log = (workdir / "snakemake-background.log").read_text()
    assert f"SLURM-job '{job_id}' failed, SLURM status is: 'CANCELLED'" in log
    states = [job["State"] for job in jobs_since(slurm_cluster, first)]
    assert states[0].startswith("CANCELLED") and states[-1] == "COMPLETED" and len(states) == 2, states
    resumed = json.loads((workdir / target).read_text())
    assert resumed["resumed_from_epoch"] >= 3
    snakemake(reference, bare_env, "--cores", "1", target)
    alone = json.loads((reference / target).read_text())
    assert alone["resumed_from_epoch"] == 0
    for key in RESULT_KEYS:
        assert resumed[key] == alone[key], key


def test_a_job_over_its_memory_limit_is_reported_with_slurms_reason(slurm_cluster, slow_job_dir, bare_env, tmp_path):
    workdir = copy_workdir(slow_job_dir, tmp_path / "oom")
    target = f"{referent_dir(0)}/result.json"
    done = on_slurm(slurm_cluster, workdir, bare_env, target, "--retries", "0",
                    "--set-resources", "referent:mem_mb=200", check=False)
    assert done.returncode != 0
    log = done.stdout + done.stderr
    # With cgroups SLURM marks the job OUT_OF_MEMORY; without (here), the step is killed by
    # the accounting poller and the job FAILED. Either way the workflow's onerror handler
    # (slurm_compat.failure_report) puts sacct's states and slurmstepd's own reason from the
    # job's SLURM log into Snakemake's output, whichever step SLURM killed.
    assert re.search(r"SLURM status is: '(OUT_OF_MEMORY|FAILED)'", log), log[-3000:]
    assert re.search(r"exceeded memory limit \(\d+ > 209715200\), being killed", log), log[-3000:]
    assert re.search(r"SLURM's account of failed job \d+:\n(.*\n)*.*sacct: \d+\|(FAILED|OUT_OF_MEMORY)", log)
    assert not (workdir / target).exists()


def test_killing_snakemake_mid_run_then_restarting_runs_no_job_twice(slurm_cluster, slow_job_dir, bare_env, tmp_path):
    """SIGKILL (a lost login session): SLURM's jobs go on without their controller. The
    restarted Snakemake submits them again; each second copy waits for the first
    (tstransfer.cli's job lock) and adopts its result instead of training again.

    The orphans are suspended (scontrol suspend, SIGSTOP) from before the kill until both
    second copies report that they wait, so they are still unfinished when those start
    however fast the machine trains; resumed, they finish and the copies adopt.

    (A job that ends while no Snakemake runs is still marked incomplete in Snakemake's
    metadata, and the restart runs it once more: README, "After a node failure".)"""
    workdir = copy_workdir(slow_job_dir, tmp_path / "killed")
    targets = [f"{referent_dir(run)}/result.json" for run in (0, 1)]
    logs = [workdir / f"results/logs/referent/convnetquake_ingv/emg/1k5/run{run}.log" for run in (0, 1)]
    first = slurm_cluster.next_job_id()
    run = start_on_slurm(slurm_cluster, workdir, bare_env, *targets)
    # one epoch done: each job holds its lock (taken before training starts)
    wait_for(lambda: all(epochs_done(workdir, r) >= 1 for r in (0, 1)), "both jobs training")
    orphans = running_jobs(slurm_cluster, "referent")
    assert len(orphans) == 2, orphans
    slurm_cluster.run(["scontrol", "suspend", ",".join(orphans)])
    wait_for(lambda: sorted(running_jobs(slurm_cluster, "referent", "SUSPENDED")) == sorted(orphans),
             "both jobs suspended")
    run.send_signal(signal.SIGKILL)
    run.wait()
    paused_at = [epochs_done(workdir, r) for r in (0, 1)]
    assert all(epochs < SLOW_EPOCHS for epochs in paused_at), paused_at  # unfinished: the copies must wait

    on_slurm(slurm_cluster, workdir, bare_env, "--unlock")
    restart = start_on_slurm(slurm_cluster, workdir, bare_env, *targets)
    wait_for(lambda: all(log.exists() and "waiting for it" in log.read_text(errors="replace") for log in logs),
             "both second copies waiting for the first")
    assert [epochs_done(workdir, r) for r in (0, 1)] == paused_at  # the first copies were still paused
    assert not any((workdir / target).exists() for target in targets)
    slurm_cluster.run(["scontrol", "resume", ",".join(orphans)])
    assert restart.wait(timeout=600) == 0, (workdir / "snakemake-background.log").read_text()[-3000:]

    assert all(epochs_done(workdir, r) == SLOW_EPOCHS for r in (0, 1))  # one training each, no epoch twice
    for target in targets:
        result = json.loads((workdir / target).read_text())
        assert result["status"] == "ok" and math.isfinite(result["test_metric"])
        assert result["resumed_from_epoch"] == 0 and result["last_epoch"] == SLOW_EPOCHS
    jobs = [job for job in jobs_since(slurm_cluster, first) if job["rule"] == "referent"]
    assert [job["State"] for job in jobs] == ["COMPLETED"] * 4, jobs
    for log in logs:
        # The second copy's log: it waited, then found the first copy's result.
        text = log.read_text(errors="replace")
        assert "waiting for it" in text and "nothing left to do" in text, text


def test_the_plugin_sees_a_job_cancelled_by_a_user_as_cancelled():  # needs no cluster
    """sacct says 'CANCELLED by <uid>'; unpatched, plugin 2.8.0 waits for such a job forever."""
    import asyncio
    import logging

    import snakemake_executor_plugin_slurm as plugin
    from tstransfer import slurm_compat

    command = "printf '45|CANCELLED by 0\\n46|RUNNING\\n47|OUT_OF_MEMORY\\n'"
    assert slurm_compat.patch_cancelled_state()
    status, _ = asyncio.run(plugin.query_job_status(command, logging.getLogger("test")))
    assert status == {"45": "CANCELLED", "46": "RUNNING", "47": "OUT_OF_MEMORY"}
    patched = plugin.query_job_status
    assert slurm_compat.patch_cancelled_state() and plugin.query_job_status is patched  # wrapped once


def test_the_failure_report_quotes_slurms_reason_from_the_jobs_slurm_log(tmp_path):  # needs no cluster
    from tstransfer.slurm_compat import failure_report

    slurm_log = tmp_path / ".snakemake" / "slurm_logs" / "rule_referent" / "x" / "47.log"
    slurm_log.parent.mkdir(parents=True)
    slurm_log.write_text("some output\nslurmstepd-node1: error: StepId=47.batch exceeded memory limit "
                         "(216338432 > 209715200), being killed\nslurmstepd-node1: error: Exceeded job memory limit\n")
    snakemake_log = tmp_path / "run.log"
    snakemake_log.write_text(f"Error in rule referent:\n    message: SLURM-job '47' failed, SLURM status is: "
                             f"'FAILED'. Reason: Unknown.\n    log: results/logs/x.log, {slurm_log} (check log file(s))\n")
    lines = failure_report(str(snakemake_log), sacct=False)
    assert lines[0] == "SLURM's account of failed job 47:"
    assert any("exceeded memory limit (216338432 > 209715200), being killed" in line for line in lines)
    assert not any("some output" in line for line in lines)
    assert failure_report([str(snakemake_log)], sacct=False) == lines  # onerror passes a list
    assert failure_report(str(tmp_path / "absent.log")) == []
