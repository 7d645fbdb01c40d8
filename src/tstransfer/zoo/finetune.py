"""``transfer``: fine-tune every compatible zoo model on a target with the study's protocol,
through the pipeline's own jobs (:mod:`tstransfer.jobs`), and report the gains."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import jobs
from ..fsutil import atomic_path, write_text
from .. import plan
from ..layout import SUBSET
from ..store import store_attrs
from .cards import ZooError
from .folder import compatible_models, model_path, read_index, verify
from .gains import gain_report, gain_tables
from .ranking import rank
from .target import run_subset, target_store, variant_name, zoo_seed

log = logging.getLogger(__name__)


def _job_spec(protocol: Mapping[str, Any], *, kind: str, arch: str, target: str, attrs: Mapping[str, Any],
              seed: int, stream_max: bool, max_epochs: int | None) -> dict[str, Any]:
    """A job's spec (:func:`tstransfer.plan.job_spec`, as the pipeline builds it) from the
    zoo's protocol, whose ``switches`` carry every switch's value."""
    training = dict(protocol["training"])
    if max_epochs is not None:
        training["max_epochs"] = int(max_epochs)
    config = {"seed": int(seed), "training": training, "switches": protocol["switches"],
              "datasets": {target: {"stream_max": bool(stream_max)}}}
    return plan.job_spec(config, kind=kind, arch=arch, dataset=target, task=attrs["task"],
                         channels=int(attrs["channels"]))


def job_folder(out_dir: Path, kind: str, arch: str, target: str, variant: str, run: int, *,
               source: str | None = None, omega: float | None = None) -> Path:
    """A job's folder under ``out_dir``, laid out as the pipeline lays it out under
    ``results/`` (:func:`tstransfer.plan.job_dir`): the target and variant are in the path,
    so another --data or --size into the same --out never reuses it."""
    identity = dict(arch=arch, target=target, variant=variant, run=run)
    if kind == "finetune":
        identity.update(source=source, omega=omega)
    return plan.job_dir(kind, out_dir, **identity)


def subset_file(out_dir: Path, target: str, variant: str, run: int) -> Path:
    """Run ``run``'s training subset under ``out_dir``, where the pipeline keeps it."""
    return plan.path_under(out_dir, SUBSET, dataset=target, variant=variant, run=run)


def _done(out_dir: Path, spec: Mapping[str, Any]) -> bool:
    """A job whose result.json exists with the same spec is not run again."""
    result = out_dir / "result.json"
    return result.is_file() and json.loads(result.read_text()).get("config") == json.loads(json.dumps(spec))


@dataclass(frozen=True)
class _Target:
    """What every job of one ``transfer`` call shares."""

    store: Path
    name: str
    variant: str
    out_dir: Path
    specs: Mapping[tuple[str, str], dict[str, Any]]  # (kind, arch) -> the job spec
    pretrained: Mapping[str, Path]  # zoo model name -> its model file


def _run_job(train, job_dir: Path, spec: Mapping[str, Any], *args) -> Path:
    """Run one job (``jobs.referent`` or ``jobs.finetune``) unless it is done; its result.json."""
    if not _done(job_dir, spec):
        # TensorFlow lazily: the data env imports this package (`snakemake zoo`) without it.
        import keras

        train(spec, *args, job_dir)
        keras.backend.clear_session()
    return job_dir / "result.json"


def _run_jobs(target: _Target, models: Sequence[Mapping[str, Any]], omegas: Sequence[float],
              run: int, subset: Path) -> list[Path]:
    """One run's referents (one per architecture) and fine-tuned models; their result.json."""
    common = (target.store, subset)
    where = (target.out_dir, target.name, target.variant, run)
    paths = [_run_job(jobs.referent, job_folder(where[0], "referent", arch, *where[1:]),
                      target.specs["referent", arch], arch, target.name, target.variant, run, *common)
             for arch in sorted({m["arch"] for m in models})]
    for entry in models:
        arch, source = entry["arch"], entry["source"]
        for omega in omegas:
            paths.append(_run_job(
                jobs.finetune, job_folder(where[0], "finetune", arch, *where[1:], source=source, omega=omega),
                target.specs["finetune", arch], arch, source, target.name, target.variant, run, float(omega),
                target.pretrained[entry["name"]], *common))
    return paths


