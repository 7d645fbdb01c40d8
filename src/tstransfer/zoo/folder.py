"""The zoo folder: export a model into it, write its index and checksums, check and read it,
load its models, and tell which of them fit a target."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .. import plan
from ..archive import verify as verify_sums
from ..channels import adapt_channels
from ..fsutil import atomic_path, sha256_file, write_json, write_text
from ..jobs import load_model
from ..registry import ARCHITECTURES
from ..store import store_attrs
from .cards import (CARD_JSON, CARD_MD, CARD_README, FORMAT, INDEX, MODEL_FILE, SUMS, ZooError, card_markdown,
                    card_readme, model_card, model_name)


# --------------------------------------------------------------------------- export
def export_model(arch: str, source: str, *, selection_json: str | Path, model: str | Path,
                 store: str | Path, out_dir: str | Path, raw_data: str = "unknown") -> dict[str, Any]:
    """Copy one selected pretrained model into ``out_dir`` with its cards; return the card."""
    selection = json.loads(Path(selection_json).read_text())
    # The selected seed's result.json, beside the selection in the pipeline's layout
    # (results/pretrain/{arch}/{source}/seed{k}); the path the selection records is
    # relative to the workflow's folder.
    result_path = Path(selection_json).parent.parent / f"seed{selection['seed_index']}" / "result.json"
    result = json.loads(result_path.read_text())
    if (result.get("arch"), plan.trained_on(result)) != (arch, source):
        raise ZooError(f"{result_path}: a pretraining result of {result.get('arch')} on "
                       f"{plan.trained_on(result)}, expected {arch} on {source}")
    card = model_card(arch, source, selection=selection, result=result, attrs=store_attrs(store),
                      sha256=sha256_file(model), raw_data=raw_data)
    out_dir = Path(out_dir)
    with atomic_path(out_dir / MODEL_FILE) as tmp:
        shutil.copyfile(model, tmp)
    if sha256_file(out_dir / MODEL_FILE) != card["weights"]["sha256"]:
        raise ZooError(f"{out_dir / MODEL_FILE}: copy differs from {model}")
    write_json(out_dir / CARD_JSON, card)
    write_text(out_dir / CARD_MD, card_markdown(card))
    write_text(out_dir / CARD_README, card_readme(card))
    return card


def write_index(zoo_dir: str | Path, card_paths: Iterable[str | Path], protocol: Mapping[str, Any]) -> dict:
    """``index.json`` (every card, the study's protocol) and ``SHA256SUMS`` over the zoo.

    A model file's line takes the sha256 its card records: :func:`export_model` checked
    the copy against it, and :func:`verify` checks the file against this line.
    """
    zoo_dir = Path(zoo_dir)
    cards = [json.loads(Path(p).read_text()) for p in card_paths]
    index = {"format": FORMAT, "protocol": dict(protocol),
             "models": sorted(cards, key=lambda c: c["name"])}
    write_json(zoo_dir / INDEX, index)
    sums = [(zoo_dir / INDEX, None)]
    for card in index["models"]:
        folder = zoo_dir / card["name"]
        if not (folder / MODEL_FILE).is_file():
            raise ZooError(f"{folder / MODEL_FILE}: missing (named by {folder / CARD_JSON})")
        sums += [(folder / MODEL_FILE, card["weights"]["sha256"]), (folder / CARD_JSON, None),
                 (folder / CARD_MD, None), (folder / CARD_README, None)]
    lines = [f"{digest or sha256_file(f)}  {f.relative_to(zoo_dir).as_posix()}\n" for f, digest in sums]
    write_text(zoo_dir / SUMS, "".join(lines))
    return index


# --------------------------------------------------------------------------- reading
def read_index(zoo_dir: str | Path) -> dict[str, Any]:
    """The zoo's ``index.json``; a ZooError when it is missing or of another format."""
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
    status = verify_sums(zoo_dir, sums)  # the results tree's manifest check
    bad = [f"{zoo_dir / name}: missing" for name in status["missing"]]
    bad += [f"{zoo_dir / name}: sha256 differs from {sums}" for name in status["changed"]]
    if bad:
        raise ZooError("zoo files fail their checksums: " + "; ".join(bad))


def card(arch: str, source: str, zoo_dir: str | Path) -> dict[str, Any]:
    """The card of the zoo model ``arch`` pretrained on ``source``."""
    path = Path(zoo_dir) / model_name(arch, source) / CARD_JSON
    if not path.is_file():
        raise ZooError(f"{path}: no such zoo model ({arch} pretrained on {source})")
    return json.loads(path.read_text())


def model_path(arch: str, source: str, zoo_dir: str | Path, *, check: bool = True) -> Path:
    """The model file of a zoo model, after checking its sha256 against its card
    (``check=False``: the caller has checked the whole zoo with :func:`verify`)."""
    info = card(arch, source, zoo_dir)
    path = Path(zoo_dir) / info["name"] / info["weights"]["file"]
    if not path.is_file():
        raise ZooError(f"{path}: missing (named by {path.parent / CARD_JSON})")
    if check:
        actual, expected = sha256_file(path), info["weights"]["sha256"]
        if actual != expected:
            raise ZooError(f"{path}: sha256 {actual} does not match {expected} recorded in "
                           f"{path.parent / CARD_JSON}; the file is damaged or was replaced")
    return path


def load(arch: str, source: str, zoo_dir: str | Path, *, check: bool = True):
    """The zoo model ``arch`` pretrained on ``source``, uncompiled, ready to fine-tune.

    Pass it to :func:`tstransfer.transfer.transfer_weights` (or its file,
    :func:`model_path`, to :func:`tstransfer.jobs.finetune`). ``check`` as :func:`model_path`.
    """
    return load_model(model_path(arch, source, zoo_dir, check=check))


# --------------------------------------------------------------------------- compatibility
def compatibility(model_card_: Mapping[str, Any], attrs: Mapping[str, Any]) -> str | None:
    """Why a zoo model cannot be fine-tuned on a target with store ``attrs``; None if it can."""
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
