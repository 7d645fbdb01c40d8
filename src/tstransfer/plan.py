"""The experiment's plan: every kind of job, its paths, and the jobs a config asks for.

One :class:`JobKind` per kind of job (:data:`KINDS`). Its ``name`` is at once the rule's
name (rules/*.smk), the training CLI's subcommand (:mod:`tstransfer.cli`), the job
function of :mod:`tstransfer.jobs`, the ``kind`` a result.json records and the results
table's ``kind``. Its patterns (output, log, benchmark, checkpoint; built from
:mod:`tstransfer.layout`, ``{...}`` are the rule's wildcards) are the ones the rules
declare, and :func:`planned_jobs` lists every job a config asks for with them, as
``snakemake`` plans a fresh run (tests/test_plan.py compares the two on the shipped
configs). A training kind also names its identity fields (the CLI's and the job
function's arguments, each read from a wildcard), its inputs and its seed's parts.

TensorFlow-free and cheap to import: every cluster job parses the Snakefile, which
imports this module.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .layout import (
    FINETUNE_DIR,
    PRETRAIN_DIR,
    RAW_FILE,
    REFERENT_DIR,
    SELECTED_DIR,
    SMAX_DIR,
    STORE,
    SUBSET,
    SYNTHETIC_DIR,
    omega_label,
    raw_origin,
)
from .protocol import job_switches, shaping, spec_with

# A training job's checkpoint, inside its folder (tstransfer.training CHECKPOINT_DIR / CHECKPOINT_FILE).
CHECKPOINT = "checkpoint/state.npz"
RESULT = "result.json"  # a training job's output, written last
STREAM_MAX_SETTINGS = ("with", "without")


def with_or_without(value: str | bool) -> bool:
    """The stream_max study's setting ("with" / "without", or a bool) as a bool."""
    if isinstance(value, bool):
        return value
    if value not in STREAM_MAX_SETTINGS:
        raise ValueError(f"stream_max must be 'with' or 'without', got {value!r}")
    return value == "with"


@dataclass(frozen=True)
class Field:
    """One identity field of a training job: the CLI's ``--name`` and the job function's
    argument ``name``, read from the rule's wildcard ``wildcard`` and parsed by ``parse``."""

    name: str
    wildcard: str
    parse: Callable[[str], Any] = str

    def label(self, value: Any) -> str:
        """The value as the job's paths spell it."""
        if self.parse is float:
            return omega_label(value)
        if self.parse is with_or_without:
            return "with" if with_or_without(value) else "without"
        return str(value)


@dataclass(frozen=True)
class JobKind:
    """One kind of job; see the module docstring. ``identity``, ``inputs``, ``folder``
    and ``seed_parts`` are a training kind's (empty or None otherwise); ``dataset`` is
    the identity field naming the data the job trains on. ``grid``: which jobs a config
    plans, as the config axis (:func:`_axes`) each wildcard runs over, the first
    outermost ("source,target" runs over the pairs); empty for the data kinds, whose
    jobs depend on each dataset's entry (:func:`_data_wildcards`)."""

    name: str
    wildcards: tuple[str, ...]
    output: str
    log: str
    benchmark: str | None = None
    folder: str | None = None
    identity: tuple[Field, ...] = ()
    inputs: tuple[str, ...] = ()
    dataset: str | None = None
    seed_parts: tuple[str, ...] = ()
    help: str = ""
    grid: tuple[tuple[str, str], ...] = ()

    @property
    def trains(self) -> bool:
        return self.folder is not None

    @property
    def checkpoint(self) -> str | None:
        return f"{self.folder}/{CHECKPOINT}" if self.folder else None

    def field(self, name: str) -> Field:
        return next(f for f in self.identity if f.name == name)


def _training(name: str, folder: str, key: str, identity: tuple[Field, ...], **rest: Any) -> JobKind:
    """A training kind: result.json in ``folder``; log and benchmark named by ``key``."""
    wildcards = tuple(f.wildcard for f in identity)
    return JobKind(name, wildcards, f"{folder}/{RESULT}", f"results/logs/{key}.log",
                   f"results/benchmarks/{key}.tsv", folder, identity, **rest)


