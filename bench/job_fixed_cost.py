"""Where one training job's wall time goes, phase by phase, inside the warm job server.

    python bench/job_fixed_cost.py [--results results] [--repeats 5] [--src SRC ...]

Runs one demo fine-tuning job (the first ``--arch`` cell of a finished run, by default
the demo's ``results/``: its store, subset and selected pretrained model) ``--repeats`` times the
way the workflow runs it: ``python -m tstransfer.cli finetune ...`` as a fresh client
process, served by a job server (``tstransfer.jobserver``) that imported TensorFlow
beforehand. The server's children run the job through :func:`timed_job`, which stamps
the phases of the job (wrapping the package's own functions, so the job is unchanged):

    fork -> job code        the child from its fork to the CLI's dispatch (imports, lock)
    model build             store attributes, the pretrained model loaded, multipliers set
    data load               the Feed: store arrays, subset, standardization
    fit set-up              model.fit until the first epoch starts (datasets, tracing
                            of the input pipeline)
    epochs: training        the optimizer steps of all epochs (Keras's train function;
                            its first call traces it)
    epochs: validation      the per-epoch evaluation on the validation split
    epochs: checkpoint      the per-epoch history.csv and checkpoint writes
    epochs: other           the rest of the epoch callbacks (LR schedule, logging)
    epochs: between         Keras between one epoch's end and the next one's start
    fit teardown            model.fit after the last epoch's end (the input pipeline's end)
    evaluation              best weights restored, test split evaluated
    result writing          result.json, checkpoint removal
    client -> fork          the client's Python start, CLI parsing, the socket hand-over
                            and the fork
    child exit -> client exit   the server noticing the child's end, the client's exit

It prints the median of each phase, its share of the client's wall time, and the
job's "fixed cost" as ``bench/demo_time.py`` and the issue count it (wall minus the
``training`` and ``evaluation`` timings of result.json). With several ``--src`` (source
trees, e.g. a checkout of an older commit's ``src``), the runs alternate between them
in turns and the table has a column per tree, so that both are measured under the
same load; the last line gives the ratio of the fixed costs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PHASES = (
    "client -> fork", "fork -> job code", "model build", "data load", "fit set-up", "epochs: training",
    "epochs: validation", "epochs: checkpoint", "epochs: other", "epochs: between", "fit teardown",
    "evaluation", "result writing",
    "child exit -> client exit",
)
TIMINGS_ENV = "BENCH_JOB_PHASES"  # where the child writes its phase stamps
SAME = ("status", "best_epoch", "last_epoch", "val_metric", "test_metric", "history")


# ----------------------------------------------------------------- in the server's child
def _wrap(owner, name: str, spans: list, label: str) -> None:
    original = getattr(owner, name)

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spans.append((label, start, time.perf_counter()))

    setattr(owner, name, timed)


def timed_job(argv: list[str]) -> int:
    """The job server's runner for this benchmark: ``tstransfer.cli.run_job`` with its
    phases stamped into the JSON file named by ``$BENCH_JOB_PHASES``."""
    from tstransfer import cli, jobs, training
    from tstransfer.feed import Feed

    forked = jobs.process_start()
    entered = time.perf_counter()
    imported_before = set(sys.modules)
    wall_entered = time.time()
    spans: list[tuple[str, float, float]] = []
    _wrap(jobs, "_run", spans, "run")
    _wrap(jobs, "_model_and_optimizer", spans, "model")
    _wrap(jobs, "store_attrs", spans, "attrs")
    _wrap(jobs, "_write_result", spans, "result writing")
    _wrap(Feed, "from_subset", spans, "data load")
    _wrap(training.EpochLoop, "run_epochs", spans, "fit")
    _wrap(training.EpochLoop, "validate", spans, "epochs: validation")
    _wrap(training.EpochLoop, "checkpoint", spans, "epochs: checkpoint")
    _wrap(training.EpochLoop, "end_epoch", spans, "end_epoch")
    _wrap(training.EpochLoop, "result", spans, "evaluation")
    first_epoch: list[float] = []  # every epoch's begin, in fact
    begin = training.EpochLoop.begin_epoch

    def begin_epoch(self, epoch, logs=None):
        first_epoch.append(time.perf_counter())
        return begin(self, epoch, logs)

    training.EpochLoop.begin_epoch = begin_epoch
    code = cli.run_job(argv)
    done = time.perf_counter()

    def total(label: str) -> float:
        return sum(end - start for name, start, end in spans if name == label)

    def first(label: str) -> tuple[float, float]:
        return next((start, end) for name, start, end in spans if name == label)

    ends = [end for name, _, end in spans if name == "end_epoch"]
    between = sum(b - e for e, b in zip(ends, first_epoch[1:]))  # Keras between two epochs
    run_start, run_end = first("run")
    fit_start, fit_end = first("fit")
    end_epochs = total("end_epoch")
    epochs_wall = fit_end - first_epoch[0]
    phases = {
        "fork -> job code": (wall_entered - forked) + (run_start - entered),
        "model build": total("model") + total("attrs"),
        "data load": total("data load"),
        "fit set-up": first_epoch[0] - fit_start,
        "epochs: training": epochs_wall - end_epochs - between - (fit_end - ends[-1]),
        "epochs: between": between,
        "fit teardown": fit_end - ends[-1],
        "epochs: validation": total("epochs: validation"),
        "epochs: checkpoint": total("epochs: checkpoint"),
        "epochs: other": end_epochs - total("epochs: validation") - total("epochs: checkpoint"),
        "evaluation": total("evaluation"),
        "result writing": total("result writing"),
        "unaccounted in job": (done - entered) - (run_start - entered)
        - (total("model") + total("attrs") + total("data load") + (fit_end - fit_start)
           + total("evaluation") + total("result writing")),
        "child": (wall_entered - forked) + (done - entered),
        "forked": forked,
    }
    new_modules = sorted(set(sys.modules) - imported_before)
    Path(os.environ[TIMINGS_ENV]).write_text(json.dumps({**phases, "new_modules": new_modules}))
    return code


# ----------------------------------------------------------------- the driver
def _job_command(results: Path, out: Path, arch: str) -> tuple[dict, list[str]]:
    """The CLI command of a finished run's first fine-tuning cell of ``arch`` (sorted by
    path), as the rule has it, with that cell's result.json: ``(result, command)``."""
    cells = sorted((results / "finetune" / arch).glob("*/*/*/run*/omega*/result.json"))
    if not cells:
        sys.exit(f"error: {results}: no finished {arch} fine-tuning cell (run `make demo` first)")
    cell = json.loads(cells[0].read_text())
    source, target, variant, run = cell["source"], cell["target"], cell["variant"], cell["run"]
    return cell, [
        "finetune", "--spec", json.dumps(cell["config"], sort_keys=True, separators=(",", ":")),
        "--arch", arch, "--source", source, "--target", target, "--variant", variant,
        "--run", str(run), "--omega", str(cell["omega"]), "--out", str(out),
        "--pretrained", str(results / "pretrain" / arch / source / "selected" / "model.keras"),
        "--store", str(results / "data" / f"{target}.zarr"),
        "--subset", str(results / "data" / "subsets" / target / variant / f"run{run}.npz"),
    ]


