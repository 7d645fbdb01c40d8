"""Dry-run time of the paper's DAG against a bare DAG of the same shape.

    python bench/dag.py [--repeats 3] [--scale 1 2]

For each grid scale (1 = the paper: 240 pretraining, 24 selection, 336 referent, 16,800
fine-tuning jobs; 2 = twice the runs), it times ``snakemake -n`` of this workflow with
config/config.yaml on an empty results tree, beside the same dry run of a bare Snakefile
whose rules have the same wildcards and job counts but only touch their outputs (the
floor that Snakemake itself sets). Prints the median of ``--repeats`` runs of each and
their ratio, both measured in the same run, alternating, so load on the machine affects
both alike.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

BARE_SNAKEFILE = '''
configfile: "config.yaml"
A, D, V = config["architectures"], config["sources"], list(config["variants"])
R, S = range(config["runs"]), range(config["pretrain"]["seeds"])
O = [repr(float(o)) for o in config["omegas"]]
P = [(s, t) for s in D for t in config["targets"] if s != t]
SM, SMS = config["stream_max_study"]["datasets"], range(config["stream_max_study"]["seeds"])

rule all:
    input:
        [f"ft/{a}/{s}/{t}/{v}/run{r}/omega{o}/result.json" for a in A for s, t in P for v in V for r in R for o in O],
        expand("ref/{a}/{t}/{v}/run{r}/result.json", a=A, t=config["targets"], v=V, r=R),
        expand("smax/{a}/{d}/{w}/seed{k}/result.json", a=A, d=SM, w=["with", "without"], k=SMS),
        expand("pre/{a}/{s}/seed{k}/result.json", a=A, s=D, k=S),

rule raw:
    output: "raw/{dataset}"
    shell: "touch {output}"

rule convert:
    input: "raw/{dataset}"
    output: "data/{dataset}.zarr"
    shell: "touch {output}"

rule subset:
    input: "data/{dataset}.zarr"
    output: "subsets/{dataset}/{variant}/run{run}.npz"
    shell: "touch {output}"

rule pretrain:
    input: "data/{source}.zarr"
    output: "pre/{arch}/{source}/seed{seed}/result.json", "pre/{arch}/{source}/seed{seed}/model.keras"
    shell: "touch {output}"

rule select:
    input: expand("pre/{{arch}}/{{source}}/seed{seed}/model.keras", seed=S)
    output: "pre/{arch}/{source}/selected/model.keras"
    shell: "touch {output}"

rule referent:
    input: "data/{target}.zarr", "subsets/{target}/{variant}/run{run}.npz"
    output: "ref/{arch}/{target}/{variant}/run{run}/result.json"
    shell: "touch {output}"

rule finetune:
    input: "pre/{arch}/{source}/selected/model.keras", "data/{target}.zarr", "subsets/{target}/{variant}/run{run}.npz"
    output: "ft/{arch}/{source}/{target}/{variant}/run{run}/omega{omega}/result.json"
    shell: "touch {output}"

rule smax:
    input: "data/{dataset}.zarr"
    output: "smax/{arch}/{dataset}/{smax}/seed{seed}/result.json"
    shell: "touch {output}"
'''


def paper_config(scale: int) -> dict:
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["runs"] *= scale
    return config


def time_dry_run(args: list[str], cwd: Path, mode: tuple[str, ...] = ("-n", "--quiet", "all")) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", *mode, *args],
        cwd=cwd, capture_output=True, text=True,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"dry run failed in {cwd}:\n{done.stdout}\n{done.stderr}")
    return elapsed


def job_count(args: list[str], cwd: Path) -> int:
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", *args],
        cwd=cwd, capture_output=True, text=True, check=True,
    )
    for line in done.stdout.splitlines():
        if line.startswith("total"):
            return int(line.split()[1])
    raise SystemExit("no job count in the dry run output")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scale", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    print(f"{'grid':>6} {'jobs':>7} {'bare jobs':>9} {'bare s':>8} {'ours s':>8} {'ratio':>6} {'ms/job':>7}")
    for scale in args.scale:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            ours_dir, bare_dir = tmp / "ours", tmp / "bare"
            ours_dir.mkdir()
            bare_dir.mkdir()
            config = paper_config(scale)
            (ours_dir / "config.yaml").write_text(yaml.safe_dump(config))
            (bare_dir / "config.yaml").write_text(yaml.safe_dump(config))
            (bare_dir / "Snakefile").write_text(BARE_SNAKEFILE)
            ours_args = ["-s", str(ROOT / "Snakefile"), "--configfile", "config.yaml",
                         "--replace-workflow-config"]
            bare_args: list[str] = []
            ours_jobs, bare_jobs = job_count(ours_args, ours_dir), job_count(bare_args, bare_dir)
            ours_times, bare_times = [], []
            for _ in range(args.repeats):
                bare_times.append(time_dry_run(bare_args, bare_dir))
                ours_times.append(time_dry_run(ours_args, ours_dir))

            if scale == args.scale[0]:
                # Parsing alone (every cluster job parses the Snakefile again): --list-rules
                # parses and validates the config but builds no DAG.
                parse_ours = statistics.median(
                    time_dry_run(ours_args, ours_dir, ("--list-rules",)) for _ in range(args.repeats))
                parse_bare = statistics.median(
                    time_dry_run(bare_args, bare_dir, ("--list-rules",)) for _ in range(args.repeats))
                print(f"parse: ours {parse_ours:.2f} s, bare {parse_bare:.2f} s, "
                      f"difference {parse_ours - parse_bare:+.2f} s", flush=True)
            ours, bare = statistics.median(ours_times), statistics.median(bare_times)
            print(f"{scale:>5}x {ours_jobs:>7} {bare_jobs:>9} {bare:>8.1f} {ours:>8.1f} "
                  f"{ours / bare:>6.2f} {1000 * ours / ours_jobs:>7.2f}", flush=True)


if __name__ == "__main__":
    main()