ARCH = Field("arch", "arch")
RUN = Field("run", "run", int)
SEED_INDEX = Field("seed_index", "seed", int)
KINDS: dict[str, JobKind] = {kind.name: kind for kind in (
    JobKind("download", ("dataset", "filename"), RAW_FILE, "results/logs/download/{dataset}/{filename}.log"),
    JobKind("synthesize", ("dataset",), f"{SYNTHETIC_DIR}/{{dataset}}", "results/logs/synthesize/{dataset}.log"),
    JobKind("convert", ("dataset",), STORE, "results/logs/convert/{dataset}.log",
            "results/benchmarks/convert/{dataset}.tsv"),
    JobKind("subset", ("dataset", "variant", "run"), SUBSET, "results/logs/subset/{dataset}/{variant}/run{run}.log",
            grid=(("dataset", "target"), ("variant", "variant"), ("run", "run"))),
    _training("pretrain", PRETRAIN_DIR, "pretrain/{arch}/{source}/seed{seed}",
              (ARCH, Field("dataset", "source"), SEED_INDEX), inputs=("store",), dataset="dataset",
              seed_parts=("arch", "dataset", "seed_index"), grid=(("arch", "arch"), ("source", "source"), ("seed", "seed")),
              help="pretrain an architecture on a full source dataset"),
    JobKind("select_pretrained", ("arch", "source"), f"{SELECTED_DIR}/selection.json",
            "results/logs/pretrain/{arch}/{source}/select.log", grid=(("arch", "arch"), ("source", "tuned_source"))),
    _training("referent", REFERENT_DIR, "referent/{arch}/{target}/{variant}/run{run}",
              (ARCH, Field("target", "target"), Field("variant", "variant"), RUN),
              inputs=("store", "subset"), dataset="target", seed_parts=("arch", "target", "variant", "run"),
              grid=(("arch", "arch"), ("target", "target"), ("variant", "variant"), ("run", "run")),
              help="train from scratch on a reduced target training set"),
    _training("finetune", FINETUNE_DIR, "finetune/{arch}/{source}/{target}/{variant}/run{run}/omega{omega}",
              (ARCH, Field("source", "source"), Field("target", "target"), Field("variant", "variant"), RUN,
               Field("omega", "omega", float)),
              inputs=("pretrained", "store", "subset"), dataset="target",
              seed_parts=("arch", "source", "target", "variant", "run", "omega"),
              grid=(("arch", "arch"), ("source,target", "pair"), ("variant", "variant"), ("run", "run"),
                    ("omega", "omega")),
              help="fine-tune the selected pretrained model on a reduced target set"),
    # Table 2. Its seed leaves the setting out: the runs with and without the input are
    # paired (same training order, same initial weights of the shared layers).
    _training("stream_max", SMAX_DIR, "stream_max/{arch}/{dataset}/{smax}/seed{seed}",
              (ARCH, Field("dataset", "dataset"), Field("stream_max", "smax", with_or_without), SEED_INDEX),
              inputs=("store",), dataset="dataset", seed_parts=("arch", "dataset", "seed_index"),
              grid=(("arch", "arch"), ("dataset", "smax_dataset"), ("smax", "smax"), ("seed", "smax_seed")),
              help="Table 2: train with or without the stream_max input"),
)}
# The kinds that train a model (rules/training.smk): one GPU each on SLURM, run by the job
# server where there is one, each writing a result.json (the results table's rows).
TRAINING_KINDS = tuple(name for name, kind in KINDS.items() if kind.trains)


# --------------------------------------------------------------------------- one job
def seed_parts(kind: str, **identity: Any) -> tuple[Any, ...]:
    """What a training job's seed is drawn from beside the config seed
    (``seeding.int_seed(config_seed, *seed_parts(...))``): the kind, then its identity
    fields as numbers (run, seed index) or strings (omega as its path spells it)."""
    record = KINDS[kind]
    parts: list[Any] = [kind]
    for name in record.seed_parts:
        field = record.field(name)
        value = field.parse(identity[name]) if isinstance(identity[name], str) else identity[name]
        parts.append(repr(float(value)) if field.parse is float else value)
    return tuple(parts)


