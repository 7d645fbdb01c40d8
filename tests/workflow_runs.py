"""Running the workflow the way a user does: tstransfer.devtools.workflow_runs (shared
with bench/), re-exported here with the dry-run parser the tests use."""

from __future__ import annotations

import re

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
