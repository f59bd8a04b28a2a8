"""Post-training weight quantization: int8 per tensor or per output channel, 4-bit in groups.

Shapes: `out` / `in` a layer's features, g the group size, `*` any leading dimensions.

A weight matrix W (out, in) is stored as small integers q and float scales s, W ~ s q. The
quantizer is uniform and symmetric (zero is exact, no zero-point), with "absmax" scales:

    int8-tensor    s = max|W| / 127            one scale (1,)      q = round(W / s) in [-127, 127]
    int8-channel   s_o = max_i |W[o, i]| / 127  one per output row  (out,) float32 scales
    int4-g{g}      per group of g consecutive inputs of one row: m = the weight of largest
                   magnitude (with its sign), s = m / -8, q = clip(round(W / s), -8, 7)

The 4-bit scheme is llama.cpp's Q4_0 (blocks of 32 weights, one float16 scale each, 4.5 bits
per weight) with the group size free (32, 64 or 128, as GPTQ's group-wise storage): dividing
by -m sends the largest weight to exactly -8, so all 16 levels are in use; the nibble q + 8
is stored, two per byte, as Q4_0 does: in each group, byte j holds input j in its low nibble
and input j + g/2 in its high one (so a kernel reads both halves of the inputs in order).
The rounding error of each
weight is at most s / 2 (int8) and |s| / 2 for int4, except a weight of -m in a group whose
largest magnitude m is also reached with the opposite sign: it is clipped from 8 to 7, an
error of |s|.

Why per channel or per group: one outlier weight sets the scale of every weight it shares a
scale with, and the others then use a few levels only. A scale per row (or per 64 weights)
confines an outlier's damage to its row (group).

`QuantizedLinear` holds q and s (not Parameters: they are not trained) and computes
y = x dequant(W)^T + b; the bias stays a float Parameter (frozen). `quantize_model` swaps a
model's Linear/Conv1D layers for it; `load_quantized` rebuilds them from a saved state.
Saved names: `<layer>.weight` holds q (int8, or uint8 with two nibbles per byte) in (out, in)
layout -- also for GPT-2's (in, out) Conv1D, whose weight is transposed once when quantized --
and `<layer>.weight_scale` holds s (float32 for int8, float16 for int4, as Q4_0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .. import functional as F
from ..autograd.dtype import get_default_dtype
from ..autograd.tensor import Tensor
from ..kernels.reference import dequantize, unpack_int4  # noqa: F401 - unpack_int4 re-exported
from .layers import Conv1D, Linear
from .module import Module, Parameter

#: The layer types that quantize: PyTorch-layout `Linear` (out, in) and GPT-2's `Conv1D`.
QUANTIZABLE_TYPES = (Linear, Conv1D)
#: The group sizes accepted for int4 (llama.cpp's Q4_0 uses 32; GPTQ commonly 64 or 128).
INT4_GROUP_SIZES = (32, 64, 128)
_SCHEME_RE = re.compile(r"int8-tensor|int8-channel|int4-g(\d+)")


@dataclass(frozen=True)
class QuantScheme:
    """How a weight is stored: `name` is "int8-tensor", "int8-channel" or "int4-g<group>"."""

    name: str

    @classmethod
    def parse(cls, name: str, where: str = "quantize") -> QuantScheme:
        """The scheme called `name`, or a ValueError naming the accepted ones."""
        match = _SCHEME_RE.fullmatch(name) if isinstance(name, str) else None
        if match is None:
            raise ValueError(f"{where}: unknown quantization scheme {name!r}; accepted: "
                             "int8-tensor, int8-channel, "
                             + ", ".join(f"int4-g{g}" for g in INT4_GROUP_SIZES))
        if match.group(1) is not None and int(match.group(1)) not in INT4_GROUP_SIZES:
            raise ValueError(f"{where}: int4 group size {match.group(1)} is not accepted; "
                             f"accepted: {', '.join(map(str, INT4_GROUP_SIZES))}")
        return cls(name)

    @property
    def bits(self) -> int:
        return 4 if self.name.startswith("int4") else 8

    @property
    def group_size(self) -> int | None:
        """Inputs per scale for int4; None for the int8 schemes."""
        return int(self.name[6:]) if self.bits == 4 else None

    @property
    def scale_dtype(self) -> np.dtype:
        return np.dtype(np.float16 if self.bits == 4 else np.float32)

    def check_shape(self, out_features: int, in_features: int, where: str = "quantize") -> None:
        """A ValueError when the group size does not divide the input dimension."""
        g = self.group_size
        if g is not None and in_features % g:
            fits = [str(s) for s in INT4_GROUP_SIZES if not in_features % s]
            raise ValueError(f"{where}: group size {g} does not divide the input dimension "
                             f"{in_features} (a weight of shape ({out_features}, "
                             f"{in_features})); use a group size that divides it "
                             f"({', '.join(fits) or 'none of ' + str(INT4_GROUP_SIZES)})")

    def storage_shapes(self, out_features: int, in_features: int) -> tuple[tuple, tuple]:
        """Shapes of q and of the scales for a weight (out, in)."""
        if self.name == "int8-tensor":
            return (out_features, in_features), (1,)
        if self.name == "int8-channel":
            return (out_features, in_features), (out_features,)
        return (out_features, in_features // 2), (out_features, in_features // self.group_size)


# ------------------------------------------------------------------ the quantizer
def pack_int4(q: np.ndarray, group_size: int) -> np.ndarray:
    """Signed 4-bit values (out, in) in [-8, 7] -> bytes (out, in / 2) in Q4_0's layout: in
    each group of `group_size` inputs byte j holds input j (low nibble) and input
    j + group_size / 2 (high nibble), each stored as value + 8 (`unpack_int4` undoes it)."""
    out_f, in_f = q.shape
    h = group_size // 2
    u = (q.astype(np.int16) + 8).astype(np.uint8).reshape(out_f, in_f // group_size, 2 * h)
    return (u[..., :h] | (u[..., h:] << 4)).reshape(out_f, in_f // 2)


def quantize_weight(weight: np.ndarray, scheme: QuantScheme | str) -> tuple[np.ndarray, np.ndarray]:
    """(q, scales) of a weight (out, in) under `scheme` (see the module doc)."""
    scheme = scheme if isinstance(scheme, QuantScheme) else QuantScheme.parse(scheme)
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"quantize_weight: expected a matrix (out, in), got shape {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError("quantize_weight: the weight holds NaN or infinity; a damaged "
                         "model cannot be quantized")
    out_f, in_f = w.shape
    scheme.check_shape(out_f, in_f, where="quantize_weight")
    if scheme.bits == 8:
        absmax = (np.abs(w).max(keepdims=True)[0] if scheme.name == "int8-tensor"
                  else np.abs(w).max(axis=1))                           # (1,) or (out,)
        scale = (absmax / 127).astype(np.float32)
        s = np.where(scale == 0, 1, scale).astype(np.float64)[:, None]  # an all-zero row
        q = np.clip(np.rint(w / s), -127, 127).astype(np.int8)
        return q, scale
    g = scheme.group_size
    groups = w.reshape(out_f, in_f // g, g)                             # (out, in/g, g)
    pick = np.abs(groups).argmax(axis=2)[..., None]                    # (out, in/g, 1)
    m = np.take_along_axis(groups, pick, axis=2)[..., 0]               # (out, in/g)
    scale = (m / -8).astype(np.float16)                                # stored in float16
    s = scale.astype(np.float64)
    s = np.where(s == 0, 1, s)[..., None]                              # (out, in/g, 1)
    q = np.clip(np.rint(groups / s), -8, 7).astype(np.int8).reshape(out_f, in_f)
    return pack_int4(q, g), scale


def dequantize_weight(q: np.ndarray, scale: np.ndarray, scheme: QuantScheme | str,
                      dtype=np.float32) -> np.ndarray:
    """The weight (out, in) that `q` and `scale` stand for, in `dtype`."""
    scheme = scheme if isinstance(scheme, QuantScheme) else QuantScheme.parse(scheme)
    return dequantize(q, scale, scheme.group_size or 0, np.dtype(dtype))


# ------------------------------------------------------------------ the layer
class QuantizedLinear(Module):
    """A linear layer with a quantized weight: x (*, in) -> x dequant(W)^T + b (*, out).

    `qweight` and `weight_scale` are arrays, not Parameters (nothing here trains; the bias is a
    frozen Parameter). `fan_in_fan_out` records that the layer replaced a GPT-2 `Conv1D`, so a
    state dict can be told apart; the stored weight is (out, in) either way.

    No float copy of W is kept: a forward of a few rows (generation) runs the compiled
    kernel, which reads the integers directly; a forward of many rows dequantizes W for that
    call and multiplies with BLAS (`F.quantized_linear`).
    """

    def __init__(self, in_features: int, out_features: int, scheme: QuantScheme | str,
                 bias: bool = True, fan_in_fan_out: bool = False):
        super().__init__()
        self.scheme = scheme if isinstance(scheme, QuantScheme) else QuantScheme.parse(scheme)
        self.scheme.check_shape(out_features, in_features, where="QuantizedLinear")
        self.in_features, self.out_features = in_features, out_features
        self.fan_in_fan_out = fan_in_fan_out
        q_shape, s_shape = self.scheme.storage_shapes(out_features, in_features)
        self.qweight = np.zeros(q_shape, np.int8 if self.scheme.bits == 8 else np.uint8)
        self.weight_scale = np.ones(s_shape, self.scheme.scale_dtype)
        self.bias = Parameter(np.zeros(out_features, get_default_dtype()),
                              requires_grad=False) if bias else None

    @classmethod
    def from_float(cls, layer: Linear | Conv1D, scheme: QuantScheme | str) -> QuantizedLinear:
        """The quantized twin of a float `Linear` or `Conv1D` layer."""
        if not isinstance(layer, QUANTIZABLE_TYPES):
            raise TypeError(f"QuantizedLinear.from_float: expected a Linear or Conv1D, got "
                            f"{type(layer).__name__}")
        conv = isinstance(layer, Conv1D)
        new = cls(layer.in_features, layer.out_features, scheme, bias=layer.bias is not None,
                  fan_in_fan_out=conv)
        w = layer.weight.data.T if conv else layer.weight.data                # (out, in)
        new.set_quantized(*quantize_weight(w, new.scheme))
        if layer.bias is not None:
            new.bias = Parameter(layer.bias.data.copy(), requires_grad=False)
        return new

    def set_quantized(self, qweight: np.ndarray, weight_scale: np.ndarray) -> None:
        """Install stored q and scales, checking their shapes and dtypes against the scheme."""
        q_shape, s_shape = self.scheme.storage_shapes(self.out_features, self.in_features)
        for what, arr, shape, dtype in (("weight", qweight, q_shape, self.qweight.dtype),
                                        ("weight_scale", weight_scale, s_shape,
                                         self.weight_scale.dtype)):
            arr = np.asarray(arr)
            if arr.shape != tuple(shape) or arr.dtype != dtype:
                raise ValueError(f"QuantizedLinear ({self.scheme.name}): {what} must be "
                                 f"{dtype} of shape {tuple(shape)}, got {arr.dtype} of shape "
                                 f"{arr.shape}")
        self.qweight = np.ascontiguousarray(qweight)
        self.weight_scale = np.ascontiguousarray(weight_scale)

    def _scales_in(self, dtype: np.dtype) -> np.ndarray:
        """The scales in the input's dtype, converted once and kept (4-bit scales are stored
        in float16; converting them on every call of a generation step cost more than the
        product's arithmetic)."""
        cached = getattr(self, "_converted_scale", None)
        if cached is None or cached[0] is not self.weight_scale or cached[1].dtype != dtype:
            cached = (self.weight_scale, self.weight_scale.astype(dtype))
            self._converted_scale = cached
        return cached[1]

    def forward(self, x: Tensor) -> Tensor:
        return F.quantized_linear(x, self.qweight, self._scales_in(x.dtype),
                                  self.scheme.group_size or 0, self.bias)   # (*, out)

    def nbytes(self) -> int:
        """Bytes of the stored weight, scales and bias."""
        bias = 0 if self.bias is None else self.bias.data.nbytes
        return self.qweight.nbytes + self.weight_scale.nbytes + bias

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"scheme={self.scheme.name}, bias={self.bias is not None}")


