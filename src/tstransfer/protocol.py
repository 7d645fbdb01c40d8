"""Our procedure and the authors', as one named switch per difference (REFERENCE.md section 6).

Each switch is ``True`` where a job does what the authors' code did, ``False`` where it
does what this project does instead (what the paper's text describes, or the fix of a
bug). The config's ``protocol`` is a preset: ``validation`` (the default) sets every
switch to ours, ``paper`` every switch to the authors'. ``protocol_switches`` then sets
any one of them alone, e.g. ``{protocol: validation, protocol_switches:
{referents_as_regression: true}}`` measures what that one bug does to the gains.

A training job receives only the switches that change it (:func:`shaping`, in the spec
:func:`tstransfer.plan.job_spec` builds), so that flipping one reruns exactly the jobs it
shapes; each result.json records them under ``config.switches``. Nothing here imports
TensorFlow: the Snakefile builds every job's spec with this module when it parses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SWITCHES: dict[str, str] = {
    "test_curves": (
        "grid search and convergence rates on test-set curves (every job records its "
        "per-epoch test metric); ours: validation curves"
    ),
    "referents_as_regression": (
        "classification referents (SPEECH, EMG) trained as regression: linear head, MSE "
        "on one-hot targets, arg-max for F1; ours: softmax and cross-entropy"
    ),
    "monitor_val_acc": (
        "classification runs monitor validation accuracy for the learning-rate schedule, "
        "early stopping and best weights; ours: validation loss, as the paper's text says"
    ),
    "magnet_dropout_at_inference": (
        "MagNet's dropout stays on when predicting (stochastic predictions, seeded); "
        "ours: off at inference"
    ),
    "duplicate_single_channel": (
        "single-channel targets (SPEECH, S&P 500) repeated to 3 channels in referent and "
        "fine-tuning runs; ours: the paper's channel adaptation (REFERENCE.md section 4)"
    ),
    "adam_step_per_multiplier_group": (
        "Adam's step count advances once per learning-rate-multiplier group per batch "
        "(keras-lr-multiplier calls Adam once per group); ours: once per batch"
    ),
}
PRESETS: dict[str, dict[str, bool]] = {
    "validation": dict.fromkeys(SWITCHES, False),
    "paper": dict.fromkeys(SWITCHES, True),
}
# Kinds of training job (jobs.py) and the kinds that train on a reduced target set.
TARGET_KINDS = ("referent", "finetune")


def resolve(protocol: str, overrides: Mapping[str, Any] | None = None) -> dict[str, bool]:
    """Every switch's value under preset ``protocol`` with ``overrides`` applied."""
    if protocol not in PRESETS:
        raise ValueError(f"config protocol: {protocol!r} is not one of {', '.join(PRESETS)}")
    switches = dict(PRESETS[protocol])
    for name, value in (overrides or {}).items():
        if name not in SWITCHES:
            raise ValueError(
                f"config protocol_switches.{name}: unknown switch; known: {', '.join(SWITCHES)}"
            )
        if not isinstance(value, bool):
            raise ValueError(f"config protocol_switches.{name}: must be true or false, got {value!r}")
        switches[name] = value
    return switches


def project_switches(config: Mapping[str, Any]) -> dict[str, bool]:
    """The switches in force for a project config (``protocol`` + ``protocol_switches``)."""
    return resolve(config.get("protocol", "validation"), config.get("protocol_switches"))


def label(protocol: str, switches: Mapping[str, bool]) -> str:
    """A short name for the procedure in force: the preset, plus any switch set apart from it."""
    preset = PRESETS[protocol]
    flipped = [f"{name}={'on' if switches[name] else 'off'}" for name in SWITCHES
               if switches.get(name, preset[name]) != preset[name]]
    return protocol if not flipped else f"{protocol} ({', '.join(flipped)})"


def selection_curve(switches: Mapping[str, bool]) -> str:
    """The curve the grid search selects by, as the analysis names it (its ``protocol``
    argument): ``"paper"`` (the test set, the authors' way) or ``"validation"``."""
    return "paper" if switches.get("test_curves") else "validation"


def shaping(switches: Mapping[str, bool], *, kind: str, arch: str, task: str, channels: int) -> dict[str, bool]:
    """The switches that change one training job, with their values."""
    relevant = {"test_curves"}  # every job records the curve that selection and rates use
    if task == "classification":
        relevant.add("monitor_val_acc")
        if kind == "referent":
            relevant.add("referents_as_regression")
    if arch == "magnet":
        relevant.add("magnet_dropout_at_inference")
    if channels == 1 and kind in TARGET_KINDS:
        relevant.add("duplicate_single_channel")
    if kind == "finetune":
        relevant.add("adam_step_per_multiplier_group")
    return {name: bool(switches[name]) for name in SWITCHES if name in relevant}


def spec_with(config: Mapping[str, Any], dataset: str, switches: Mapping[str, bool]) -> dict[str, Any]:
    """A job spec from a config (a project config or a job's own spec) and the job's
    switches: what :func:`tstransfer.plan.job_spec` gives and result.json records."""
    return {
        "seed": config["seed"],
        "switches": dict(switches),
        "training": dict(config["training"]),
        "datasets": {dataset: {"stream_max": bool(config["datasets"][dataset].get("stream_max", False))}},
    }


def job_switches(spec: Mapping[str, Any]) -> dict[str, bool]:
    """Every switch for a job: those its spec carries, ours for the rest (they cannot change it).

    A full project config (with ``protocol``, no ``switches``) is resolved as a whole.
    """
    if "switches" not in spec:
        return project_switches(spec)
    switches = dict(PRESETS["validation"])
    for name, value in spec["switches"].items():
        if name not in SWITCHES:
            raise ValueError(f"job spec switches.{name}: unknown switch; known: {', '.join(SWITCHES)}")
        switches[name] = bool(value)
    return switches
