"""Adam with a per-variable learning-rate multiplier (the paper's omega).

The paper fine-tunes the transferred layers at ``omega`` times the learning rate of the
freshly initialised ones (keras-lr-multiplier in the authors' code). Here that is one Adam
whose ``update_step`` scales the learning rate it is given by the variable's multiplier:

* one Adam step per batch for all variables (a library that runs one optimizer per
  multiplier group would advance Adam's step count once per group; REFERENCE.md section 6);
* the multiplier scales the *current* learning rate, so a change of the base rate
  (ReduceLROnPlateau, ``optimizer.learning_rate = ...``) moves every rate together;
* scaling the learning rate, not the gradient: Adam divides a constant gradient scale out.

With the TensorFlow backend ``update_step`` receives the raw ``tf.Variable`` (no ``.path``),
so multipliers are resolved once per variable index in :meth:`MultiplierAdam.build`.

``step_per_group=True`` reproduces the authors' keras-lr-multiplier 0.8.0 (protocol switch
``adam_step_per_multiplier_group``): it calls the wrapped Adam's ``get_updates`` once per
group of variables sharing a multiplier, and each call adds one to the shared step count,
so after ``b`` batches the count is ``k * b`` for ``k`` groups (two when omega != 1, one
when omega == 1: the transferred layers' group merges with the rest). The count enters
Adam only through its bias correction ``sqrt(1 - beta_2^t) / (1 - beta_1^t)``, which is
linear in the learning rate, so it is reproduced exactly by scaling each step's rate by
that correction at ``t = k * b + 1`` over the one at ``t = b + 1``. One detail cannot be
recovered: in TensorFlow 1.14's graph mode a group's read of the count is not ordered
against another group's increment in the same batch, so a group may have seen ``k b + 2``
instead; every group here sees ``k b + 1``. The two differ only in the first steps (the
correction tends to 1 as ``t`` grows).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import keras

DEFAULT_MULTIPLIER = 1.0


@keras.saving.register_keras_serializable(package="tstransfer")
class MultiplierAdam(keras.optimizers.Adam):
    """Adam where each variable's learning rate is multiplied by its multiplier.

    ``multipliers``: a list of ``(variable, multiplier)`` pairs, or a mapping keyed by
    variable path (``"conv1/kernel"``) or by ``id(variable)``. Variables not named get
    1.0. Every named variable must be among those the optimizer is built with; otherwise
    :meth:`build` raises, since a silently unmatched multiplier would fine-tune a
    transferred layer at the full rate. ``get_config`` records multipliers by path.
    """

    def __init__(self, learning_rate=1e-3, multipliers=None, step_per_group=False, **adam_kwargs):
        if adam_kwargs.get("weight_decay") is not None:
            # Keras applies decoupled weight decay outside update_step with the base rate,
            # so it would ignore the multipliers.
            raise ValueError("MultiplierAdam does not support weight_decay")
        super().__init__(learning_rate=learning_rate, **adam_kwargs)
        self._multipliers_by_id, self._multipliers_by_path, self._config_paths = (
            _parse_multipliers(multipliers)
        )
        self._multiplier_by_index: tuple[float, ...] = ()
        self.step_per_group = bool(step_per_group)
        self._steps_per_batch = 1

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        matched_ids, matched_paths = set(), set()
        multiplier_by_index = [DEFAULT_MULTIPLIER] * len(variables)
        for variable in variables:
            # A variable given as an object (or id) is matched by identity; a path given
            # as a string (e.g. from a saved config) matches every variable with that path.
            if id(variable) in self._multipliers_by_id:
                multiplier = self._multipliers_by_id[id(variable)]
                matched_ids.add(id(variable))
                _put(self._config_paths, variable.path, multiplier, variable.path)
            elif variable.path in self._multipliers_by_path:
                multiplier = self._multipliers_by_path[variable.path]
                matched_paths.add(variable.path)
            else:
                continue
            multiplier_by_index[self._get_variable_index(variable)] = multiplier
        unmatched = [
            *(f"id {key}" for key in self._multipliers_by_id.keys() - matched_ids),
            *(f"path {key!r}" for key in self._multipliers_by_path.keys() - matched_paths),
        ]
        if unmatched:
            raise ValueError(
                "multipliers given for variables the optimizer does not train: "
                + ", ".join(sorted(unmatched))
            )
        self._multiplier_by_index = tuple(multiplier_by_index)
        if self.step_per_group:
            self._steps_per_batch = len(set(multiplier_by_index))

    @property
    def steps_per_batch(self) -> int:
        """How far Adam's step count advances per batch (the number of groups, or 1)."""
        return self._steps_per_batch

    def update_step(self, gradient, variable, learning_rate):
        multiplier = self._multiplier_by_index[self._get_variable_index(variable)]
        if multiplier != DEFAULT_MULTIPLIER:
            learning_rate = keras.ops.multiply(
                keras.ops.cast(learning_rate, variable.dtype), multiplier
            )
        if self._steps_per_batch > 1:
            learning_rate = keras.ops.multiply(
                keras.ops.cast(learning_rate, variable.dtype), self._step_count_correction(variable.dtype)
            )
        super().update_step(gradient, variable, learning_rate)

    def _step_count_correction(self, dtype):
        """Adam's bias correction at the group-advanced count over the one at this batch's."""
        ops = keras.ops
        batch = ops.cast(self.iterations, dtype)
        beta_1, beta_2 = ops.cast(self.beta_1, dtype), ops.cast(self.beta_2, dtype)

        def correction(step):
            return ops.sqrt(1 - ops.power(beta_2, step)) / (1 - ops.power(beta_1, step))

        return correction(batch * self._steps_per_batch + 1) / correction(batch + 1)

    def multiplier(self, variable) -> float:
        """The multiplier of a variable the optimizer was built with."""
        if not self.built:
            raise ValueError("the optimizer is not built yet")
        return self._multiplier_by_index[self._get_variable_index(variable)]

    @property
    def multipliers_by_path(self) -> dict[str, float]:
        """The given multipliers keyed by variable path, as ``get_config`` records them.

        Multipliers given by ``id`` only get their path once the optimizer is built.
        """
        return dict(self._config_paths)

    def get_config(self):
        config = super().get_config()
        config["multipliers"] = dict(self._config_paths)
        config["step_per_group"] = self.step_per_group
        return config


