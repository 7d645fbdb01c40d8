"""How far a run is: ``python -m tstransfer.progress results/``.

Per rule of the workflow, the jobs the config plans and how many of them are done,
diverged (training jobs whose ``result.json`` says so), failed, running or not started,
and the time left estimated from the rules' ``benchmark:`` files. Fast enough for the
paper's 17,000 jobs: the planned jobs come from the config through
:func:`tstransfer.plan.planned_jobs`, with the paths the rules declare (a Snakemake dry
run takes minutes on that DAG), and only the files of those jobs are looked at.

A job's state, from its files (the rules write their output last, atomically):

* done: its output exists (a training job's ``result.json``, whose ``status`` tells
  ``ok`` from ``diverged``);
* failed: no output, and its log ends in a Python traceback;
* running: no output, and a log or a training checkpoint exists. This includes jobs that
  were interrupted (a killed Snakemake, a SLURM time limit); a training job resumes from
  its checkpoint when the run is started again;
* pending: nothing yet.

Time left: for each rule, the mean ``s`` (wall seconds) of the benchmark files of its
finished jobs times its jobs not finished, summed over rules and divided by
``--parallel`` (how many jobs run at once). It is an estimate: jobs of one rule differ
in size (the datasets differ by orders of magnitude), and a rule with no finished job
yet has no estimate.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import textwrap
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml  # the workflow extra's (the command runs beside snakemake)

# The jobs a config plans, with the paths the rules declare.
from .plan import KINDS, TRAINING_KINDS, Job, planned_jobs

# The Snakefile's `configfile:`, relative to the working directory.
DEFAULT_CONFIGFILE = "config/demo.yaml"

RULES = tuple(KINDS)
STATES = ("done", "diverged", "failed", "running", "pending")
# A running job that has not written its log or checkpoint for this long is reported as
# quiet. A training job writes both after every epoch, so a longer pause suggests that it
# stopped; where one epoch takes longer (the largest sets on a slow GPU), raise it.
DEFAULT_QUIET_MINUTES = 60.0
# Only the end of a log is read for the failure marks: a job's error is its last words.
LOG_TAIL_BYTES = 64 * 1024
# Both a job's uncaught exception and tstransfer.logs.logged_errors (the scripts') print one.
FAILURE_MARKS = ("Traceback (most recent call last)",)


# --------------------------------------------------------------------------- states
def _log_failed(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - LOG_TAIL_BYTES))
            tail = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return False
    return any(mark in tail for mark in FAILURE_MARKS)


def job_state(workdir: Path, job: Job) -> str:
    """``done``, ``diverged``, ``failed``, ``running`` or ``pending`` (module docstring)."""
    output = workdir / job.output
    if output.exists():
        if not job.has_result_json:
            return "done"
        try:
            status = json.loads(output.read_text()).get("status")
        except (OSError, ValueError, AttributeError):
            return "failed"  # written atomically, so an unreadable one was damaged later
        return "diverged" if status == "diverged" else "done"
    log = workdir / job.log
    if log.exists():
        return "failed" if _log_failed(log) else "running"
    if job.checkpoint and (workdir / job.checkpoint).exists():
        return "running"
    return "pending"


def last_activity(workdir: Path, job: Job) -> float | None:
    """The newest modification time (epoch seconds) of a started job's log, checkpoint or
    partial download; None when none exists."""
    paths = [job.log, job.checkpoint, f"{job.output}.part" if job.rule == "download" else None]
    times = []
    for path in filter(None, paths):
        try:
            times.append((workdir / path).stat().st_mtime)
        except OSError:
            continue
    return max(times) if times else None


def benchmark_seconds(path: Path) -> float | None:
    """Mean ``s`` over the rows of a Snakemake benchmark TSV (None: absent or unreadable)."""
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
    except OSError:
        return None
    values = []
    for row in rows:
        try:
            values.append(float(row["s"]))
        except (KeyError, TypeError, ValueError):
            continue
    values = [v for v in values if math.isfinite(v)]
    return sum(values) / len(values) if values else None


def survey(workdir: str | Path, config: Mapping[str, Any], *, parallel: int = 1,
           quiet_minutes: float = DEFAULT_QUIET_MINUTES, source: str = "config",
           failed_listed: int = 10, now: float | None = None) -> dict[str, Any]:
    """The progress of the run in ``workdir`` (the folder holding ``results/``), as a dict.

    ``rules``: per rule with planned jobs, the planned count, the count in each state,
    the mean benchmark seconds of its finished jobs, and its estimated seconds left
    (None when it has jobs left and no benchmark yet). ``seconds_left``: their sum over
    ``parallel`` jobs at once; 0 when nothing is left, None when jobs are left but none
    of them has an estimate. ``unestimated_rules`` lists the rules left out of it.
    ``quiet``: of the running jobs, those whose log, checkpoint (or partial download) has
    not changed for ``quiet_minutes``: probably interrupted, or in a very long step.
    """
    if parallel < 1:
        raise ValueError(f"--parallel must be at least 1, got {parallel}")
    workdir = Path(workdir)
    now = time.time() if now is None else now
    rules: dict[str, dict[str, Any]] = {}
    failed_logs: list[str] = []
    for rule, jobs in planned_jobs(config, source).items():
        if not jobs:
            continue
        counts = dict.fromkeys(STATES, 0)
        quiet = 0
        seconds = []
        for job in jobs:
            state = job_state(workdir, job)
            counts[state] += 1
            if state == "failed" and len(failed_logs) < failed_listed:
                failed_logs.append(job.log)
            if state == "running":
                active = last_activity(workdir, job)
                quiet += active is None or now - active > quiet_minutes * 60
            if state in ("done", "diverged") and job.benchmark:
                value = benchmark_seconds(workdir / job.benchmark)
                if value is not None:
                    seconds.append(value)
        left = len(jobs) - counts["done"] - counts["diverged"]
        mean = sum(seconds) / len(seconds) if seconds else None
        rules[rule] = {
            "planned": len(jobs), **counts, "quiet": quiet, "left": left,
            "has_benchmark": jobs[0].benchmark is not None,
            "benchmarked": len(seconds), "mean_seconds": mean,
            "seconds_left": 0.0 if left == 0 else None if mean is None else mean * left,
        }
    estimated = [r["seconds_left"] for r in rules.values() if r["left"] and r["seconds_left"] is not None]
    unestimated = [rule for rule, r in rules.items() if r["seconds_left"] is None]
    return {
        "workdir": str(workdir.resolve()),
        "parallel": parallel,
        "rules": rules,
        "planned": sum(r["planned"] for r in rules.values()),
        **{state: sum(r[state] for r in rules.values()) for state in (*STATES, "quiet")},
        "quiet_minutes": quiet_minutes,
        "seconds_left": sum(estimated) / parallel if estimated or not unestimated else None,
        "unestimated_rules": unestimated,
        "failed_logs": failed_logs,
    }


# --------------------------------------------------------------------------- output
def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours:02d} h"


def format_table(report: Mapping[str, Any]) -> str:
    """The survey as a table a person reads, with what its columns mean."""
    header = ["rule", "planned", "done", "diverged", "failed", "running", "pending",
              "s/job", "left, 1 at a time"]
    rows = []
    for rule, r in report["rules"].items():
        rows.append([
            rule, r["planned"], r["done"], r["diverged"] if rule in TRAINING_KINDS else "-",
            r["failed"], r["running"], r["pending"],
            "-" if r["mean_seconds"] is None else f"{r['mean_seconds']:.1f}",
            "-" if not r["left"] else format_duration(r["seconds_left"]) if r["has_benchmark"] else "n/a",
        ])
    rows.append(["total", report["planned"], report["done"], report["diverged"], report["failed"],
                 report["running"], report["pending"], "", ""])
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[Any]) -> str:
        cells = [str(row[0]).ljust(widths[0])] + [str(v).rjust(w) for v, w in zip(row[1:], widths[1:])]
        return "  ".join(cells).rstrip()

    finished = report["done"] + report["diverged"]
    share = 100.0 * finished / report["planned"] if report["planned"] else 100.0
    out = [f"Run in {report['workdir']}: {finished} of {report['planned']} jobs finished "
           f"({share:.1f} %)", "", line(header), line(["-" * w for w in widths])]
    out += [line(row) for row in rows[:-1]] + [line(["-" * w for w in widths]), line(rows[-1]), ""]
    parallel = report["parallel"]
    at_once = f"{parallel} job{'s' if parallel != 1 else ''} at a time"
    rules = report["rules"]
    waiting = [rule for rule in report["unestimated_rules"] if rules[rule]["has_benchmark"]]
    unmeasured = [rule for rule in report["unestimated_rules"] if not rules[rule]["has_benchmark"]]
    if report["seconds_left"] is None:
        text = "Time left: no estimate yet"
    else:
        text = f"Time left, estimated: {format_duration(report['seconds_left'])} with {at_once}"
    if waiting:
        text += f"; not counted: {', '.join(waiting)} (no finished job with a benchmark yet)"
    if unmeasured:
        text += f"; not counted: {', '.join(unmeasured)} (rules without benchmark:)"
    out += textwrap.wrap(text + ".", width=92, subsequent_indent="  ")
    out += [
        "  (each rule's mean benchmark seconds per finished job x its jobs not finished, divided",
        "  by --parallel; jobs of one rule differ in size, so this is a rough guide.)",
        "running: started, no result yet: still running, or interrupted (training resumes from",
        "  its checkpoint when the run restarts). failed: no result, and a traceback in the log.",
    ]
    if report["quiet"]:
        out += textwrap.wrap(
            f"{report['quiet']} of the running jobs have not written their log or checkpoint for "
            f"{report['quiet_minutes']:g} min: probably interrupted (is snakemake still running?), "
            "or in a very long step.", width=92, subsequent_indent="  ")
    if report["failed_logs"]:
        more = report["failed"] - len(report["failed_logs"])
        out.append("Logs of failed jobs" + (f" (first {len(report['failed_logs'])} of {report['failed']})"
                                            if more > 0 else "") + ":")
        out += [f"  {path}" for path in report["failed_logs"]]
    return "\n".join(out)


# --------------------------------------------------------------------------- command line
def load_config(paths: Sequence[str | Path]) -> dict[str, Any]:
    """The config files merged in order, as Snakemake merges ``--configfile``s: nested
    mappings key by key (an overlay's ``pretrain: {seeds: 1}`` keeps the other keys);
    ``archives`` expanded into their problems' ``datasets`` entries."""
    from snakemake.utils import update_config

    config: dict[str, Any] = {}
    for path in paths:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except FileNotFoundError:
            raise ValueError(f"config file {path} not found (give the run's config with --configfile)") from None
        except yaml.YAMLError as error:
            raise ValueError(f"config file {path} is not valid YAML: {error}") from None
        if not isinstance(loaded, dict):
            raise ValueError(f"config file {path}: expected a mapping at the top level")
        update_config(config, loaded)
    if config.get("archives"):  # each archive's problems as datasets, as the Snakefile does
        from .datasets.collection import expand_archives

        expand_archives(config)
    return config


def _workdir(results: Path) -> Path:
    """The workflow's working directory, given its ``results/`` folder (or itself)."""
    if results.name != "results" and (results / "results").is_dir():
        return results
    return results.parent


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tstransfer.progress",
        description="How far a run is: jobs done, diverged, failed, running and pending per rule, "
                    "and the time left estimated from the benchmark files.",
    )
    parser.add_argument("results", nargs="?", default="results",
                        help="the run's results/ folder (default: ./results)")
    parser.add_argument("--configfile", nargs="+", metavar="FILE",
                        help="the config(s) the run was started with, as given to snakemake "
                             f"(default: {DEFAULT_CONFIGFILE} beside results/, the Snakefile's)")
    parser.add_argument("--parallel", type=int, default=1, metavar="N",
                        help="jobs that run at once, for the time left (default 1)")
    parser.add_argument("--quiet-minutes", type=float, default=DEFAULT_QUIET_MINUTES, metavar="M",
                        help="running jobs whose log/checkpoint is older than this are reported "
                             f"as quiet (default {DEFAULT_QUIET_MINUTES:g})")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args(argv)

    results = Path(args.results)
    if not results.is_dir():
        parser.error(f"{results} is not a folder")
    workdir = _workdir(results)
    configfiles = args.configfile or [workdir / DEFAULT_CONFIGFILE]
    try:
        config = load_config(configfiles)
        report = survey(workdir, config, parallel=args.parallel, quiet_minutes=args.quiet_minutes,
                        source=", ".join(map(str, configfiles)))
    except ValueError as error:
        print(f"tstransfer.progress: {error}", file=sys.stderr)
        return 2
    report["configfiles"] = [str(p) for p in configfiles]
    print(json.dumps(report, indent=2) if args.json else format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
