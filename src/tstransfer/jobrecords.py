"""Which job made which file from which inputs, and when: Snakemake's own records of a
run's jobs, read without building the DAG (the archive's RO-Crate, :mod:`tstransfer.crate`).

Snakemake keeps one record per output in ``.snakemake/metadata`` (its file persistence,
record format 6 in Snakemake 9): the rule, the resolved inputs, the log, the start and end
time. :func:`snakemake_jobs` reads them once and groups the outputs of each job. A training
job without a record (records dropped with ``--drop-metadata``, or the tree archived on
another machine) still has its result.json: :func:`result_json_jobs` makes its job from it
(end: the file's time; start: end minus ``runtime_s``; inputs unknown). A job of a kind
with a benchmark (:data:`tstransfer.plan.KINDS`) has its resource usage there
(:func:`benchmark_of`, :func:`read_benchmark`).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from . import plan

RESULTS = "results"  # the results folder, relative to the workflow's working directory
SNAKEMAKE_RECORDS = ".snakemake/metadata"
# Rules left out: the archive's own job (running while its records are read).
SKIPPED_RULES = ("archive",)
# Benchmark columns reported as a job's resource usage (Snakemake's names), with units.
USAGE = (("s", "wall-clock time", "https://qudt.org/vocab/unit/SEC"),
         ("max_rss", "maximum resident set size", "https://qudt.org/vocab/unit/MegaBYTE"),
         ("cpu_time", "CPU time", "https://qudt.org/vocab/unit/SEC"))


@dataclass(frozen=True)
class Job:
    """One job: its rule, the files it wrote and read, its log(s), and when it ran
    (seconds since the epoch). Paths are relative to the workflow's working directory."""

    rule: str
    outputs: tuple[str, ...]
    inputs: tuple[str, ...] = ()
    logs: tuple[str, ...] = ()
    start: float | None = None
    end: float | None = None


def _record_key(relative: Path) -> str:
    """The output path a Snakemake record file stands for (its name, urlsafe base64, split
    into ``@``-prefixed folders when longer than a file name may be)."""
    return base64.urlsafe_b64decode("".join(part.removeprefix("@") for part in relative.parts)).decode()


def snakemake_jobs(workdir: str | Path = ".") -> list[Job]:
    """Every finished job Snakemake has a record of in ``workdir``, one :class:`Job` each.

    Snakemake keeps one record per output; the outputs of one job share its rule and its
    log (every rule here logs per job) or, for a job without a log, its hash. A record
    whose output is gone, or that is still incomplete, is left out.
    """
    root = Path(workdir) / SNAKEMAKE_RECORDS
    grouped: dict[tuple, dict[str, Any]] = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            try:
                output = _record_key(path.relative_to(root))
                record = json.loads(path.read_text())
            except (ValueError, OSError):
                continue  # not a record (or one being written)
            rule = record.get("rule")
            if not rule or record.get("incomplete") or rule in SKIPPED_RULES:
                continue
            if not os.path.lexists(Path(workdir) / output):
                continue
            logs = tuple(record.get("log") or ())
            key = (rule, logs) if logs else (rule, record.get("job_hash"))
            job = grouped.setdefault(key, {"rule": rule, "outputs": [], "inputs": tuple(record.get("input") or ()),
                                           "logs": logs, "start": [], "end": []})
            job["outputs"].append(output)
            for when in ("start", "end"):
                value = record.get(f"{when}time")
                if value is not None:
                    job[when].append(float(value))
    return [Job(j["rule"], tuple(sorted(j["outputs"])), j["inputs"], j["logs"],
                min(j["start"], default=None), max(j["end"], default=None)) for j in grouped.values()]


def result_json_jobs(results: Path, files: Iterable[Path], recorded: set[str]) -> list[Job]:
    """Training jobs with no Snakemake record, from their result.json (the fallback)."""
    jobs = []
    for relative in files:
        parts = relative.parts
        if relative.name != plan.RESULT or not parts or parts[0] not in plan.TRAINING_KINDS:
            continue
        output = f"{RESULTS}/{relative.as_posix()}"
        if output in recorded:
            continue
        path = results / relative
        end = path.stat().st_mtime
        try:
            runtime = float(json.loads(path.read_text()).get("runtime_s"))
        except (ValueError, TypeError, OSError):
            runtime = None
        jobs.append(Job(parts[0], (output,), start=None if runtime is None else end - runtime, end=end))
    return jobs


def benchmark_of(job: Job) -> str | None:
    """The benchmark file of a job whose kind has one (:data:`tstransfer.plan.KINDS`): its
    log's path with ``logs/`` -> ``benchmarks/`` and ``.log`` -> ``.tsv``, as the kinds lay them out;
    for a job without a record, the one beside its result.json's kind folder."""
    kind = plan.KINDS.get(job.rule)
    if kind is None or kind.benchmark is None:
        return None
    if job.logs:
        log = job.logs[0]
        prefix = f"{RESULTS}/logs/"
        return f"{RESULTS}/benchmarks/{log[len(prefix):-len('.log')]}.tsv" if log.startswith(prefix) else None
    # result.json at results/<kind>/<key>/result.json; its benchmark is results/benchmarks/<kind>/<key>.tsv
    folder = job.outputs[0].removesuffix(f"/{plan.RESULT}")
    return f"{RESULTS}/benchmarks/{folder.removeprefix(f'{RESULTS}/')}.tsv"


def read_benchmark(path: Path) -> dict[str, float]:
    """Snakemake's benchmark file: the columns of :data:`USAGE` from its first row."""
    try:
        header, row = path.read_text().splitlines()[:2]
    except (OSError, ValueError):
        return {}
    values = {}
    for key, value in zip(header.split("\t"), row.split("\t")):
        if key in dict((k, None) for k, _, _ in USAGE):
            try:
                values[key] = float(value)
            except ValueError:
                pass
    return values


__all__ = ["Job", "RESULTS", "SKIPPED_RULES", "SNAKEMAKE_RECORDS", "USAGE", "benchmark_of", "read_benchmark",
           "result_json_jobs", "snakemake_jobs"]
