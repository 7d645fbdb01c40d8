"""Source-selection (transferability) estimators: which source to fine-tune from, scored
before fine-tuning. Every estimator returns a float where higher means a better source.

The registry maps a name to an :class:`Estimator`, called on one :class:`Inputs` (what is
known about one target and one candidate source), so that ``rank --method NAME`` and the
validation harness (:mod:`tstransfer.selection.validation`) treat them all alike::

    from tstransfer import selection
    inputs = selection.Inputs(task="classification", labels=y, features=f, source_probs=p)
    scores = {e.name: e(inputs) for e in selection.resolve(["all"]) if e.unavailable(inputs) is None}

Estimators by what they read (``Estimator.needs``):

- frozen features of the target's training instances (the source model's penultimate
  layer): ``logme`` (tstransfer.logme), ``hscore``, ``shrinkage_hscore``, ``gbc``
  (:mod:`.gaussian`), ``transrate`` (:mod:`.coding_rate`), ``linear_mse`` (:mod:`.linear`);
- the source head's class probabilities on those instances: ``leep``, ``nce``
  (:mod:`.source_head`);
- the raw series of target and source: ``dtw_dba`` (:mod:`.similarity`);
- training: ``finetune_proxy`` (:mod:`.proxy`), given a callable that fine-tunes for k
  epochs and returns the validation metric (on a finished study,
  :func:`.proxy.study_proxy_scores` reads it from the study's own runs).

``Estimator.tasks`` are the target tasks it is defined for; :meth:`Estimator.unavailable`
says why it cannot score given inputs (wrong task, a missing input), so that a caller
records a gap rather than an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any

from tstransfer.logme import logme

from .coding_rate import transrate
from .gaussian import gbc, hscore, shrinkage_hscore
from .inputs import check_task
from .linear import linear_mse
from .proxy import finetune_proxy
from .similarity import dba_similarity
from .source_head import leep, nce

ALL = "all"


@dataclass(frozen=True)
class Inputs:
    """What is known about one (target, source) candidate.

    ``labels`` are the target's labels of the instances that ``features`` (n, d) and
    ``source_probs`` (n, source classes) describe, and of ``series`` (the target's raw
    training series, (n, length[, channels])); ``source_series`` / ``source_labels`` are the
    source dataset's (labels None for a regression source); ``train_for(epochs)``
    fine-tunes the source model on the target and returns the validation metric.
    """

    task: str
    labels: Any
    features: Any = None
    source_probs: Any = None
    series: Any = None
    source_series: Any = None
    source_labels: Any = None
    train_for: Callable[[int], float] | None = None


INPUT_NAMES = tuple(field.name for field in fields(Inputs))
CLASSIFICATION = ("classification",)
REGRESSION = ("regression",)
BOTH = ("classification", "regression")


@dataclass(frozen=True)
class Estimator:
    name: str
    function: Callable[[Inputs], float]
    needs: tuple[str, ...]
    tasks: tuple[str, ...]
    reference: str

    def unavailable(self, inputs: Inputs) -> str | None:
        """Why this estimator cannot score ``inputs``, or None when it can."""
        if inputs.task not in self.tasks:
            return f"{self.name} is defined for {' and '.join(self.tasks)} targets, not {inputs.task}"
        missing = [name for name in self.needs if getattr(inputs, name) is None]
        return f"{self.name} needs {', '.join(missing)}" if missing else None

    def __call__(self, inputs: Inputs) -> float:
        check_task(inputs.task)
        reason = self.unavailable(inputs)
        if reason is not None:
            raise ValueError(reason)
        return float(self.function(inputs))


ESTIMATORS: dict[str, Estimator] = {}


def register(estimator: Estimator) -> Estimator:
    """Add ``estimator`` to the registry (a name already taken is a ValueError)."""
    unknown = [name for name in estimator.needs if name not in INPUT_NAMES]
    if unknown:
        raise ValueError(f"estimator {estimator.name!r} needs unknown inputs {unknown}; known: {INPUT_NAMES}")
    if estimator.name in ESTIMATORS or estimator.name == ALL:
        raise ValueError(f"an estimator named {estimator.name!r} is already registered")
    ESTIMATORS[estimator.name] = estimator
    return estimator


def resolve(names: Iterable[str]) -> list[Estimator]:
    """The estimators named (``all``: every registered one, in registration order)."""
    names = list(names)
    if ALL in names:
        return list(ESTIMATORS.values())
    unknown = [name for name in names if name not in ESTIMATORS]
    if unknown:
        raise ValueError(f"unknown estimator(s) {unknown}; known: {', '.join(ESTIMATORS)} or {ALL}")
    return [ESTIMATORS[name] for name in dict.fromkeys(names)]


for _estimator in (
    Estimator("logme", lambda i: logme(i.features, i.labels, i.task), ("features",), BOTH,
              "You et al., ICML 2021"),
    Estimator("hscore", lambda i: hscore(i.features, i.labels), ("features",), CLASSIFICATION,
              "Bao et al., ICIP 2019"),
    Estimator("shrinkage_hscore", lambda i: shrinkage_hscore(i.features, i.labels), ("features",),
              CLASSIFICATION, "Ibrahim et al., ECML PKDD 2022"),
    Estimator("gbc", lambda i: gbc(i.features, i.labels), ("features",), CLASSIFICATION,
              "Pandy et al., CVPR 2022"),
    Estimator("transrate", lambda i: transrate(i.features, i.labels), ("features",), CLASSIFICATION,
              "Huang et al., ICML 2022"),
    Estimator("leep", lambda i: leep(i.labels, i.source_probs), ("source_probs",), CLASSIFICATION,
              "Nguyen et al., ICML 2020"),
    Estimator("nce", lambda i: nce(i.labels, i.source_probs), ("source_probs",), CLASSIFICATION,
              "Tran et al., ICCV 2019"),
    Estimator("linear_mse", lambda i: linear_mse(i.features, i.labels), ("features",), REGRESSION,
              "Nguyen et al., UAI 2023"),
    Estimator("dtw_dba", lambda i: dba_similarity(i.series, i.labels, task=i.task, source_series=i.source_series,
                                                  source_labels=i.source_labels),
              ("series", "source_series"), BOTH, "Ismail Fawaz et al., IEEE Big Data 2018"),
    Estimator("finetune_proxy", lambda i: finetune_proxy(i.train_for, task=i.task), ("train_for",), BOTH,
              "a few epochs of fine-tuning, then the validation metric"),
):
    register(_estimator)

__all__ = ["Inputs", "Estimator", "ESTIMATORS", "register", "resolve", "ALL"]
