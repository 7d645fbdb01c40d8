"""How long the archive's RO-Crate takes, and how large it is, on the paper's ~17,500 jobs.

    python bench/archive_crate.py [--configfile config/config.yaml] [--fraction 1.0]

Writes, into a temporary folder, what a finished run of the config leaves that the crate
reads: every planned job's output (a training job's ``result.json``, a store folder, a
subset), its log, its benchmark TSV where its kind has one, and Snakemake's record of the
job (``.snakemake/metadata``, as Snakemake writes it); the manifest job reading every
result.json. Then times what the archive rule does for the crate: copy the workflow
definition, walk the tree once, read the records, build and write
``results/ro-crate-metadata.json`` (tstransfer.crate.write_crate). ``--fraction`` takes that
share of each kind's jobs, to check that time and size grow linearly.
"""

from __future__ import annotations

import argparse
import base64
import json
import resource
import tempfile
import time
from pathlib import Path

import yaml

from tstransfer import archive, crate, datasets, jobrecords, plan
from tstransfer.layout import SELECTED_DIR, STORE, SUBSET

ROOT = Path(__file__).resolve().parent.parent
BENCHMARK = ("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
             "812.5\t0:13:32\t2900.1\t9000.2\t2800.3\t2850.4\t10.1\t2.2\t98.5\t790.0\n")
# A training kind's inputs, as its rule names them (rules/training.smk), by the kind's wildcards.
INPUTS = {
    "pretrain": (STORE.replace("{dataset}", "{source}"),),
    "referent": (STORE.replace("{dataset}", "{target}"), SUBSET.replace("{dataset}", "{target}")),
    "finetune": (f"{SELECTED_DIR}/model.keras", STORE.replace("{dataset}", "{target}"),
                 SUBSET.replace("{dataset}", "{target}")),
    "stream_max": (STORE,),
}


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def record(workdir: Path, output: str, rule: str, inputs: list[str], log: str, when: float) -> None:
    name = base64.urlsafe_b64encode(output.encode()).decode()
    write(workdir / jobrecords.SNAKEMAKE_RECORDS / name, json.dumps({
        "rule": rule, "input": inputs, "log": [log], "record_format_version": 6, "job_hash": hash(log),
        "starttime": when, "endtime": when + 812.5, "incomplete": False}))


def finished_run(workdir: Path, config: dict, fraction: float) -> int:
    """The files of a finished run of ``config`` (a share of each kind's jobs); the job count."""
    count, results_json = 0, []
    for kind, jobs in plan.planned_jobs(config).items():
        keep = max(1, round(len(jobs) * fraction)) if jobs else 0
        inputs = [plan.paths(kind, pattern, config) for pattern in INPUTS.get(kind, ())]
        for i, job in enumerate(jobs[:keep]):
            output = workdir / job.output
            if kind in ("convert", "synthesize"):
                write(output / "zarr.json", "{}")
            else:
                write(output, json.dumps({"kind": kind, "runtime_s": 800.0}) if job.has_result_json else "x")
            write(workdir / job.log, "done\n")
            if job.benchmark:
                write(workdir / job.benchmark, BENCHMARK)
            record(workdir, job.output, kind, [paths[i] for paths in inputs], job.log, 1.79e9 + 900 * count)
            if job.has_result_json:
                results_json.append(job.output)
            count += 1
    write(workdir / "results" / "manifest.txt", "\n".join(results_json))
    record(workdir, "results/manifest.txt", "manifest", results_json, "results/logs/manifest.log", 1.8e9)
    return count + 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", default=str(ROOT / "config" / "config.yaml"))
    parser.add_argument("--fraction", type=float, default=1.0)
    args = parser.parse_args(argv)
    config = yaml.safe_load(Path(args.configfile).read_text())
    datasets.register_config(config)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        jobs = finished_run(workdir, config, args.fraction)
        results = workdir / "results"
        started = time.perf_counter()
        copied = crate.copy_workflow(ROOT, results / crate.WORKFLOW_DIR)
        files = list(archive.archived_files(results, exclude_large=True))
        walked = time.perf_counter()
        counts = crate.write_crate(results, config, files, workflow_files=copied, exclude_large=True, workdir=workdir)
        done = time.perf_counter()
        size = (results / crate.METADATA_NAME).stat().st_size
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{jobs} jobs, {len(files)} archived files; copy + walk {walked - started:.1f} s, crate "
          f"{done - walked:.1f} s ({counts}); ro-crate-metadata.json {size / 1e6:.1f} MB; peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