def _chosen_models(index: Mapping[str, Any], attrs: Mapping[str, Any], archs: Sequence[str] | None,
                   where: str) -> tuple[list[dict], dict[str, str]]:
    """The compatible models among ``archs``, and why each other one is left out."""
    models, skipped = compatible_models(index, attrs)
    if archs:
        skipped.update({m["name"]: "not among --arch" for m in models if m["arch"] not in archs})
        models = [m for m in models if m["arch"] in archs]
    if not models:
        raise ZooError(f"no zoo model in {where}: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    return models, skipped


def _target(zoo_dir: Path, store: Path, attrs: Mapping[str, Any], out_dir: Path, size: int,
            models: Sequence[Mapping[str, Any]], job_settings: Mapping[str, Any]) -> _Target:
    """The shared part of every job: built once, not per run."""
    name, variant = attrs["dataset"], variant_name(size, attrs["split_counts"]["train"])
    specs = {(kind, m["arch"]): _job_spec(kind=kind, arch=m["arch"], target=name, attrs=attrs, **job_settings)
             for kind in ("referent", "finetune") for m in models}
    # verify() has checked every model file of the zoo: no second hash per model.
    pretrained = {m["name"]: model_path(m["arch"], m["source"], zoo_dir, check=False) for m in models}
    return _Target(store, name, variant, out_dir, specs, pretrained)


def transfer(zoo_dir: str | Path, data: str | Path, out_dir: str | Path, *, runs: int,
             omegas: Sequence[float], size: int | None = None, seed: int | None = None,
             stream_max: bool = True, max_epochs: int | None = None, archs: Sequence[str] | None = None,
             with_ranking: bool = True) -> dict[str, Any]:
    """Fine-tune every compatible zoo model on ``data`` with the study's protocol.

    Per run: a training set (``size`` instances drawn as the pipeline draws its 1k5/9k
    subsets, or the whole training split), one referent per architecture trained from
    scratch on it, and every compatible model fine-tuned with every multiplier in
    ``omegas``; the grid search, the pairing with referents and the statistics are the
    paper's (:func:`~tstransfer.zoo.gains.gain_tables`). Settings (training, protocol
    switches, seed) are the zoo's (its ``index.json``), ``max_epochs`` aside. Jobs whose
    result.json exists with the same settings are not run again. Writes into
    ``out_dir``: jobs, ``results.csv``, ``pairs.csv``, ``gains.csv`` (per model),
    ``gains_by_source.csv``, ``ranking.csv`` and ``gains.md``; returns the tables and
    the report (``report``).
    """
    zoo_dir, out_dir = Path(zoo_dir), Path(out_dir)
    index = read_index(zoo_dir)
    verify(zoo_dir)
    protocol = index["protocol"]
    seed = zoo_seed(protocol, seed)
    store = target_store(data, out_dir, seed=seed)
    attrs = store_attrs(store)
    models, skipped = _chosen_models(index, attrs, archs, f"{zoo_dir} fits {store}")
    size = int(attrs["split_counts"]["train"]) if size is None else int(size)
    target = _target(zoo_dir, store, attrs, out_dir, size, models,
                     {"protocol": protocol, "seed": seed, "stream_max": stream_max, "max_epochs": max_epochs})
    paths = []
    for run in range(int(runs)):
        subset = run_subset(store, subset_file(out_dir, target.name, target.variant, run), variant=target.variant, size=size,
                            run=run, seed=seed)
        paths += _run_jobs(target, models, omegas, run, subset)
    ranking = None
    if with_ranking:
        ranking = rank(zoo_dir, store, subset=subset_file(out_dir, target.name, target.variant, 0), seed=seed,
                       models=models, check=False)
    tables: dict[str, Any] = gain_tables(paths, protocol, ranking)
    if ranking is not None:
        tables["ranking"] = ranking
    for name, frame in tables.items():
        with atomic_path(out_dir / f"{name}.csv") as tmp:
            frame.to_csv(tmp, index=False)
    tables["report"] = gain_report(tables["gains"], tables["gains_by_source"], target=target.name, runs=runs,
                                   omegas=omegas, size=size, skipped=skipped)
    write_text(out_dir / "gains.md", tables["report"])
    return tables
