"""How long the real-data study (config/real.yaml) takes on a 2-core machine, from
measured epochs.

    python bench/real_study_time.py [--config config/real.yaml] [--workdir DIR] [--cores 2]
        [--epochs-fraction F] [--set training.min_epoch_steps=20 ...]

Per problem and architecture of the config it converts the store (``pipeline.convert``;
kept in ``--workdir`` for reuse), trains one referent-shaped job of 3 epochs through the
job function (``jobs.referent``, the config's training settings, ``min_epoch_steps``
included) and measures the CPU seconds of the 2nd and 3rd epochs (training plus the
epoch's validation; the 1st holds TensorFlow's tracing, counted once per job as fixed
cost with the job's start). CPU seconds, not wall seconds: on a shared machine a wall
clock measures the other users too; a job that keeps a core busy takes its CPU seconds
of wall time on an idle machine. TensorFlow runs on ``--threads`` (default 1), as the
workflow's jobs do (rules/training.smk, ``jobs.limit_threads``).

The study's jobs: per architecture a pretraining job per source (the whole training
split), 3 referents per target and 3 x multipliers fine-tuning jobs per ordered pair. Each
job is costed at ``--epochs-fraction`` (default 1: every job runs max_epochs, an upper
bound; early stopping cuts it) of max_epochs epochs plus its fixed cost, and the total is
divided by ``--cores`` (Snakemake runs that many jobs at once). Prints the per-problem
figures and the estimate.
"""

from __future__ import annotations

import argparse
import logging
import resource
import tempfile
from pathlib import Path

from tstransfer import datasets, jobs, pipeline, store
from tstransfer.devtools import bench_config

ROOT = Path(__file__).resolve().parents[1]
PROBE_EPOCHS = 3


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def probe(config: dict, name: str, arch: str, store_path: Path, work: Path) -> dict[str, float]:
    """CPU seconds of one job's first epoch (with its set-up) and of a later epoch."""
    probe_config = {**config, "training": {**config["training"], "max_epochs": PROBE_EPOCHS,
                                           "early_stopping": {"patience": 100}}}
    variant, size = next(iter(config["variants"].items()))
    subset = work / f"{name}_probe.npz"
    store.make_subset(store_path, subset, variant=variant, size=size, run=0, seed=config["seed"])
    epoch_cpu: list[float] = []

    def hook(done: int, history) -> None:
        epoch_cpu.append(cpu_seconds())

    from tstransfer import training

    started = cpu_seconds()
    original = training.train

    def train_with_hook(*args, **kwargs):
        kwargs["epoch_end_hook"] = hook
        return original(*args, **kwargs)

    training.train = train_with_hook  # jobs._run imports train from training when it runs
    try:
        record = jobs.referent(probe_config, arch, name, variant, 0, store_path, subset,
                               work / "probe" / arch / name)
    finally:
        training.train = original
    later = [b - a for a, b in zip(epoch_cpu, epoch_cpu[1:])]
    return {"first": epoch_cpu[0] - started, "epoch": sum(later) / len(later),
            "steps": record["steps_per_epoch"], "n_train": record["n_train"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "real.yaml")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow's threads (0: its default)")
    parser.add_argument("--epochs-fraction", type=float, default=1.0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a dotted config key and a YAML value, e.g. training.min_epoch_steps=20")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        jobs.limit_threads(args.threads)
    config = bench_config.load(args.config, args.set, ROOT)
    datasets.register_config(config)
    problems = list(dict.fromkeys([*config["sources"], *config["targets"]]))
    max_epochs = int(config["training"]["max_epochs"])
    n_omegas, runs = len(config["omegas"]), int(config["runs"])
    n_sources_of = {t: sum(1 for s in config["sources"] if s != t) for t in config["targets"]}
    total = 0.0
    with tempfile.TemporaryDirectory() as scratch:
        work = args.workdir or Path(scratch)
        print(f"{'problem':<22} {'arch':<10} {'n_train':>7} {'steps/epoch':>11} {'first epoch cpu s':>17} "
              f"{'epoch cpu s':>11} {'jobs':>5} {'cpu s':>8}")
        for name in problems:
            store_path = work / "stores" / f"{name}.zarr"
            if not store_path.exists():
                pipeline.convert(name, config["datasets"][name]["path"], store_path, {}, config["seed"])
            for arch in config["architectures"]:
                m = probe(config, name, arch, store_path, work)
                n_jobs = ((name in config["sources"]) * int(config["pretrain"]["seeds"])
                          + (name in config["targets"]) * runs * (1 + n_omegas * n_sources_of.get(name, 0)))
                per_job = m["first"] + m["epoch"] * (args.epochs_fraction * max_epochs - 1)
                total += n_jobs * per_job
                print(f"{datasets.title(name):<22} {arch:<10} {m['n_train']:>7} {m['steps']:>11} "
                      f"{m['first']:>17.2f} {m['epoch']:>11.3f} {n_jobs:>5} {n_jobs * per_job:>8.0f}", flush=True)
    print(f"\nall jobs: {total:.0f} CPU s at {args.epochs_fraction:g} x max_epochs ({max_epochs}); "
          f"on {args.cores} cores: {total / args.cores / 3600:.2f} h of training jobs")


if __name__ == "__main__":
    main()
