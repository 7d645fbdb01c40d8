"""Deterministic random streams derived from the config seed.

Every random draw in the project comes from ``rng_for(seed, *parts)``: the same config
seed and the same parts (dataset name, run, job, ...) always give the same stream, and
different parts give independent streams (numpy ``SeedSequence`` spawning semantics).
Keras draws dropout masks from seed generators inside the model; :func:`seeds_kept` lets a
pass that only records (an evaluation with dropout on) leave the training's draws alone.
"""

from __future__ import annotations

import contextlib
import zlib

import numpy as np


def _as_int(part: object) -> int:
    if isinstance(part, (bool, np.bool_)):
        return int(part)
    if isinstance(part, (int, np.integer)):
        if part < 0:
            raise ValueError(f"seed parts must be non-negative, got {part}")
        return int(part)
    # Strings and floats: a stable 32-bit hash (Python's hash() is salted per process).
    return zlib.crc32(str(part).encode("utf-8"))


def seed_sequence(seed: int, *parts: object) -> np.random.SeedSequence:
    """The SeedSequence for ``seed`` and a path of identifying ``parts``."""
    return np.random.SeedSequence([_as_int(seed), *(_as_int(p) for p in parts)])


def rng_for(seed: int, *parts: object) -> np.random.Generator:
    """A numpy Generator for ``seed`` and ``parts``; see module docstring."""
    return np.random.default_rng(seed_sequence(seed, *parts))


def int_seed(seed: int, *parts: object) -> int:
    """A 31-bit integer seed (for TensorFlow/Keras) derived like ``rng_for``."""
    return int(seed_sequence(seed, *parts).generate_state(1, dtype=np.uint32)[0] & 0x7FFFFFFF)


def seed_states(model) -> list:
    """The state variables of ``model``'s random-seed generators (dropout masks): Keras
    counts them among a layer's ``variables``, not its ``weights``."""
    weights = {id(weight) for weight in model.weights}
    return [variable for variable in model.variables if id(variable) not in weights]


@contextlib.contextmanager
def seeds_kept(model):
    """Runs the block and puts ``model``'s seed-generator states back as they were: what
    the block draws (an evaluation with dropout on, say) leaves the training's draws alone."""
    states = seed_states(model)
    saved = [state.numpy() for state in states]
    try:
        yield
    finally:
        for state, value in zip(states, saved):
            state.assign(value)
