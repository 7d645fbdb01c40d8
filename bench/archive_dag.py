"""How large the DAG of a whole-archive study is, and how long Snakemake takes to plan it.

    python bench/archive_dag.py [--sizes 16 32 64 128] [--batches 32] [--repeats 1]

Writes a synthetic stand-in archive (tstransfer.datasets.standin_archive: small
problems in the UCR/UEA ``.ts`` layout) and, for each size n, a config that names it as
one entry (``archives.standin``, its first n problems) with the real-data study's
settings: every problem a source and a target, 2 architectures, 3 runs, 3 multipliers,
one variant, the paper config's pretraining seeds (``--seeds``), no stream_max study. At
n = 128 that is 128 x 127 x 2 x 3 x 3 = 292,608 fine-tuning jobs.

For each size it prints the jobs per rule, and the wall and CPU seconds (user + system)
and peak memory (max RSS) of:

* ``parse``: ``snakemake --list-rules``, parsing alone: what every SLURM job pays
  again (the archive's expansion, each problem's ``.ts`` header probe, the job specs);
* ``dry run``: ``snakemake -n`` of the whole workflow on an empty results tree: the DAG
  a run builds before it submits anything;
* ``batch 1/B`` (``--batches B``): ``snakemake -n --batch manifest=1/B``, the DAG of one
  of B batches of the training jobs (rule ``manifest`` lists every training result; README,
  "A whole archive as one entry").

First, on the real problems in resources/ucr (``make ucr-data``) where present, the time
to learn a problem's task and channels from its ``.ts`` headers (what the Snakefile's
parse does now, tstransfer.datasets.tsheader) beside reading its data (what it did).

Each figure is the median of ``--repeats`` runs. The machine's load average is printed
beside them: on a shared machine wall time follows the load, CPU time much less.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tstransfer.datasets.standin_archive import write_standin_archive

ROOT = Path(__file__).resolve().parents[1]


def study_config(archive: Path, problems: list[str], seeds: int | None) -> dict:
    """config/config.yaml with the archive as its only datasets, at the study's settings."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["datasets"] = {}
    config["synthetic"] = {}
    config["archives"] = {"standin": {"path": str(archive), "problems": problems, "domain": "standin"}}
    config.update(sources=["standin"], targets=["standin"], runs=3, omegas=[0.1, 0.5, 1.0],
                  architectures=config["architectures"][:2],
                  variants=dict(list(config["variants"].items())[:1]),
                  stream_max_study={"datasets": [], "seeds": 0}, published_results=None)
    if seeds is not None:
        config["pretrain"] = {"seeds": seeds}
    return config


def run_snakemake(cwd: Path, *args: str) -> tuple[float, float, float, str]:
    """Wall s, CPU s (user + system) and max RSS (MiB) of one snakemake process, and its stdout."""
    argv = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--configfile",
            "config.yaml", "--replace-workflow-config", *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        raise SystemExit(f"snakemake {' '.join(args)} failed in {cwd}:\n{stdout[-3000:]}\n{stderr[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, stdout


def jobs_per_rule(stdout: str) -> dict[str, int]:
    """The job-stats table of ``snakemake -n --quiet rules``."""
    counts: dict[str, int] = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in counts:
            counts[parts[0]] = int(parts[1])
    if "total" not in counts:
        raise SystemExit("no job count in the dry run's output")
    return counts


def measure(cwd: Path, repeats: int, *args: str) -> tuple[float, float, float, str]:
    runs = [run_snakemake(cwd, *args) for _ in range(repeats)]
    return (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs),
            max(r[2] for r in runs), runs[-1][3])


def probe_against_full_read(folder: Path, repeats: int = 5) -> None:
    """Per real problem: ms to probe its headers, ms to read it whole (both from a cold registry)."""
    from tstransfer.datasets import collection, tsheader
    from tstransfer.datasets.custom import CustomDataset

    if not folder.is_dir():
        print(f"({folder} absent: make ucr-data for the header probe's figures)\n")
        return
    print(f"{'problem':>16} {'probe ms':>9} {'full read ms':>12}  task, channels (probe = full read)")
    for name, entry in collection.archive_entries("ucr", {"path": str(folder)}).items():
        files = CustomDataset(name, entry).raw_files()
        probes, reads = [], []
        for _ in range(repeats):
            tsheader._probe_ts_file.cache_clear()
            started = time.perf_counter()
            probed = tsheader.probe(entry, files)
            probes.append(time.perf_counter() - started)
            dataset = CustomDataset(name, entry)
            started = time.perf_counter()
            full = (dataset.INFO.task, dataset.INFO.channels)
            reads.append(time.perf_counter() - started)
        if probed != full:
            raise SystemExit(f"{name}: the header probe says {probed}, the full read {full}")
        print(f"{entry['title']:>16} {1000 * statistics.median(probes):>9.2f} "
              f"{1000 * statistics.median(reads):>12.1f}  {full[0]}, {full[1]}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--batches", type=int, nargs="*", default=[],
                        help="also time the dry run of batch 1 of B (--batch manifest=1/B)")
    parser.add_argument("--seeds", type=int, default=None, help="pretraining seeds (default: config/config.yaml's)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--no-full", action="store_true", help="skip the whole DAG's dry run (batches only)")
    args = parser.parse_args()
    probe_against_full_read(ROOT / "resources" / "ucr")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        names = write_standin_archive(tmp / "archive", max(args.sizes), seed=0)
        print(f"{'problems':>8} {'what':>12} {'jobs':>8} {'finetune':>8} {'wall s':>8} {'cpu s':>8} "
              f"{'max RSS MiB':>11} {'load 1m':>7}  jobs per rule")
        for size in args.sizes:
            cwd = tmp / f"n{size}"
            cwd.mkdir()
            (cwd / "config.yaml").write_text(yaml.safe_dump(study_config(tmp / "archive", names[:size], args.seeds)))
            modes = [("parse", ("--list-rules",))]
            modes += [(f"batch 1/{b}", ("-n", "--quiet", "rules", "--batch", f"manifest=1/{b}")) for b in args.batches]
            if not args.no_full:  # last: at 128 problems the longest by far
                modes.append(("dry run", ("-n", "--quiet", "rules")))
            for label, snakemake_args in modes:
                wall, cpu, rss, stdout = measure(cwd, args.repeats, *snakemake_args)
                counts = jobs_per_rule(stdout) if label != "parse" else {}
                rules = " ".join(f"{k}={v}" for k, v in counts.items() if k != "total")
                print(f"{size:>8} {label:>12} {counts.get('total', ''):>8} {counts.get('finetune', ''):>8} "
                      f"{wall:>8.1f} {cpu:>8.1f} {rss:>11.0f} {os.getloadavg()[0]:>7.2f}  {rules}", flush=True)


if __name__ == "__main__":
    main()
