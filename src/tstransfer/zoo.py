"""The pretrained-model zoo: export, load, rank sources (LogME) and transfer to a new dataset.

A zoo folder (``snakemake zoo`` writes ``results/zoo``) is self-contained::

    index.json                 every model's card, and the study's fine-tuning protocol
    SHA256SUMS                 sha256 of every other file (``sha256sum -c SHA256SUMS``)
    {arch}-{source}/model.keras
    {arch}-{source}/card.json  the model card (keys: see :func:`model_card`)
    {arch}-{source}/card.md    the same card for people

so it can be archived or published alone. :func:`load` returns a model ready to
fine-tune after checking its weights' sha256. :func:`rank` scores every compatible model
on a target by LogME (:mod:`tstransfer.logme`) on frozen penultimate-layer features;
:func:`transfer` fine-tunes every compatible model with the study's protocol (referents,
the multiplier grid, runs) through the pipeline's own jobs (:mod:`tstransfer.jobs`) and
computes the gains with the paper's statistics (:mod:`tstransfer.analysis.stats`).

Compatible (:func:`compatibility`): a zoo model can be fine-tuned on a target when its
architecture is known to this package, the target's task is regression or
classification (the head is always built afresh for the target), the input channels can
be adapted (:func:`tstransfer.transfer.adapt_channels` accepts source -> target
channels), and the target is not the model's own source dataset (which the study never
transfers, and whose test set the model was selected on). Length needs no rule: every
transferred layer (convolutions, the TCN) works at any length.

The target is a converted store (the pipeline's ``results/data/<name>.zarr``), a dataset
entry in a YAML file (as under the config's ``datasets:``), or a data file or folder of a
format its suffix tells (a UCR/UEA ``.ts`` archive, ``.npz``, ...): :func:`target_store`
converts the last two with the study's preprocessing first.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .fsutil import atomic_path, sha256_file, write_json, write_text
from .layout import omega_label

MODEL_FILE = "model.keras"
CARD_JSON = "card.json"
CARD_MD = "card.md"
INDEX = "index.json"
SUMS = "SHA256SUMS"
FORMAT = 1
FEATURE_LIMIT = 5000  # most target instances LogME is computed on (a seeded sample beyond)

log = logging.getLogger(__name__)

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
    return f"{arch}-{source}"


# --------------------------------------------------------------------------- export
def model_card(arch: str, source: str, *, selection: Mapping[str, Any], result: Mapping[str, Any],
               attrs: Mapping[str, Any], sha256: str, raw_data: str) -> dict[str, Any]:
    """The card of one zoo model from its selection, its pretraining result.json and its
    source store's attributes."""
    from .registry import ARCHITECTURE_LABELS

    spec = result.get("config") or {}
    return {
        "format": FORMAT,
        "name": model_name(arch, source),
        "arch": arch,
        "arch_label": ARCHITECTURE_LABELS.get(arch, arch),
        "source": source,
        "training_data": {
            "dataset": attrs.get("dataset", source), "title": attrs.get("title"),
            "domain": attrs.get("domain"), "raw_data": raw_data,
            "task": attrs.get("task"), "n_outputs": attrs.get("n_outputs"),
            "class_names": attrs.get("class_names"), "sampling_rate": attrs.get("sampling_rate"),
            "units": attrs.get("units"), "n_instances": attrs.get("n_instances"),
            "split_counts": attrs.get("split_counts"), "split_method": attrs.get("split_method"),
            "split_fractions": attrs.get("split_fractions"), "split_seed": attrs.get("seed"),
            "extraction": attrs.get("extraction"), "raw_sha256": attrs.get("raw_sha256"),
            "trained_on": f"the full training split ({result.get('n_train')} instances)",
        },
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
                 "selection": f"best validation {result['metric']} of {len(selection['candidates'])} "
                              "pretraining seeds"},
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
        "Load it with `tstransfer.zoo.load(arch, source, zoo_dir)` (checks the sha256).",
        "",
    ]
    return "\n".join(lines)