# ------------------------------------------------------------------ whole models
def quantizable_layers(model: Module, skip=()) -> list[str]:
    """Names of the Linear/Conv1D layers `quantize_model` would replace: every one except
    those named in `skip` (a name or a last component) and a layer whose weight is shared
    with another module (a head tied to the token embedding stays float)."""
    owners: dict[int, int] = {}
    for _, p in model.named_parameters(remove_duplicate=False):
        owners[id(p)] = owners.get(id(p), 0) + 1
    return [name for name, m in model.named_modules()
            if name and isinstance(m, QUANTIZABLE_TYPES)
            and not any(name == s or name.endswith("." + s) for s in skip)
            and owners.get(id(m.weight), 0) == 1]


def quantize_model(model: Module, scheme: QuantScheme | str, skip=()) -> list[str]:
    """Replace the model's Linear/Conv1D layers (see `quantizable_layers`) by
    `QuantizedLinear`s of `scheme`, in place; returns their names. Every layer's shape is
    checked before any is replaced."""
    scheme = scheme if isinstance(scheme, QuantScheme) else QuantScheme.parse(scheme)
    if quantized_layers(model):
        raise ValueError(f"quantize_model: {type(model).__name__} is already quantized "
                         f"({quantized_layers(model)[0][1].scheme.name}); quantize the float "
                         "model instead (re-quantizing would compound the rounding errors)")
    names = quantizable_layers(model, skip)
    for name in names:
        layer = model.get_submodule(name)
        scheme.check_shape(layer.out_features, layer.in_features, where=f"quantize {name}")
    for name in names:
        model.set_submodule(name, QuantizedLinear.from_float(model.get_submodule(name), scheme))
    return names


