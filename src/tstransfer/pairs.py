"""A small transfer experiment in one process: does a source transfer to a target?

:func:`transfer_gains` runs the workflow's own job functions (:mod:`tstransfer.jobs`) on
synthetic data: each source is pretrained once, then per run the target's subset is
drawn, a referent trained from scratch on it and every pretrained source fine-tuned on it
at one multiplier, each job with the spec the workflow gives it
(:func:`tstransfer.plan.job_spec`) and laid out under ``workdir`` as the workflow lays
out ``results/``. It is what ``bench/transfer_pair.py`` prints and what
``tests/test_demo_effect.py`` asserts on, so that the check used to design the synthetic
datasets and the test that guards them measure the same thing. The workflow itself does
not use it: there every step is a job of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tstransfer import jobs, pipeline, store
from tstransfer.analysis import stats
from tstransfer.layout import STORE, SUBSET, SYNTHETIC_DIR
from tstransfer.plan import job_dir, job_spec, path_under


@dataclass
class PairResult:
    """Per-run test metrics of the referents and of each source's fine-tuned models."""

    target: str
    metric: str
    referent: np.ndarray
    tuned: dict[str, np.ndarray]
    pretrained: dict[str, float] = field(default_factory=dict)  # source -> its own test metric

    def gains(self) -> dict[str, np.ndarray]:
        """Per-run gain in percent of each source over the referents
        (:func:`stats.performance_gain`: positive = the transferred model is better)."""
        return {source: stats.performance_gain(self.referent, values, self.metric)
                for source, values in self.tuned.items()}


def transfer_gains(
    config: Mapping[str, Any],
    target: str,
    sources: Sequence[str],
    workdir: str | Path,
    *,
    runs: int,
    arch: str = "magnet",
    variant: str | None = None,
    size: int | None = None,
    omega: float = 1.0,
) -> PairResult:
    """Synthesize and convert ``target`` and ``sources`` under ``workdir``, pretrain
    each source (seed index 0), and compare fine-tuning with training from scratch over
    ``runs`` runs of the target's ``variant`` subset (default: the config's first
    variant, of the config's size unless ``size`` is given)."""
    workdir = Path(workdir)
    if variant is None:
        variant = next(iter(config["variants"]))
    if size is None:
        size = int(config["variants"][variant])
    stores = {}
    for dataset in dict.fromkeys([target, *sources]):
        raw = path_under(workdir, f"{SYNTHETIC_DIR}/{{dataset}}", dataset=dataset)
        pipeline.synthesize(dataset, raw, config["synthetic"][dataset], config["seed"])
        stores[dataset] = path_under(workdir, STORE, dataset=dataset)
        pipeline.convert(dataset, raw, stores[dataset], config["datasets"][dataset]["extract"], config["seed"])
    models, pretrained = {}, {}
    for source in sources:
        out = job_dir("pretrain", workdir, arch=arch, dataset=source, seed_index=0)
        spec = job_spec(config, kind="pretrain", arch=arch, dataset=source)
        pretrained[source] = float(jobs.pretrain(spec, arch, source, 0, stores[source], out)["test_metric"])
        models[source] = out / "model.keras"
    referent: list[float] = []
    tuned: dict[str, list[float]] = {source: [] for source in sources}
    metric = ""
    referent_spec = job_spec(config, kind="referent", arch=arch, dataset=target)
    finetune_spec = job_spec(config, kind="finetune", arch=arch, dataset=target)
    for run in range(runs):
        subset = path_under(workdir, SUBSET, dataset=target, variant=variant, run=run)
        store.make_subset(stores[target], subset, variant=variant, size=size, run=run, seed=config["seed"])
        identity = dict(arch=arch, target=target, variant=variant, run=run)
        result = jobs.referent(referent_spec, **identity, store=stores[target], subset=subset,
                               out_dir=job_dir("referent", workdir, **identity))
        referent.append(result["test_metric"])
        metric = result["metric"]
        for source, model in models.items():
            out = job_dir("finetune", workdir, source=source, omega=omega, **identity)
            result = jobs.finetune(finetune_spec, source=source, omega=omega, pretrained=model,
                                   store=stores[target], subset=subset, out_dir=out, **identity)
            tuned[source].append(result["test_metric"])
    return PairResult(
        target=target,
        metric=metric,
        referent=np.array(referent),
        tuned={source: np.array(values) for source, values in tuned.items()},
        pretrained=pretrained,
    )
