"""Grad mode: `no_grad()` turns graph recording off, e.g. for evaluation and optimizer steps."""

from __future__ import annotations

import functools
import threading

_state = threading.local()


def is_grad_enabled() -> bool:
    """True when ops record the graph (the default)."""
    return getattr(_state, "enabled", True)


class _GradModeContext:
    """Context manager and decorator that sets grad mode and restores it afterwards."""

    enabled: bool

    def __enter__(self):
        self._previous = is_grad_enabled()
        _state.enabled = self.enabled
        return self

    def __exit__(self, *exc_info):
        _state.enabled = self._previous
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with type(self)():
                return func(*args, **kwargs)

        return wrapper


class no_grad(_GradModeContext):  # noqa: N801 - PyTorch's name
    """Disable graph recording: `with tinyllm.no_grad(): ...` or `@tinyllm.no_grad()`."""

    enabled = False


class enable_grad(_GradModeContext):  # noqa: N801 - PyTorch's name
    """Re-enable graph recording inside a `no_grad` block."""

    enabled = True