def job_spec(config: Mapping[str, Any], *, kind: str, arch: str, dataset: str,
             task: str | None = None, channels: int | None = None) -> dict[str, Any]:
    """The config values that shape one training job, and nothing else: its ``--spec``.

    ``config`` is a project config (its ``protocol`` and ``protocol_switches``) or one
    that carries every switch's value under ``switches`` (the zoo's protocol); it gives
    the seed, the training settings and ``datasets.<dataset>.stream_max``. ``task`` and
    ``channels`` of ``dataset`` are read from the dataset registry unless given (a zoo
    target need not be registered). The job records the spec in result.json
    (:func:`tstransfer.protocol.spec_with`); Snakemake keeps it as the job's params, so a
    change reruns exactly these jobs.
    """
    if task is None or channels is None:
        from .datasets import task_and_channels  # no TensorFlow

        task, channels = task_and_channels(dataset)
    switches = shaping(job_switches(config), kind=kind, arch=arch, task=task, channels=int(channels))
    return spec_with(config, dataset, switches)


def trained_on(record: Mapping[str, Any]) -> str | None:
    """The dataset a result.json's model was trained and tested on: a pretraining job's
    ``source`` (``target`` in results written before pretraining named it so), every
    other kind's ``target``."""
    if record.get("kind") == "pretrain":
        return record.get("source") or record.get("target")
    return record.get("target")


def job_dir(kind: str, root: str | Path = "results", **identity: Any) -> Path:
    """A training job's folder for its identity fields (the job function's arguments),
    laid out under ``root`` as the pipeline lays it out under ``results/``."""
    record = KINDS[kind]
    if not record.trains:
        raise ValueError(f"{kind} is not a training kind ({', '.join(TRAINING_KINDS)})")
    return path_under(root, record.folder, **{f.wildcard: f.label(identity[f.name]) for f in record.identity})


def path_under(root: str | Path, pattern: str, **wildcards: Any) -> Path:
    """A :mod:`tstransfer.layout` pattern filled in, under ``root`` in place of ``results/``."""
    return Path(root) / pattern.removeprefix("results/").format(**wildcards)


# --------------------------------------------------------------------------- a config's jobs
@dataclass(frozen=True)
class Job:
    """One planned job: its rule (kind), output, log, benchmark file and (training) checkpoint."""

    rule: str
    output: str
    log: str
    benchmark: str | None = None
    checkpoint: str | None = None

    @property
    def has_result_json(self) -> bool:
        return KINDS[self.rule].trains


def _entry(config: Mapping[str, Any], source: str, *keys: str) -> Any:
    value: Any = config
    for depth, key in enumerate(keys):
        if not isinstance(value, Mapping) or key not in value:
            raise ValueError(f"{source}: config entry {'.'.join(keys[: depth + 1])!r} is missing")
        value = value[key]
    return value


def _axes(config: Mapping[str, Any], source: str) -> dict[str, list]:
    """The values each axis of the kinds' ``grid`` takes in the config."""
    sources = list(_entry(config, source, "sources"))
    targets = list(_entry(config, source, "targets"))
    pairs = [(s, t) for s in sources for t in targets if s != t]
    return {
        "arch": list(_entry(config, source, "architectures")),
        "variant": list(_entry(config, source, "variants")),
        "run": list(range(int(_entry(config, source, "runs")))),
        "omega": [omega_label(o) for o in _entry(config, source, "omegas")],
        "seed": list(range(int(_entry(config, source, "pretrain", "seeds")))),
        "source": sources,
        "target": targets,
        "pair": pairs,
        # Only the sources that some fine-tuning job uses get a selected model.
        "tuned_source": list(dict.fromkeys(s for s, _ in pairs)),
        "smax_dataset": list(_entry(config, source, "stream_max_study", "datasets")),
        "smax": list(STREAM_MAX_SETTINGS),
        "smax_seed": list(range(int(_entry(config, source, "stream_max_study", "seeds")))),
    }


