"""Dry-run time of the paper's DAG against a bare DAG of the same shape.

    python bench/dag.py [--repeats 3] [--scale 1 2] [--directives group log ...] [--leave-out log ...]

For each grid scale (1 = the paper: 240 pretraining, 24 selection, 336 referent, 16,800
fine-tuning jobs; 2 = twice the runs), it times ``snakemake -n`` of this workflow with
config/config.yaml on an empty results tree, beside the same dry run of a bare Snakefile
whose rules have the same wildcards and job counts but only touch their outputs (the
floor that Snakemake itself sets), and of that bare Snakefile with the directives our
rules carry (log, benchmark, conda, resources, wildcard_constraints, a params function):
Snakemake evaluates each of them for every job, so together they set the floor of a
workflow that has them. At the first scale each directive is also timed alone on the
bare Snakefile, to show its own share; so is `group`, which our rules no longer carry
(packing is `--groups` on the command line, README) and the floor leaves out, and the
floor less each of ``--leave-out`` (default log, benchmark): what the floor would be
without that directive. "gc" is the Snakefile's collector threshold (not a directive, a
setting of the Snakemake process): the bare DAG runs with Python's default, the floor
with ours, so that ours / floor compares like with like.

Prints the medians of ``--repeats`` runs of each and their ratios, all measured in the
same run, in turns, so load on the machine affects all alike; wall seconds, and CPU
seconds (user + system of the snakemake process), which load from other processes
disturbs less.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

# The bare DAG: the paper's jobs (same wildcards, same job counts, same dependencies),
# each rule only touching its outputs. Rows: name, inputs, outputs, trains (a training
# rule of ours: pretrain, referent, finetune, stream_max).
_BARE_HEAD = """
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
"""
_BARE_RULES = [
    ("raw", [], ['"raw/{dataset}"'], False),
    ("convert", ['"raw/{dataset}"'], ['"data/{dataset}.zarr"'], False),
    ("subset", ['"data/{dataset}.zarr"'], ['"subsets/{dataset}/{variant}/run{run}.npz"'], False),
    ("pretrain", ['"data/{source}.zarr"'],
     ['"pre/{arch}/{source}/seed{seed}/result.json"', '"pre/{arch}/{source}/seed{seed}/model.keras"'], True),
    ("select", ['expand("pre/{{arch}}/{{source}}/seed{seed}/model.keras", seed=S)'],
     ['"pre/{arch}/{source}/selected/model.keras"'], False),
    ("referent", ['"data/{target}.zarr"', '"subsets/{target}/{variant}/run{run}.npz"'],
     ['"ref/{arch}/{target}/{variant}/run{run}/result.json"'], True),
    ("finetune",
     ['"pre/{arch}/{source}/selected/model.keras"', '"data/{target}.zarr"', '"subsets/{target}/{variant}/run{run}.npz"'],
     ['"ft/{arch}/{source}/{target}/{variant}/run{run}/omega{omega}/result.json"'], True),
    ("smax", ['"data/{dataset}.zarr"'], ['"smax/{arch}/{dataset}/{smax}/seed{seed}/result.json"'], True),
]
# The directives our rules carry, as rules/*.smk use them, each of which Snakemake
# evaluates for every job: bare_snakefile(directives) adds them to the bare rules.
DIRECTIVES = {
    "group": "on finetune (not ours: packing is --groups, README; not in the floor)",
    "log": "on every rule",
    "benchmark": "on the training rules and convert",
    "conda": "on every rule",
    "resources": "runtime, mem_mb (and gpu on the training rules)",
    "constraints": "wildcard_constraints: the config's names as alternatives, digits",
    "params": "one function of the wildcards on the training rules, in the shell command",
    "gc": "not a directive: the Snakefile's gc.set_threshold(50_000) (fewer collector scans)",
}
# The line the Snakefile runs, which "gc" adds to the bare Snakefile: the bare DAG is
# timed with Python's default threshold, the floor with ours.
GC_LINE = "gc.set_threshold(50_000)"
# Timed alone, left out of the floor: what rules/*.smk do not carry.
NOT_OURS = frozenset({"group"})
_CONSTRAINTS = """
wildcard_constraints:
    dataset="|".join(config["datasets"]),
    source="|".join(config["datasets"]),
    target="|".join(config["datasets"]),
    arch="|".join(A),
    variant="|".join(V),
    run=r"\\d+",
    seed=r"\\d+",
    omega=r"\\d+\\.\\d+",
    smax="with|without",