def _parse_multipliers(multipliers):
    """(by id, by path, for the config) from the constructor's ``multipliers`` argument.

    Variables resolve by identity, strings by path; the third table is every multiplier
    keyed by path, which is what ``get_config`` can record.
    """
    by_id: dict[int, float] = {}
    by_path: dict[str, float] = {}
    config_paths: dict[str, float] = {}
    if multipliers is None:
        return by_id, by_path, config_paths
    if isinstance(multipliers, Mapping):
        items = list(multipliers.items())
    elif isinstance(multipliers, Iterable):
        items = [tuple(pair) for pair in multipliers]
    else:
        raise TypeError(f"multipliers must be a mapping or (variable, float) pairs, got {type(multipliers)}")

    for item in items:
        if len(item) != 2:
            raise ValueError(f"expected (variable, multiplier), got {item!r}")
        key, value = item
        value = _as_multiplier(value, key)
        if isinstance(key, str):
            _put(by_path, key, value, key)
            _put(config_paths, key, value, key)
        elif isinstance(key, int) and not isinstance(key, bool):
            _put(by_id, key, value, f"id {key}")
        elif isinstance(key, keras.Variable):
            _put(by_id, id(key), value, key.path)
            # Two variables with one path but different multipliers could not be told
            # apart after a config round trip.
            _put(config_paths, key.path, value, key.path)
        else:
            raise TypeError(f"multiplier keys must be variables, paths or ids, got {key!r}")
    return by_id, by_path, config_paths


def _put(table: dict, key, value: float, label: str) -> None:
    if key in table and table[key] != value:
        raise ValueError(f"conflicting multipliers for {label}: {table[key]} and {value}")
    table[key] = value


def _as_multiplier(value, key) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"multiplier for {key!r} must be a number, got {value!r}") from None
    if not value >= 0.0 or value == float("inf"):
        raise ValueError(f"multiplier for {key!r} must be finite and >= 0, got {value}")
    return value


def make_optimizer(
    learning_rate: float, transferred_variables, omega: float, step_per_group: bool = False
) -> MultiplierAdam:
    """Adam at ``learning_rate``, with ``omega`` times that rate on ``transferred_variables``.

    ``step_per_group``: advance Adam's step count once per multiplier group per batch, as
    the authors' keras-lr-multiplier did (see the module docstring).
    """
    return MultiplierAdam(
        learning_rate=learning_rate,
        multipliers=[(variable, omega) for variable in transferred_variables],
        step_per_group=step_per_group,
    )
