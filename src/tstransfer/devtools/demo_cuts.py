"""Smaller cuts of config/demo.yaml and the synthetic EMG sizes that the demo-effect and
data tests run, shared with bench/demo_effect_seeds.py (which measures those tests'
margins at other seeds, so it must run exactly their settings)."""

from __future__ import annotations

import numpy as np
import yaml

from tstransfer.devtools.workflow_runs import ROOT

# Synthetic EMG of tests/test_datasets_other.py: its generator and extraction settings.
EMG_SYNTH = {"sessions": 2, "repetitions": 2}
EMG_PARAMS = {"channels": [0, 2, 5], "window": 80, "step": 10}


def _demo_config(seed: int | None) -> dict:
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    if seed is not None:
        config["seed"] = seed
    return config


def small_demo_config(seed: int | None = None) -> dict:
    """The seismology cut: smaller synthetic LOMAX, STEAD and SPEECH, 30 epochs."""
    config = _demo_config(seed)
    config["synthetic"].update(
        lomax={"n_instances": 400, "length": 96},
        stead={"n_instances": 500, "length": 96, "layout": "chunks", "n_chunks": 2},
        speech={"clips_per_word": 14, "n_samples": 240},
    )
    config["datasets"]["speech"]["extract"]["n_samples"] = 120
    config["training"].update(max_epochs=30)
    return config


def small_classification_config(seed: int | None = None) -> dict:
    """The demo's SPEECH and EMG sizes (the SPEECH words must be learnable for their
    filters to carry over), a smaller LOMAX."""
    config = _demo_config(seed)
    config["synthetic"].update(lomax={"n_instances": 400, "length": 96})
    return config


def nearest_centroid_accuracy(features, labels, split) -> float:
    """Test-split accuracy of the nearest class centroid of the training split (split 0)."""
    train, test = split == 0, split != 0
    classes = np.unique(labels[train])
    centroids = np.stack([features[train & (labels == c)].mean(axis=0) for c in classes])
    distance = ((features[test, None, :] - centroids[None]) ** 2).sum(axis=-1)
    return float((classes[distance.argmin(axis=1)] == labels[test]).mean())
