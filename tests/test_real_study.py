"""config/real.yaml, the study on the real problems of the aeon wheel (make study-real):
it passes the schema, names every problem the Makefile extracts as a source and a target,
and turns on the small-training-set settings that the paper's configs leave off."""

from __future__ import annotations

import re

import yaml

from workflow_runs import ROOT


def _makefile_problems() -> list[str]:
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    return re.search(r"^UCR_PROBLEMS := (.+)$", text, re.M).group(1).split()


def test_real_study_config_uses_every_extracted_problem_and_passes_the_schema():
    from snakemake.utils import validate

    config = yaml.safe_load((ROOT / "config" / "real.yaml").read_text())
    validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    folders = {name: entry["path"].split("/")[-1] for name, entry in config["datasets"].items()}
    assert all(entry["path"].startswith("resources/ucr/") for entry in config["datasets"].values())
    assert sorted(folders.values()) == sorted(_makefile_problems())
    assert len(folders) == 10
    assert config["sources"] == config["targets"] == list(folders)  # 90 ordered pairs
    assert len(config["architectures"]) >= 2 and config["runs"] >= 3 and len(config["omegas"]) >= 3


def test_small_set_settings_are_on_for_the_real_study_and_off_for_the_paper():
    real = yaml.safe_load((ROOT / "config" / "real.yaml").read_text())["training"]
    assert real["min_epoch_steps"] > 0 and real["monitor"] == "train_loss"
    for name in ("config.yaml", "demo.yaml"):
        training = yaml.safe_load((ROOT / "config" / name).read_text())["training"]
        assert "min_epoch_steps" not in training and "monitor" not in training, name