def quantized_layers(model: Module) -> list[tuple[str, QuantizedLinear]]:
    """(name, QuantizedLinear) for every quantized layer, in the model's order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, QuantizedLinear)]


def quantized_state(model: Module) -> dict[str, np.ndarray]:
    """The stored arrays of the quantized layers: `<layer>.weight` (q), `<layer>.weight_scale`."""
    state = {}
    for name, layer in quantized_layers(model):
        state[f"{name}.weight"] = layer.qweight
        state[f"{name}.weight_scale"] = layer.weight_scale
    return state


def load_quantized(model: Module, scheme: QuantScheme | str, layers, state: dict) -> dict:
    """Give `model` empty `QuantizedLinear`s at `layers` (names) and fill them from `state`;
    returns the rest of `state` (the float parameters, for `load_state_dict`)."""
    scheme = scheme if isinstance(scheme, QuantScheme) else QuantScheme.parse(scheme)
    rest = dict(state)
    for name in layers:
        layer = model.get_submodule(name)
        if not isinstance(layer, QUANTIZABLE_TYPES):
            raise ValueError(f"load_quantized: {name} is a {type(layer).__name__}, not a "
                             "Linear or Conv1D layer")
        new = QuantizedLinear(layer.in_features, layer.out_features, scheme,
                              bias=layer.bias is not None,
                              fan_in_fan_out=isinstance(layer, Conv1D))
        try:
            new.set_quantized(rest.pop(f"{name}.weight"), rest.pop(f"{name}.weight_scale"))
        except KeyError as exc:
            raise ValueError(f"load_quantized: the state has no {exc.args[0]}") from None
        if new.bias is not None:
            new.bias = Parameter(layer.bias.data, requires_grad=False)
        model.set_submodule(name, new)
    return rest


def weight_bytes(model: Module) -> int:
    """Bytes of the model's weights as stored: float parameters (a tied one once) plus the
    quantized layers' integers and scales."""
    params = sum(p.data.nbytes for p in model.parameters())
    quantized = sum(m.qweight.nbytes + m.weight_scale.nbytes for _, m in quantized_layers(model))
    return params + quantized
