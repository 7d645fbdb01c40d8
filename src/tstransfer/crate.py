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
job, read once (:mod:`tstransfer.jobrecords`; a training job without one, from its
result.json): the DAG need not be rebuilt, and the crate costs one pass over the records,
the files and the jobs (the paper's run has about 17,000 jobs).

Files the archive leaves out (large intermediates when ``archive.exclude_large``, or
anything outside the results folder such as the raw data) are named by local
identifiers (``#results/data/lomax.zarr``): described, not part of the payload. The zoo's
models are datasets (``zoo/<arch>-<source>/``) with their cards and the licence.
"""

from __future__ import annotations

import datetime as dt
import json
import mimetypes
import platform
import re
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from . import __author__, __license__, __version__
from .archive import _is_large
from .jobrecords import RESULTS, SKIPPED_RULES, USAGE, Job, benchmark_of, read_benchmark, result_json_jobs, snakemake_jobs

CRATE_VERSION = "1.1"
METADATA_NAME = "ro-crate-metadata.json"
WORKFLOW_DIR = "workflow"  # the copy of the workflow definition, inside the results folder
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
    # The image that `--sdm apptainer` runs every job in (the Snakefile's container:).
    "containers/tstransfer.def", "containers/Dockerfile", "containers/install.sh",
)
# Media types mimetypes does not know.
MEDIA_TYPES = {".md": "text/markdown", ".parquet": "application/vnd.apache.parquet", ".npz": "application/octet-stream",
               ".keras": "application/zip", ".tsv": "text/tab-separated-values", ".smk": "text/plain",
               ".sha256": "text/plain", ".log": "text/plain", ".yaml": "application/yaml", ".cff": "application/yaml",
               ".def": "text/plain"}
LICENSE_URL = f"https://spdx.org/licenses/{__license__}"
ZOO_MODEL_FILE = "model.keras"  # tstransfer.zoo.cards.MODEL_FILE (not imported: the zoo imports the models)
COMPLETED = "http://schema.org/CompletedActionStatus"


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


class _Builder:
    """The crate, built one part at a time (each method one pass over what it describes)."""

    def __init__(self, results: Path, files: Iterable[Path], *, exclude_large: bool,
                 versions: Mapping[str, str | None], git_commit: str | None):
        from rocrate.rocrate import ROCrate

        self.results = results
        self.archived = {f.as_posix() for f in files}
        self.crate = ROCrate(version=CRATE_VERSION)
        self.crate.metadata.extra_contexts.append(WFRUN_CONTEXT)
        self.version = git_commit or __version__
        self.versions = versions
        self.citation = _citation(results / WORKFLOW_DIR)
        self.entity = _Files(self.crate, results, self.archived, exclude_large)
        self.licence = self.context(LICENSE_URL, **{"@type": "CreativeWork", "name": f"{__license__} License",
                                                    "identifier": __license__})

    def context(self, entity_id: str, /, **properties):
        """A contextual entity (``@type`` among ``properties``)."""
        from rocrate.model import ContextEntity

        return self.crate.add(ContextEntity(self.crate, entity_id, properties=properties))

    def people(self) -> list:
        """The software's authors, as CITATION.cff names them (else the package's)."""
        people = []
        for i, author in enumerate(self.citation.get("authors") or [{"name": __author__}]):
            if "name" in author:
                people.append(self.context(f"#author-{i}", **{"@type": "Organization", "name": author["name"]}))
            else:
                name = f"{author.get('given-names', '')} {author.get('family-names', '')}".strip()
                people.append(self.context(f"#author-{i}", **{"@type": "Person", "name": name}))
        return people

    def software(self) -> dict[str, Any]:
        """The package, the engine and the libraries the results depend on, with versions."""
        software = {name: self.context(f"#software-{name}", **{"@type": "SoftwareApplication", "name": name,
                                                               "softwareVersion": version})
                    for name, version in self.versions.items() if version}
        if "snakemake" not in software:
            software["snakemake"] = self.context("#software-snakemake", **{"@type": "SoftwareApplication",
                                                                            "name": "snakemake"})
        software["snakemake"]["url"] = "https://snakemake.github.io"
        return software

    def workflow(self, workflow_files: list[str], authors: list, software: Mapping[str, Any]):
        """The copy of the workflow definition; the Snakefile as the main workflow."""
        from rocrate.model import File
        from rocrate.model.computationalworkflow import ComputationalWorkflow

        for relative in workflow_files:
            if relative != "Snakefile":
                self.crate.add(File(self.crate, dest_path=f"{WORKFLOW_DIR}/{relative}", properties={
                    "name": relative, "description": "Part of the workflow definition.",
                    "encodingFormat": media_type(relative)}))
        workflow = self.crate.add_workflow(
            dest_path=f"{WORKFLOW_DIR}/Snakefile", main=True, lang="snakemake",
            lang_version=self.versions.get("snakemake"),
            properties={"name": self.citation.get("title") or "tstransfer",
                        "description": self.citation.get("abstract", "").strip(), "license": self.licence,
                        "author": _one(authors), "version": self.version, "encodingFormat": "text/plain",
                        "softwareRequirements": list(software.values())},
        )
        workflow._jsonld["@type"] = [*ComputationalWorkflow.TYPES, "HowTo"]  # it has steps (Provenance Run Crate)
        if "LICENSE" in workflow_files:
            self.crate.get(f"{WORKFLOW_DIR}/LICENSE")["about"] = self.licence
        papers = [self.reference(i, reference) for i, reference in enumerate(self.citation.get("references") or [])]
        if papers:
            workflow["citation"] = _one(papers)
        return workflow

    def reference(self, i: int, reference: Mapping[str, Any]):
        """A reference of CITATION.cff (the paper the workflow reproduces), with its authors."""
        people = [self.context(f"#reference-{i}-author-{j}", **{
            "@type": "Person", "name": f"{a.get('given-names', '')} {a.get('family-names', '')}".strip(),
            "givenName": a.get("given-names"), "familyName": a.get("family-names"),
            "affiliation": a.get("affiliation")}) for j, a in enumerate(reference.get("authors") or [])]
        return self.context(f"#reference-{i}", **{"@type": "ScholarlyArticle", "name": reference.get("title"),
                                                  "author": people})

    def rules(self, workflow, jobs: list[Job], workflow_files: list[str], software: Mapping[str, Any]):
        """One tool and one step per rule that ran (in the order of its first job)."""
        docs = rule_docs(self.results / WORKFLOW_DIR, workflow_files)
        tools, steps = {}, {}
        for job in jobs:
            if job.rule in tools:
                continue
            defined_in, doc = docs.get(job.rule, (None, ""))
            tool = self.context(f"#rule-{job.rule}", **{
                "@type": "SoftwareApplication", "name": job.rule, "softwareVersion": self.version,
                "description": doc or f"The workflow's rule {job.rule}.",
                "softwareRequirements": [software[p] for p in ("tstransfer", "python") if p in software]})
            if defined_in:
                tool["isPartOf"] = self.crate.get(f"{WORKFLOW_DIR}/{defined_in}") or workflow
            steps[job.rule] = self.context(f"#step-{job.rule}", **{
                "@type": "HowToStep", "name": job.rule, "position": str(len(steps)), "workExample": tool})
            tools[job.rule] = tool
        workflow["hasPart"] = list(tools.values())
        workflow["step"] = list(steps.values())
        return tools, steps

    def job(self, job: Job, tool, step) -> tuple[Any, Any]:
        """A job's CreateAction (inputs, outputs, times, resource usage) and its ControlAction."""
        ident = f"#job/{job.outputs[0]}"
        action = self.context(ident, **{"@type": "CreateAction", "name": f"{job.rule} job", "instrument": tool,
                                        "actionStatus": COMPLETED,
                                        "result": _one([self.entity(p) for p in job.outputs])})
        if job.inputs:
            action["object"] = _one([self.entity(p) for p in job.inputs])
        if job.start is not None:
            action["startTime"] = _iso(job.start)
        if job.end is not None:
            action["endTime"] = _iso(job.end)
        benchmark = benchmark_of(job)
        usage = read_benchmark(self.results.parent / benchmark) if benchmark else {}
        if usage:
            action["resourceUsage"] = _one([
                self.context(f"{ident}/usage/{key}", **{"@type": "PropertyValue", "propertyID": key, "name": name,
                                                        "value": usage[key], "unitCode": unit})
                for key, name, unit in USAGE if key in usage])
        control = self.context(f"#control/{job.outputs[0]}", **{
            "@type": "ControlAction", "name": f"orchestrate {job.rule}", "instrument": step, "object": action})
        return action, control

    def parameters(self, workflow, config: Mapping[str, Any], jobs: list[Job]) -> tuple[list, list]:
        """The workflow's inputs (one per config key, with its value) and outputs (one per
        file no job read, with the file): the run's object and result."""
        values, inputs = [], []
        for key, value in config.items():
            additional_type, literal = _additional_type(value)
            parameter = self.crate.add_formal_parameter(
                name=key, additionalType=additional_type, identifier=f"#param-config-{key}",
                description=f"Config entry {key} (config/*.yaml).")
            values.append(self.context(f"#pv-config-{key}", **{"@type": "PropertyValue", "name": key,
                                                               "value": literal, "exampleOfWork": parameter}))
            parameter["workExample"] = values[-1]
            inputs.append(parameter)
        read = {path for job in jobs for path in job.inputs}
        produced, outputs = [], []
        for job in jobs:
            for path in (p for p in job.outputs if p not in read):
                out = self.entity(path)
                parameter = self.crate.add_formal_parameter(
                    name=path, additionalType="Dataset" if "Dataset" in str(out.type) else "File",
                    identifier=f"#param-output-{path}", description=f"Written by the rule {job.rule}.")
                parameter["workExample"] = out
                out["exampleOfWork"] = parameter
                outputs.append(parameter)
                produced.append(out)
        workflow["input"], workflow["output"] = inputs, outputs
        return values, produced

    def run(self, workflow, jobs: list[Job], config: Mapping[str, Any], controls: list, engine):
        """The run's CreateAction and Snakemake's OrganizeAction of the jobs' ControlActions."""
        values, produced = self.parameters(workflow, config, jobs)
        run = self.context("#run", **{"@type": "CreateAction", "name": f"Run of {workflow['name']}",
                                      "instrument": workflow, "object": values, "result": produced})
        organize = self.context("#organize", **{"@type": "OrganizeAction", "name": "Snakemake's orchestration of the run",
                                                "instrument": engine, "object": controls, "result": run})
        starts = [j.start for j in jobs if j.start is not None]
        ends = [j.end for j in jobs if j.end is not None]
        for when, times, pick in (("startTime", starts, min), ("endTime", ends, max)):
            if times:
                run[when] = organize[when] = _iso(pick(times))
        return run, organize

    def zoo(self) -> bool:
        """The zoo's models: a dataset each, with its cards, its weights and the licence."""
        folders: dict[str, list[str]] = {}
        for relative in sorted(self.archived):
            parts = relative.split("/")
            if len(parts) == 3 and parts[0] == "zoo":
                folders.setdefault(f"zoo/{parts[1]}", []).append(relative)
        for folder, contents in folders.items():
            if f"{folder}/card.json" not in contents:
                continue
            card = json.loads((self.results / folder / "card.json").read_text())
            weights = f"{folder}/{ZOO_MODEL_FILE}"  # left out with the large intermediates: named all the same
            if weights not in contents and (self.results / weights).is_file():
                contents = [*contents, weights]
            members = [self.entity(f"{RESULTS}/{f}") for f in contents]
            model = self.entity(f"{RESULTS}/{folder}", properties={
                "name": card.get("name", folder.split("/")[1]),
                "description": f"Zoo model: {card.get('arch_label', card.get('arch'))} pretrained on "
                               f"{card.get('training_data', {}).get('title') or card.get('source')}; its model "
                               "card is card.json, card.md and README.md (model hub front matter).",
                "license": self.licence, "keywords": ["pretrained model", "time series", "transfer learning"]})
            model["hasPart"] = members
            for member in members:
                if member.id.endswith(("README.md", "card.md", "card.json")):
                    member["about"] = model
        return bool(folders)

    def root(self, workflow, authors: list, mentions: list, *, jobs: int, zoo: bool, exclude_large: bool,
             archived_at: str | None) -> None:
        """The archive's own documents, and the root: name, licence, authors, profiles, mentions."""
        from rocrate.model import File

        for name, description in (
                ("MANIFEST.sha256", "sha256 of every archived file (sha256sum -c MANIFEST.sha256)."),
                ("PROVENANCE.json", "Config, git commit, package versions, host and time span.")):
            self.crate.add(File(self.crate, dest_path=name, properties={
                "name": name, "description": description, "encodingFormat": media_type(name)}))
        root = self.crate.root_dataset
        root["name"] = f"{workflow['name']}: results"
        root["description"] = (
            f"The results tree of one run of the tstransfer workflow ({jobs} jobs): outputs, tables, figures, "
            "logs, benchmarks" + (", the zoo's pretrained models" if zoo else "")
            + ("; large intermediates left out" if exclude_large else "")
            + ". Which rule made which file from which inputs is in this crate's actions; MANIFEST.sha256 checks "
              "the files (snakemake verify).")
        root["datePublished"] = archived_at or _iso(dt.datetime.now(dt.timezone.utc).timestamp())
        root["license"] = self.licence
        root["author"] = _one(authors)
        root["conformsTo"] = [self.context(uri, **{"@type": "CreativeWork", "name": name, "version": version})
                              for uri, name, version in PROFILES]
        root["mentions"] = mentions


def build_crate(results: str | Path, config: Mapping[str, Any], files: Iterable[Path], jobs: list[Job], *,
                workflow_files: list[str], exclude_large: bool, versions: Mapping[str, str | None],
                git_commit: str | None = None, archived_at: str | None = None):
    """The crate of the results folder ``results`` (an ``rocrate.rocrate.ROCrate``).

    ``files``: the archived files (relative to ``results``); ``jobs``: what ran
    (:mod:`tstransfer.jobrecords`); ``workflow_files``: the copy of the workflow definition
    under ``results/workflow`` (:func:`copy_workflow`). Linear in files and jobs.
    """
    builder = _Builder(Path(results), files, exclude_large=exclude_large, versions=versions, git_commit=git_commit)
    authors, software = builder.people(), builder.software()
    workflow = builder.workflow(workflow_files, authors, software)
    tools, steps = builder.rules(workflow, jobs, workflow_files, software)
    actions, controls = [], []
    for job in jobs:
        action, control = builder.job(job, tools[job.rule], steps[job.rule])
        actions.append(action)
        controls.append(control)
    run, organize = builder.run(workflow, jobs, config, controls, software["snakemake"])
    zoo = builder.zoo()
    builder.root(workflow, authors, [run, organize, *actions], jobs=len(jobs), zoo=zoo,
                 exclude_large=exclude_large, archived_at=archived_at)
    return builder.crate


def write_crate(results: str | Path, config: Mapping[str, Any], files: Iterable[Path], *,
                workflow_files: list[str], exclude_large: bool, workdir: str | Path = ".",
                versions: Mapping[str, str | None] | None = None, git_commit: str | None = None,
                archived_at: str | None = None) -> dict[str, int]:
    """Write ``results/ro-crate-metadata.json`` (:func:`build_crate` with the jobs of
    Snakemake's records, and of result.json for training jobs without one); how many jobs
    each source gave."""
    from .archive import package_versions

    if versions is None:
        versions = {"python": platform.python_version(), **package_versions()}
    results = Path(results)
    files = list(files)
    recorded = [job for job in snakemake_jobs(workdir) if job.rule not in SKIPPED_RULES]
    fallback = result_json_jobs(results, files, {path for job in recorded for path in job.outputs})
    crate = build_crate(results, config, files, recorded + fallback, workflow_files=workflow_files,
                        exclude_large=exclude_large, versions=versions, git_commit=git_commit,
                        archived_at=archived_at)
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


__all__ = ["CRATE_VERSION", "METADATA_NAME", "PROFILES", "WORKFLOW_DIR", "WORKFLOW_FILES", "build_crate",
           "copy_workflow", "media_type", "rule_docs", "write_crate", "write_metadata"]