def export_model(arch: str, source: str, *, selection_json: str | Path, model: str | Path,
                 store: str | Path, out_dir: str | Path, raw_data: str = "unknown") -> dict[str, Any]:
    """Copy one selected pretrained model into ``out_dir`` with its cards; return the card."""
    from .store import store_attrs

    selection = json.loads(Path(selection_json).read_text())
    # The selected seed's result.json, beside the selection in the pipeline's layout
    # (results/pretrain/{arch}/{source}/seed{k}); the path the selection records is
    # relative to the workflow's folder.
    result_path = Path(selection_json).parent.parent / f"seed{selection['seed_index']}" / "result.json"
    result = json.loads(result_path.read_text())
    if (result.get("arch"), result.get("target")) != (arch, source):
        raise ZooError(f"{result_path}: a pretraining result of {result.get('arch')} on "
                       f"{result.get('target')}, expected {arch} on {source}")
    card = model_card(arch, source, selection=selection, result=result, attrs=store_attrs(store),
                      sha256=sha256_file(model), raw_data=raw_data)
    out_dir = Path(out_dir)
    with atomic_path(out_dir / MODEL_FILE) as tmp:
        shutil.copyfile(model, tmp)
    if sha256_file(out_dir / MODEL_FILE) != card["weights"]["sha256"]:
        raise ZooError(f"{out_dir / MODEL_FILE}: copy differs from {model}")
    write_json(out_dir / CARD_JSON, card)
    write_text(out_dir / CARD_MD, card_markdown(card))
    return card


def write_index(zoo_dir: str | Path, card_paths: Iterable[str | Path], protocol: Mapping[str, Any]) -> dict:
    """``index.json`` (every card, the study's protocol) and ``SHA256SUMS`` over the zoo."""
    zoo_dir = Path(zoo_dir)
    cards = [json.loads(Path(p).read_text()) for p in card_paths]
    index = {"format": FORMAT, "protocol": dict(protocol),
             "models": sorted(cards, key=lambda c: c["name"])}
    write_json(zoo_dir / INDEX, index)
    files = [zoo_dir / INDEX]
    for card in index["models"]:
        folder = zoo_dir / card["name"]
        files += [folder / MODEL_FILE, folder / CARD_JSON, folder / CARD_MD]
    lines = [f"{sha256_file(f)}  {f.relative_to(zoo_dir).as_posix()}\n" for f in files]
    write_text(zoo_dir / SUMS, "".join(lines))
    return index


# --------------------------------------------------------------------------- reading
def read_index(zoo_dir: str | Path) -> dict[str, Any]:
    path = Path(zoo_dir) / INDEX
    if not path.is_file():
        raise ZooError(f"{path}: no zoo index (export a zoo with `snakemake zoo`)")
    index = json.loads(path.read_text())
    if index.get("format") != FORMAT:
        raise ZooError(f"{path}: zoo format {index.get('format')!r}, this package reads {FORMAT}")
    return index


def verify(zoo_dir: str | Path) -> None:
    """Check every file listed in ``SHA256SUMS``; a ZooError names each one that differs."""
    zoo_dir = Path(zoo_dir)
    sums = zoo_dir / SUMS
    if not sums.is_file():
        raise ZooError(f"{sums}: missing; the zoo cannot be checked")
    from .archive import verify as verify_sums  # the results tree's manifest check

    status = verify_sums(zoo_dir, sums)
    bad = [f"{zoo_dir / name}: missing" for name in status["missing"]]
    bad += [f"{zoo_dir / name}: sha256 differs from {sums}" for name in status["changed"]]
    if bad:
        raise ZooError("zoo files fail their checksums: " + "; ".join(bad))


def card(arch: str, source: str, zoo_dir: str | Path) -> dict[str, Any]:
    path = Path(zoo_dir) / model_name(arch, source) / CARD_JSON
    if not path.is_file():
        raise ZooError(f"{path}: no such zoo model ({arch} pretrained on {source})")
    return json.loads(path.read_text())


