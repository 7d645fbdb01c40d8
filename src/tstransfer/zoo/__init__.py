"""The pretrained-model zoo: export, load, rank sources (LogME) and transfer to a new dataset.

A zoo folder (``snakemake zoo`` writes ``results/zoo``) is self-contained::

    index.json                 every model's card, and the study's fine-tuning protocol
    SHA256SUMS                 sha256 of every other file (``sha256sum -c SHA256SUMS``)
    {arch}-{source}/model.keras
    {arch}-{source}/card.json  the model card (keys: see :func:`model_card`)
    {arch}-{source}/card.md    the same card for people
    {arch}-{source}/README.md  the card as model hubs read it (YAML front matter: licence, datasets, metrics, model-index)

so it can be archived or published alone. :func:`load` returns a model ready to
fine-tune after checking its weights' sha256. :func:`rank` scores every compatible model
on a target by LogME (:mod:`tstransfer.logme`) on frozen penultimate-layer features;
:func:`transfer` fine-tunes every compatible model with the study's protocol (referents,
the multiplier grid, runs) through the pipeline's own jobs (:mod:`tstransfer.jobs`) and
computes the gains with the paper's statistics (:mod:`tstransfer.analysis.stats`).

Compatible (:func:`compatibility`): a zoo model can be fine-tuned on a target when its
architecture is known to this package, the target's task is regression or
classification (the head is always built afresh for the target), the input channels can
be adapted (the rule of :mod:`tstransfer.channels` accepts source -> target
channels), and the target is not the model's own source dataset (which the study never
transfers, and whose test set the model was selected on). Length needs no rule: every
transferred layer (convolutions, the TCN) works at any length.

The target is a converted store (the pipeline's ``results/data/<name>.zarr``), a dataset
entry in a YAML file (as under the config's ``datasets:``), or a data file or folder of a
format its suffix tells (a UCR/UEA ``.ts`` archive, ``.npz``, ...): :func:`target_store`
converts the last two with the study's preprocessing first.

The package by concern: :mod:`.cards` (the card, the folder's file names),
:mod:`.folder` (export, index and checksums, reading, loading, compatibility),
:mod:`.target` (``--data`` as a store, the runs' subsets, LogME's training data),
:mod:`.ranking` (features and the estimators' scores), :mod:`.finetune` (``transfer``'s jobs),
:mod:`.gains` (the gain tables, their report, and LogME's validation against them) and
:mod:`.study` (every estimator's scores on a finished study, rules/selection.smk).
None imports TensorFlow when imported (``snakemake zoo`` runs in the data env without
it): the functions that train or load a model import it when they run.
"""

from __future__ import annotations

from .cards import (CARD_JSON, CARD_MD, CARD_README, FORMAT, INDEX, MODEL_FILE, PREPROCESSING, SUMS, ZooError,
                    card_front_matter, card_markdown, card_readme, model_card, model_name)
from .finetune import transfer
from .folder import (card, compatibility, compatible_models, export_model, load, model_path, read_index,
                     verify, write_index)
from .gains import gain_report, gain_tables, validate_ranking
from .ranking import adapt_input, model_inputs, penultimate_features, rank, rank_target, source_head_probabilities
from .target import (FEATURE_LIMIT, data_entry, run_subset, target_store, target_training_data,
                     variant_name, zoo_seed)

__all__ = [
    "CARD_JSON", "CARD_MD", "CARD_README", "FEATURE_LIMIT", "FORMAT", "INDEX", "MODEL_FILE", "PREPROCESSING", "SUMS",
    "ZooError", "adapt_input", "card", "card_front_matter", "card_markdown", "card_readme", "compatibility", "compatible_models", "data_entry",
    "export_model", "gain_report", "gain_tables", "load", "model_card", "model_name", "model_path",
    "model_inputs", "penultimate_features", "rank", "rank_target", "source_head_probabilities", "read_index", "run_subset", "target_store",
    "target_training_data", "transfer", "validate_ranking", "variant_name", "verify", "write_index",
    "zoo_seed",
]
