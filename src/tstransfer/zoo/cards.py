"""A zoo model's card (JSON, Markdown, and README.md for model hubs), the zoo folder's file
names and its error.

``README.md`` is the card in the form model hubs read (the Hugging Face model card
format): YAML front matter (library, licence, datasets, metrics, and a ``model-index``
with the validation and test results) above the Markdown of ``card.md``. Its values are
the card's (tests/test_zoo_cards.py reads it back with ``huggingface_hub``'s parser).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml

from .. import __license__
from ..registry import ARCHITECTURE_LABELS

MODEL_FILE = "model.keras"
CARD_JSON = "card.json"
CARD_MD = "card.md"
CARD_README = "README.md"  # the card with YAML front matter, as model hubs read it
INDEX = "index.json"
SUMS = "SHA256SUMS"
FORMAT = 1

PREPROCESSING = {
    "scaling": "each instance min-max scaled to [0, 1] with its own min and max over all channels "
               "(a constant instance gives zeros)",
    "centring": "the training set's mean scaled waveform (the mask) is subtracted from every "
                "instance; a fine-tuning run computes the mask of its own training set",
    "stream_max": "max(|min|, |max|) of the raw instance, a second model input named 'stream_max' "
                  "when the model takes it",
}


class ZooError(ValueError):
    """A zoo folder, card or model that cannot be used as it is."""


def model_name(arch: str, source: str) -> str:
    """A zoo model's name, which is also its folder in the zoo."""
    return f"{arch}-{source}"


def _training_data(source: str, attrs: Mapping[str, Any], result: Mapping[str, Any],
                   raw_data: str) -> dict[str, Any]:
    """The card's ``training_data``: the source store's attributes."""
    return {
        "dataset": attrs.get("dataset", source), "title": attrs.get("title"),
        "domain": attrs.get("domain"), "raw_data": raw_data,
        "task": attrs.get("task"), "n_outputs": attrs.get("n_outputs"),
        "class_names": attrs.get("class_names"), "sampling_rate": attrs.get("sampling_rate"),
        "units": attrs.get("units"), "n_instances": attrs.get("n_instances"),
        "split_counts": attrs.get("split_counts"), "split_method": attrs.get("split_method"),
        "split_fractions": attrs.get("split_fractions"), "split_seed": attrs.get("seed"),
        "extraction": attrs.get("extraction"), "raw_sha256": attrs.get("raw_sha256"),
        "trained_on": f"the full training split ({result.get('n_train')} instances)",
    }


def model_card(arch: str, source: str, *, selection: Mapping[str, Any], result: Mapping[str, Any],
               attrs: Mapping[str, Any], sha256: str, raw_data: str) -> dict[str, Any]:
    """The card of one zoo model from its selection, its pretraining result.json and its
    source store's attributes."""
    spec = result.get("config") or {}
    return {
        "format": FORMAT,
        "name": model_name(arch, source),
        "license": __license__,
        "arch": arch,
        "arch_label": ARCHITECTURE_LABELS.get(arch, arch),
        "source": source,
        "training_data": _training_data(source, attrs, result, raw_data),
        "preprocessing": PREPROCESSING,
        "input": {"length": int(attrs["length"]), "channels": int(attrs["channels"]),
                  "stream_max": bool(result["stream_max"]), "scaling": "min-max per instance, mask subtracted"},
        "output": {"task": result["task"], "n_outputs": attrs.get("n_outputs"),
                   "class_names": attrs.get("class_names")},
        "metrics": {"metric": result["metric"], "validation": result["val_metric"],
                    "test": result["test_metric"], "best_epoch": result["best_epoch"],
                    "epochs": result["last_epoch"], "n_val": result.get("n_val"),
                    "n_test": result.get("n_test")},
        "seed": {"seed": result["seed"], "seed_index": selection["seed_index"],
                 "config_seed": spec.get("seed"),
                 # the criterion select_pretrained records (validation unless select_seed_on_test)
                 "selection": f"best {selection.get('criterion', 'validation')} {result['metric']} of "
                              f"{len(selection['candidates'])} pretraining seeds"},
        "training": spec.get("training"),
        "switches": spec.get("switches"),
        "versions": result.get("versions"),
        "weights": {"file": MODEL_FILE, "sha256": sha256},
    }