def _start_server(src: Path, socket_path: str, log_path: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(src), str(Path(__file__).parent)]))
    with open(log_path + ".stderr", "w") as stderr:  # TensorFlow's C++ start-up lines
        server = subprocess.Popen(
            [sys.executable, "-m", "tstransfer.jobserver", "--socket", socket_path, "--log", log_path,
             "--runner", "job_fixed_cost:timed_job", "--parent", str(os.getpid())], env=env,
            stdout=stderr, stderr=stderr,
        )
    deadline = time.monotonic() + 120
    while not os.path.exists(socket_path):
        if server.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"error: the job server for {src} did not start (see {log_path})")
        time.sleep(0.05)
    return server


def _one_run(src: Path, socket_path: str, command: list[str], original: dict, out: Path,
             scratch: Path) -> tuple[dict[str, float], list[str]]:
    phases_file = scratch / "phases.json"
    env = dict(os.environ, PYTHONPATH=str(src), TSTRANSFER_JOBSERVER=socket_path,
               **{TIMINGS_ENV: str(phases_file)})
    if out.exists():
        subprocess.run(["rm", "-rf", str(out)], check=True)
    started, launched = time.perf_counter(), time.time()
    done = subprocess.run([sys.executable, "-m", "tstransfer.cli", *command], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"error: the job failed with {src}:\n{done.stdout[-2000:]}")
    phases = json.loads(phases_file.read_text())
    new_modules = phases.pop("new_modules")
    result = json.loads((out / "result.json").read_text())
    timings = result["timings"]
    # the job timed here must be the run's own: the same metrics, epoch for epoch
    same = all(result[key] == original[key] for key in SAME if key != "history") and all(
        result["history"][c] == original["history"][c] for c in ("train_loss", "val_loss", "val_metric"))
    to_fork = phases.pop("forked") - launched
    phases["client -> fork"] = to_fork
    phases["child exit -> client exit"] = wall - to_fork - phases.pop("child")
    phases["wall"] = wall
    phases["same"] = float(same)
    phases["fixed (wall - training - evaluation)"] = wall - timings["training"] - timings["evaluation"]
    return phases, new_modules


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=Path("results"), help="a finished demo's results")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--arch", default="magnet", help="architecture of the cell (the demo's: magnet)")
    parser.add_argument("--src", type=Path, action="append",
                        help="source tree(s) of the package to compare (default: this checkout's src)")
    args = parser.parse_args(argv)
    sources = [s.resolve() for s in (args.src or [Path(__file__).resolve().parent.parent / "src"])]
    results = args.results.resolve()
    rows: dict[Path, list[dict[str, float]]] = {src: [] for src in sources}
    imported: dict[Path, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="job-fixed-cost-") as tmp:
        scratch = Path(tmp)
        original, command = _job_command(results, scratch / "out", args.arch)
        servers = {src: (_start_server(src, str(scratch / f"s{i}.sock"), str(scratch / f"s{i}.log")),
                         str(scratch / f"s{i}.sock")) for i, src in enumerate(sources)}
        try:
            for _ in range(args.repeats):
                for src in sources:  # in turns: load on the machine falls on all alike
                    phases, imported[src] = _one_run(src, servers[src][1], command, original, scratch / "out",
                                                    scratch)
                    rows[src].append(phases)
        finally:
            for server, _ in servers.values():
                server.terminate()
                server.wait()
    cells = command[command.index("--out") - 10: command.index("--out")]
    print(f"job: finetune {' '.join(cells)} ({args.repeats} runs per tree, medians in s)")
    labels = [*PHASES, "unaccounted in job", "wall", "fixed (wall - training - evaluation)"]
    header = f"{'phase':<38}" + "".join(f"{src.parent.name + '/' + src.name:>22}{'share':>7}" for src in sources)
    print(header)
    for label in labels:
        line = f"{label:<38}"
        for src in sources:
            value = statistics.median(r[label] for r in rows[src])
            wall = statistics.median(r["wall"] for r in rows[src])
            line += f"{value:>22.3f}{value / wall:>7.0%}"
        print(line)
    for src in sources:
        same = all(r["same"] for r in rows[src])
        print(f"same metrics as the finished run's, every run ({src.parent.name}/{src.name}): "
              f"{'yes' if same else 'NO'}")
    for src in sources:
        packages = sorted({name.split(".")[0] for name in imported[src]})
        print(f"modules a job imports that the server had not ({src.parent.name}/{src.name}): "
              f"{len(imported[src])}, of {', '.join(packages[:12]) or 'none'}")
    if len(sources) > 1:
        fixed = [statistics.median(r["fixed (wall - training - evaluation)"] for r in rows[s]) for s in sources]
        walls = [statistics.median(r["wall"] for r in rows[s]) for s in sources]
        print(f"ratio {sources[-1].parent.name} / {sources[0].parent.name}: fixed cost "
              f"{fixed[-1] / fixed[0]:.2f}, wall {walls[-1] / walls[0]:.2f}")


if __name__ == "__main__":
    main()