def model_path(arch: str, source: str, zoo_dir: str | Path) -> Path:
    """The model file of a zoo model, after checking its sha256 against its card."""
    info = card(arch, source, zoo_dir)
    path = Path(zoo_dir) / info["name"] / info["weights"]["file"]
    if not path.is_file():
        raise ZooError(f"{path}: missing (named by {path.parent / CARD_JSON})")
    actual, expected = sha256_file(path), info["weights"]["sha256"]
    if actual != expected:
        raise ZooError(f"{path}: sha256 {actual} does not match {expected} recorded in "
                       f"{path.parent / CARD_JSON}; the file is damaged or was replaced")
    return path


def load(arch: str, source: str, zoo_dir: str | Path):
    """The zoo model ``arch`` pretrained on ``source``, uncompiled, ready to fine-tune.

    Pass it to :func:`tstransfer.transfer.transfer_weights` (or its file,
    :func:`model_path`, to :func:`tstransfer.jobs.finetune`).
    """
    from .jobs import load_model

    return load_model(model_path(arch, source, zoo_dir))


# --------------------------------------------------------------------------- compatibility
def compatibility(model_card_: Mapping[str, Any], attrs: Mapping[str, Any]) -> str | None:
    """Why a zoo model cannot be fine-tuned on a target with store ``attrs``; None if it can."""
    from .registry import ARCHITECTURES
    from .transfer import adapt_channels

    if model_card_["arch"] not in ARCHITECTURES:
        return f"architecture {model_card_['arch']!r} unknown to this package"
    if attrs.get("task") not in ("regression", "classification"):
        return f"target task {attrs.get('task')!r} is not regression or classification"
    if model_card_["source"] == attrs.get("dataset"):
        return "the target is the model's own source dataset"
    try:
        adapt_channels(int(model_card_["input"]["channels"]), int(attrs["channels"]))
    except ValueError as error:
        return str(error)
    return None


def compatible_models(index: Mapping[str, Any], attrs: Mapping[str, Any]) -> tuple[list[dict], dict[str, str]]:
    """``(cards that fit the target, {name: why not} for the others)``."""
    fit, skipped = [], {}
    for entry in index["models"]:
        reason = compatibility(entry, attrs)
        if reason is None:
            fit.append(entry)
        else:
            skipped[entry["name"]] = reason
    return fit, skipped


# File suffixes (and UCR/UEA folders) whose format ``--data`` can tell without an entry.
_FORMAT_BY_SUFFIX = {".ts": "ts", ".npz": "numpy", ".npy": "numpy", ".h5": "hdf5", ".hdf5": "hdf5",
                     ".csv": "csv", ".nc": "xarray", ".zarr": "xarray"}


def data_entry(data: str | Path) -> tuple[str, dict[str, Any]]:
    """``(name, dataset entry)`` for a ``--data`` that is not a converted store.

    ``data`` is either a YAML file holding one dataset entry (``{name: {format: ...}}``,
    the config's ``datasets.<name>`` form, or the entry itself, named after the file),
    or a data file or folder whose format its suffix tells (``.ts``, ``.npz``, ``.h5``,
    ``.csv``, ``.nc``; a UCR/UEA folder with ``<Problem>_TRAIN.ts``), read with that
    format's defaults (:mod:`tstransfer.datasets.readers`). An entry without ``domain``
    gets ``user``: an "other domain" for the statistics.
    """
    import yaml

    path = Path(data)
    if not path.exists():
        raise ZooError(f"--data {path}: no such file or folder")
    if path.suffix in (".yaml", ".yml"):
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(loaded, Mapping) and "format" in loaded:
            name, entry = path.stem, dict(loaded)
        elif isinstance(loaded, Mapping) and len(loaded) == 1 and isinstance(next(iter(loaded.values())), Mapping):
            name, entry = next(iter(loaded.items()))
            entry = dict(entry)
        else:
            raise ZooError(f"{path}: expected one dataset entry, {{name: {{format: ..., path: ...}}}} "
                           "as under the config's datasets:")
        if "path" in entry and not Path(entry["path"]).is_absolute():
            entry["path"] = str((path.parent / entry["path"]).resolve())
    else:
        fmt = _FORMAT_BY_SUFFIX.get(path.suffix.lower())
        if fmt is None and path.is_dir() and any(path.glob("*_TRAIN.ts")):
            fmt = "ts"
        if fmt is None:
            raise ZooError(f"--data {path}: not a converted store (no zarr.json), a dataset entry "
                           f"(.yaml) or a file of a known format ({', '.join(sorted(_FORMAT_BY_SUFFIX))})")
        name = path.stem if path.is_file() else path.name
        if fmt == "ts" and path.is_file() and name.upper().endswith(("_TRAIN", "_TEST")):
            path, name = path.parent, name.rsplit("_", 1)[0]  # the archive's train and test files
        entry = {"format": fmt, "path": str(path.resolve())}
    entry.setdefault("domain", "user")
    name = "".join(c if c.isalnum() else "_" for c in str(name).lower()).strip("_") or "data"
    if name[0].isdigit():
        name = f"d_{name}"
    return name, entry


