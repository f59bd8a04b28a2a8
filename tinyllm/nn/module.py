"""`Module`, `Parameter` and `ModuleList`: the containers every layer and model is built from.

A Module finds its parameters by walking its attributes in the order they were assigned:
a `Parameter`, a sub-`Module`, or a list, tuple or dict holding them. Names are the attribute
paths, exactly as in PyTorch, so a GPT's first attention weight is
`transformer.h.0.attn.c_attn.weight`:

>>> class Affine(Module):
...     def __init__(self):
...         self.weight = Parameter(np.ones(3))
...         self.layers = [Linear(3, 3)]
>>> [name for name, _ in Affine().named_parameters()]
['weight', 'layers.0.weight', 'layers.0.bias']

No registration calls and no `__setattr__` magic: an attribute is a parameter because of what
it holds. Calling `super().__init__()` is customary but optional.

Tied weights (one Parameter reachable under two names, like GPT-2's token embedding and
output head) are yielded once by `parameters()` / `named_parameters()` (under the first name
found) and appear under every name in `state_dict()`, as in PyTorch.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from ..autograd.dtype import get_default_dtype
from ..autograd.tensor import Tensor


class Parameter(Tensor):
    """A Tensor that is a model's learnable weight: a leaf with `requires_grad=True`.

    Floating data given as Python numbers or lists takes the default dtype (float32 unless
    `set_default_dtype` says otherwise); a NumPy array keeps its dtype, as in PyTorch.

    >>> Parameter([1.0, 2.0])
    Parameter containing:
    tensor([1., 2.], requires_grad=True)
    """

    def __init__(self, data, requires_grad: bool = True):
        if isinstance(data, Tensor):
            data = data.data
        arr = np.asarray(data)
        if arr.dtype.kind in "iub" or (arr.dtype.kind == "f" and not isinstance(data, np.ndarray)):
            arr = arr.astype(get_default_dtype())
        super().__init__(arr, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class IncompatibleKeys(NamedTuple):
    """What `load_state_dict(strict=False)` could not match, as in PyTorch."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class StateDictError(ValueError):
    """A state dict that does not fit the model: missing, unexpected or wrongly shaped keys."""


