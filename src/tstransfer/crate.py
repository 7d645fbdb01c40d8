"""The results tree as a Workflow Run RO-Crate: ``results/ro-crate-metadata.json``.

`snakemake archive` writes it beside ``MANIFEST.sha256`` and ``PROVENANCE.json``, with
ro-crate-py (``rocrate``), RO-Crate 1.1 (the version the validator's run-crate profiles
0.5 accept). The crate's root is the results folder; every ``@id`` of a file in it is
relative, so the tree can be moved. It claims four profiles:

* Workflow RO-Crate 1.0: the main entity is the Snakefile (``workflow/Snakefile``, a copy
  of the workflow definition the archive rule puts into the results tree together with
  the rules, scripts, env files, configs, the package's source, LICENSE and
  CITATION.cff), language Snakemake; the crate has a licence.
* Process Run Crate 0.5 and Workflow Run Crate 0.5: one ``CreateAction`` for the whole
  run (instrument: the workflow; object: the config, one ``PropertyValue`` per top-level
  key, each the value of a ``FormalParameter`` among the workflow's inputs; result: the
  run's final outputs, those no job read, each the value of one of the workflow's output
  parameters), and one ``CreateAction`` per job (instrument: its rule; object: the files
  it read; result: the files it wrote; start and end time).
* Provenance Run Crate 0.5: each rule is a tool (``SoftwareApplication``, in the
  workflow's ``hasPart``) and a step (``HowToStep``, in its ``step``); an
  ``OrganizeAction`` (instrument: Snakemake) holds one ``ControlAction`` per job (its
  step, its ``CreateAction``) and has the run's ``CreateAction`` as its result; a job
  with a benchmark (training, convert) has its resource usage from it.

Which rule made which file from which inputs, and when, is Snakemake's own record of each
job (``.snakemake/metadata``, one record per output: rule, inputs, log, start and end
time), read once: the DAG need not be rebuilt, and the archive costs one pass over the
records, the files and the jobs (the paper's run has about 17,000 jobs). A training job
without a record (the records were dropped with ``--drop-metadata``, or the tree was
archived elsewhere) still gets its action, from its result.json (end: the file's time,
start: end minus ``runtime_s``) and its benchmark; its inputs are then unknown.

Files the archive leaves out (large intermediates when ``archive.exclude_large``, or
anything outside the results folder such as the raw data) are named by local
identifiers (``#results/data/lomax.zarr``): described, not part of the payload. The zoo's
models are datasets (``zoo/<arch>-<source>/``) with their cards and the licence.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import mimetypes
import os
import platform
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __author__, __license__, __version__, plan
from .archive import _is_large

CRATE_VERSION = "1.1"
METADATA_NAME = "ro-crate-metadata.json"
WORKFLOW_DIR = "workflow"  # the copy of the workflow definition, inside the results folder
RESULTS = "results"  # the results folder, relative to the workflow's working directory
SNAKEMAKE_RECORDS = ".snakemake/metadata"
WFRUN_CONTEXT = "https://w3id.org/ro/terms/workflow-run/context"
PROFILES = (
    ("https://w3id.org/ro/wfrun/process/0.5", "Process Run Crate", "0.5"),
    ("https://w3id.org/ro/wfrun/workflow/0.5", "Workflow Run Crate", "0.5"),
    ("https://w3id.org/ro/wfrun/provenance/0.5", "Provenance Run Crate", "0.5"),
    ("https://w3id.org/workflowhub/workflow-ro-crate/1.0", "Workflow RO-Crate", "1.0"),
)
# What the archive copies of the workflow definition (relative to the Snakefile's folder).
WORKFLOW_FILES = (
    "Snakefile", "rules/*.smk", "workflow/scripts/*.py", "workflow/schemas/*.yaml", "envs/*.yaml",
    "config/*.yaml", "profiles/*/*.yaml", "report/*", "src/tstransfer/**/*.py", "pyproject.toml",
    "README.md", "LICENSE", "CITATION.cff",
)
# Rules the crate leaves out: the archive's own job (running while the crate is written).
SKIPPED_RULES = ("archive",)
# Benchmark columns reported as a job's resource usage (Snakemake's names), with units.
USAGE = (("s", "wall-clock time", "https://qudt.org/vocab/unit/SEC"),
         ("max_rss", "maximum resident set size", "https://qudt.org/vocab/unit/MegaBYTE"),
         ("cpu_time", "CPU time", "https://qudt.org/vocab/unit/SEC"))
# Media types mimetypes does not know.
MEDIA_TYPES = {".md": "text/markdown", ".parquet": "application/vnd.apache.parquet", ".npz": "application/octet-stream",
               ".keras": "application/zip", ".tsv": "text/tab-separated-values", ".smk": "text/plain",
               ".sha256": "text/plain", ".log": "text/plain", ".yaml": "application/yaml", ".cff": "application/yaml"}
LICENSE_URL = f"https://spdx.org/licenses/{__license__}"
ZOO_MODEL_FILE = "model.keras"  # tstransfer.zoo.cards.MODEL_FILE (not imported: the zoo imports the models)


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


# --------------------------------------------------------------------------- the jobs
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


# --------------------------------------------------------------------------- the workflow's files
def copy_workflow(basedir: str | Path, dest: str | Path) -> list[str]:
    """Copy the workflow definition (:data:`WORKFLOW_FILES` under ``basedir``, the
    Snakefile's folder) into ``dest``; its files, relative to ``dest``, sorted."""
    basedir, dest = Path(basedir), Path(dest)
    copied = set()
    for pattern in WORKFLOW_FILES:
        for source in basedir.glob(pattern):
            if not source.is_file() or "__pycache__" in source.parts:
                continue
            relative = source.relative_to(basedir)
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            copied.add(relative.as_posix())
    if "Snakefile" not in copied:
        raise FileNotFoundError(f"{basedir / 'Snakefile'}: no Snakefile to archive")
    return sorted(copied)


_RULE = re.compile(r'^rule (\w+):\n(?:[ \t]+"""(.*?)""")?', re.M | re.S)


def rule_docs(workflow_dir: str | Path, files: Iterable[str]) -> dict[str, tuple[str, str]]:
    """rule -> (the file defining it, relative to ``workflow_dir``; its docstring or "")."""
    docs = {}
    for relative in files:
        if relative == "Snakefile" or relative.endswith(".smk"):
            text = (Path(workflow_dir) / relative).read_text()
            for match in _RULE.finditer(text):
                docs[match[1]] = (relative, " ".join((match[2] or "").split()))
    return docs


def _citation(workflow_dir: Path) -> dict[str, Any]:
    """CITATION.cff of the archived copy (authors of the software, the paper it reproduces)."""
    path = workflow_dir / "CITATION.cff"
    if not path.is_file():
        return {}
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


# --------------------------------------------------------------------------- the crate
def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat(timespec="seconds")


def _one(values: list) -> Any:
    """A list of one as its single value (RO-Crate 1.1 prefers it), else the list."""
    return values[0] if len(values) == 1 else values


def media_type(path: str) -> str:
    """A file's encodingFormat, from its name."""
    suffix = Path(path).suffix.lower()
    if Path(path).name in ("Snakefile", "LICENSE"):
        return "text/plain"
    return MEDIA_TYPES.get(suffix) or mimetypes.guess_type(path)[0] or "application/octet-stream"


def _additional_type(value: Any) -> tuple[str, Any]:
    """A config value as a FormalParameter's additionalType and a PropertyValue's value."""
    if isinstance(value, bool):
        return "Boolean", value
    if isinstance(value, int):
        return "Integer", value
    if isinstance(value, float):
        return "Float", value
    if isinstance(value, str):
        return "Text", value
    return "Text", json.dumps(value, sort_keys=True, default=str)  # lists and mappings as JSON


class _Files:
    """The crate's entity of each path a job names, made once (a dict, not a search)."""

    def __init__(self, crate, results: Path, archived: set[str], exclude_large: bool):
        from rocrate.model import ContextEntity, Dataset, File

        self.crate, self.results, self.archived = crate, results, archived
        self.exclude_large = exclude_large
        self._classes = (ContextEntity, Dataset, File)
        # Folders holding an archived file: a job's folder output there is in the payload.
        self.folders = {parent.as_posix() for rel in archived for parent in Path(rel).parents} - {"."}
        self.entities: dict[str, Any] = {}

    def crate_path(self, path: str) -> str | None:
        """``path`` (relative to the workflow's folder) relative to the crate's root, or None."""
        prefix = f"{RESULTS}/"
        return path[len(prefix):] if path.startswith(prefix) else None

    def __call__(self, path: str, properties: Mapping[str, Any] | None = None):
        entity = self.entities.get(path)
        if entity is not None:
            return entity
        ContextEntity, Dataset, File = self._classes
        inside = self.crate_path(path)
        properties = dict(properties or {})
        if inside in self.archived:
            properties.setdefault("encodingFormat", media_type(inside))
            entity = self.crate.add(File(self.crate, dest_path=inside, properties=properties))
        elif inside is not None and inside in self.folders:
            entity = self.crate.add(Dataset(self.crate, dest_path=inside + "/", properties=properties))
        else:
            # Not in the payload: a local identifier, described.
            is_dir = (self.results.parent / path).is_dir()  # relative to the workflow's folder, or absolute
            if inside is None:
                why = "outside the results folder"
            elif self.exclude_large and _is_large(Path(inside)):
                why = "a large intermediate the archive leaves out (config archive.exclude_large)"
            else:
                why = "not among the archived files"
            entity = self.crate.add(ContextEntity(self.crate, f"#{path}", properties={
                "@type": "Dataset" if is_dir else "File", "name": path,
                "description": f"Not part of this archive: {why}.", **properties}))
            if not is_dir:
                entity["encodingFormat"] = media_type(path)
        self.entities[path] = entity
        return entity


def build_crate(results: str | Path, config: Mapping[str, Any], files: Iterable[Path], jobs: list[Job], *,
                workflow_files: list[str], exclude_large: bool, versions: Mapping[str, str | None],
                git_commit: str | None = None, archived_at: str | None = None):
    """The crate of the results folder ``results`` (an ``rocrate.rocrate.ROCrate``).

    ``files``: the archived files (relative to ``results``); ``jobs``: what ran
    (:func:`snakemake_jobs`); ``workflow_files``: the copy of the workflow definition
    under ``results/workflow`` (:func:`copy_workflow`). Linear in files and jobs.
    """
    from rocrate.model import ContextEntity, File
    from rocrate.model.computationalworkflow import ComputationalWorkflow
    from rocrate.rocrate import ROCrate

    results = Path(results)
    archived = {f.as_posix() for f in files}
    crate = ROCrate(version=CRATE_VERSION)
    crate.metadata.extra_contexts.append(WFRUN_CONTEXT)
    workflow_dir = results / WORKFLOW_DIR
    citation = _citation(workflow_dir)

    def context(entity_id: str, /, **properties):
        return crate.add(ContextEntity(crate, entity_id, properties=properties))

    licence = context(LICENSE_URL, **{"@type": "CreativeWork", "name": f"{__license__} License",
                                      "identifier": __license__})
    authors = [context(f"#author-{i}", **{"@type": "Organization", "name": a["name"]}) if "name" in a
               else context(f"#author-{i}", **{"@type": "Person", "name": f"{a['given-names']} {a['family-names']}"})
               for i, a in enumerate(citation.get("authors") or [{"name": __author__}])]
    profiles = [context(uri, **{"@type": "CreativeWork", "name": name, "version": version})
                for uri, name, version in PROFILES]

    # The software: the package, the engine, the libraries the results depend on.
    software = {name: context(f"#software-{name}", **{"@type": "SoftwareApplication", "name": name,
                                                       "softwareVersion": version})
                for name, version in versions.items() if version}
    engine = software.get("snakemake") or context("#software-snakemake", **{"@type": "SoftwareApplication",
                                                                             "name": "snakemake"})
    engine["url"] = "https://snakemake.github.io"

    # The workflow definition: its files, the Snakefile as the main workflow.
    for relative in workflow_files:
        if relative != "Snakefile":
            crate.add(File(crate, dest_path=f"{WORKFLOW_DIR}/{relative}",
                           properties={"name": relative, "description": "Part of the workflow definition.",
                                       "encodingFormat": media_type(relative)}))
    workflow = crate.add_workflow(
        dest_path=f"{WORKFLOW_DIR}/Snakefile", main=True, lang="snakemake", lang_version=versions.get("snakemake"),
        properties={"name": citation.get("title") or "tstransfer", "description": citation.get("abstract", "").strip(),
                    "license": licence, "author": _one(authors), "version": git_commit or __version__,
                    "encodingFormat": "text/plain",
                    "softwareRequirements": list(software.values())},
    )
    workflow._jsonld["@type"] = [*ComputationalWorkflow.TYPES, "HowTo"]  # it has steps (Provenance Run Crate)
    if "LICENSE" in workflow_files:
        crate.get(f"{WORKFLOW_DIR}/LICENSE")["about"] = licence

    # The paper the workflow reproduces.
    papers = []
    for i, reference in enumerate(citation.get("references") or []):
        people = [context(f"#reference-{i}-author-{j}", **{
            "@type": "Person", "name": f"{a.get('given-names', '')} {a.get('family-names', '')}".strip(),
            "givenName": a.get("given-names"), "familyName": a.get("family-names"),
            "affiliation": a.get("affiliation")}) for j, a in enumerate(reference.get("authors") or [])]
        paper = context(f"#reference-{i}", **{"@type": "ScholarlyArticle", "name": reference.get("title"),
                                               "author": people})
        papers.append(paper)
    if papers:
        workflow["citation"] = _one(papers)

    # The rules: one tool and one step each, for every rule that ran (in order of first job).
    docs = rule_docs(workflow_dir, workflow_files)
    tools, steps = {}, {}
    for job in jobs:
        if job.rule in tools:
            continue
        defined_in, doc = docs.get(job.rule, (None, ""))
        tool = context(f"#rule-{job.rule}", **{
            "@type": "SoftwareApplication", "name": job.rule,
            "description": doc or f"The workflow's rule {job.rule}.", "softwareVersion": git_commit or __version__,
            "softwareRequirements": [software[p] for p in ("tstransfer", "python") if p in software]})
        if defined_in:
            tool["isPartOf"] = crate.get(f"{WORKFLOW_DIR}/{defined_in}") or workflow
        step = context(f"#step-{job.rule}", **{"@type": "HowToStep", "name": job.rule,
                                                "position": str(len(steps)), "workExample": tool})
        tools[job.rule], steps[job.rule] = tool, step
    workflow["hasPart"] = list(tools.values())
    workflow["step"] = list(steps.values())

    # The jobs.
    entity = _Files(crate, results, archived, exclude_large)
    actions, controls, read = [], [], set()
    for job in jobs:
        ident = f"#job/{job.outputs[0]}"
        action = context(ident, **{
            "@type": "CreateAction", "name": f"{job.rule} job",
            "instrument": tools[job.rule], "actionStatus": "http://schema.org/CompletedActionStatus",
            "result": _one([entity(p) for p in job.outputs])})
        if job.inputs:
            action["object"] = _one([entity(p) for p in job.inputs])
            read.update(job.inputs)
        if job.start is not None:
            action["startTime"] = _iso(job.start)
        if job.end is not None:
            action["endTime"] = _iso(job.end)
        benchmark = benchmark_of(job)
        if benchmark is not None:
            usage = read_benchmark(results.parent / benchmark)
            if usage:
                action["resourceUsage"] = _one([
                    context(f"{ident}/usage/{key}", **{"@type": "PropertyValue", "propertyID": key, "name": name,
                                                        "value": usage[key], "unitCode": unit})
                    for key, name, unit in USAGE if key in usage])
        actions.append(action)
        controls.append(context(f"#control/{job.outputs[0]}", **{
            "@type": "ControlAction", "name": f"orchestrate {job.rule}", "instrument": steps[job.rule],
            "object": action}))

    # The run: the config in, the outputs no job read out.
    inputs, values = [], []
    for key, value in config.items():
        additional_type, literal = _additional_type(value)
        parameter = crate.add_formal_parameter(name=key, additionalType=additional_type,
                                               identifier=f"#param-config-{key}",
                                               description=f"Config entry {key} (config/*.yaml).")
        pv = context(f"#pv-config-{key}", **{"@type": "PropertyValue", "name": key, "value": literal,
                                             "exampleOfWork": parameter})
        parameter["workExample"] = pv
        inputs.append(parameter)
        values.append(pv)
    outputs, produced = [], []
    for job in jobs:
        for path in job.outputs:
            if path in read:
                continue
            out = entity(path)
            parameter = crate.add_formal_parameter(
                name=path, additionalType="Dataset" if "Dataset" in str(out.type) else "File",
                identifier=f"#param-output-{path}", description=f"Written by the rule {job.rule}.")
            parameter["workExample"] = out
            out["exampleOfWork"] = parameter
            outputs.append(parameter)
            produced.append(out)
    workflow["input"] = inputs
    workflow["output"] = outputs
    starts = [j.start for j in jobs if j.start is not None]
    ends = [j.end for j in jobs if j.end is not None]
    run = context("#run", **{"@type": "CreateAction", "name": f"Run of {workflow['name']}",
                             "instrument": workflow, "object": values, "result": produced})
    if starts:
        run["startTime"] = _iso(min(starts))
    if ends:
        run["endTime"] = _iso(max(ends))
    organize = context("#organize", **{"@type": "OrganizeAction", "name": "Snakemake's orchestration of the run",
                                       "instrument": engine, "object": controls, "result": run})
    for when in ("startTime", "endTime"):
        if when in run:
            organize[when] = run[when]

    # The zoo's models: a dataset each, with its cards and the licence.
    zoo: dict[str, list[str]] = {}
    for relative in sorted(archived):
        parts = relative.split("/")
        if len(parts) == 3 and parts[0] == "zoo":
            zoo.setdefault(f"zoo/{parts[1]}", []).append(relative)
    for folder, contents in zoo.items():
        if f"{folder}/card.json" in contents:
            card = json.loads((results / folder / "card.json").read_text())
            weights = f"{folder}/{ZOO_MODEL_FILE}"  # left out with the large intermediates: named all the same
            if weights not in contents and (results / weights).is_file():
                contents = [*contents, weights]
            members = [entity(f"{RESULTS}/{f}") for f in contents]
            model = entity(f"{RESULTS}/{folder}", properties={
                "name": card.get("name", folder.split("/")[1]),
                "description": f"Zoo model: {card.get('arch_label', card.get('arch'))} pretrained on "
                               f"{card.get('training_data', {}).get('title') or card.get('source')}; its model "
                               "card is card.json, card.md and README.md (model hub front matter).",
                "license": licence, "keywords": ["pretrained model", "time series", "transfer learning"]})
            model["hasPart"] = members
            for member in members:
                if member.id.endswith(("README.md", "card.md", "card.json")):
                    member["about"] = model

    # The archive's own documents.
    for name, description in (("MANIFEST.sha256", "sha256 of every archived file (sha256sum -c MANIFEST.sha256)."),
                              ("PROVENANCE.json", "Config, git commit, package versions, host and time span.")):
        crate.add(File(crate, dest_path=name, properties={"name": name, "description": description,
                                                          "encodingFormat": media_type(name)}))

    root = crate.root_dataset
    root["name"] = f"{workflow['name']}: results"
    root["description"] = (
        f"The results tree of one run of the tstransfer workflow ({len(jobs)} jobs): outputs, tables, figures, "
        "logs, benchmarks"
        + (", the zoo's pretrained models" if any(a.startswith("zoo/") for a in archived) else "")
        + ("; large intermediates left out" if exclude_large else "")
        + ". Which rule made which file from which inputs is in this crate's actions; MANIFEST.sha256 checks "
          "the files (snakemake verify).")
    root["datePublished"] = archived_at or _iso(dt.datetime.now(dt.timezone.utc).timestamp())
    root["license"] = licence
    root["author"] = _one(authors)
    root["conformsTo"] = profiles
    root["mentions"] = [run, organize, *actions]
    return crate


def write_crate(results: str | Path, config: Mapping[str, Any], files: Iterable[Path], *,
                workflow_files: list[str], exclude_large: bool, workdir: str | Path = ".",
                versions: Mapping[str, str | None] | None = None, git_commit: str | None = None,
                archived_at: str | None = None) -> dict[str, int]:
    """Write ``results/ro-crate-metadata.json`` (:func:`build_crate` with the jobs of
    :func:`snakemake_jobs`, and of :func:`result_json_jobs` for training jobs without a
    record); how many jobs each source gave."""
    from .archive import package_versions

    if versions is None:
        versions = {"python": platform.python_version(), **package_versions()}
    results = Path(results)
    files = list(files)
    recorded = [job for job in snakemake_jobs(workdir) if job.rule not in SKIPPED_RULES]
    outputs = {path for job in recorded for path in job.outputs}
    fallback = result_json_jobs(results, files, outputs)
    crate = build_crate(results, config, files, recorded + fallback, workflow_files=workflow_files,
                        exclude_large=exclude_large, versions=versions,
                        git_commit=git_commit, archived_at=archived_at)
    write_metadata(crate, results / METADATA_NAME)
    return {"snakemake_records": len(recorded), "result_json": len(fallback)}


def write_metadata(crate, path: str | Path) -> None:
    """The crate's JSON-LD (ro-crate-py's ``metadata.generate()``) with one entity per line:
    the same document as ro-crate-py's own writer, which indents every entity, at about
    60 % of its size (a paper run's ~17,000 jobs make ~70,000 entities), and a job's
    entity is one line to grep."""
    from .fsutil import atomic_path

    document = crate.metadata.generate()
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as out:
        out.write('{"@context": ' + json.dumps(document["@context"]) + ',\n "@graph": [\n')
        out.write(",\n".join(json.dumps(entity, ensure_ascii=False, sort_keys=True) for entity in document["@graph"]))
        out.write("\n]}\n")


__all__ = ["CRATE_VERSION", "Job", "METADATA_NAME", "PROFILES", "WORKFLOW_DIR", "benchmark_of", "build_crate",
           "copy_workflow", "read_benchmark", "result_json_jobs", "rule_docs", "snakemake_jobs", "write_crate",
           "write_metadata"]
