"""Command-line entry points of the training jobs (what the training rules run).

    python -m tstransfer.cli pretrain   --spec JSON --arch A --dataset D --seed-index K --store Z --out DIR
    python -m tstransfer.cli referent   --spec JSON --arch A --target T --variant V --run R --store Z --subset S --out DIR
    python -m tstransfer.cli finetune   --spec JSON --arch A --source S --target T --variant V --run R --omega W
                                        --pretrained M --store Z --subset S --out DIR
    python -m tstransfer.cli stream_max --spec JSON --arch A --dataset D --stream-max with|without --seed-index K --store Z --out DIR
    python -m tstransfer.cli rank       --zoo DIR --data DATA [--size N] [--out DIR] [--method NAME ... | all]
    python -m tstransfer.cli transfer   --zoo DIR --data DATA --out DIR [--runs R] [--omegas W ...] [--size N]

DATA: a converted store, a dataset entry (.yaml) or a data file/folder (tstransfer.zoo.data_entry).
Bad data or a bad zoo is one line ``error: ...`` and exit status 2; ``--debug`` (anywhere)
shows the traceback instead, the zoo commands' INFO log and TensorFlow's start-up lines.

The training commands are the training kinds of ``tstransfer.plan.KINDS``, their arguments
its identity fields and inputs (``stream-max`` is still accepted for ``stream_max``).
``--spec`` is the JSON of the config values that shape the job (rules/common.smk,
``tstransfer.plan.job_spec``). With ``TSTRANSFER_JOBSERVER`` set (the Snakefile does this when
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

from .plan import KINDS, TRAINING_KINDS  # TensorFlow-free, like everything the client imports

# The training CLI's old spelling of a kind, still accepted (deprecated).
ALIASES = {"stream_max": ["stream-max"]}


def _parser() -> argparse.ArgumentParser:
    """One subcommand per training kind of :data:`tstransfer.plan.KINDS` (its identity
    fields and inputs as required arguments), and the zoo's commands."""
    parser = argparse.ArgumentParser(prog="python -m tstransfer.cli")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in TRAINING_KINDS:
        kind = KINDS[name]
        sub = commands.add_parser(name, help=kind.help, aliases=ALIASES.get(name, []))
        sub.set_defaults(kind=name)
        sub.add_argument("--spec", required=True, type=json.loads, help="job config values as JSON")
        for field in kind.identity:
            sub.add_argument(f"--{field.name.replace('_', '-')}", required=True, type=field.parse,
                             dest=field.name, help=f"the {field.wildcard} wildcard of rule {name}")
        for item in kind.inputs:
            sub.add_argument(f"--{item}", required=True, help=INPUT_HELP[item])
        sub.add_argument("--out", required=True, help="job output folder (result.json is written last)")
        sub.add_argument("--threads", type=_positive_int, help="TensorFlow's intra- and inter-op threads (the rule's "
                         "threads; default: TensorFlow's, every core of the machine)")
    _zoo_commands(commands)
    return parser


