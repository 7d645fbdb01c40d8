"""tstransfer.plan: the planned jobs are Snakemake's, job by job; the table drives the
CLI, the seeds and the job folders; old results trees still load."""

from __future__ import annotations

import inspect
import json
from collections import Counter

import pytest
import yaml

from tstransfer import plan
from tstransfer.layout import FINETUNE_DIR, PRETRAIN_DIR, REFERENT_DIR, SMAX_DIR, SUBSET
from tstransfer.seeding import int_seed
from workflow_runs import ROOT, dag_jobs

def snakemake_jobs(configfile, workdir) -> list[dict]:
    """Every job of Snakemake's DAG for a fresh run of ``configfile``: rule, outputs, logs, benchmark."""
    return dag_jobs(configfile, workdir, '{"rule": job.rule.name, "output": [str(f) for f in job.output], '
                    '"log": [str(f) for f in job.log], "benchmark": str(job.benchmark) if job.benchmark else None}')


def assert_plan_is_the_dag(config, dag: list[dict]) -> dict[str, int]:
    """Per kind, the plan's (output, log, benchmark) equal the DAG's, job for job: the
    plan's output is the job's first (its main) output; returns the counts."""
    planned = plan.planned_jobs(config)
    assert set(planned) == set(plan.KINDS)
    for kind, jobs in planned.items():
        ours = Counter((job.output, job.log, job.benchmark) for job in jobs)
        theirs = Counter((job["output"][0], *job["log"], job["benchmark"]) for job in dag if job["rule"] == kind)
        assert len(ours) == len(jobs), f"{kind}: the plan lists a job twice"
        assert ours == theirs, (kind, sorted(ours - theirs)[:3], sorted(theirs - ours)[:3])
        for job in jobs:  # a training job checkpoints in its own folder, beside its result
            assert (job.checkpoint is None) == (kind not in plan.TRAINING_KINDS)
            if job.checkpoint:
                assert job.checkpoint == job.output.removesuffix(plan.RESULT) + plan.CHECKPOINT
    counts = {kind: len(jobs) for kind, jobs in planned.items()}
    assert plan.count_jobs(config) == counts
    return counts


def test_the_demos_planned_jobs_are_snakemakes_dry_run(tmp_path):
    configfile = ROOT / "config" / "demo.yaml"
    counts = assert_plan_is_the_dag(yaml.safe_load(configfile.read_text()), snakemake_jobs(configfile, tmp_path))
    assert all(counts[kind] for kind in plan.KINDS if kind != "download")  # synthetic: nothing to download


@pytest.mark.slow
def test_the_papers_planned_jobs_are_snakemakes_dry_run(tmp_path):
    """The paper's grid: 240 pretraining, 24 selection, 336 referent, 16,800 fine-tuning jobs."""
    configfile = ROOT / "config" / "config.yaml"
    counts = assert_plan_is_the_dag(yaml.safe_load(configfile.read_text()), snakemake_jobs(configfile, tmp_path))
    assert counts["pretrain"] == 240
    assert counts["select_pretrained"] == 24
    assert counts["referent"] == 336
    assert counts["finetune"] == 16_800
    assert counts["convert"] == 6
    assert counts["subset"] == 6 * 2 * 7
    assert counts["stream_max"] == 4 * 4 * 2  # Table 2: 4 archs x 4 datasets x with/without
    assert counts["download"] > 6 and counts["synthesize"] == 0


def test_job_folders_are_the_layouts_under_any_root(tmp_path):
    identity = dict(arch="tcn", source="emg", target="sp500", variant="1k5", run=3, omega=0.5)
    assert plan.job_dir("finetune", **identity).as_posix() == FINETUNE_DIR.format(**{**identity, "omega": "0.5"})
    assert plan.job_dir("finetune", tmp_path, **identity) == tmp_path / "finetune/tcn/emg/sp500/1k5/run3/omega0.5"
    assert plan.job_dir("referent", tmp_path, arch="tcn", target="sp500", variant="1k5", run=0) == (
        tmp_path / REFERENT_DIR.removeprefix("results/").format(arch="tcn", target="sp500", variant="1k5", run=0))
    assert plan.job_dir("pretrain", arch="tcn", dataset="emg", seed_index=2).as_posix() == PRETRAIN_DIR.format(
        arch="tcn", source="emg", seed=2)
    assert plan.job_dir("stream_max", arch="tcn", dataset="emg", stream_max=False, seed_index=0).as_posix() == (
        SMAX_DIR.format(arch="tcn", dataset="emg", smax="without", seed=0))
    assert plan.path_under(tmp_path, SUBSET, dataset="emg", variant="9k", run=1) == (
        tmp_path / "data/subsets/emg/9k/run1.npz")
    with pytest.raises(ValueError, match="not a training kind"):
        plan.job_dir("convert", dataset="emg")
    # where progress looks for a training job's checkpoint is where training writes it
    from tstransfer.training import CHECKPOINT_DIR, CHECKPOINT_FILE

    assert plan.CHECKPOINT == f"{CHECKPOINT_DIR}/{CHECKPOINT_FILE}"


