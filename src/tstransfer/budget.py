"""How much a training job trains, and on what it stops: two settings of ``training:``
for training sets of a few batches (a UCR/UEA problem's 30-50 instances), each off by
default (the paper's behaviour).

* ``min_epoch_steps`` (:func:`epoch_passes`, used by :class:`tstransfer.feed.Feed`): an
  epoch is as many passes over the training set as make at least this many batches, so
  that ``max_epochs`` and the patiences of the LR schedule and early stopping count
  enough optimizer steps;
* ``monitor`` (:func:`monitored_value`, used by :class:`tstransfer.training.EpochLoop`):
  what the schedule, early stopping and the best weights follow;
* ``batch_fraction`` (:func:`batch_size_for`, used by :class:`tstransfer.feed.Feed`):
  batches of a tenth of the training set, at most ``batch_size``, as Ismail Fawaz et al.
  train on the UCR/UEA archives.
"""

from __future__ import annotations

from collections.abc import Mapping


def epoch_passes(n_train: int, batch_size: int, min_epoch_steps: int) -> int:
    """Passes over a training set of ``n_train`` instances that make one epoch: the fewest
    whose batches number at least ``min_epoch_steps`` (config ``training.min_epoch_steps``).

    1 for any set of ``min_epoch_steps`` batches or more (the paper's 1,500 instances are
    47 batches of 32), and always 1 without the setting (0). For tiny training sets (a
    UCR problem's 30 instances are 1 batch) an epoch otherwise holds so few optimizer steps
    that the epoch-counted budget and patience stop training before it has learned.
    """
    if min_epoch_steps <= 0:
        return 1
    return (int(min_epoch_steps) - 1) * int(batch_size) // int(n_train) + 1


def batch_size_for(n_train: int, batch_size: int, batch_fraction: float) -> int:
    """The batch size of a job whose training set holds ``n_train`` instances:
    ``batch_size`` (config ``training.batch_size``) without ``batch_fraction``, else
    ``min(batch_size, floor(n_train * batch_fraction))``, at least 1.

    With ``batch_fraction: 0.1`` and ``batch_size: 16`` this is Ismail Fawaz et al.'s
    ``int(min(x_train.shape[0] / 10, 16))`` (dl-4-tsc, classifiers/fcn.py), the batches
    behind the published FCN/ResNet accuracies: 3-5 instances on a training file of 30-55,
    which also makes a step on those problems a fraction of the cost of one of 16.
    """
    if not batch_fraction:
        return int(batch_size)
    # round first: 70 * 0.1 is 7.000000000000001 and 0.7 * 10 is 7.000000000000001 too,
    # but a product a hair below an integer must not lose one
    return max(1, min(int(batch_size), int(round(n_train * float(batch_fraction), 9))))


MONITORS = ("val_loss", "train_loss")


def monitored_value(row: Mapping[str, float], *, monitor: str, monitor_accuracy: bool) -> float:
    """The number ReduceLROnPlateau, EarlyStopping and the best weights follow (mode min).

    ``monitor`` (config ``training.monitor``): ``val_loss`` (default; the paper's text),
    or ``train_loss``, the epoch's mean training loss, as Ismail Fawaz et al. (2019) train
    FCN and ResNet on the UCR archive: the archive has no validation split, and one drawn
    from a training file of 30-50 instances holds 6-9, whose loss picks an epoch at
    random. ``monitor_accuracy`` (switch ``monitor_val_acc``, with ``val_loss``): the
    validation accuracy, negated (Keras's mode max is mode min on the negative).
    """
    if monitor == "train_loss":
        return row["train_loss"]
    return -row["val_accuracy"] if monitor_accuracy else row["val_loss"]
