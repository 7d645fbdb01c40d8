"""Running the workflow the way a user does, for the end-to-end and SLURM tests.

Snakemake runs here as on a fresh machine where nothing is activated: the virtual
environment's ``bin/`` is off PATH, and the ``python`` on PATH is a real interpreter that
cannot import tstransfer (started with ``-I -S``: no site-packages, no PYTHONPATH). A job
that ran a bare ``python -m tstransfer...`` fails here, on any machine, whatever its
system Python has installed.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from tstransfer.plan import TRAINING_KINDS  # noqa: F401  (the tests import it from here)

ROOT = Path(__file__).resolve().parents[1]
# `snakemake --profile profiles/slurm` as the SLURM tests and bench run it: the only
# overlay on the profile is how often Snakemake polls sacct (every 2 s, not 10-40 s).
SLURM_PROFILE_ARGS = ["--profile", str(ROOT / "profiles" / "slurm"),
                      "--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "2"]
# Packing on SLURM as README gives it: the ten multipliers of one (arch, source, target,
# variant, run) in one allocation. finetune has no group: of its own (bench/dag.py: one
# would cost every dry run 16,800 one-job groups); --groups gives it one per run.
FINETUNE_GROUP = "ft_{arch}_{source}_{target}_{variant}_{run}"
PACK_FINETUNE_ARGS = ["--groups", f"finetune={FINETUNE_GROUP}", "--group-components", f"{FINETUNE_GROUP}=10"]


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


def snakemake_argv(workdir: Path, *args: str, configfile: str = "config.yaml") -> list[str]:
    """The command line of ``snakemake`` on the project's Snakefile, run in ``workdir``."""
    return [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
            "--configfile", configfile, "--replace-workflow-config", *args]


def snakemake(workdir: Path, env: dict[str, str], *args: str, check: bool = True,
              configfile: str = "config.yaml", prefix: list[str] | None = None,
              timeout: float | None = None) -> subprocess.CompletedProcess:
    """``snakemake`` on the project's Snakefile in ``workdir``; ``prefix`` wraps it (nsenter)."""
    done = subprocess.run(
        [*(prefix or []), *snakemake_argv(workdir, *args, configfile=configfile)],
        cwd=workdir, capture_output=True, text=True, env=env, timeout=timeout,
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
