"""The results tree as a Workflow Run RO-Crate (tstransfer.crate, `snakemake archive`),
validated offline by roc-validator against the profiles it claims, every REQUIRED check
passing and none skipped (tests/rocrate_offline.py seeds the validator's cache with the
contexts in ../shared/data/ro-crate: without them, or without the validator, these tests
skip, and under CI=true fail).

A small tree made here, with Snakemake's job records written as Snakemake writes them,
checks the crate itself, a moved tree, the fallback without records and that the work
grows linearly with the jobs; the finished tiny workflow run (conftest.py) checks the crate
`snakemake` writes, and `snakemake verify` with it.
"""

from __future__ import annotations

import base64
import gc
import json
import os
import shutil
import time
from pathlib import Path

import pytest
from rocrate_offline import assert_every_required_check_passes, seed_cache, validate, validator
from workflow_runs import ROOT, snakemake

from tstransfer import archive, crate, jobrecords

PROFILES = ("workflow-run-crate-0.5", "provenance-run-crate-0.5")
CONFIG = {"architectures": ["magnet"], "runs": 1, "omegas": [0.5], "training": {"max_epochs": 2},
          "protocol": "validation", "job_server": False, "seed": 7}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    validator()  # skips (fails under CI) without roc-validator
    return seed_cache(tmp_path_factory.mktemp("rocrate-cache") / "http_cache")