def _positive_int(text: str) -> int:
    """argparse type: an integer of at least 1 (argparse names the option in its error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


INPUT_HELP = {
    "store": "zarr store of the dataset trained on",
    "subset": "the run's subset of the store's training split (.npz)",
    "pretrained": "the selected pretrained model (.keras)",
}


# The model-zoo commands (src/tstransfer/zoo/): run here, never through the job server.
ZOO_COMMANDS = ("rank", "transfer")


def _zoo_commands(commands) -> None:
    for name, help_text in (
        ("rank", "rank a zoo's models for a target dataset by source-selection estimators (no fine-tuning)"),
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
        if name == "rank":
            sub.add_argument("--method", nargs="+", default=["logme"], metavar="NAME",
                             help="source-selection estimators (tstransfer.selection), several at once, "
                                  "or all (default: logme); the first orders the table")
        if name == "transfer":
            sub.add_argument("--runs", type=int, default=7, help="runs (the paper's 7 by default)")
            sub.add_argument("--omegas", type=float, nargs="+",
                             help="learning-rate multipliers (default: the grid the zoo's study searched)")
            sub.add_argument("--max-epochs", type=int, help="override the zoo's training.max_epochs")
            sub.add_argument("--stream-max", choices=["with", "without"], default="with",
                             help="give the models the stream_max input (default: with)")
            sub.add_argument("--arch", nargs="+", help="only these architectures")


# Anywhere on the command line: the traceback of a failure (otherwise one line), the
# zoo commands' INFO log and TensorFlow's start-up lines.
DEBUG = "--debug"


def _one_line_errors(run, args: argparse.Namespace, debug: bool) -> int:
    """``run(args)``, whose failures of the project's own kinds (bad data, a bad zoo, an
    unknown estimator) are one line ``error: ...`` on stderr and exit status 2, not a
    traceback; with ``--debug`` they raise as they are."""
    from .datasets import DataError

    kinds: tuple[type[Exception], ...] = (DataError,)
    if args.command in ZOO_COMMANDS:
        # only there: importing the zoo package (statsmodels, scipy.optimize) took ~0.8 s
        # of every training job forked from the job server (bench/job_fixed_cost.py)
        from .zoo import ZooError

        kinds += (ZooError,)
    try:
        return run(args)
    except kinds as error:
        if debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2


def _run_zoo_command(args: argparse.Namespace, debug: bool = False) -> int:
    import logging
    import tempfile
    from pathlib import Path

    from . import logs

    # rank says what it found on stdout, so its log is quiet but for warnings; transfer
    # trains for minutes, and its INFO lines are its progress
    logs.setup(None, level=logging.INFO if debug or args.command == "transfer" else logging.WARNING)
    from . import selection, zoo
    from .fsutil import atomic_path

    if args.command == "rank":
        try:  # before the zoo and the data are read
            selection.resolve(args.method)
        except ValueError as error:
            raise zoo.ZooError(f"--method: {error}") from None
    if not debug:
        from .tfquiet import import_tensorflow

        import_tensorflow()
    if args.command == "rank":
        with tempfile.TemporaryDirectory() as scratch:  # the converted store, without --out
            table = zoo.rank_target(args.zoo, args.data, args.out or scratch, size=args.size, seed=args.seed,
                                    methods=args.method)
        print(table.to_string(index=False))
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            with atomic_path(Path(args.out) / "ranking.csv") as tmp:
                table.to_csv(tmp, index=False)
        return 0
    # The default grid is the one the zoo's study searched (index.json's protocol).
    omegas = args.omegas or zoo.read_index(args.zoo)["protocol"]["omegas"]
    tables = zoo.transfer(
        args.zoo, args.data, args.out, runs=args.runs, omegas=omegas, size=args.size,
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
    argv = list(argv)
    debug = DEBUG in argv
    args = _parser().parse_args([arg for arg in argv if arg != DEBUG])
    if args.command in ZOO_COMMANDS:
        return _one_line_errors(lambda a: _run_zoo_command(a, debug), args, debug)
    with _exclusive(args.out) as waited:
        if waited and os.path.exists(os.path.join(args.out, "result.json")):
            # The process we waited for finished this very job: its result stands.
            print(f"tstransfer: {args.out}/result.json was written meanwhile; nothing left to do", file=sys.stderr)
            return 0
        return _one_line_errors(_dispatch, args, debug)


def _dispatch(args: argparse.Namespace) -> int:
    """Run the job function of the kind (``jobs.<kind>``) with the parsed arguments."""
    from . import jobs, logs

    logs.setup(None)
    if args.threads:
        jobs.limit_threads(args.threads)
    kind = KINDS[args.kind]
    identity = {field.name: getattr(args, field.name) for field in kind.identity}
    inputs = {item: getattr(args, item) for item in kind.inputs}
    getattr(jobs, kind.name)(args.spec, **identity, **inputs, out_dir=args.out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    server = os.environ.get("TSTRANSFER_JOBSERVER")
    if server and argv and argv[0] not in ("-h", "--help", *ZOO_COMMANDS):
        _parser().parse_args([arg for arg in argv if arg != DEBUG])  # fail fast, before bothering the server
        from . import jobserver

        try:
            return jobserver.submit(server, argv)
        except ConnectionError as error:
            print(f"tstransfer: {error}; running the job in this process", file=sys.stderr)
    return run_job(argv)


if __name__ == "__main__":
    sys.exit(main())
