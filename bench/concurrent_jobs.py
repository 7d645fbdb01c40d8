"""Training jobs side by side: tf.data's autotuning and TensorFlow's thread pools, as
they were and as the workflow now sets them.

    python bench/concurrent_jobs.py [--config config/real.yaml] [--problem gunpoint]
        [--arch fcn] [--jobs 2] [--repeats 3] [--set KEY=VALUE ...] [--workdir DIR]

Snakemake with ``--cores 2`` runs two 1-thread training jobs at once. Each repeat starts
``--jobs`` worker processes at the same moment, each training one referent of
``--problem`` (the config's training settings, runs 0, 1, ...), in three modes that
take turns, so that all meet the same load:

    autotune, TF's threads        tf.data's autotuning on (feed.without_autotune made a
                                  no-op) and TensorFlow's pools of every core: the jobs
                                  as they ran before
    no autotune, TF's threads     feed.without_autotune as the feed calls it
    no autotune, 1 thread a job   and ``jobs.limit_threads(1)``: the workflow's jobs

It prints, per mode, the median wall time of a repeat (process start to all its jobs
done), the jobs' median wall seconds (job start to end, TensorFlow's import included)
and CPU seconds, and each mode's ratio to the first. The store is converted once into
``--workdir`` (a temporary folder by default); ``make ucr-data`` gives the problems.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tstransfer.devtools import bench_config

ROOT = Path(__file__).resolve().parents[1]
# mode: (tf.data autotuning, TensorFlow threads: 0 for its default)
MODES = {"autotune, TF's threads": (True, 0), "no autotune, TF's threads": (False, 0),
         "no autotune, 1 thread a job": (False, 1)}


def worker(args: argparse.Namespace) -> None:
    """One referent job in this process; prints its wall and CPU seconds as JSON."""
    started = time.perf_counter()
    from tstransfer import datasets, feed, jobs, store

    config = bench_config.load(args.config, args.set, ROOT)
    datasets.register_config(config)
    if args.autotune:
        feed.without_autotune = lambda dataset: dataset  # the Feed looks it up when it builds a dataset
    if args.threads:
        jobs.limit_threads(args.threads)
    variant, size = next(iter(config["variants"].items()))
    out = Path(args.out)
    subset = out / "subset.npz"
    out.mkdir(parents=True, exist_ok=True)
    store.make_subset(args.store, subset, variant=variant, size=size, run=args.run, seed=config["seed"])
    record = jobs.referent(config, args.arch, args.problem, variant, args.run, args.store, subset, out / "job")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"wall": time.perf_counter() - started, "cpu": usage.ru_utime + usage.ru_stime,
                      "threads": record["tf_threads"]["intra_op"]}))


def one_repeat(args: argparse.Namespace, store_path: Path, work: Path, autotune: bool, threads: int) -> dict:
    command = [sys.executable, __file__, "--worker", "--config", str(args.config), "--problem", args.problem,
               "--arch", args.arch, "--store", str(store_path), "--threads", str(threads),
               *(["--autotune"] if autotune else []), *[f"--set={item}" for item in args.set]]
    started = time.perf_counter()
    folder = f"autotune{int(autotune)}_threads{threads}"
    processes = [subprocess.Popen([*command, "--run", str(run), "--out", str(work / folder / f"run{run}")],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                 for run in range(args.jobs)]
    outputs = [process.communicate()[0] for process in processes]
    wall = time.perf_counter() - started
    if any(process.returncode for process in processes):
        raise SystemExit(f"a worker failed ({folder}); rerun one with --worker to see why")
    jobs_seen = [json.loads(output.strip().splitlines()[-1]) for output in outputs]
    return {"repeat": wall, "jobs": jobs_seen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "real.yaml")
    parser.add_argument("--problem", default="gunpoint")
    parser.add_argument("--arch", default="fcn")
    parser.add_argument("--jobs", type=int, default=2, help="jobs at once (Snakemake's --cores)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--run", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--autotune", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    from tstransfer import datasets, pipeline

    config = bench_config.load(args.config, args.set, ROOT)
    datasets.register_config(config)
    with tempfile.TemporaryDirectory() as scratch:
        work = args.workdir or Path(scratch)
        store_path = work / f"{args.problem}.zarr"
        if not store_path.exists():
            pipeline.convert(args.problem, config["datasets"][args.problem]["path"], store_path, {}, config["seed"])
        seen: dict[str, list[dict]] = {mode: [] for mode in MODES}
        for repeat in range(args.repeats):
            for mode, (autotune, threads) in MODES.items():
                seen[mode].append(one_repeat(args, store_path, work / f"repeat{repeat}", autotune, threads))
    print(f"{args.jobs} {args.arch} referents of {args.problem} at once, {args.repeats} repeats "
          f"(training: {json.dumps(config['training'])})")
    print(f"{'mode':<28} {'repeat wall s':>13} {'job wall s':>10} {'job cpu s':>9} {'TF threads':>10} "
          f"{'ratio':>5}")
    first = None
    for mode, repeats in seen.items():
        jobs_seen = [job for repeat in repeats for job in repeat["jobs"]]
        median = statistics.median(repeat["repeat"] for repeat in repeats)
        first = first or median
        print(f"{mode:<28} {median:>13.1f} {statistics.median(j['wall'] for j in jobs_seen):>10.1f} "
              f"{statistics.median(j['cpu'] for j in jobs_seen):>9.1f} {jobs_seen[0]['threads']:>10} "
              f"{first / median:>5.2f}")


if __name__ == "__main__":
    main()
