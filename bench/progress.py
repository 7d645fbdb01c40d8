"""How long ``python -m tstransfer.progress`` takes on the paper's 17,540 jobs.

    python bench/progress.py --repeats 3

Writes, into a temporary folder, the files a half-finished paper run leaves: for every
second planned job of config/config.yaml its output (a training job's ``result.json``) and,
for those with a ``benchmark:``, a benchmark TSV; then times ``progress.survey`` over the
tree (median of ``--repeats``, after one warm-up pass so that the page cache holds the
files, as it does on a machine that just wrote them). A cluster's shared file system is
slower per file; the count of files read is printed so that one can scale.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from tstransfer import plan, progress

ROOT = Path(__file__).resolve().parents[1]
BENCHMARK = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n" \
            "123.4\t0:02:03\t900\t2000\t800\t850\t1\t2\t95.0\t120.0\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    jobs = [job for rule_jobs in plan.planned_jobs(config).values() for job in rule_jobs]
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        written = 0
        for job in jobs[::2]:
            output = workdir / job.output
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(json.dumps({"status": "ok"}) if job.has_result_json else "")
            written += 1
            if job.benchmark:
                path = workdir / job.benchmark
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(BENCHMARK)
                written += 1
        progress.survey(workdir, config)  # warm-up
        times, cpu = [], []
        for _ in range(args.repeats):
            started, cpu_started = time.perf_counter(), time.process_time()
            report = progress.survey(workdir, config)
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
    print(f"planned jobs: {report['planned']}, finished: {report['done']}, files written: {written}")
    print(f"survey: median {statistics.median(times):.2f} s over {args.repeats} runs "
          f"(min {min(times):.2f} s, max {max(times):.2f} s); CPU time median "
          f"{statistics.median(cpu):.2f} s (moves less with a shared machine's load)")


if __name__ == "__main__":
    main()
