"""The global random generator behind dropout, initialisation and `tinyllm.randn`."""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Seed tinyllm's global generator (like `torch.manual_seed`) and return it."""
    global _generator
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"manual_seed: seed must be a non-negative integer, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def default_generator() -> np.random.Generator:
    """The generator used when an op is not handed one explicitly."""
    return _generator


def get_rng_state() -> dict:
    """The global generator's state, JSON-serialisable (for checkpoints)."""
    return _generator.bit_generator.state


def set_rng_state(state: dict) -> None:
    """Restore a state returned by `get_rng_state`."""
    _generator.bit_generator.state = state