def _walk(prefix: str, value) -> Iterator[tuple[str, object]]:
    """(name, Parameter or Module) pairs directly inside one attribute value."""
    if isinstance(value, Parameter | Module):
        yield prefix, value
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _walk(f"{prefix}.{i}", item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(f"{prefix}.{key}", item)


def _child(parent, key: str, target: str):
    """parent's member `key` (an attribute, or an index/key of a list, ModuleList or dict)."""
    try:
        if isinstance(parent, ModuleList | list | tuple):
            return parent[int(key)]
        if isinstance(parent, dict):
            return parent[key]
        return getattr(parent, key)
    except (AttributeError, IndexError, KeyError, ValueError):
        raise AttributeError(f"no submodule {target!r}: {type(parent).__name__} has no "
                             f"member {key!r}") from None


class Module:
    """Base class of layers and models: subclass it, assign parameters and layers as
    attributes, and write `forward`. `model(x)` calls `model.forward(x)`."""

    training = True  # class default, so a subclass that skips super().__init__() still works

    def __init__(self):
        self.training = True

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ----------------------------------------------------------------- walking the tree
    def _members(self) -> Iterator[tuple[str, object]]:
        """(name, Parameter or Module) for each direct member, in assignment order."""
        for attr, value in vars(self).items():
            yield from _walk(attr, value)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, member in self._members():
            if isinstance(member, Module):
                yield name, member

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """Every module in the tree, this one first (name ''), each once."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            kids = [(f"{name}.{n}" if name else n, m) for n, m in module.named_children()]
            stack.extend(reversed(kids))

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def get_submodule(self, target: str) -> Module:
        """The submodule called `target` ("transformer.h.0.attn"; "" is this module)."""
        module = self
        for key in filter(None, target.split(".")):
            module = _child(module, key, target)
        return module

    def set_submodule(self, target: str, module: Module) -> None:
        """Put `module` where the submodule called `target` is (an attribute, or an entry of
        a list, ModuleList or dict), as PyTorch's `Module.set_submodule`."""
        *path, last = target.split(".")
        parent = self.get_submodule(".".join(path))
        if isinstance(parent, ModuleList):
            parent._items[int(last)] = module
        elif isinstance(parent, list):
            parent[int(last)] = module
        elif isinstance(parent, dict):
            parent[last] = module
        elif isinstance(parent, tuple):
            raise TypeError(f"set_submodule: cannot replace {target}: it sits in a tuple; "
                            "hold the layers in a list or ModuleList")
        else:
            setattr(parent, last, module)

    def named_parameters(self, prefix: str = "",
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(name, Parameter) pairs; a tied Parameter comes once unless remove_duplicate=False."""
        seen: set[int] = set()
        stack: list[tuple[str, object]] = [(prefix, self)]
        while stack:
            name, member = stack.pop()
            if isinstance(member, Parameter):
                if remove_duplicate and id(member) in seen:
                    continue
                seen.add(id(member))
                yield name, member
                continue
            kids = [(f"{name}.{n}" if name else n, m) for n, m in member._members()]
            stack.extend(reversed(kids))

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def num_params(self) -> int:
        """Number of scalar parameters (a tied weight counted once)."""
        return sum(p.data.size for p in self.parameters())

    def apply(self, fn) -> Module:
        """Call `fn(module)` on every module of the tree (children first), as in PyTorch."""
        for module in reversed(list(self.modules())):
            fn(module)
        return self

    # ----------------------------------------------------------------- modes and grads
    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout active) or, with mode=False, evaluation mode."""
        for module in self.modules():
            module.training = bool(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's gradient (to None, or to zeros with set_to_none=False)."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad[...] = 0

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    # ----------------------------------------------------------------- dtype
    def to(self, dtype) -> Module:
        """Convert every floating parameter (and its gradient) to `dtype`, in place."""
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"to: parameters must stay floating; got dtype {dtype}")
        for p in self.parameters():
            p.data = p.data.astype(dtype, copy=False)
            if p.grad is not None:
                p.grad = p.grad.astype(dtype, copy=False)
        return self

    def float(self) -> Module:
        return self.to(np.float32)

    def double(self) -> Module:
        return self.to(np.float64)

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the first parameter (the model's working precision)."""
        for p in self.parameters():
            return p.dtype
        return get_default_dtype()

    # ----------------------------------------------------------------- state dict
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """name -> the parameter's array, for every name (tied weights under each of theirs).

        The arrays are the parameters' own, not copies (as PyTorch's tensors share storage):
        copy them if you keep a state dict while training goes on.
        """
        return OrderedDict((name, p.data)
                           for name, p in self.named_parameters(remove_duplicate=False))

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy arrays from `state_dict` (name -> array) into the parameters.

        The Parameter objects stay the same (an optimizer built on them keeps working); each
        takes a copy of its array, converted to the parameter's dtype.
        A tied parameter is loaded if any one of its names is present. With `strict=True`
        missing and unexpected keys are an error; a wrong shape always is. The message lists
        every problem at once.
        """
        named = list(self.named_parameters(remove_duplicate=False))
        loaded_from: dict[int, str] = {}
        wrong: list[str] = []
        seen_wrong: set[int] = set()
        for name, p in named:
            if name not in state_dict:
                continue
            value = np.asarray(state_dict[name])
            if value.shape != p.shape:
                wrong.append(f"{name}: expected shape {p.shape}, given {value.shape}")
                seen_wrong.add(id(p))
                continue
            if value.dtype.kind != "f":
                wrong.append(f"{name}: expected a floating array, given dtype {value.dtype}")
                seen_wrong.add(id(p))
                continue
            first = loaded_from.setdefault(id(p), name)
            if first != name and not np.array_equal(value, state_dict[first]):
                wrong.append(f"{name} and {first} are one (tied) parameter in this model, "
                             "but the state dict gives them different values")
        names = {name for name, _ in named}
        missing = [name for name, p in named
                   if id(p) not in loaded_from and id(p) not in seen_wrong]
        unexpected = [key for key in state_dict if key not in names]
        problems = list(wrong)
        if strict:
            if missing:
                problems.append(f"missing keys ({len(missing)}): {', '.join(missing)}")
            if unexpected:
                problems.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
        if problems:
            raise StateDictError(f"load_state_dict: the state dict does not fit "
                                 f"{type(self).__name__}:\n  " + "\n  ".join(problems))
        for name, p in named:
            if loaded_from.get(id(p)) == name:
                p.data = np.array(state_dict[name], dtype=p.dtype, copy=True)
        return IncompatibleKeys(missing, unexpected)

    # ----------------------------------------------------------------- printing
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        kids = list(self.named_children())
        extra = self.extra_repr()
        if not kids:
            return f"{type(self).__name__}({extra})"
        lines = [f"{type(self).__name__}("] + ([f"  {extra}"] if extra else [])
        for name, module in kids:
            body = repr(module).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)"


class ModuleList(Module):
    """A list of modules whose parameters are named by index: `h.0.attn...`, `h.1.attn...`."""

    def __init__(self, modules=()):
        super().__init__()
        self._items: list[Module] = []
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> ModuleList:
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList: can only hold Modules, got {type(module).__name__}")
        self._items.append(module)
        return self

    def _members(self):
        for i, module in enumerate(self._items):
            yield str(i), module

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ModuleList(self._items[index])
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._items)
