"""Fine-tuning grid cells on a real SLURM scheduler: one job per cell against packed groups.

    sudo .venv/bin/python bench/slurm_packing.py [--repeats 2] [--omegas 10]

Starts the test suite's single-node cluster (tstransfer.devtools.slurm_cluster; needs root and
`make slurm-deps`), prepares one (arch, source, target, variant, run) with ``--omegas``
multipliers (data and the pretrained model made locally, once), then reruns its
fine-tuning cells through `snakemake --profile profiles/slurm`, alternating:

- unpacked: one SLURM job per cell, each importing TensorFlow itself;
- packed: `--groups finetune=ft_... --group-components ft_...=10` (README), one allocation
  whose job server imports TensorFlow once and forks every cell.

Prints, per mode, the median over ``--repeats`` of the wall time per cell and the GPU
allocation time per cell (sum of sacct's Elapsed over the allocations, each holding one
GPU: what a cluster charges), and the packed/unpacked ratios from the same run. The node
advertises 4 GPUs, so unpacked cells run four at a time while a packed group runs its cells
in series: wall time per cell favours unpacked here, allocation time is the cluster's cost.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tstransfer.devtools.slurm_cluster import SlurmCluster, missing_requirements
from tstransfer.devtools.workflow_runs import (
    PACK_FINETUNE_ARGS, ROOT, SLURM_PROFILE_ARGS, environment_without_the_project, snakemake, tiny_config,
)


def bench_config(n_omegas: int) -> dict:
    config = tiny_config()
    paper = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config.update(sources=["emg", "sp500"], targets=["sp500"], runs=1, omegas=paper["omegas"][:n_omegas])
    return config


def elapsed_seconds(text: str) -> int:
    days, _, clock = text.rpartition("-")
    h, m, s = (int(x) for x in clock.split(":"))
    return int(days or 0) * 86400 + h * 3600 + m * 60 + s


def measure(cluster: SlurmCluster, workdir: Path, env: dict, packed: bool) -> tuple[float, int, int]:
    """(wall seconds, allocation seconds, allocations) of one rerun of every cell."""
    first = cluster.next_job_id()
    args = [*SLURM_PROFILE_ARGS, "--forcerun", "finetune", "--until", "finetune"]
    if packed:
        args += PACK_FINETUNE_ARGS
    started = time.monotonic()
    snakemake(workdir, cluster.env(env), *args, prefix=cluster.command([], cwd=workdir))
    wall = time.monotonic() - started
    records = cluster.allocations("Elapsed", "State", since=first)
    assert all(r["State"] == "COMPLETED" for r in records), records
    return wall, sum(elapsed_seconds(r["Elapsed"]) for r in records), len(records)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--omegas", type=int, default=10, help="cells per group (the paper: 10)")
    args = parser.parse_args()
    reasons = missing_requirements()
    if reasons:
        print("cannot start a SLURM cluster: " + "; ".join(reasons), file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-slurm-") as tmp:
        tmp = Path(tmp)
        env = environment_without_the_project(tmp / "bin")
        workdir = tmp / "work"
        workdir.mkdir()
        config = bench_config(args.omegas)
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
        cells = len(config["omegas"])
        print(f"preparing data and the pretrained model locally ({cells} cells per round) ...", flush=True)
        snakemake(workdir, env, "--cores", "2", "--until", "finetune")
        with SlurmCluster(tmp / "slurm") as cluster:
            figures = {False: [], True: []}
            for repeat in range(args.repeats):
                for packed in (False, True):  # alternating, so load affects both alike
                    wall, allocated, jobs = measure(cluster, workdir, env, packed)
                    figures[packed].append((wall / cells, allocated / cells))
                    mode = "packed  " if packed else "unpacked"
                    print(f"round {repeat + 1} {mode}: {jobs:2d} allocations, {wall:6.1f} s wall, "
                          f"{wall / cells:5.1f} s wall/cell, {allocated / cells:5.1f} s allocated/cell", flush=True)
    medians = {packed: [statistics.median(values) for values in zip(*figures[packed])] for packed in figures}
    print(f"\nmedian over {args.repeats} rounds, {cells} cells per round")
    print(f"{'':10s} {'wall s/cell':>12s} {'GPU-allocation s/cell':>22s}")
    for packed, name in ((False, "unpacked"), (True, "packed")):
        print(f"{name:10s} {medians[packed][0]:12.1f} {medians[packed][1]:22.1f}")
    print(f"{'ratio':10s} {medians[True][0] / medians[False][0]:12.2f} {medians[True][1] / medians[False][1]:22.2f}"
          "   (packed / unpacked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
