"""The zoo's model cards as model hubs read them: README.md with YAML front matter, parsed
back offline with huggingface_hub's own model card parser; its values are card.json's."""

from __future__ import annotations

import json
import os

import pytest

from tstransfer import __license__, zoo
from tstransfer.zoo.cards import card_readme, model_card

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach a hub
from huggingface_hub import ModelCard  # noqa: E402


def _card(task="classification", metric="f1_weighted", val=0.62, test=0.58) -> dict:
    """A card as export_model builds it, from a pretraining result and store attributes."""
    attrs = {"dataset": "emg", "title": "EMG (Pinch)", "domain": "medicine", "task": task, "n_outputs": 4,
             "class_names": ["Pinch1", "Pinch2", "Pinch3", "Pinch4"], "sampling_rate": 200, "units": "mV",
             "n_instances": 1188, "split_counts": [800, 200, 188], "split_method": "random",
             "split_fractions": [0.7, 0.15, 0.15], "seed": 7, "extraction": {"window": 80},
             "raw_sha256": {"Pinch.zip": "ab" * 32}, "length": 80, "channels": 3}
    result = {"task": task, "stream_max": False, "metric": metric, "val_metric": val, "test_metric": test,
              "best_epoch": 9, "last_epoch": 19, "n_train": 800, "n_val": 200, "n_test": 188, "seed": 11,
              "config": {"seed": 20221025, "training": {"batch_size": 32}, "switches": {"test_curves": False}},
              "versions": {"tensorflow": "2.21.0", "tstransfer": "0.1.0"}}
    selection = {"seed_index": 1, "candidates": [0, 1]}
    return json.loads(json.dumps(model_card("magnet", "emg", selection=selection, result=result, attrs=attrs,
                                            sha256="cd" * 32, raw_data="synthetic")))


def _results(data) -> dict[str, tuple]:
    return {r.dataset_split: (r.task_type, r.dataset_type, r.dataset_name, r.metric_type, r.metric_value)
            for r in data.eval_results}


def test_readme_front_matter_reads_back_as_the_cards_values(tmp_path):
    card = _card()
    path = tmp_path / "README.md"
    path.write_text(card_readme(card), encoding="utf-8")
    hub = ModelCard.load(path)  # a local file: read, not fetched
    data = hub.data
    assert data.library_name == "keras"
    assert data.license == card["license"].lower() == __license__.lower() == "mit"
    assert data.datasets == [card["training_data"]["dataset"]]
    assert data.metrics == [card["metrics"]["metric"]]
    assert data.model_name == card["name"] == "magnet-emg"
    assert _results(data) == {
        "validation": ("classification", "emg", "EMG (Pinch)", "f1_weighted", card["metrics"]["validation"]),
        "test": ("classification", "emg", "EMG (Pinch)", "f1_weighted", card["metrics"]["test"]),
    }
    # The body is card.md's Markdown, licence included.
    assert hub.text.strip() == zoo.card_markdown(card).strip()
    assert "## Licence" in hub.text and "MIT" in hub.text
    # The same text parsed from a string, as a hub does on upload.
    assert ModelCard(card_readme(card)).data.to_dict() == data.to_dict()


def test_a_non_finite_metric_leaves_its_result_out():
    """card.json writes a non-finite metric as null; the model-index then omits that split."""
    card = _card(task="regression", metric="mae", val=None, test=0.31)
    data = ModelCard(card_readme(card)).data
    assert _results(data) == {"test": ("regression", "emg", "EMG (Pinch)", "mae", 0.31)}


@pytest.mark.parametrize("name", ["convnetquake_ingv-lomax", "tcn-sp500"])
def test_front_matter_is_plain_yaml_with_the_hubs_keys(name):
    card = _card()
    card["name"] = name
    text = card_readme(card)
    assert text.startswith("---\n") and "\n---\n\n# " in text
    front = ModelCard(text).data.to_dict()
    assert {"library_name", "license", "tags", "datasets", "metrics", "model-index"} <= set(front)
    assert front["model-index"][0]["name"] == name
