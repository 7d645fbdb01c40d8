"""A fix for snakemake-executor-plugin-slurm (2.8.0), applied when the Snakefile is parsed.

sacct reports a job that a user or an administrator cancelled (``scancel``) as
``CANCELLED by <uid>``. The plugin compares the state with its list of failure states by
equality, so it takes such a job for a running one, and Snakemake waits for it forever:
the profile's retry never comes, and the run hangs (found by tests/test_slurm.py; the old
Snakemake-Profiles/slurm status script handled the same form, its pull request #22). We
cut the suffix off before the plugin reads the state.
"""

from __future__ import annotations

import sys

PLUGIN = "snakemake_executor_plugin_slurm"


def normalise_state(state: str) -> str:
    """``"CANCELLED by 0"`` -> ``"CANCELLED"``; every other state as it is."""
    return state.split(" by ", 1)[0]


def patch_cancelled_state() -> bool:
    """Make the loaded SLURM executor plugin see ``CANCELLED by <uid>`` as ``CANCELLED``.

    Only where the plugin is already imported (Snakemake imports its executor before it
    parses the Snakefile), so other runs import nothing. Returns whether it is patched.
    """
    plugin = sys.modules.get(PLUGIN)
    if plugin is None or not hasattr(plugin, "query_job_status"):
        return False
    original = plugin.query_job_status
    if getattr(original, "cancelled_state_patched", False):
        return True

    async def query_job_status(command, logger):
        status_of_jobs, duration = await original(command, logger)
        if status_of_jobs:
            status_of_jobs = {job: normalise_state(state) for job, state in status_of_jobs.items()}
        return status_of_jobs, duration

    query_job_status.cancelled_state_patched = True
    plugin.query_job_status = query_job_status
    return True