def target_store(data: str | Path, work_dir: str | Path | None = None, *, seed: int = 0) -> Path:
    """The converted store of ``--data``.

    A converted store (``results/data/<name>.zarr``) is used as it is. Anything else
    (a dataset entry, or a data file or folder, :func:`data_entry`) is registered as a
    dataset given by ``format:`` and converted with the study's preprocessing into
    ``<work_dir>/data/<name>.zarr`` (once: a store already there is reused), seeded
    with ``seed`` as the pipeline seeds its own conversions.
    """
    path = Path(data)
    if (path / "zarr.json").is_file():
        return path
    from . import datasets, store

    name, entry = data_entry(path)
    if name in datasets.BUILTIN:
        name = f"{name}_user"
    if work_dir is None:
        raise ZooError(f"--data {path}: converting a dataset needs a folder for its store (--out)")
    out = Path(work_dir) / "data" / f"{name}.zarr"
    module = datasets.register(name, entry)
    if not (out / "zarr.json").is_file():
        log.info("converting %s (%s) into %s", path, entry["format"], out)
        store.convert(module, Path(entry["path"]), out, {}, seed=seed, log=log)
    return out


# --------------------------------------------------------------------------- LogME ranking
def adapt_input(waveform: np.ndarray, length: int, channels: int) -> np.ndarray:
    """Target waveforms (n, time, k) as input of a model built for (length, channels).

    Channels as fine-tuning adapts them, so that the frozen source model sees what the
    fine-tuned model's first layer computes at the start: equal counts stay; one
    channel is repeated (the study's n -> 1 rule repeats the data); to a one-channel
    model the channels are summed (a source kernel repeated over k input channels, the
    1 -> k rule, applied to k channels equals the kernel applied to their sum);
    otherwise their mean is given to each model channel (a kernel averaged over the
    model's channels, repeated and scaled by m/k). Length: linear interpolation in time
    to the model's length (only for the features: fine-tuning works at the target's).
    """
    x = np.asarray(waveform, dtype=np.float32)
    k = x.shape[-1]
    if k != channels:
        if k == 1:
            x = np.repeat(x, channels, axis=-1)
        elif channels == 1:
            x = x.sum(axis=-1, keepdims=True)
        else:
            x = np.repeat(x.mean(axis=-1, keepdims=True), channels, axis=-1)
    if x.shape[1] != length:
        old = np.linspace(0.0, 1.0, x.shape[1])
        new = np.linspace(0.0, 1.0, length)
        x = np.stack([np.stack([np.interp(new, old, series[:, c]) for c in range(x.shape[-1])], axis=-1)
                      for series in x]).astype(np.float32)
    return x


