"""Running the workflow the way a user does: tstransfer.devtools.workflow_runs (shared
with bench/), re-exported here with the dry-run parser the tests use."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tstransfer.devtools.workflow_runs import (  # noqa: F401  (the tests import them from here)
    FINETUNE_GROUP, PACK_FINETUNE_ARGS, ROOT, SLURM_PROFILE_ARGS, environment_without_the_project, snakemake,
    snakemake_argv, tiny_config,
)
from tstransfer.plan import TRAINING_KINDS  # noqa: F401  (the tests import it from here)


def planned_jobs(output: str) -> list[tuple[str, dict]]:
    """(rule, wildcards) of every job a dry run plans."""
    jobs, rule = [], None
    for line in output.splitlines():
        match = re.match(r"\s*(?:local)?rule (\w+):", line)
        if match:
            rule = match.group(1)
            jobs.append((rule, {}))
            continue
        match = re.match(r"\s*wildcards: (.*)", line)
        if match and jobs:
            jobs[-1][1].update(item.split("=", 1) for item in match.group(1).split(", "))
    return jobs


# Builds the DAG of a dry run through Snakemake's API (what `snakemake -n` builds) and
# prints each job, as JOB_FIELDS makes it of `job`, as JSON on its last line.
_DAG = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import (ConfigSettings, DAGSettings, OutputSettings, Quietness,
    ResourceSettings, StorageSettings)
snakefile, configfile, workdir = map(Path, sys.argv[1:4])
with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
    workflow_api = api.workflow(
        resource_settings=ResourceSettings(cores=1),
        config_settings=ConfigSettings(configfiles=[configfile], replace_workflow_config=True),
        storage_settings=StorageSettings(), snakefile=snakefile, workdir=workdir)
    workflow_api.dag(DAGSettings())
    workflow = workflow_api._workflow  # as `snakemake --dag` does: build the DAG, run nothing
    workflow._prepare_dag(forceall=False, ignore_incomplete=True, lock_warn_only=True)
    workflow._build_dag()
    jobs = [JOB_FIELDS for job in workflow.dag.jobs]
print(json.dumps(jobs, default=str))
"""


def dag_jobs(configfile: Path, workdir: Path, job_fields: str) -> list[dict]:
    """Every job of Snakemake's DAG for a fresh run of ``configfile`` in ``workdir``, each
    as the dict that the Python expression ``job_fields`` makes of ``job`` (one Snakemake
    process, with this tree's package whatever PYTHONPATH says: a relative one means
    nothing in ``workdir``)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", _DAG.replace("JOB_FIELDS", job_fields), str(ROOT / "Snakefile"),
                           str(configfile), str(workdir)], cwd=workdir, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
