"""`Optimizer`: the base class every tinyllm optimizer shares, with PyTorch's structure.

An optimizer holds `param_groups`, a list of dicts. Each group has `"params"` (a list of
tensors) and its own copy of every hyperparameter, filled in from `defaults` where the group
does not say otherwise:

>>> import tinyllm
>>> from tinyllm.optim import SGD
>>> w = tinyllm.tensor([1.0, 2.0], requires_grad=True)
>>> b = tinyllm.tensor([0.5], requires_grad=True)
>>> opt = SGD([{"params": [w]}, {"params": [b], "lr": 0.5}], lr=0.1)
>>> [group["lr"] for group in opt.param_groups]
[0.1, 0.5]

`state` maps a parameter to its per-parameter state (momentum buffers, Adam's moments...),
created lazily on the first step in which the parameter has a gradient.

The optimizers only touch `p.data` and `p.grad`, so they work with any object that has those
two attributes: a `tinyllm.Tensor`, an `nn.Parameter`, or a stand-in in a test.

`state_dict()` has PyTorch's layout, with parameters replaced by their position (counting
through the groups in order) so it can be saved and loaded into a fresh optimizer::

    {"state": {0: {"step": 3, "exp_avg": ndarray, "exp_avg_sq": ndarray}, 1: {...}},
     "param_groups": [{"lr": 0.001, "betas": (0.9, 0.999), ..., "params": [0, 1]}, ...]}

Everything except the arrays in `"state"` is plain Python (ints, floats, bools, strings,
lists and tuples), so a checkpoint can write the arrays to safetensors and the rest to JSON.
After a JSON round trip the `"state"` keys may be strings and tuples may be lists:
`load_state_dict` accepts both.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from typing import Any

import numpy as np

from ..autograd import enable_grad


class Optimizer:
    """Base class: parameter groups, lazy per-parameter state, `step`, `zero_grad`, `state_dict`.

    A subclass checks its hyperparameters in `_validate_group` and updates one parameter in
    `_update(p, group)`; `step` calls it for every parameter that has a gradient.
    """

    def __init__(self, params, defaults: dict[str, Any]):
        if hasattr(params, "data") and hasattr(params, "grad"):
            raise TypeError(
                f"{type(self).__name__}: params must be an iterable of tensors or of dicts "
                f"(parameter groups), but got a single {type(params).__name__}; "
                "wrap it in a list: [param]")
        if isinstance(params, set):
            raise TypeError(f"{type(self).__name__}: parameters must be in an ordered "
                            "collection (a list), not a set: a set's order changes between runs")
        self.defaults = dict(defaults)
        self.state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        # Reusable work arrays, keyed by (dtype, slot): one update's temporaries are views
        # into these, so a step allocates nothing after the first.
        self._scratch: dict[tuple[np.dtype, int], np.ndarray] = {}

        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ----------------------------------------------------------------- groups
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyperparameters (missing ones from `defaults`).

        `param_group["params"]` may be one tensor, a list of tensors, or a list of
        `(name, tensor)` pairs (as `model.named_parameters()` yields), which also records the
        names under `"param_names"`, as PyTorch does.
        """
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}: a parameter group must be a dict, "
                            f"but got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{name}: a parameter group needs a 'params' key; "
                             f"got keys {sorted(param_group)}")
        group = dict(param_group)
        params = group["params"]
        if hasattr(params, "data") and hasattr(params, "grad"):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(f"{name}: parameters must be in an ordered collection (a list), "
                            "not a set: a set's order changes between runs")
        params = list(params)

        names = [p[0] for p in params if isinstance(p, tuple)]
        if names:
            if len(names) != len(params):
                raise ValueError(f"{name}: give every parameter a name or none of them; "
                                 f"{len(names)} of {len(params)} are (name, tensor) pairs")
            group["param_names"] = names
            params = [p[1] for p in params]
        group["params"] = params

        for p in params:
            if not (hasattr(p, "data") and hasattr(p, "grad")):
                raise TypeError(f"{name}: can only optimize tensors (objects with .data and "
                                f".grad), but one of the params is a {type(p).__name__}")
            if not getattr(p, "is_leaf", True):
                raise ValueError(f"{name}: can't optimize a non-leaf tensor (one computed by "
                                 "an op); optimize the leaf it came from")
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{name}: a parameter group lists the same tensor twice")

        for key, default in self.defaults.items():
            group.setdefault(key, default)
        self._validate_group(group)

        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError(f"{name}: some parameters appear in more than one parameter group")
        if self.param_groups and (("param_names" in group)
                                  != ("param_names" in self.param_groups[0])):
            raise ValueError(f"{name}: all parameter groups must be given with names "
                             "((name, tensor) pairs) or all without")
        self.param_groups.append(group)

    def _validate_group(self, group: dict[str, Any]) -> None:
        """Raise ValueError for a bad hyperparameter; subclasses check their own."""

    # ----------------------------------------------------------------- stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's gradient: drop it (the default, frees memory) or zero it."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.fill(0)

    def step(self, closure=None):
        """Update every parameter that has a gradient; returns `closure()`'s loss if given."""
        loss = self._evaluate(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, group)
        return loss

    def _update(self, p, group: dict[str, Any]) -> None:
        """Update one parameter `p` in place from `p.grad` and `group`'s hyperparameters."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _update()")

    @staticmethod
    def _evaluate(closure):
        """Run `closure` (which recomputes the loss and calls backward) with grad enabled."""
        if closure is None:
            return None
        with enable_grad():
            return closure()

    def _buffers(self, like: np.ndarray, count: int) -> list[np.ndarray]:
        """`count` scratch arrays with `like`'s shape and dtype (contents undefined)."""
        out = []
        for slot in range(count):
            key = (like.dtype, slot)
            flat = self._scratch.get(key)
            if flat is None or flat.size < like.size:
                flat = np.empty(like.size, dtype=like.dtype)
                self._scratch[key] = flat
            out.append(flat[:like.size].reshape(like.shape))
        return out

    # ----------------------------------------------------------------- saving
    def state_dict(self) -> dict[str, Any]:
        """A snapshot of the optimizer: state arrays are copies (see the module docstring)."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            packed["params"] = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                packed["params"].append(index[id(p)])
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                saved = self.state.get(p)
                if saved:
                    state[index[id(p)]] = {
                        k: v.copy() if isinstance(v, np.ndarray) else v
                        for k, v in saved.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyperparameters and state saved by `state_dict` (parameters stay these ones).

        The saved groups must match this optimizer's: same count, same sizes, and every state
        array the shape of its parameter. Arrays are copied and cast to the parameter's dtype.
        """
        name = type(self).__name__
        for key in ("state", "param_groups"):
            if key not in state_dict:
                raise ValueError(f"{name}.load_state_dict: missing key {key!r}; "
                                 f"got keys {sorted(state_dict)}")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}.load_state_dict: the saved state has {len(saved_groups)} parameter "
                f"groups but this optimizer has {len(self.param_groups)}")
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"{name}.load_state_dict: saved parameter group {i} has "
                    f"{len(saved['params'])} parameters but this optimizer's has "
                    f"{len(group['params'])}")

        params_by_index = {}
        for saved, group in zip(saved_groups, self.param_groups):
            for idx, p in zip(saved["params"], group["params"]):
                params_by_index[int(idx)] = p

        new_state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)
        for key, saved in state_dict["state"].items():
            try:
                p = params_by_index[int(key)]
            except (KeyError, ValueError):
                raise ValueError(
                    f"{name}.load_state_dict: state for parameter {key!r}, which no saved "
                    f"group lists; known parameters are 0..{len(params_by_index) - 1}"
                ) from None
            new_state[p] = {k: _restore_value(name, key, k, v, p) for k, v in saved.items()}

        new_groups = []
        for saved, group in zip(saved_groups, self.param_groups):
            restored = {k: copy.deepcopy(v) for k, v in saved.items() if k != "params"}
            if isinstance(restored.get("betas"), list):  # JSON turned the tuple into a list
                restored["betas"] = tuple(restored["betas"])
            if "param_names" in group and "param_names" not in restored:
                restored["param_names"] = group["param_names"]
            restored["params"] = group["params"]
            self._validate_group(restored)
            new_groups.append(restored)
        self.param_groups = new_groups
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key not in ("params", "param_names"):
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def _restore_value(opt_name: str, index, key: str, value, param):
    """One saved state entry, checked against its parameter and in the parameter's dtype."""
    if key == "step":
        return int(np.asarray(value))  # may come back from safetensors as a 0-d array
    if isinstance(value, np.ndarray | list):
        arr = np.asarray(value)
        if arr.shape != param.data.shape:
            raise ValueError(
                f"{opt_name}.load_state_dict: saved {key!r} for parameter {index} has shape "
                f"{arr.shape} but the parameter has shape {param.data.shape}")
        return np.array(arr, dtype=param.data.dtype)  # a copy: the caller's arrays stay theirs
    return value
