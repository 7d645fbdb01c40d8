"""tstransfer.cluster_budget: the paper experiment's GPU hours from measured figures, on
made-up figures files whose effect on the estimate is known."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tstransfer import cluster_budget as cb
from tstransfer.datasets import input_shape
from tstransfer.plan import count_jobs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def config():
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def made_up(config, *, train=1000.0, predict=3000.0, fixed=12.0, imported=8.0, length_offset=0) -> dict:
    """A bench/gpu.py --json file's content with the same rates for every cell."""
    names = dict.fromkeys([*config["sources"], *config["targets"], *config["stream_max_study"]["datasets"]])
    rows = [{"arch": arch, "dataset": name, "length": input_shape(name, config["datasets"][name].get("extract")).length
             + length_offset, "train_ips": train, "predict_ips": predict}
            for arch in config["architectures"] for name in names]
    return {"device": "made up", "throughput": rows,
            "fixed": {arch: {"fixed_s": fixed, "import_s": imported} for arch in config["architectures"]}}


def budget(config, data, **kwargs):
    kwargs.setdefault("epoch_fraction", 0.2)
    return cb.estimate(config, cb.Figures.read(data, config, "made-up.json"), **kwargs)


def test_the_jobs_are_the_plans(config):
    budgets = budget(config, made_up(config))
    planned = count_jobs(config)
    for kind, b in budgets.items():
        assert b.jobs == planned[kind]
    smaller = {**config, "omegas": config["omegas"][:4], "runs": 2}
    assert budget(smaller, made_up(config))["finetune"].jobs == count_jobs(smaller)["finetune"] \
        == planned["finetune"] * 4 * 2 // (len(config["omegas"]) * config["runs"])


def test_slower_rates_double_the_training_hours_and_leave_the_fixed_cost(config):
    fast = budget(config, made_up(config))
    slow = budget(config, made_up(config, train=500.0, predict=1500.0))
    for kind in ("pretrain", "stream_max", "referent", "finetune"):
        assert slow[kind].training_s == pytest.approx(2 * fast[kind].training_s)
        assert slow[kind].fixed_unpacked_s == fast[kind].fixed_unpacked_s
        assert slow[kind].fixed_packed_s == fast[kind].fixed_packed_s


def test_training_hours_grow_linearly_with_the_epochs(config):
    hours = [budget(config, made_up(config), epoch_fraction=f)["referent"].training_s for f in (0.2, 0.4, 0.6)]
    assert hours[0] < hours[1] < hours[2]
    assert hours[2] - hours[1] == pytest.approx(hours[1] - hours[0])
    assert hours[1] < 2 * hours[0]  # the final test pass does not grow with the epochs


def test_packing_divides_the_fine_tuning_fixed_cost_by_the_group_size(config):
    groups = len(config["omegas"])
    # nothing but the import in the fixed cost: a packed allocation pays it once for its cells
    b = budget(config, made_up(config, fixed=10.0, imported=10.0))
    assert b["finetune"].allocations_packed * groups == b["finetune"].jobs
    assert b["finetune"].fixed_packed_s == pytest.approx(b["finetune"].fixed_unpacked_s / groups)
    for kind in ("pretrain", "stream_max", "referent"):  # only fine-tuning is packed
        assert b[kind].fixed_packed_s == b[kind].fixed_unpacked_s
    # nothing but the per-job part: packing saves nothing
    b = budget(config, made_up(config, fixed=10.0, imported=0.0))
    assert b["finetune"].fixed_packed_s == pytest.approx(b["finetune"].fixed_unpacked_s)
    # a smaller group size, more allocations
    b5 = budget(config, made_up(config), group_size=5)
    assert b5["finetune"].allocations_packed == 2 * b["finetune"].allocations_packed


def test_wall_time_shrinks_with_gpus_down_to_the_longest_allocation(config):
    b = budget(config, made_up(config))
    total = sum(x.unpacked_s for x in b.values())
    assert cb.wall_seconds(b, 1, packed=False) == pytest.approx(total)
    walls = [cb.wall_seconds(b, n, packed=False) for n in (1, 4, 16, 10**9)]
    assert walls == sorted(walls, reverse=True)
    assert walls[-1] == pytest.approx(max(b[k].longest_unpacked_s for k in ("pretrain", "stream_max", "referent"))
                                      + b["finetune"].longest_unpacked_s)
    assert cb.wall_seconds(b, 4, packed=True) <= cb.wall_seconds(b, 4, packed=False)