def penultimate_features(model, waveform: np.ndarray, stream_max: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The input of the model's head (its penultimate layer's output) for target data."""
    import keras

    from .models.common import HEAD_LAYER, STREAM_MAX_INPUT, WAVEFORM_INPUT

    extractor = keras.Model(model.inputs, model.get_layer(HEAD_LAYER).input)
    shape = model.get_layer(WAVEFORM_INPUT).output.shape
    inputs = {WAVEFORM_INPUT: adapt_input(waveform, int(shape[1]), int(shape[2]))}
    if STREAM_MAX_INPUT in [layer.name for layer in model.layers]:
        inputs[STREAM_MAX_INPUT] = np.asarray(stream_max, dtype=np.float32).reshape(-1, 1)
    features = extractor.predict(inputs, batch_size=batch_size, verbose=0)
    return np.asarray(features, dtype=np.float64).reshape(len(waveform), -1)


def target_training_data(store: str | Path, subset: str | Path | None = None, *, seed: int = 0,
                         limit: int = FEATURE_LIMIT) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(waveform - mask, stream_max, labels)`` of the target's training set (a subset
    file of the pipeline, or the store's training split), at most ``limit`` instances
    (a seeded sample)."""
    import zarr

    from .datasets.base import SPLIT_CODES
    from .seeding import rng_for
    from .store import load_subset, mean_waveform

    root = zarr.open_group(str(store), mode="r")
    if subset is not None:
        indices, mask, _ = load_subset(subset)
    else:
        indices = np.flatnonzero(np.asarray(root["split"][:]) == SPLIT_CODES["train"])
        mask = None
    if len(indices) > limit:
        # Seeded by the dataset, not the store's path: the same sample wherever the store is.
        dataset = root.attrs.get("dataset", "")
        indices = np.sort(rng_for(seed, "logme-sample", dataset).choice(indices, limit, replace=False))
    if mask is None:
        # The sample's mean, not the whole training split's as fine-tuning subtracts: on
        # STEAD that would read the whole store, and the mean of thousands of instances
        # is the split's mean to well within the traces' noise.
        mask = mean_waveform(root["waveform"], indices)
    waveform = np.asarray(root["waveform"].get_orthogonal_selection((indices, slice(None), slice(None))))
    return (waveform - mask, np.asarray(root["stream_max"][:])[indices], np.asarray(root["label"][:])[indices])


def rank(zoo_dir: str | Path, store: str | Path, *, subset: str | Path | None = None,
         seed: int = 0, models: Sequence[Mapping[str, Any]] | None = None):
    """LogME of every compatible zoo model on the target's training set, best first.

    Returns a DataFrame: name, arch, source, logme, rank (1 = best), n_features.
    """
    import keras
    import pandas as pd

    from .logme import logme
    from .store import store_attrs

    attrs = store_attrs(store)
    if models is None:
        models, skipped = compatible_models(read_index(zoo_dir), attrs)
        for name, reason in skipped.items():
            log.info("rank: %s skipped: %s", name, reason)
    waveform, stream_max, labels = target_training_data(store, subset, seed=seed)
    rows = []
    for entry in models:
        model = load(entry["arch"], entry["source"], zoo_dir)
        features = penultimate_features(model, waveform, stream_max)
        score = logme(features, labels, attrs["task"], int(attrs["n_outputs"]) if attrs["task"] == "classification" else None)
        rows.append({"name": entry["name"], "arch": entry["arch"], "source": entry["source"],
                     "logme": score, "n_features": features.shape[1]})
        del model
        keras.backend.clear_session()
    table = pd.DataFrame(rows, columns=["name", "arch", "source", "logme", "n_features"])
    table = table.sort_values("logme", ascending=False, ignore_index=True)
    table.insert(4, "rank", np.arange(1, len(table) + 1))
    return table