def card_markdown(card: Mapping[str, Any]) -> str:
    """The card as Markdown."""
    data, inp, metrics, seed = card["training_data"], card["input"], card["metrics"], card["seed"]
    versions = ", ".join(f"{k} {v}" for k, v in (card.get("versions") or {}).items() if v)
    lines = [
        f"# {card['arch_label']} pretrained on {data.get('title') or card['source']}",
        "",
        f"Zoo model `{card['name']}`: architecture `{card['arch']}`, source dataset `{card['source']}`.",
        "",
        "## Training data",
        f"- dataset `{data['dataset']}` ({data.get('domain')}), raw data: {data['raw_data']}",
        f"- task: {data['task']}, {data['n_outputs']} output(s)"
        + (f", classes {data['class_names']}" if data.get("class_names") else ""),
        f"- {data['n_instances']} instances, split {data['split_counts']} ({data['split_method']}, "
        f"seed {data['split_seed']}); trained on {data['trained_on']}",
        f"- sampling rate {data['sampling_rate']}, units: {data['units']}; extraction {data['extraction']}",
        "",
        "## Preprocessing and input",
        *(f"- {key}: {value}" for key, value in card["preprocessing"].items()),
        f"- input: length {inp['length']}, channels {inp['channels']}, "
        f"stream_max input: {'yes' if inp['stream_max'] else 'no'}",
        "",
        "## Metrics",
        f"- {metrics['metric']}: validation {metrics['validation']}, test {metrics['test']} "
        f"(best epoch {metrics['best_epoch']} of {metrics['epochs']})",
        "",
        "## Reproducibility",
        f"- seed {seed['seed']} (seed index {seed['seed_index']}, config seed {seed['config_seed']}); "
        f"{seed['selection']}",
        f"- training settings: {json.dumps(card.get('training'), sort_keys=True)}",
        f"- protocol switches: {json.dumps(card.get('switches'), sort_keys=True)}",
        f"- versions: {versions}",
        f"- weights: `{card['weights']['file']}`, sha256 `{card['weights']['sha256']}`",
        "",
        "## Licence",
        f"- {card.get('license') or __license__} (the licence of tstransfer, which trained it); the training "
        f"data keep their own terms ({data['raw_data']} data of `{data['dataset']}`)",
        "",
        "Load it with `tstransfer.zoo.load(arch, source, zoo_dir)` (checks the sha256).",
        "",
    ]
    return "\n".join(lines)


# The split each of the card's metrics was measured on, as the model-index names it.
_SPLITS = (("validation", "validation"), ("test", "test"))


def card_front_matter(card: Mapping[str, Any]) -> dict[str, Any]:
    """The model hub metadata of a card: README.md's YAML front matter."""
    data, metrics = card["training_data"], card["metrics"]
    task = card["output"]["task"]
    results = [
        {"task": {"type": task, "name": f"{task} on {data['dataset']}"},
         "dataset": {"type": data["dataset"], "name": data.get("title") or data["dataset"], "split": split},
         "metrics": [{"type": metrics["metric"], "value": metrics[key], "name": f"{split} {metrics['metric']}"}]}
        for key, split in _SPLITS
        if metrics.get(key) is not None  # a non-finite metric is null in card.json: no result
    ]
    return {
        "library_name": "keras",
        "license": str(card.get("license") or __license__).lower(),  # the hubs' licence ids
        "tags": ["time-series", "transfer-learning", task, card["arch"], "tstransfer"],
        "datasets": [data["dataset"]],
        "metrics": [metrics["metric"]],
        "model-index": [{"name": card["name"], "results": results}],
    }


def card_readme(card: Mapping[str, Any]) -> str:
    """README.md: the card's front matter (:func:`card_front_matter`) above its Markdown."""
    front = yaml.safe_dump(card_front_matter(card), sort_keys=False, allow_unicode=True)
    return f"---\n{front}---\n\n{card_markdown(card)}"