def test_interpolated_rates_pass_through_the_measured_points():
    rates = {80: 6000.0, 1000: 1000.0, 8000: 100.0}
    assert [cb.interpolated_rate(rates, n) for n in rates] == pytest.approx(list(rates.values()))
    assert 1000 < cb.interpolated_rate(rates, 500) < 6000
    assert cb.interpolated_rate(rates, 50) > 6000 and cb.interpolated_rate(rates, 9000) < 100


def _command(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", "tstransfer.cluster_budget", "--config",
                           str(ROOT / "config" / "config.yaml"), *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=cwd)


def test_the_command_prints_a_row_per_kind_and_wall_times(config, tmp_path):
    figures = tmp_path / "figures.json"
    figures.write_text(json.dumps(made_up(config)))
    done = _command("--figures", figures, "--gpus", 8, 32, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    kinds = {line.split()[0]: line.split()[1:] for line in lines if line.split()}
    for kind in ("pretrain", "stream_max", "referent", "finetune", "select_pretrained", "total"):
        assert kind in kinds
    assert int(kinds["finetune"][0]) == count_jobs(config)["finetune"]
    walls = {int(line.split()[0]): [float(v) for v in line.split()[1:]] for line in lines
             if line.split() and line.split()[0].isdigit()}
    assert set(walls) == {8, 32} and walls[32][0] < walls[8][0]
    assert "made up" in lines[0]
    default = _command(cwd=tmp_path)  # the documented CPU figures
    assert default.returncode == 0, default.stderr
    assert "CPU" in default.stdout.splitlines()[0]


def test_figures_of_another_input_length_are_refused_in_one_line(config, tmp_path):
    figures = tmp_path / "quick.json"
    figures.write_text(json.dumps(made_up(config, length_offset=-7)))
    done = _command("--figures", figures, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and str(figures) in done.stderr and done.stderr.count("\n") == 1
    data = made_up(config)
    del data["fixed"][config["architectures"][0]]
    figures.write_text(json.dumps(data))
    done = _command("--figures", figures, cwd=tmp_path)
    assert done.returncode == 2 and "fixed." in done.stderr
    figures.write_text("{not json")
    assert _command("--figures", figures, cwd=tmp_path).returncode == 2


@pytest.mark.parametrize("name", ["emg", "sp500"])
def test_the_input_shape_known_before_conversion_is_the_converted_stores(config, name, tmp_path):
    """datasets.input_shape (what the budget and bench/gpu.py size their inputs by) agrees
    with a store converted under the same extract settings."""
    import numpy as np

    from tstransfer import datasets, store

    demo = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    extract = config["datasets"][name]["extract"]
    datasets.write_synthetic(name, tmp_path / "raw", demo["synthetic"][name], np.random.default_rng(0))
    store.convert(datasets.get(name), tmp_path / "raw", tmp_path / "s.zarr", extract, seed=1)
    attrs = store.store_attrs(tmp_path / "s.zarr")
    shape = input_shape(name, extract)
    assert (shape.length, shape.channels, shape.task) == (attrs["length"], attrs["channels"], attrs["task"])
    assert input_shape(name, {**extract, "window": 20}).length == 20  # the setting, not a constant


def test_figures_of_several_runs_merge_into_one_estimate(config, tmp_path):
    whole = made_up(config)
    archs = config["architectures"]
    parts = []
    for i, chosen in enumerate((archs[:1], archs[1:])):
        part = {"device": "made up", "throughput": [r for r in whole["throughput"] if r["arch"] in chosen],
                "fixed": {a: v for a, v in whole["fixed"].items() if a in chosen}}
        parts.append(tmp_path / f"part{i}.json")
        parts[-1].write_text(json.dumps(part))
    (tmp_path / "whole.json").write_text(json.dumps(whole))
    merged = _command("--figures", *parts, cwd=tmp_path)
    assert merged.returncode == 0, merged.stderr
    assert merged.stdout == _command("--figures", tmp_path / "whole.json", cwd=tmp_path).stdout
    alone = _command("--figures", parts[0], cwd=tmp_path)  # the other architectures unmeasured
    assert alone.returncode == 2 and archs[1] in alone.stderr


def test_an_architecture_without_cpu_rates_needs_measured_figures(config):
    other = {**config, "architectures": ["magnet", "fcn"]}
    with pytest.raises(cb.BudgetError, match="no CPU rates for 'fcn'.*bench/gpu.py"):
        cb.default_figures(other)
    assert {row["arch"] for row in cb.default_figures(config)["throughput"]} == set(config["architectures"])