# --------------------------------------------------------------------------- transfer
def _job_spec(protocol: Mapping[str, Any], *, kind: str, arch: str, target: str, attrs: Mapping[str, Any],
              seed: int, stream_max: bool, max_epochs: int | None) -> dict[str, Any]:
    from .protocol import shaping, spec_with

    training = dict(protocol["training"])
    if max_epochs is not None:
        training["max_epochs"] = int(max_epochs)
    config = {"seed": int(seed), "training": training, "datasets": {target: {"stream_max": bool(stream_max)}}}
    switches = shaping(protocol["switches"], kind=kind, arch=arch, task=attrs["task"],
                       channels=int(attrs["channels"]))
    return spec_with(config, target, switches)


def _subset_drawn(path: Path, *, size: int, seed: int) -> bool:
    """Whether ``path`` holds the subset this call would draw (same size and seed; the
    folder already names the target and variant)."""
    if not path.is_file():
        return False
    from .store import load_subset

    meta = load_subset(path)[2]
    # The size asked for: make_subset records a size above the training split as capped.
    return meta.get("requested_size", meta.get("size")) == size and meta.get("seed") == seed


def _done(out_dir: Path, spec: Mapping[str, Any]) -> bool:
    """A job whose result.json exists with the same spec is not run again."""
    result = out_dir / "result.json"
    return result.is_file() and json.loads(result.read_text()).get("config") == json.loads(json.dumps(spec))


def variant_name(size: int, n_train: int) -> str:
    """The subset variant's name for ``size`` of a target's ``n_train`` training
    instances: its seed (make_subset) and its folder under ``transfer``'s output, so
    that ``rank --size`` draws what ``transfer --size`` fine-tunes on."""
    return "all" if int(size) == int(n_train) else f"n{int(size)}"


