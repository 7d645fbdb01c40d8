"""Source selection on a finished study (rules selection_scores and selection_validation).

:func:`score_study` scores every (architecture, source, target, variant) of a study: each
compatible zoo model (:func:`tstransfer.zoo.compatibility`) on each target's run-0
training subset of each variant (the instances the first fine-tuning run trained on),
with the estimators of :mod:`tstransfer.selection` that need no training (the fine-tuning
proxy's scores come from rule selection_proxy, which reads the study's own runs:
:func:`tstransfer.selection.proxy.study_proxy_scores`). Each model is loaded once.
``dtw_dba`` compares raw series: per class at most :data:`DTW_PER_CLASS`
series of the target's subset and of the source's training split (a seeded sample),
interpolated to at most :data:`DTW_LENGTH` points, averaged by DBA; its score is minus
the smallest DTW distance between a target and a source average.

:func:`tstransfer.selection.validation.study_tables` (TensorFlow- and zarr-free, rule
selection_validation) joins the scores to the study's measured gains and runs the harness.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .. import selection
from ..seeding import rng_for
from ..selection import similarity
from ..selection.validation import STUDY_KEYS
from ..store import store_attrs
from .folder import compatibility, load, read_index
from .ranking import DTW, adapt_input, estimator_scores, model_inputs
from .target import target_training_data

SCORE_COLUMNS = [*STUDY_KEYS, "estimator", "score"]
DTW_PER_CLASS = 20  # DBA costs one DTW per instance and iteration
DTW_LENGTH = 256


def study_estimators(names: Iterable[str]) -> list[selection.Estimator]:
    """The estimators of config ``selection.estimators`` that score zoo models here: every
    one named (``all``: every one) but those that train. The fine-tuning proxy is not run
    here: rule selection_proxy reads it from the study's own fine-tuning runs
    (:func:`tstransfer.selection.proxy.study_proxy_scores`)."""
    names = list(names)
    try:
        estimators = selection.resolve(names)
    except ValueError as error:
        raise ValueError(f"config selection.estimators: {error}") from None
    return [e for e in estimators if "train_for" not in e.needs]


def dtw_averages(waveform: np.ndarray, labels, task: str, name: str, seed: int) -> list[np.ndarray]:
    """Per-class DBA averages of a seeded sample of at most DTW_PER_CLASS series per class."""
    labels = np.asarray(labels).reshape(len(waveform), -1)[:, 0] if task == "classification" else np.zeros(len(waveform))
    rng = rng_for(seed, "dtw-sample", name)
    keep = np.sort(np.concatenate([rng.permutation(np.flatnonzero(labels == value))[:DTW_PER_CLASS]
                                   for value in np.unique(labels)]))
    series = adapt_input(waveform[keep], min(DTW_LENGTH, waveform.shape[1]), waveform.shape[2])
    return similarity.class_averages(series, labels[keep] if task == "classification" else None)


def _targets(targets: Sequence[tuple[str, str, Path, Path]], seed: int, dtw: bool) -> list[dict]:
    """Each (target, variant)'s store attributes, training data and (for DTW) averages."""
    loaded = []
    for target, variant, store, subset in targets:
        attrs = store_attrs(store)
        waveform, stream_max, labels = target_training_data(store, subset, seed=seed)
        averages = dtw_averages(waveform, labels, attrs["task"], f"{target}/{variant}/0", seed) if dtw else None
        loaded.append({"target": target, "variant": variant, "attrs": attrs, "data": (waveform, stream_max, labels),
                       "averages": averages})
    return loaded


def _source_averages(source: str, store: Path, seed: int) -> list[np.ndarray]:
    waveform, _, labels = target_training_data(store, seed=seed)
    return dtw_averages(waveform, labels, store_attrs(store)["task"], source, seed)


def score_study(zoo_dir: str | Path, targets: Sequence[tuple[str, str, str | Path, str | Path]],
                source_stores: Mapping[str, str | Path], names: Iterable[str], *, seed: int) -> pd.DataFrame:
    """Scores of every compatible (zoo model, target, variant): ``targets`` lists
    (target, variant, store, run-0 subset); ``source_stores`` each source's store (read
    for ``dtw_dba`` only). An estimator that cannot score a cell (LEEP on a regression
    source's model) leaves no row. Columns: :data:`SCORE_COLUMNS`."""
    import keras  # lazily: TensorFlow only when scoring

    estimators = study_estimators(names)
    dtw = any(e.name == DTW for e in estimators)
    cells = _targets([(t, v, Path(store), Path(subset)) for t, v, store, subset in targets], seed, dtw)
    rows, source_averages = [], {}
    for entry in read_index(zoo_dir)["models"]:
        usable = [cell for cell in cells if compatibility(entry, cell["attrs"]) is None]
        if not usable:
            continue
        source = entry["source"]
        if dtw and source not in source_averages:  # one source serves every architecture
            source_averages[source] = _source_averages(source, Path(source_stores[source]), seed)
        model = load(entry["arch"], source, zoo_dir)
        for cell in usable:
            inputs = model_inputs(model, entry, *cell["data"], cell["attrs"]["task"])
            key = {"arch": entry["arch"], "source": source, "target": cell["target"], "variant": cell["variant"]}
            dtw_score = -similarity.averages_distance(cell["averages"], source_averages[source]) if dtw else None
            rows += [{**key, "estimator": name, "score": score}
                     for name, score in estimator_scores(estimators, inputs, dtw_score=dtw_score,
                                                         model=entry["name"]).items()]
        del model
        keras.backend.clear_session()
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


__all__ = ["DTW_LENGTH", "DTW_PER_CLASS", "SCORE_COLUMNS", "dtw_averages", "score_study", "study_estimators"]
