"""The autograd engine: `Tensor`, `Function`, the backward walk, grad mode and dtype policy."""

from . import ops
from .dtype import default_dtype, get_default_dtype, set_default_dtype
from .function import Function  # noqa: I001 - Function needs Tensor defined first
from .grad_mode import enable_grad, is_grad_enabled, no_grad
from .random import default_generator, get_rng_state, manual_seed, set_rng_state
from .tensor import Tensor

__all__ = [
    "Function", "Tensor", "default_dtype", "default_generator", "enable_grad",
    "get_default_dtype", "get_rng_state", "is_grad_enabled", "manual_seed", "no_grad", "ops",
    "set_default_dtype", "set_rng_state",
]
