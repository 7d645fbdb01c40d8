"""The paper config's dry run in two checkouts, in turns: ``python bench/dry_run_compare.py OLD NEW [--repeats 2]``.

OLD and NEW are checkouts of this project, each with its own ``.venv`` (``make install``;
the venv's editable install is what its Snakefile imports). Each repeat runs ``snakemake -n
--quiet`` with that checkout's ``config/config.yaml`` on an empty folder, OLD then NEW, so
that load on the machine affects both alike; prints the CPU seconds (user + system of the
snakemake process) and wall seconds of each, their medians and the ratio NEW / OLD. bench/dag.py
compares one checkout with a touch-only DAG; this compares two versions of the workflow.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def dry_run(checkout: Path) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one dry run of ``checkout``'s paper config."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        subprocess.run([str(checkout / ".venv" / "bin" / "python"), "-m", "snakemake", "-s", str(checkout / "Snakefile"),
                        "-d", workdir, "--configfile", str(checkout / "config" / "config.yaml"),
                        "--replace-workflow-config", "-n", "--quiet"], check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    cpu: dict[Path, list[float]] = {args.old: [], args.new: []}
    for repeat in range(args.repeats):
        for checkout in (args.old, args.new):
            seconds, wall = dry_run(checkout)
            cpu[checkout].append(seconds)
            print(f"repeat {repeat + 1} {checkout}: {seconds:.2f} CPU s, {wall:.2f} wall s", flush=True)
    old, new = (statistics.median(cpu[checkout]) for checkout in (args.old, args.new))
    print(f"median CPU s: old {old:.2f}, new {new:.2f}, new / old {new / old:.2f}")


if __name__ == "__main__":
    main()
