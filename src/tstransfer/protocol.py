"""Our procedure and the authors', as one named switch per difference (REFERENCE.md section 6).

Each switch is ``True`` where a job does what the authors' code did, ``False`` where it
does what this project does instead (what the paper's text describes, or the fix of a
bug). The config's ``protocol`` is a preset: ``validation`` (the default) sets every
switch to ours, ``paper`` every switch to the authors'. ``protocol_switches`` then sets
any one of them alone, e.g. ``{protocol: validation, protocol_switches:
{referents_as_regression: true}}`` measures what that one bug does to the gains.

A training job receives only the switches that change it (:func:`shaping`, in the spec
:func:`tstransfer.plan.job_spec` builds), so that flipping one reruns exactly the jobs it
shapes; each result.json records them under ``config.switches``. The switches added
after the first studies ran (:data:`LATER_SWITCHES`) are recorded only when on
(:func:`recorded`), so that the specs of ``validation`` runs stayed as they were. Four
switches shape no training job but a rule: ``unstratified_subsets`` (the subsets),
``select_seed_on_test`` (the seed selection), ``authors_data_releases`` (the extract
settings, :func:`data_settings`) and ``ties_to_largest_multiplier`` (the analysis, through
:func:`selection_curve`). Nothing here imports TensorFlow: the Snakefile builds every
job's spec with this module when it parses.
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
    # Added after the first studies ran (LATER_SWITCHES): a job's spec names one only
    # when it is on, so that the specs (and results) of ``validation`` runs stay as they were.
    "drop_last_batch": (
        "an epoch is floor(N/32) training batches, the last partial batch dropped, and each "
        "epoch validates on a seeded random floor(N/32)x32 instances of the validation set "
        "(the authors' DataGenerator); ours: ceil(N/32) batches, the whole validation set"
    ),
    "lstm_hard_sigmoid": (
        "MLSTM-FCN's LSTM gates use hard_sigmoid (TF 1.14's default for "
        "tf.keras.layers.LSTM); ours: sigmoid (Keras 3's default)"
    ),
    "unstratified_subsets": (
        "1k5/9k training subsets drawn by a plain shuffle (resizeDataset.py); ours: "
        "stratified by class, as the paper's text says"
    ),
    "select_seed_on_test": (
        "the best of the pretraining seeds is the one with the best test metric (the "
        "authors chose by hand; their only tools for it read the test set, so their "
        "criterion is unknown); ours: the best validation metric"
    ),
    "ties_to_largest_multiplier": (
        "a tie between multipliers in the per-run choice behind the convergence-rate wins "
        "goes to the largest multiplier (the authors scan 2.0 down); ours: the smallest"
    ),
    "test_metric_from_curve": (
        "MagNet's reported test metric is the test curve's value at the best epoch (with "
        "dropout at inference: that epoch's dropout draw); ours: the best weights evaluated again"
    ),
    "authors_data_releases": (
        "the data as the authors read it: STEAD's 2019 single-file release "
        "(extract layout 'single'), SPEECH clips resampled by a Kaiser-windowed sinc "
        "(extract resampler 'kaiser_best', librosa 0.8.1's default) and padded from a "
        "rotating buffer of the noise recordings (extract padding 'rotating_buffer'); "
        "ours: STEAD's chunked release, scipy's resample_poly, a seeded noise segment"
    ),
}
# Switches added after results were recorded: off, they are left out of a job's spec.
LATER_SWITCHES = ("drop_last_batch", "lstm_hard_sigmoid", "unstratified_subsets", "select_seed_on_test",
                  "ties_to_largest_multiplier", "test_metric_from_curve", "authors_data_releases")
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
    argument): ``"paper"`` (the test set, the authors' way) or ``"validation"``, followed
    by ``+ties_to_largest`` with switch ``ties_to_largest_multiplier``."""
    curve = "paper" if switches.get("test_curves") else "validation"
    # switch ties_to_largest_multiplier (tstransfer.analysis.stats.TIES_TO_LARGEST)
    return curve + "+ties_to_largest" if switches.get("ties_to_largest_multiplier") else curve


def shaping(switches: Mapping[str, bool], *, kind: str, arch: str, task: str, channels: int) -> dict[str, bool]:
    """The switches that change one training job, with their values."""
    # every job records the curve that selection and rates use, and cuts its batches
    relevant = {"test_curves", "drop_last_batch"}
    if task == "classification":
        if not trains_as_regression(switches, kind=kind, task=task):
            relevant.add("monitor_val_acc")  # a regression model monitors val_loss whatever it says
        if kind == "referent":
            relevant.add("referents_as_regression")
    if arch == "magnet":
        relevant.update(("magnet_dropout_at_inference", "test_metric_from_curve"))
    if arch == "mlstm_fcn":
        relevant.add("lstm_hard_sigmoid")
    if channels == 1 and kind in TARGET_KINDS:
        relevant.add("duplicate_single_channel")
    if kind == "finetune":
        relevant.add("adam_step_per_multiplier_group")
    return recorded({name: bool(switches[name]) for name in SWITCHES if name in relevant})


def recorded(switches: Mapping[str, bool]) -> dict[str, bool]:
    """``switches`` as a job's spec (and its checkpoint's fingerprint) records them: a
    switch of :data:`LATER_SWITCHES` only when it is on, so that adding one left the
    specs of the runs made before, and of every run with it off, as they were."""
    return {name: bool(value) for name, value in switches.items()
            if value or name not in LATER_SWITCHES}


def trains_as_regression(switches: Mapping[str, bool], *, kind: str, task: str) -> bool:
    """Whether a job trains a classification target as regression: a referent under
    ``referents_as_regression`` (the authors' ``train.py ... regression``). Such a job
    monitors what a regression model monitors (``val_loss``, MSE on one-hot targets),
    as the authors' train.py chose its callbacks' monitor from the task type
    (train.py lines 200-230), whatever ``monitor_val_acc`` says."""
    return kind == "referent" and task == "classification" and bool(switches["referents_as_regression"])


def monitors_accuracy(switches: Mapping[str, bool], *, task: str, as_regression: bool) -> bool:
    """Whether a job's schedule, early stopping and best weights follow validation
    accuracy: a classification job under ``monitor_val_acc``, unless it trains as
    regression (:func:`trains_as_regression`)."""
    return task == "classification" and not as_regression and bool(switches["monitor_val_acc"])


# Switch authors_data_releases: the extract settings it sets (the data as the authors
# read it: preprocess_stead.py opens waveforms_11_13_19.hdf5; preprocess_speech_commands_8khz.py
# loads with librosa 0.8.1, whose default resampler is resampy's kaiser_best, and pads
# short clips from a rotating buffer of the concatenated noise recordings).
AUTHORS_DATA = {"stead": {"layout": "single"}, "speech": {"resampler": "kaiser_best", "padding": "rotating_buffer"}}
# The synthetic generators' settings it sets: STEAD's files in the single release's layout.
AUTHORS_SYNTHETIC = {"stead": {"layout": "single"}}


def data_settings(switches: Mapping[str, bool], dataset: str, settings: Mapping[str, Any],
                  *, synthetic: bool = False) -> dict[str, Any]:
    """A dataset's extract settings (``synthetic``: its generator's) under the switches:
    as given, or with switch ``authors_data_releases`` what :data:`AUTHORS_DATA` sets."""
    settings = dict(settings)
    if switches.get("authors_data_releases"):
        settings.update((AUTHORS_SYNTHETIC if synthetic else AUTHORS_DATA).get(dataset, {}))
    return settings


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