"""


def bare_snakefile(directives=frozenset()) -> str:
    """The bare Snakefile, with the given DIRECTIVES added to its rules as ours have them."""
    unknown = set(directives) - set(DIRECTIVES)
    if unknown:
        raise ValueError(f"unknown directives {sorted(unknown)}")
    text = _BARE_HEAD
    if "gc" in directives:
        text = f"import gc\n{GC_LINE}\n" + text
    if "constraints" in directives:
        text += _CONSTRAINTS
    for name, inputs, outputs, trains in _BARE_RULES:
        stem = outputs[0].strip('"')
        lines = [f"rule {name}:"]
        if inputs:
            lines.append(f"    input: {', '.join(inputs)}")
        lines.append(f"    output: {', '.join(outputs)}")
        shell = "touch {output}"
        if "log" in directives:
            lines.append(f'    log: "logs/{stem}.log"')
            shell += " > {log} 2>&1"
        if "benchmark" in directives and (trains or name == "convert"):
            lines.append(f'    benchmark: "benchmarks/{stem}.tsv"')
        if "group" in directives and name == "finetune":
            lines.append('    group: "ft_{arch}_{source}_{target}_{variant}_{run}"')
        if "conda" in directives:
            lines.append('    conda: "env.yaml"')
        if "resources" in directives:
            lines.append("    resources: runtime=60, mem_mb=1000" + (", gpu=1" if trains else ""))
        if "params" in directives and trains:
            lines.append('    params: args=lambda wc: " ".join(f"--{k} {v}" for k, v in wc.items())')
            shell = ": {params.args}; " + shell
        lines.append(f'    shell: "{shell}"')
        text += "\n" + "\n".join(lines) + "\n"
    return text



def paper_config(scale: int) -> dict:
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["runs"] *= scale
    return config


def time_dry_run(args: list[str], cwd: Path, mode: tuple[str, ...] = ("-n", "--quiet", "all")) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, of the snakemake process) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", *mode, *args],
        cwd=cwd, capture_output=True, text=True,
    )
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"dry run failed in {cwd}:\n{done.stdout}\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def job_count(args: list[str], cwd: Path) -> int:
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", *args],
        cwd=cwd, capture_output=True, text=True, check=True,
    )
    for line in done.stdout.splitlines():
        if line.startswith("total"):
            return int(line.split()[1])
    raise SystemExit("no job count in the dry run output")


class Variant:
    """One Snakefile's dry run in its own folder: ours, or the bare one with directives."""

    def __init__(self, tmp: Path, name: str, config: dict, directives=None):
        self.name = name
        self.cwd = tmp / name
        self.cwd.mkdir()
        (self.cwd / "config.yaml").write_text(yaml.safe_dump(config))
        if directives is None:
            self.args = ["-s", str(ROOT / "Snakefile"), "--configfile", "config.yaml",
                         "--replace-workflow-config"]
        else:
            (self.cwd / "Snakefile").write_text(bare_snakefile(directives))
            (self.cwd / "env.yaml").write_text("channels: [conda-forge]\ndependencies: [python]\n")
            self.args = []
        self.times: list[tuple[float, float]] = []

    def time(self, mode: tuple[str, ...] = ("-n", "--quiet", "all")) -> tuple[float, float]:
        return time_dry_run(self.args, self.cwd, mode)

    def jobs(self) -> int:
        return job_count(self.args, self.cwd)

    @property
    def wall(self) -> float:
        return statistics.median(wall for wall, _ in self.times)

    @property
    def cpu(self) -> float:
        return statistics.median(cpu for _, cpu in self.times)