def transfer(zoo_dir: str | Path, data: str | Path, out_dir: str | Path, *, runs: int,
             omegas: Sequence[float], size: int | None = None, seed: int | None = None,
             stream_max: bool = True, max_epochs: int | None = None, archs: Sequence[str] | None = None,
             with_ranking: bool = True) -> dict[str, Any]:
    """Fine-tune every compatible zoo model on ``data`` with the study's protocol.

    Per run: a training set (``size`` instances drawn as the pipeline draws its 1k5/9k
    subsets, or the whole training split), one referent per architecture trained from
    scratch on it, and every compatible model fine-tuned with every multiplier in
    ``omegas``; the grid search, the pairing with referents and the statistics are the
    paper's (:func:`tstransfer.analysis.stats.paired_runs`,
    :func:`~tstransfer.analysis.stats.per_architecture_tables` per zoo model,
    :func:`~tstransfer.analysis.stats.domain_tables` per source over architectures,
    Benjamini-Krieger-Yekutieli corrected). Settings (training, protocol switches, seed)
    are the zoo's (its ``index.json``), ``max_epochs`` aside. Jobs whose result.json
    exists with the same settings are not run again. Writes into ``out_dir``: jobs,
    ``results.csv``, ``pairs.csv``, ``gains.csv`` (per model), ``gains_by_source.csv``,
    ``ranking.csv`` and ``gains.md``; returns the tables.
    """
    import keras

    from . import jobs
    from .analysis import results as results_table
    from .analysis import stats
    from .protocol import selection_curve
    from .store import make_subset, store_attrs

    index = read_index(zoo_dir)
    verify(zoo_dir)
    store = target_store(data, out_dir, seed=int(index["protocol"]["seed"] if seed is None else seed))
    attrs = store_attrs(store)
    target = attrs["dataset"]
    protocol = index["protocol"]
    seed = int(protocol["seed"] if seed is None else seed)
    models, skipped = compatible_models(index, attrs)
    if archs:
        skipped.update({m["name"]: "not among --arch" for m in models if m["arch"] not in archs})
        models = [m for m in models if m["arch"] in archs]
    if not models:
        raise ZooError(f"no zoo model in {zoo_dir} fits {store}: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    out_dir = Path(out_dir)
    n_train = int(attrs["split_counts"]["train"])
    size = n_train if size is None else int(size)
    variant = variant_name(size, n_train)
    # Jobs and subsets are laid out by target and variant, as the pipeline's (layout), so
    # that another --data or --size into the same --out never reuses them.
    runs_dir = out_dir / target / variant
    paths = []
    for run in range(int(runs)):
        subset = runs_dir / "subsets" / f"run{run}.npz"
        if not _subset_drawn(subset, size=size, seed=seed):
            make_subset(store, subset, variant=variant, size=size, run=run, seed=seed, log=log)
        for arch in sorted({m["arch"] for m in models}):
            spec = _job_spec(protocol, kind="referent", arch=arch, target=target, attrs=attrs, seed=seed,
                             stream_max=stream_max, max_epochs=max_epochs)
            job_dir = runs_dir / "referent" / arch / f"run{run}"
            if not _done(job_dir, spec):
                jobs.referent(spec, arch, target, variant, run, store, subset, job_dir)
                keras.backend.clear_session()
            paths.append(job_dir / "result.json")
        for entry in models:
            pretrained = model_path(entry["arch"], entry["source"], zoo_dir)
            spec = _job_spec(protocol, kind="finetune", arch=entry["arch"], target=target, attrs=attrs,
                             seed=seed, stream_max=stream_max, max_epochs=max_epochs)
            for omega in omegas:
                job_dir = (runs_dir / "finetune" / entry["arch"] / entry["source"] / f"run{run}"
                           / f"omega{omega_label(omega)}")
                if not _done(job_dir, spec):
                    jobs.finetune(spec, entry["arch"], entry["source"], target, variant, run, float(omega),
                                  pretrained, store, subset, job_dir)
                    keras.backend.clear_session()
                paths.append(job_dir / "result.json")

    table = results_table.build_results_table(paths)
    selection = selection_curve(protocol["switches"])
    pairs = stats.paired_runs(table, selection)
    by_model = stats.per_architecture_tables(pairs, "performance").merge(
        stats.per_architecture_tables(pairs, "convergence")[["arch", "source", "target", "variant", "value", "p"]],
        on=["arch", "source", "target", "variant"], suffixes=("", "_convergence"))
    by_model = by_model.rename(columns={"value": "gain_performance", "p": "p_performance",
                                        "value_convergence": "gain_convergence"})
    chosen = pairs.groupby(["arch", "source"])["omega"].agg(lambda s: s.mode().iloc[0] if s.notna().any() else math.nan)
    by_model["omega_mode"] = [chosen.get((a, s), math.nan) for a, s in zip(by_model["arch"], by_model["source"])]
    by_source = stats.domain_tables(pairs, "performance")
    ranking = None
    if with_ranking:
        ranking = rank(zoo_dir, store, subset=runs_dir / "subsets" / "run0.npz", seed=seed, models=models)
        by_model = by_model.merge(ranking[["arch", "source", "logme", "rank"]], on=["arch", "source"], how="left")
        by_model = by_model.rename(columns={"rank": "logme_rank"})
    by_model.insert(0, "model", [model_name(a, s) for a, s in zip(by_model["arch"], by_model["source"])])
    tables = {"results": table, "pairs": pairs, "gains": by_model, "gains_by_source": by_source}
    if ranking is not None:
        tables["ranking"] = ranking
    for name, frame in tables.items():
        with atomic_path(out_dir / f"{name}.csv") as tmp:
            frame.to_csv(tmp, index=False)
    text = gain_report(by_model, by_source, target=target, runs=runs, omegas=omegas, size=size, skipped=skipped)
    write_text(out_dir / "gains.md", text)
    tables["report"] = text
    return tables


def gain_report(by_model, by_source, *, target: str, runs: int, omegas: Sequence[float], size: int,
                skipped: Mapping[str, str]) -> str:
    """The gain tables as Markdown (what ``transfer`` prints)."""
    def number(value, digits=3):
        return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}g}"

    lines = [f"# Transfer to {target}: {size} training instances, {runs} run(s), multipliers "
             f"{', '.join(repr(float(w)) for w in omegas)}", "",
             "Gain: mean over runs of the per-run gain (%) of the grid-selected fine-tuned model over "
             "the referent trained from scratch; p: Wilcoxon signed-rank on the paired metrics "
             "(uncorrected per model, as the paper's per-architecture tables; Benjamini-Krieger-Yekutieli "
             "corrected per source, as its Tables 6-9); * significant at 0.05.", "",
             "| model | LogME | LogME rank | gain perf. % | p | gain conv. % | omega (mode) | runs |",
             "|---|---|---|---|---|---|---|---|"]
    order = by_model.sort_values("logme_rank") if "logme_rank" in by_model else by_model
    for row in order.itertuples():
        star = "*" if row.significant else ""
        lines.append(f"| {row.model} | {number(getattr(row, 'logme', None), 4)} | {getattr(row, 'logme_rank', '')} "
                     f"| {number(row.gain_performance)}{star} | {number(row.p_performance)} "
                     f"| {number(row.gain_convergence)} | {number(row.omega_mode)} | {row.n_pairs} |")
    lines += ["", "| source (all architectures) | gain perf. % | p corrected | pairs |", "|---|---|---|---|"]
    for row in by_source.itertuples():
        star = "*" if row.significant else ""
        lines.append(f"| {row.source} | {number(row.value)}{star} | {number(row.p_corrected)} | {row.n_pairs} |")
    if skipped:
        lines += ["", "Not compatible: " + "; ".join(f"{k} ({v})" for k, v in skipped.items())]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- validation
