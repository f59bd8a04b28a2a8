"""dtype policy: float32 by default, float64 on request (gradient checks run in float64)."""

from __future__ import annotations

import numpy as np

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_default = np.dtype(np.float32)

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int64 = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)


def set_default_dtype(dtype) -> None:
    """Set the dtype of new floating tensors and parameters: float32 (default) or float64."""
    global _default
    dt = np.dtype(dtype)
    if dt not in _FLOAT_DTYPES:
        raise ValueError(
            f"set_default_dtype: {dt} is not supported; accepted: float32, float64")
    _default = dt


def get_default_dtype() -> np.dtype:
    """The dtype new floating tensors get when none is given."""
    return _default


class default_dtype:  # noqa: N801 - reads like set_default_dtype
    """Context manager: `with default_dtype(np.float64): ...` restores the old default on exit."""

    def __init__(self, dtype):
        self.dtype = dtype

    def __enter__(self):
        self._previous = get_default_dtype()
        set_default_dtype(self.dtype)
        return self

    def __exit__(self, *exc_info):
        set_default_dtype(self._previous)
        return False