def _write(path: Path, text: str = "x\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _record(workdir: Path, output: str, rule: str, inputs: list[str], log: str, start: float, end: float) -> None:
    """One Snakemake job record, as snakemake.persistence.file writes it (format 6)."""
    name = base64.urlsafe_b64encode(output.encode()).decode()
    _write(workdir / ".snakemake" / "metadata" / name, json.dumps({
        "rule": rule, "input": inputs, "log": [log], "shellcmd": None, "params": [], "code": None,
        "record_format_version": 6, "conda_env": None, "container_img_url": None, "software_stack_hash": None,
        "job_hash": hash(log), "starttime": start, "endtime": end, "incomplete": False, "external_jobid": None,
        "input_checksums": {}}))


def small_run(workdir: Path) -> Path:
    """A results tree of one dataset's conversion and subset, two fine-tuning jobs, the
    results table and one zoo model, with Snakemake's records of those jobs; returns results/."""
    results = workdir / "results"
    _write(workdir / "resources" / "synthetic" / "emg" / "Pinch.zip")
    _write(results / "data" / "emg.zarr" / "zarr.json", "{}")  # a large intermediate: left out
    _write(results / "data" / "subsets" / "emg" / "1k5" / "run0.npz")
    _write(results / "benchmarks" / "convert" / "emg.tsv",
           "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
           "8.50\t0:00:08\t163.39\t2102.43\t92.44\t107.21\t0.02\t2.15\t12.87\t1.20\n")
    t0 = 1_790_000_000.0
    _record(workdir, "resources/synthetic/emg", "synthesize", [], "results/logs/synthesize/emg.log", t0, t0 + 3)
    _record(workdir, "results/data/emg.zarr", "convert", ["resources/synthetic/emg"],
            "results/logs/convert/emg.log", t0 + 3, t0 + 11)
    _record(workdir, "results/data/subsets/emg/1k5/run0.npz", "subset", ["results/data/emg.zarr"],
            "results/logs/subset/emg/1k5/run0.log", t0 + 11, t0 + 12)
    cells = []
    for omega in ("0.5", "1.0"):
        key = f"finetune/magnet/sp500/emg/1k5/run0/omega{omega}"
        cell = f"results/{key}/result.json"
        _write(workdir / cell, json.dumps({"kind": "finetune", "runtime_s": 4.5}))
        _write(results / key / "history.csv", "epoch\n1\n")
        _write(results / "logs" / f"{key}.log")
        _write(results / "benchmarks" / f"{key}.tsv", "s\tmax_rss\tcpu_time\n5.0\t900.5\t4.2\n")
        _record(workdir, cell, "finetune", ["results/data/emg.zarr", "results/data/subsets/emg/1k5/run0.npz",
                                            "results/pretrain/magnet/sp500/selected/model.keras"],
                f"results/logs/{key}.log", t0 + 20, t0 + 25)
        cells.append(cell)
    _write(results / "manifest.txt", "\n".join(cells))
    _record(workdir, "results/manifest.txt", "manifest", cells, "results/logs/manifest.log", t0 + 30, t0 + 31)
    for name in ("results.csv", "results.parquet"):
        _write(results / "tables" / name)
        _record(workdir, f"results/tables/{name}", "results_table", ["results/manifest.txt"],
                "results/logs/results_table.log", t0 + 31, t0 + 33)
    zoo = results / "zoo" / "magnet-sp500"
    card = {"name": "magnet-sp500", "arch": "magnet", "arch_label": "MagNet", "source": "sp500", "license": "MIT",
            "training_data": {"title": "S&P 500"}}
    _write(zoo / "card.json", json.dumps(card))
    _write(zoo / "card.md", "# MagNet\n")
    _write(zoo / "README.md", "---\nlicense: mit\n---\n# MagNet\n")
    _write(zoo / "model.keras")
    for name in ("card.json", "card.md", "README.md", "model.keras"):
        _record(workdir, f"results/zoo/magnet-sp500/{name}", "zoo_model",
                ["results/pretrain/magnet/sp500/selected/model.keras", "results/data/sp500.zarr"],
                "results/logs/zoo/magnet-sp500.log", t0 + 40, t0 + 41)
    _record(workdir, "results/gone.csv", "results_table", [], "results/logs/gone.log", t0, t0)  # output deleted
    return results


def archive_like_the_rule(workdir: Path, *, exclude_large: bool = True) -> tuple[dict, list[str]]:
    """What workflow/scripts/archive.py does, in ``workdir`` (relative paths, as Snakemake runs it)."""
    results = workdir / "results"
    copied = crate.copy_workflow(ROOT, results / crate.WORKFLOW_DIR)
    files = list(archive.archived_files(results, exclude_large=exclude_large))
    jobs = crate.write_crate(results, CONFIG, files, workflow_files=copied, exclude_large=exclude_large,
                             workdir=workdir, git_commit="0123abc")
    archive.write_manifest(results, results / archive.MANIFEST_NAME, exclude_large=exclude_large,
                           files=[*files, Path(crate.METADATA_NAME)])
    archive.write_provenance(results, results / archive.PROVENANCE_NAME, CONFIG, exclude_large=exclude_large)
    return jobs, copied


def _graph(results: Path) -> dict[str, dict]:
    document = json.loads((results / crate.METADATA_NAME).read_text())
    assert document["@context"] == ["https://w3id.org/ro/crate/1.1/context", crate.WFRUN_CONTEXT]
    return {entity["@id"]: entity for entity in document["@graph"]}


def _ids(value) -> list[str]:
    return [v["@id"] for v in (value if isinstance(value, list) else [value])]


# --------------------------------------------------------------------------- the crate itself
def test_the_crate_describes_the_workflow_the_rules_and_every_job(tmp_path):
    results = small_run(tmp_path)
    jobs, copied = archive_like_the_rule(tmp_path)
    assert jobs == {"snakemake_records": 8, "result_json": 0}
    assert {"Snakefile", "rules/archive.smk", "workflow/scripts/archive.py", "LICENSE", "CITATION.cff",
            "src/tstransfer/crate.py", "workflow/scripts/srcpath.py", "envs/training.yaml",
            "containers/tstransfer.def", "containers/Dockerfile", "containers/install.sh"} <= set(copied)
    graph = _graph(results)
    root = graph["./"]
    assert root["license"] == {"@id": "https://spdx.org/licenses/MIT"}
    assert root["mainEntity"] == {"@id": "workflow/Snakefile"}
    assert set(_ids(root["conformsTo"])) == {uri for uri, _, _ in crate.PROFILES}
    workflow = graph["workflow/Snakefile"]
    assert set(workflow["@type"]) == {"File", "SoftwareSourceCode", "ComputationalWorkflow", "HowTo"}
    assert graph[workflow["programmingLanguage"]["@id"]]["name"] == "Snakemake"
    assert workflow["version"] == "0123abc" and workflow["license"] == root["license"]
    assert graph[workflow["author"]["@id"]]["name"] == "The tstransfer contributors"
    paper = graph[workflow["citation"]["@id"]]
    assert paper["name"].startswith("Intra-domain and cross-domain transfer learning")
    assert [graph[a["@id"]]["familyName"] for a in paper["author"]][:2] == ["Otović", "Njirjak"]
    # Each rule that ran is a tool and a step; the rule's docstring describes it.
    assert sorted(_ids(workflow["hasPart"])) == sorted(
        f"#rule-{r}" for r in ("synthesize", "convert", "subset", "finetune", "manifest", "results_table", "zoo_model"))
    assert graph["#rule-finetune"]["description"].startswith("One grid cell: the selected pretrained model")
    assert graph["#rule-finetune"]["isPartOf"] == {"@id": "workflow/rules/training.smk"}
    # A fine-tuning job: its inputs (the store, subset and model, large intermediates the
    # archive leaves out, by local id),
    # its output, its times from Snakemake's record, its benchmark's resource usage.
    cell = "results/finetune/magnet/sp500/emg/1k5/run0/omega0.5/result.json"
    action = graph[f"#job/{cell}"]
    assert action["@type"] == "CreateAction" and action["instrument"] == {"@id": "#rule-finetune"}
    assert _ids(action["result"]) == ["finetune/magnet/sp500/emg/1k5/run0/omega0.5/result.json"]
    assert _ids(action["object"]) == ["#results/data/emg.zarr", "#results/data/subsets/emg/1k5/run0.npz",
                                      "#results/pretrain/magnet/sp500/selected/model.keras"]
    assert graph["#results/data/emg.zarr"]["@type"] == "Dataset"
    assert (action["startTime"], action["endTime"]) == ("2026-09-21T14:13:40+00:00", "2026-09-21T14:13:45+00:00")
    usage = {graph[i]["propertyID"]: graph[i]["value"] for i in _ids(action["resourceUsage"])}
    assert usage == {"s": 5.0, "max_rss": 900.5, "cpu_time": 4.2}
    control = graph[f"#control/{cell}"]
    assert control["instrument"] == {"@id": "#step-finetune"} and control["object"] == {"@id": f"#job/{cell}"}
    # The run: the config in, the outputs no job read out; Snakemake orchestrated it.
    run = graph["#run"]
    values = {graph[i]["name"]: graph[i]["value"] for i in _ids(run["object"])}
    assert values["runs"] == 1 and json.loads(values["architectures"]) == ["magnet"]
    assert "tables/results.csv" in _ids(run["result"]) and "tables/results.parquet" in _ids(run["result"])
    assert "manifest.txt" not in _ids(run["result"])  # the results table read it
    assert graph["#organize"]["result"] == {"@id": "#run"} and len(_ids(graph["#organize"]["object"])) == 8
    # The zoo model: a dataset with its cards and the licence.
    model = graph["zoo/magnet-sp500/"]
    assert model["license"] == root["license"]
    assert set(_ids(model["hasPart"])) == {"zoo/magnet-sp500/card.json", "zoo/magnet-sp500/card.md",
                                            "zoo/magnet-sp500/README.md", "#results/zoo/magnet-sp500/model.keras"}
    # The crate's metadata is in the manifest: verify notices a change to it.
    assert any(line.endswith(f"  {crate.METADATA_NAME}") for line in
               (results / archive.MANIFEST_NAME).read_text().splitlines())
    assert archive.verify(results) == {"changed": [], "missing": []}


@pytest.mark.parametrize("profile", PROFILES)
def test_roc_validator_passes_every_required_check_offline(tmp_path, cache, profile):
    results = small_run(tmp_path / "run")
    archive_like_the_rule(tmp_path / "run")
    result = validate(results, profile, cache, tmp_path / "report.json")
    assert_every_required_check_passes(result, profile)


def test_a_moved_tree_still_validates(tmp_path, cache):
    small_run(tmp_path / "run")
    archive_like_the_rule(tmp_path / "run")
    moved = tmp_path / "elsewhere" / "archived-results"
    moved.parent.mkdir()
    shutil.move(tmp_path / "run" / "results", moved)
    shutil.rmtree(tmp_path / "run")  # nothing of the workflow's folder is left
    for profile in PROFILES:
        assert_every_required_check_passes(validate(moved, profile, cache, tmp_path / f"{profile}.json"), profile)
    assert archive.verify(moved) == {"changed": [], "missing": []}
    # With the original gone, verify reads the moved tree itself: it names exactly what
    # changed there (one byte of a history, the crate's metadata) and what went missing.
    lines = (moved / archive.MANIFEST_NAME).read_text().splitlines()
    histories = sorted(line.split("  ", 1)[1] for line in lines if line.endswith("/history.csv"))
    history = moved / histories[0]
    history.write_bytes(history.read_bytes().replace(b"1", b"2"))
    metadata = moved / crate.METADATA_NAME
    metadata.write_text(metadata.read_text() + " ")
    (moved / histories[1]).unlink()
    assert archive.verify(moved) == {"changed": sorted([histories[0], crate.METADATA_NAME]),
                                     "missing": [histories[1]]}


def test_with_large_intermediates_archived_the_store_is_in_the_payload(tmp_path, cache):
    results = small_run(tmp_path / "run")
    archive_like_the_rule(tmp_path / "run", exclude_large=False)
    graph = _graph(results)
    assert graph["data/emg.zarr/"]["@type"] == "Dataset" and "#results/data/emg.zarr" not in graph
    assert "zoo/magnet-sp500/model.keras" in _ids(graph["zoo/magnet-sp500/"]["hasPart"])
    result = validate(results, "provenance-run-crate-0.5", cache, tmp_path / "report.json")
    assert_every_required_check_passes(result, "provenance-run-crate-0.5")


def test_the_validation_has_teeth(tmp_path, cache):
    """A crate without its main workflow file, or whose actions lost their tool, fails."""
    results = small_run(tmp_path / "run")
    archive_like_the_rule(tmp_path / "run")
    (results / crate.WORKFLOW_DIR / "Snakefile").unlink()
    result = validate(results, "workflow-run-crate-0.5", cache, tmp_path / "missing.json")
    assert not result["passed"] and result["exit_code"] != 0
    document = json.loads((results / crate.METADATA_NAME).read_text())
    for entity in document["@graph"]:
        if entity["@type"] == "ControlAction":
            del entity["instrument"]
    (results / crate.METADATA_NAME).write_text(json.dumps(document))
    result = validate(results, "provenance-run-crate-0.5", cache, tmp_path / "broken.json")
    assert not result["passed"]
    assert any("ControlAction must reference a HowToStep" in str(i.get("message")) for i in result["issues"])


def test_without_snakemakes_records_training_jobs_come_from_result_json(tmp_path, cache):
    """Records dropped (--drop-metadata) or the tree archived elsewhere: each result.json
    still gives its job (end: the file's time; start: end minus runtime_s)."""
    results = small_run(tmp_path / "run")
    shutil.rmtree(tmp_path / "run" / ".snakemake")
    cell = results / "finetune/magnet/sp500/emg/1k5/run0/omega1.0/result.json"
    end = 1_790_000_100.0
    os.utime(cell, (end, end))
    jobs, _ = archive_like_the_rule(tmp_path / "run")
    assert jobs == {"snakemake_records": 0, "result_json": 2}
    action = _graph(results)["#job/results/finetune/magnet/sp500/emg/1k5/run0/omega1.0/result.json"]
    assert (action["startTime"], action["endTime"]) == ("2026-09-21T14:14:55+00:00", "2026-09-21T14:15:00+00:00")
    assert "object" not in action  # its inputs are not known without the record
    assert_every_required_check_passes(validate(results, PROFILES[1], cache, tmp_path / "r.json"), PROFILES[1])


def test_the_crate_grows_linearly_with_the_jobs(tmp_path):
    """The paper's run has ~17,000 jobs: building the crate is one pass over them (a
    quadratic step would make 8x the jobs cost ~64x the time, not ~8x)."""
    results = tmp_path / "results"
    _write(results / "workflow" / "Snakefile", "rule all:\n    input: []\n")

    def inputs(n: int) -> tuple[list, list]:
        jobs = [jobrecords.Job("finetune", (f"results/finetune/a/s/t/1k5/run{i // 10}/omega{i % 10}.0/result.json",),
                          ("results/data/t.zarr", f"results/data/subsets/t/1k5/run{i // 10}.npz"),
                          (f"results/logs/finetune/{i}.log",), 1.0 * i, 1.0 * i + 5) for i in range(n)]
        return [Path(p.removeprefix("results/")) for job in jobs for p in job.outputs], jobs

    def seconds(files: list, jobs: list) -> float:
        # the cyclic collector's passes grow with every live object, the test's and the
        # other tests' alike: off while timing, so that the ratio is the code's own
        gc.collect()
        gc.disable()
        try:
            started = time.perf_counter()
            built = crate.build_crate(results, CONFIG, files, jobs, workflow_files=["Snakefile"],
                                      exclude_large=True, versions={"snakemake": "9.27.1"})
            built.metadata.generate()
            return time.perf_counter() - started
        finally:
            gc.enable()

    # the sizes take turns, so that both meet the same load (the suite runs beside it)
    sizes = {500: inputs(500), 4000: inputs(4000)}
    best = {n: float("inf") for n in sizes}
    for _ in range(3):
        for n, (files, jobs) in sizes.items():
            best[n] = min(best[n], seconds(files, jobs))
    small, large = best[500], best[4000]
    assert large < 24 * small, (small, large)


# --------------------------------------------------------------------------- the workflow's own run
@pytest.mark.slow
def test_snakemake_archive_writes_a_crate_that_validates(finished_run, cache, tmp_path):
    results = finished_run / "results"
    graph = _graph(results)
    for profile in PROFILES:
        assert_every_required_check_passes(validate(results, profile, cache, tmp_path / f"{profile}.json"), profile)
    # Every training job of the run is a CreateAction with its result.json, start and end.
    cells = sorted(p.relative_to(finished_run).as_posix() for kind in ("pretrain", "referent", "finetune", "stream_max")
                   for p in (results / kind).rglob("result.json"))
    assert cells
    for cell in cells:
        action = next(graph[i] for i in (f"#job/{cell}", f"#job/{cell.replace('result.json', 'model.keras')}")
                      if i in graph)
        assert cell.removeprefix("results/") in _ids(action["result"])
        assert action["startTime"] <= action["endTime"]
    rules = {graph[i]["name"] for i in _ids(graph["workflow/Snakefile"]["hasPart"])}
    assert {"synthesize", "convert", "subset", "pretrain", "select_pretrained", "referent", "finetune",
            "stream_max", "manifest", "results_table", "analysis", "summary"} <= rules
    assert (results / "workflow" / "Snakefile").read_text() == (ROOT / "Snakefile").read_text()


@pytest.mark.slow
def test_a_moved_run_validates_and_verify_names_changed_files(finished_run, bare_env, cache, tmp_path):
    run = tmp_path / "moved" / "run"  # a copy elsewhere: it damages the tree, which other modules share
    shutil.copytree(finished_run, run, symlinks=True)
    results = run / "results"
    for profile in PROFILES:
        assert_every_required_check_passes(validate(results, profile, cache, tmp_path / f"{profile}.json"), profile)
    assert snakemake(run, bare_env, "--cores", "1", "verify").returncode == 0
    (results / "workflow" / "Snakefile").write_text("# tampered\n")
    metadata = results / crate.METADATA_NAME
    metadata.write_text(metadata.read_text().replace("CompletedActionStatus", "FailedActionStatus", 1))
    (results / "tables" / "results.csv").unlink()
    done = snakemake(run, bare_env, "--cores", "1", "verify", check=False)
    assert done.returncode != 0
    log = (results / "logs" / "verify.log").read_text()
    assert "changed: workflow/Snakefile" in log
    assert f"changed: {crate.METADATA_NAME}" in log
    assert "missing: tables/results.csv" in log
    assert not (results / "tables" / "results.csv").exists()  # verify reported, it did not rebuild