def validate_ranking(scores, gains) -> dict[str, Any]:
    """How well LogME predicts the fine-tuning gain, over (arch, source, target, variant) cells.

    ``scores``: columns arch, source, target, variant, logme; ``gains``: the same keys and
    ``gain`` (mean per-run performance gain, %). Returns the Spearman correlation pooled
    over all cells and per target (LogME is meant to compare models on one target),
    and top-1 hit rates: per (target, variant, arch), whether the source LogME ranks
    first is the source with the best gain (``top_source``), and per (target, variant)
    over all models (``top_model``), each with the hit rate a random pick would have.
    """
    import scipy.stats

    keys = ["arch", "source", "target", "variant"]
    cells = scores[keys + ["logme"]].merge(gains[keys + ["gain"]], on=keys).dropna(subset=["logme", "gain"])

    def spearman(frame) -> float:
        if len(frame) < 3 or frame["logme"].nunique() < 2 or frame["gain"].nunique() < 2:
            return math.nan
        return float(scipy.stats.spearmanr(frame["logme"], frame["gain"]).statistic)

    def top_hits(group_keys) -> dict[str, Any]:
        hits, chance, groups = 0, 0.0, 0
        for _, frame in cells.groupby(group_keys):
            if len(frame) < 2:
                continue
            groups += 1
            hits += int(frame.loc[frame["logme"].idxmax(), "gain"] == frame["gain"].max())
            chance += 1.0 / len(frame)
        return {"hits": hits, "groups": groups, "rate": hits / groups if groups else math.nan,
                "chance": chance / groups if groups else math.nan}

    per_target = {f"{t}/{v}": spearman(frame) for (t, v), frame in cells.groupby(["target", "variant"])}
    per_target_arch = {f"{t}/{v}/{a}": spearman(frame)
                       for (t, v, a), frame in cells.groupby(["target", "variant", "arch"])}
    defined = [value for value in per_target.values() if not math.isnan(value)]
    return {
        "n_cells": int(len(cells)),
        "spearman_pooled": spearman(cells),
        "spearman_per_target_mean": float(np.mean(defined)) if defined else math.nan,
        "spearman_per_target": per_target,
        "spearman_per_target_arch": per_target_arch,
        "top_source": top_hits(["target", "variant", "arch"]),
        "top_model": top_hits(["target", "variant"]),
    }


__all__ = ["export_model", "write_index", "read_index", "verify", "card", "model_path", "load",
           "compatibility", "compatible_models", "variant_name", "data_entry", "target_store", "adapt_input", "penultimate_features",
           "rank", "transfer", "validate_ranking", "ZooError"]
