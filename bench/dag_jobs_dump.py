"""Every job of a config's DAG as Snakemake builds it, one JSON line each, to compare two
versions of the rules: ``python bench/dag_jobs_dump.py CONFIG OUT.jsonl``.

Builds the DAG of a fresh run of CONFIG (in an empty folder, as ``snakemake -n`` does,
through Snakemake's API) and writes, per job, its rule, wildcards, input, output, log,
benchmark, params, resources, conda env and formatted shell command, sorted. A change
meant to speed up the DAG (bench/dag.py) must leave this file byte-identical for the
paper config and the demo config:

    python bench/dag_jobs_dump.py config/config.yaml /tmp/before.jsonl   # old commit
    python bench/dag_jobs_dump.py config/config.yaml /tmp/after.jsonl    # new commit
    cmp /tmp/before.jsonl /tmp/after.jsonl
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from snakemake.api import SnakemakeApi
from snakemake.settings.types import (
    ConfigSettings,
    DAGSettings,
    OutputSettings,
    Quietness,
    ResourceSettings,
    StorageSettings,
)

ROOT = Path(__file__).resolve().parents[1]


def _named(files) -> dict:
    """A job's input/output/log as its names and its list of paths."""
    return {"names": {name: str(value) for name, value in files.items()}, "paths": [str(f) for f in files]}


def job_record(job) -> dict:
    return {
        "rule": job.rule.name,
        "wildcards": dict(job.wildcards.items()),
        "input": _named(job.input),
        "output": _named(job.output),
        "log": _named(job.log),
        "benchmark": str(job.benchmark) if job.benchmark else None,
        "params": {"names": dict(job.params.items()), "values": list(job.params)},
        "resources": dict(job.resources.items()),
        "threads": job.threads,
        "conda": str(getattr(job.conda_env_spec, "file", job.conda_env_spec)) if job.conda_env_spec else None,
        "shell": job.shellcmd,
    }


def dump(configfile: Path, out: Path) -> int:
    with tempfile.TemporaryDirectory() as workdir, SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        workflow_api = api.workflow(
            resource_settings=ResourceSettings(cores=1),
            config_settings=ConfigSettings(configfiles=[configfile.resolve()], replace_workflow_config=True),
            storage_settings=StorageSettings(), snakefile=ROOT / "Snakefile", workdir=Path(workdir))
        workflow_api.dag(DAGSettings())
        workflow = workflow_api._workflow  # as `snakemake --dag` does: build the DAG, run nothing
        workflow._prepare_dag(forceall=False, ignore_incomplete=True, lock_warn_only=True)
        workflow._build_dag()
        # The temporary folder's name, were it in a job's fields, would differ between runs.
        lines = sorted(json.dumps(job_record(job), sort_keys=True, default=str).replace(workdir, "<workdir>")
                       for job in workflow.dag.jobs)
    out.write_text("".join(line + "\n" for line in lines))
    return len(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    print(f"{dump(args.config, args.out)} jobs -> {args.out}")


if __name__ == "__main__":
    main()