def _positional(kind: str, pattern: str) -> str:
    """``pattern`` with each wildcard replaced by its place in the kind's grid tuple
    (``{arch}`` -> ``{0}``, a pair's ``{target}`` -> ``{1[1]}``): filling it in is one
    ``format(*values)`` per job, as cheap as a hand-written comprehension."""
    places = {}
    for i, (names, _) in enumerate(KINDS[kind].grid):
        keys = names.split(",")
        places.update((key, f"{i}[{j}]" if len(keys) > 1 else str(i)) for j, key in enumerate(keys))
    return re.sub(r"\{(\w+)\}", lambda match: "{" + places[match[1]] + "}", pattern)


def paths(kind: str, pattern: str, config: Mapping[str, Any], source: str = "config") -> list[str]:
    """``pattern`` (one of the kind's, or any with its wildcards) filled in for every job
    of ``kind`` that a fresh run of ``config`` plans, in the kind's ``grid`` order.
    The Snakefile lists its targets with it on every parse, so it builds no dicts."""
    grid = KINDS[kind].grid
    if not grid:
        return [pattern.format(**wildcards) for wildcards in _data_wildcards(kind, config, source)]
    axes = _axes(config, source)
    template = _positional(kind, pattern)
    return [template.format(*values) for values in itertools.product(*(axes[axis] for _, axis in grid))]


def planned_downloads(config: Mapping[str, Any], dataset: str) -> list[Mapping[str, Any]]:
    """The download entries ({name, url, ...}) a fresh run fetches for ``dataset``: its
    files when its raw data is downloaded, and extract settings given as a download
    (the LOMAX keep-list), which are fetched whatever the raw data is."""
    spec = config["datasets"][dataset]
    files = list(spec.get("files") or []) if raw_origin(config, dataset) == "download" else []
    return files + [v for v in (spec.get("extract") or {}).values() if isinstance(v, Mapping)]


def _data_wildcards(kind: str, config: Mapping[str, Any], source: str) -> Iterator[dict[str, Any]]:
    raw_dir = str(_entry(config, source, "raw_dir"))
    _entry(config, source, "raw_data")  # raw_origin reads it
    for dataset in _entry(config, source, "datasets"):
        _entry(config, source, "datasets", dataset)
        if kind == "download":
            for item in planned_downloads(config, dataset):
                yield {"raw_dir": raw_dir, "dataset": dataset, "filename": item["name"]}
        elif kind == "convert" or raw_origin(config, dataset) == "synthetic":
            yield {"dataset": dataset}


def planned_jobs(config: Mapping[str, Any], source: str = "config") -> dict[str, list[Job]]:
    """The jobs of each kind that ``snakemake`` plans for a fresh run of ``config``
    (every kind, in :data:`KINDS`' order). ``source`` names the config in error messages."""
    jobs: dict[str, list[Job]] = {}
    for name, kind in KINDS.items():
        outputs, logs = paths(name, kind.output, config, source), paths(name, kind.log, config, source)
        optional = [paths(name, pattern, config, source) if pattern else [None] * len(outputs)
                    for pattern in (kind.benchmark, kind.checkpoint)]
        jobs[name] = [Job(name, *files) for files in zip(outputs, logs, *optional)]
    return jobs


def count_jobs(config: Mapping[str, Any], kinds: tuple[str, ...] = tuple(KINDS),
               source: str = "config") -> dict[str, int]:
    """How many jobs of each of ``kinds`` :func:`planned_jobs` lists, without building them."""
    axes = _axes(config, source)
    counts = {}
    for kind in kinds:
        if KINDS[kind].grid:
            counts[kind] = 1
            for _, axis in KINDS[kind].grid:
                counts[kind] *= len(axes[axis])
        else:
            counts[kind] = sum(1 for _ in _data_wildcards(kind, config, source))
    return counts


__all__ = ["CHECKPOINT", "KINDS", "TRAINING_KINDS", "Field", "Job", "JobKind", "count_jobs",
           "job_dir", "job_spec", "path_under", "paths", "planned_downloads", "planned_jobs", "seed_parts", "trained_on",
           "with_or_without"]