def test_seeds_are_drawn_from_the_kind_and_identity_as_before():
    """The seeding tuples of the jobs before the plan held them: every result stays the same."""
    seed = 20221025
    assert int_seed(seed, *plan.seed_parts("pretrain", arch="tcn", dataset="emg", seed_index=1)) == int_seed(
        seed, "pretrain", "tcn", "emg", 1)
    # the stream_max study's pair (with and without the input) shares one seed
    assert plan.seed_parts("stream_max", arch="tcn", dataset="emg", seed_index=0, stream_max=True) == (
        plan.seed_parts("stream_max", arch="tcn", dataset="emg", seed_index=0, stream_max=False))
    assert int_seed(seed, *plan.seed_parts("referent", arch="tcn", target="emg", variant="1k5", run=2)) == int_seed(
        seed, "referent", "tcn", "emg", "1k5", 2)
    finetune = dict(arch="tcn", source="sp500", target="emg", variant="1k5", run=2)
    assert int_seed(seed, *plan.seed_parts("finetune", **finetune, omega=0.5)) == int_seed(
        seed, "finetune", "tcn", "sp500", "emg", "1k5", 2, "0.5")
    # the CLI's strings ("2", "0.5") seed as the numbers do
    assert plan.seed_parts("finetune", **{**finetune, "run": "2"}, omega="0.5") == (
        plan.seed_parts("finetune", **finetune, omega=0.5))


def test_the_cli_has_one_command_per_training_kind_with_its_identity():
    from tstransfer import cli

    parser = cli._parser()
    spec = ["--spec", "{}", "--out", "o"]
    args = parser.parse_args(["stream_max", *spec, "--arch", "tcn", "--dataset", "emg", "--stream-max", "without",
                              "--seed-index", "1", "--store", "s"])
    assert (args.kind, args.stream_max, args.seed_index) == ("stream_max", False, 1)
    old = parser.parse_args(["stream-max", *spec, "--arch", "tcn", "--dataset", "emg", "--stream-max", "with",
                             "--seed-index", "1", "--store", "s"])
    assert (old.kind, old.stream_max) == ("stream_max", True)  # the deprecated spelling
    args = parser.parse_args(["finetune", *spec, "--arch", "tcn", "--source", "a", "--target", "b", "--variant",
                              "1k5", "--run", "0", "--omega", "0.5", "--pretrained", "m", "--store", "s",
                              "--subset", "x"])
    assert (args.kind, args.run, args.omega, args.pretrained) == ("finetune", 0, 0.5, "m")
    from tstransfer import jobs

    for kind in plan.TRAINING_KINDS:  # cli dispatches by kind: jobs.<kind>(spec, **fields, **inputs, out_dir=...)
        parameters = inspect.signature(getattr(jobs, kind)).parameters
        assert set(parameters) == {"config", "out_dir", *(f.name for f in plan.KINDS[kind].identity),
                                   *plan.KINDS[kind].inputs}, kind


def _result(**changes):
    record = {
        "kind": "pretrain", "arch": "tcn", "source": "emg", "target": None, "variant": None, "run": None,
        "omega": None, "seed": 7, "seed_index": 0, "stream_max": True, "task": "classification",
        "status": "ok", "best_epoch": 3, "last_epoch": 5, "metric": "f1_weighted", "val_metric": 0.5,
        "test_metric": 0.4, "convergence_rate": 0.1, "convergence_rate_val": 0.1,
        "convergence_rate_test": None, "runtime_s": 12.0, "config": {"switches": {"test_curves": False}},
    }
    return {**record, **changes}


def test_a_pretraining_result_names_its_source_and_old_ones_still_load(tmp_path):
    """result.json of a pretraining job names its dataset `source`; one written before
    (dataset under `target`) gives the same row of the results table and the same selection."""
    from tstransfer import jobs
    from tstransfer.analysis.results import build_results_table, record_from_job

    new, old = _result(), _result(source=None, target="emg")
    assert plan.trained_on(new) == plan.trained_on(old) == "emg"
    assert record_from_job(new) == record_from_job(old)
    assert record_from_job(new)["target"] == "emg" and record_from_job(new)["source"] == ""
    finetune = _result(kind="finetune", source="sp500", target="emg", variant="1k5", run=0, omega=0.5)
    assert (record_from_job(finetune)["source"], record_from_job(finetune)["target"]) == ("sp500", "emg")
    paths = []  # one tree with a job of each form (another seed: one model twice is refused)
    for name, record in (("new", new), ("old", {**old, "seed": 8, "seed_index": 1})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_text(json.dumps(record))
        (tmp_path / name / "model.keras").write_text(name)
        paths.append(tmp_path / name / "result.json")
        assert jobs.select_pretrained([paths[-1]], tmp_path / f"{name}.json")["dataset"] == "emg"
    table = build_results_table(paths)
    assert list(table["target"]) == ["emg", "emg"] and list(table["source"]) == ["", ""]
