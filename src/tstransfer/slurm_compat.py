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
from pathlib import Path

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


def failure_report(snakemake_logs, *, sacct: bool = True) -> list[str]:
    """SLURM's own account of every SLURM job that Snakemake's log says failed.

    ``snakemake_logs``: the log file, or the list of them that an ``onerror`` handler gets.

    For each ``SLURM-job 'N' failed`` line: the job's and its steps' states from sacct
    (memory, time, exit code) and slurmstepd's lines from the job's SLURM log, which say
    why SLURM killed it ("exceeded memory limit (...), being killed", "CANCELLED ... DUE
    TO TIME LIMIT"). Snakemake's own --show-failed-logs stops at the first log file that
    does not exist (snakemake 9.27 ``logging.show_logs``), which is the rule's log when
    SLURM killed the job before its command started, so it cannot be relied on for this.
    """
    import re
    import subprocess

    paths = [snakemake_logs] if isinstance(snakemake_logs, (str, Path)) else list(snakemake_logs or [])
    text = ""
    for path in paths:
        try:
            text += Path(path).read_text(errors="replace")
        except OSError:
            continue
    lines: list[str] = []
    for job_id in dict.fromkeys(re.findall(r"SLURM-job '(\d+)' failed", text)):
        lines.append(f"SLURM's account of failed job {job_id}:")
        if sacct:
            try:
                done = subprocess.run(
                    ["sacct", "-j", job_id, "--parsable2", "--noheader",
                     "--format=JobID,State,ExitCode,MaxRSS,ReqMem,Elapsed,Timelimit"],
                    capture_output=True, text=True, timeout=30,
                )
                lines += [f"  sacct: {line}" for line in done.stdout.splitlines() if line.strip()]
            except (OSError, subprocess.SubprocessError) as error:
                lines.append(f"  sacct failed: {error}")
        for path in dict.fromkeys(re.findall(rf"(\S*slurm_logs\S*/{job_id}\.log)", text)):
            try:
                job_log = Path(path).read_text(errors="replace").splitlines()
            except OSError:
                continue
            reasons = [line for line in job_log if "slurmstepd" in line or "DUE TO" in line]
            lines += [f"  {path}: {line}" for line in dict.fromkeys(reasons)]
    return lines
