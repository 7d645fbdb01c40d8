"""Command-line entry points of the training jobs (what the training rules run).

    python -m tstransfer.cli pretrain   --spec JSON --arch A --dataset D --seed-index K --store Z --out DIR
    python -m tstransfer.cli referent   --spec JSON --arch A --target T --variant V --run R --store Z --subset S --out DIR
    python -m tstransfer.cli finetune   --spec JSON --arch A --source S --target T --variant V --run R --omega W
                                        --pretrained M --store Z --subset S --out DIR
    python -m tstransfer.cli stream-max --spec JSON --arch A --dataset D --stream-max with|without --seed-index K --store Z --out DIR
    python -m tstransfer.cli rank       --zoo DIR --data DATA [--size N] [--out DIR]
    python -m tstransfer.cli transfer   --zoo DIR --data DATA --out DIR [--runs R] [--omegas W ...] [--size N]

DATA: a converted store, a dataset entry (.yaml) or a data file/folder (tstransfer.zoo.data_entry).

``--spec`` is the JSON of the config values that shape the job (rules/common.smk,
``tstransfer.protocol.job_spec``). With ``TSTRANSFER_JOBSERVER`` set (the Snakefile does this when
``job_server: true``) the job runs in a child of the warm job server; otherwise here.
This module imports nothing heavy, so the client costs a bare Python start.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tstransfer.cli")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--spec", required=True, type=json.loads, help="job config values as JSON")
        sub.add_argument("--arch", required=True)
        sub.add_argument("--store", required=True, help="zarr store of the dataset trained on")
        sub.add_argument("--out", required=True, help="job output folder (result.json is written last)")
        return sub

    sub = command("pretrain", "pretrain an architecture on a full source dataset")
    sub.add_argument("--dataset", required=True)
    sub.add_argument("--seed-index", required=True, type=int)

    sub = command("referent", "train from scratch on a reduced target training set")
    sub.add_argument("--target", required=True)
    sub.add_argument("--variant", required=True)
    sub.add_argument("--run", required=True, type=int)
    sub.add_argument("--subset", required=True)

    sub = command("finetune", "fine-tune the selected pretrained model on a reduced target set")
    sub.add_argument("--source", required=True)
    sub.add_argument("--target", required=True)
    sub.add_argument("--variant", required=True)
    sub.add_argument("--run", required=True, type=int)
    sub.add_argument("--omega", required=True, type=float)
    sub.add_argument("--pretrained", required=True)
    sub.add_argument("--subset", required=True)

    sub = command("stream-max", "Table 2: train with or without the stream_max input")
    sub.add_argument("--dataset", required=True)
    sub.add_argument("--stream-max", required=True, choices=["with", "without"])
    sub.add_argument("--seed-index", required=True, type=int)
    _zoo_commands(commands)
    return parser


# The model-zoo commands (src/tstransfer/zoo/): run here, never through the job server.
ZOO_COMMANDS = ("rank", "transfer")


def _zoo_commands(commands) -> None:
    for name, help_text in (
        ("rank", "rank a zoo's models for a target dataset by LogME (no fine-tuning)"),
        ("transfer", "fine-tune every compatible zoo model on a target dataset; print the gain table"),
    ):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--zoo", required=True, help="zoo folder (snakemake zoo: results/zoo)")
        sub.add_argument("--data", required=True, help="the target: a converted store (results/data/<name>.zarr), a YAML file with "
                         "one dataset entry (as under the config's datasets:), or a data file or folder "
                         "(.ts or a UCR/UEA folder, .npz, .h5, .csv, .nc), converted into --out first")
        sub.add_argument("--size", type=int, help="training instances per run (default: the whole training split)")
        sub.add_argument("--seed", type=int, help="seed of every draw (default: the zoo's)")
        sub.add_argument("--out", help="folder for the jobs and tables (transfer: required; rank: ranking.csv)",
                         required=name == "transfer")
        if name == "transfer":
            sub.add_argument("--runs", type=int, default=7, help="runs (the paper's 7 by default)")
            sub.add_argument("--omegas", type=float, nargs="+",
                             help="learning-rate multipliers (default: the paper's grid of ten)")
            sub.add_argument("--max-epochs", type=int, help="override the zoo's training.max_epochs")
            sub.add_argument("--stream-max", choices=["with", "without"], default="with",
                             help="give the models the stream_max input (default: with)")
            sub.add_argument("--arch", nargs="+", help="only these architectures")


def _run_zoo_command(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from . import logs, zoo
    from .fsutil import atomic_path

    logs.setup(None)
    if args.command == "rank":
        with tempfile.TemporaryDirectory() as scratch:  # the converted store, without --out
            table = zoo.rank_target(args.zoo, args.data, args.out or scratch, size=args.size, seed=args.seed)
        print(table.to_string(index=False))
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            with atomic_path(Path(args.out) / "ranking.csv") as tmp:
                table.to_csv(tmp, index=False)
        return 0
    from .analysis.stats import OMEGAS

    tables = zoo.transfer(
        args.zoo, args.data, args.out, runs=args.runs, omegas=args.omegas or OMEGAS, size=args.size,
        seed=args.seed, stream_max=args.stream_max == "with", max_epochs=args.max_epochs, archs=args.arch,
    )
    print(tables["report"])
    return 0


@contextlib.contextmanager
def _exclusive(out_dir: str):
    """Hold ``out_dir/.lock`` while the job runs; yield whether another process held it first.

    Two processes can run the same job when the controlling Snakemake dies (SIGKILL, a
    lost login session) while its cluster jobs go on, and a restarted Snakemake submits
    the unfinished ones again. The second then waits here for the first instead of
    training beside it in the same folder.
    """
    import fcntl

    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, ".lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            waited = False
        except BlockingIOError:
            print(f"tstransfer: another process is running the job in {out_dir}; waiting for it", file=sys.stderr)
            fcntl.flock(lock, fcntl.LOCK_EX)
            waited = True
        yield waited


def run_job(argv: Sequence[str]) -> int:
    """Parse ``argv`` and run the job in this process; return the exit status."""
    args = _parser().parse_args(list(argv))
    if args.command in ZOO_COMMANDS:
        return _run_zoo_command(args)
    with _exclusive(args.out) as waited:
        if waited and os.path.exists(os.path.join(args.out, "result.json")):
            # The process we waited for finished this very job: its result stands.
            print(f"tstransfer: {args.out}/result.json was written meanwhile; nothing left to do", file=sys.stderr)
            return 0
        return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    from . import jobs, logs

    logs.setup(None)
    spec = args.spec
    if args.command == "pretrain":
        jobs.pretrain(spec, args.arch, args.dataset, args.seed_index, args.store, args.out)
    elif args.command == "referent":
        jobs.referent(spec, args.arch, args.target, args.variant, args.run, args.store, args.subset, args.out)
    elif args.command == "finetune":
        jobs.finetune(
            spec, args.arch, args.source, args.target, args.variant, args.run, args.omega,
            args.pretrained, args.store, args.subset, args.out,
        )
    elif args.command == "stream-max":
        jobs.stream_max_job(
            spec, args.arch, args.dataset, args.stream_max == "with", args.seed_index, args.store, args.out
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    server = os.environ.get("TSTRANSFER_JOBSERVER")
    if server and argv and argv[0] not in ("-h", "--help", *ZOO_COMMANDS):
        _parser().parse_args(argv)  # fail fast on bad arguments, before bothering the server
        from . import jobserver

        try:
            return jobserver.submit(server, argv)
        except ConnectionError as error:
            print(f"tstransfer: {error}; running the job in this process", file=sys.stderr)
    return run_job(argv)


if __name__ == "__main__":
    sys.exit(main())