def measure(variants: list[Variant], repeats: int) -> None:
    """Median of `repeats` dry runs of each, taken in turns so that load affects all alike."""
    for _ in range(repeats):
        for variant in variants:
            variant.times.append(variant.time())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scale", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--directives", nargs="*", default=list(DIRECTIVES), choices=list(DIRECTIVES),
                        help="each timed alone on the bare Snakefile at the first scale (none: skip)")
    parser.add_argument("--leave-out", nargs="*", default=["log", "benchmark"],
                        choices=sorted(set(DIRECTIVES) - NOT_OURS),
                        help="each left out of the floor at the first scale (none: skip)")
    args = parser.parse_args()
    if GC_LINE not in (ROOT / "Snakefile").read_text():
        raise SystemExit(f"the Snakefile no longer runs {GC_LINE}: update GC_LINE")
    for scale in args.scale:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            config = paper_config(scale)
            bare = Variant(tmp, "bare", config, directives=frozenset())
            floor = Variant(tmp, "floor", config, directives=frozenset(DIRECTIVES) - NOT_OURS)
            ours = Variant(tmp, "ours", config)
            singles = []
            if scale == args.scale[0]:
                singles = [Variant(tmp, name, config, directives={name}) for name in args.directives]
                singles += [Variant(tmp, f"floor-{name}", config,
                                    directives=frozenset(DIRECTIVES) - NOT_OURS - {name})
                            for name in args.leave_out]
            jobs = {variant.name: variant.jobs() for variant in (bare, floor, ours)}
            if jobs["floor"] != jobs["bare"]:
                raise SystemExit(f"the bare Snakefile with directives has {jobs['floor']} jobs, "
                                 f"without {jobs['bare']}")
            measure([bare, *singles, floor, ours], args.repeats)

            if scale == args.scale[0]:
                # Parsing alone (every cluster job parses the Snakefile again): --list-rules
                # parses and validates the config but builds no DAG.
                parse_ours = statistics.median(
                    ours.time(("--list-rules",))[0] for _ in range(args.repeats))
                parse_bare = statistics.median(
                    bare.time(("--list-rules",))[0] for _ in range(args.repeats))
                print(f"parse: ours {parse_ours:.2f} s, bare {parse_bare:.2f} s, "
                      f"difference {parse_ours - parse_bare:+.2f} s")
                print(f"\nDirectives our rules carry, each alone on the bare Snakefile "
                      f"(grid {scale}x, median of {args.repeats}; CPU = user + system):")
                print(f"  {'':14} {'wall s':>7} {'cpu s':>7} {'vs bare: wall':>13} {'cpu':>5}")
                for variant in [bare, *singles, floor]:
                    label = {"bare": "bare", "floor": "all (floor)"}.get(variant.name, "+ " + variant.name)
                    note = DIRECTIVES.get(variant.name, "")
                    if variant.name.startswith("floor-"):
                        label = "floor - " + variant.name.removeprefix("floor-")
                        note = "the floor without it"
                    print(f"  {label:14} {variant.wall:>7.1f} {variant.cpu:>7.1f} "
                          f"{variant.wall / bare.wall - 1:>+13.0%} {variant.cpu / bare.cpu - 1:>+5.0%}  "
                          f"{note}")
                print(f"\nfloor = bare + all of them but {', '.join(sorted(NOT_OURS))} (gc included); "
                      "ratios of medians, wall (cpu)")
                print(f"{'grid':>6} {'jobs':>7} {'bare jobs':>9} {'bare s':>7} {'floor s':>7} {'ours s':>7} "
                      f"{'ours/bare':>13} {'ours/floor':>13} {'ms/job':>7}")
            print(f"{scale:>5}x {jobs['ours']:>7} {jobs['bare']:>9} {bare.wall:>7.1f} {floor.wall:>7.1f} "
                  f"{ours.wall:>7.1f} {ours.wall / bare.wall:>6.2f} ({ours.cpu / bare.cpu:.2f}) "
                  f"{ours.wall / floor.wall:>6.2f} ({ours.cpu / floor.cpu:.2f}) "
                  f"{1000 * ours.wall / jobs['ours']:>7.2f}", flush=True)


if __name__ == "__main__":
    main()
