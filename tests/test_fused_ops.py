"""Each fused op equals the same computation composed from primitive ops (values and grads)."""

import math

import numpy as np
import pytest

import tinyllm
import tinyllm.functional as F
from tinyllm.autograd.gradcheck import max_relative_error

TOL = 1e-12


def composed_softmax(x, dim):
    e = (x - x.max(dim=dim, keepdim=True).values).exp()
    return e / e.sum(dim, keepdim=True)


def composed_log_softmax(x, dim):
    shifted = x - x.max(dim=dim, keepdim=True).values
    return shifted - shifted.exp().sum(dim, keepdim=True).log()


def composed_cross_entropy(x, target, ignore_index=-100, label_smoothing=0.0):
    logp = composed_log_softmax(x, -1)
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    nll = -logp[np.arange(len(target)), safe]
    smooth = -logp.mean(-1)
    per_row = nll * (1 - label_smoothing) + smooth * label_smoothing
    return (per_row * tinyllm.tensor(valid.astype(np.float64))).sum() / int(valid.sum())


def composed_layer_norm(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / (var + eps).sqrt() * w + b


def composed_gelu_tanh(x):
    return 0.5 * x * (1 + (math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)).tanh())


def _compare(fused, composed, *shapes, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in shapes]
    xs1 = [tinyllm.tensor(a, requires_grad=True) for a in arrays]
    xs2 = [tinyllm.tensor(a, requires_grad=True) for a in arrays]
    y1, y2 = fused(*xs1), composed(*xs2)
    assert max_relative_error(y1.data, y2.data) < TOL
    dout = rng.standard_normal(y1.shape)
    y1.backward(dout)
    y2.backward(dout)
    for a, b in zip(xs1, xs2):
        assert max_relative_error(a.grad, b.grad) < TOL


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_equals_composed(dim):
    _compare(lambda x: F.softmax(x, dim), lambda x: composed_softmax(x, dim), (3, 4, 5))


@pytest.mark.parametrize("dim", [0, -1])
def test_log_softmax_equals_composed(dim):
    _compare(lambda x: F.log_softmax(x, dim), lambda x: composed_log_softmax(x, dim), (4, 6))


@pytest.mark.parametrize("smoothing", [0.0, 0.15])
def test_cross_entropy_equals_composed(smoothing):
    target = np.array([1, -100, 4, 0, 2])
    _compare(
        lambda x: F.cross_entropy(x, target, label_smoothing=smoothing),
        lambda x: composed_cross_entropy(x, target, label_smoothing=smoothing),
        (5, 6),
    )


def test_layer_norm_equals_composed():
    _compare(
        lambda x, w, b: F.layer_norm(x, (6,), w, b), composed_layer_norm, (2, 3, 6), (6,), (6,)
    )


def test_gelu_tanh_equals_composed():
    _compare(lambda x: F.gelu(x, approximate="tanh"), composed_gelu_tanh, (4, 7))


def test_gelu_erf_equals_math_erf():
    x = np.linspace(-8, 8, 2001)
    expected = np.array([v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x])
    assert max_relative_error(F.gelu(tinyllm.tensor(x)).data, expected) < 1e-14


def test_linear_equals_matmul_plus_bias():
    _compare(F.linear, lambda x, w, b: x @ w.T + b, (2, 3, 4), (5, 4), (5,))
