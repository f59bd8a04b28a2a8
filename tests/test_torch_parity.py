"""Values and gradients of every op that PyTorch also has, against PyTorch itself.

float64 throughout; values and gradients must agree to 1e-10 relative to the tensor's scale
(the only differences are summation order and libm rounding).
"""

import numpy as np
import pytest

import tinyllm
import tinyllm.functional as F
from tinyllm.autograd.gradcheck import max_relative_error
from tinyllm.autograd.ops.nn import linear_in_out

torch = pytest.importorskip("torch")
TF = torch.nn.functional
TOL = 1e-10


def _pair(shape, positive=False, seed=0):
    data = np.random.default_rng(seed).standard_normal(shape)
    if positive:
        data = np.abs(data) + 0.5
    return (tinyllm.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True))


TARGET = np.array([0, 3, -100, 4, 1])
MASK = np.triu(np.ones((4, 4), dtype=bool), 1)
# a teacher's distribution over 6 classes for 5 rows, with zeros (0 log 0 = 0)
KL_P = np.random.default_rng(7).random((5, 6)) * (np.arange(30).reshape(5, 6) % 4 != 0)
KL_P /= KL_P.sum(1, keepdims=True)

# name: (tinyllm function, torch function, input shapes, positive inputs?)
CASES = {
    "add": (lambda a, b: a + b, lambda a, b: a + b, [(3, 4), (4,)], False),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, [(3, 1), (4,)], False),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, [(2, 3, 4), (3, 1)], False),
    "div": (lambda a, b: a / b, lambda a, b: a / b, [(3, 4), (4,)], True),
    "pow": (lambda a: a**2.5, lambda a: a**2.5, [(3, 4)], True),
    "neg": (lambda a: -a, lambda a: -a, [(5,)], False),
    "exp": (lambda a: a.exp(), torch.exp, [(3, 4)], False),
    "log": (lambda a: a.log(), torch.log, [(3, 4)], True),
    "sqrt": (lambda a: a.sqrt(), torch.sqrt, [(3, 4)], True),
    "tanh": (lambda a: a.tanh(), torch.tanh, [(3, 4)], False),
    "sigmoid": (lambda a: a.sigmoid(), torch.sigmoid, [(3, 4)], False),
    "relu": (lambda a: a.relu(), torch.relu, [(3, 4)], False),
    "gelu": (F.gelu, TF.gelu, [(3, 40)], False),
    "gelu_tanh": (
        lambda a: F.gelu(a, approximate="tanh"),
        lambda a: TF.gelu(a, approximate="tanh"),
        [(3, 40)],
        False,
    ),
    "matmul": (lambda a, b: a @ b, lambda a, b: a @ b, [(2, 1, 3, 4), (3, 4, 5)], False),
    "matmul_vec": (lambda a, b: a @ b, lambda a, b: a @ b, [(4,), (2, 4, 3)], False),
    "sum": (
        lambda a: a.sum((0, 2), keepdim=True),
        lambda a: a.sum((0, 2), keepdim=True),
        [(2, 3, 4)],
        False,
    ),
    "mean": (lambda a: a.mean(-1), lambda a: a.mean(-1), [(2, 3, 4)], False),
    "max": (lambda a: a.max(), lambda a: a.max(), [(3, 4)], False),
    "max_dim": (lambda a: a.max(dim=1).values, lambda a: a.max(dim=1).values, [(3, 4)], False),
    "var": (lambda a: a.var(1), lambda a: a.var(1), [(3, 5)], False),
    "var_biased": (
        lambda a: a.var(1, correction=0),
        lambda a: a.var(1, correction=0),
        [(3, 5)],
        False,
    ),
    "reshape": (lambda a: a.reshape(6, -1), lambda a: a.reshape(6, -1), [(2, 3, 4)], False),
    "transpose": (lambda a: a.transpose(0, 2), lambda a: a.transpose(0, 2), [(2, 3, 4)], False),
    "permute": (lambda a: a.permute(1, 2, 0), lambda a: a.permute(1, 2, 0), [(2, 3, 4)], False),
    "unsqueeze": (lambda a: a.unsqueeze(-1), lambda a: a.unsqueeze(-1), [(2, 3)], False),
    "squeeze": (lambda a: a.squeeze(1), lambda a: a.squeeze(1), [(2, 1, 3)], False),
    "index": (
        lambda a: a[np.array([0, 2, 0]), 1:],
        lambda a: a[torch.tensor([0, 2, 0]), 1:],
        [(3, 4)],
        False,
    ),
    "cat": (
        lambda a, b: tinyllm.cat([a, b], 1),
        lambda a, b: torch.cat([a, b], 1),
        [(2, 3), (2, 2)],
        False,
    ),
    "stack": (
        lambda a, b: tinyllm.stack([a, b], 1),
        lambda a, b: torch.stack([a, b], 1),
        [(2, 3), (2, 3)],
        False,
    ),
    "split": (lambda a: a.split(2, dim=1)[1], lambda a: a.split(2, dim=1)[1], [(2, 5)], False),
    "chunk": (lambda a: a.chunk(2, dim=1)[1], lambda a: a.chunk(2, dim=1)[1], [(2, 5)], False),
    "where": (
        lambda a, b: tinyllm.where(MASK, a, b),
        lambda a, b: torch.where(torch.tensor(MASK), a, b),
        [(4, 4), (4,)],
        False,
    ),
    "masked_fill": (
        lambda a: a.masked_fill(MASK, -3.0),
        lambda a: a.masked_fill(torch.tensor(MASK), -3.0),
        [(2, 4, 4)],
        False,
    ),
    "softmax": (lambda a: F.softmax(a, 1), lambda a: TF.softmax(a, 1), [(2, 5, 3)], False),
    "log_softmax": (
        lambda a: F.log_softmax(a, -1),
        lambda a: TF.log_softmax(a, -1),
        [(2, 5, 3)],
        False,
    ),
    "cross_entropy": (
        lambda a: F.cross_entropy(a, TARGET),
        lambda a: TF.cross_entropy(a, torch.tensor(TARGET)),
        [(5, 6)],
        False,
    ),
    "cross_entropy_sum_smooth": (
        lambda a: F.cross_entropy(a, TARGET, reduction="sum", label_smoothing=0.2),
        lambda a: TF.cross_entropy(a, torch.tensor(TARGET), reduction="sum", label_smoothing=0.2),
        [(5, 6)],
        False,
    ),
    "cross_entropy_none_smooth": (
        lambda a: F.cross_entropy(a, TARGET, reduction="none", label_smoothing=0.1),
        lambda a: TF.cross_entropy(a, torch.tensor(TARGET), reduction="none", label_smoothing=0.1),
        [(5, 6)],
        False,
    ),
    "linear_relu": (
        lambda a, w, b: F.linear_relu(a, w, b),
        lambda a, w, b: TF.relu(TF.linear(a, w, b)),
        [(2, 3, 5), (4, 5), (4,)],
        False,
    ),
    "linear_in_out": (
        lambda a, w, b: linear_in_out(a, w, b),
        lambda a, w, b: TF.linear(a, w.T, b),
        [(2, 3, 5), (5, 4), (4,)],
        False,
    ),
    "kl_div_batchmean": (
        lambda a: F.kl_div(F.log_softmax(a, -1), KL_P, reduction="batchmean"),
        lambda a: TF.kl_div(TF.log_softmax(a, -1), torch.tensor(KL_P, dtype=a.dtype),
                            reduction="batchmean"),
        [(5, 6)],
        False,
    ),
    "kl_div_sum_mean_none": (
        lambda a: F.kl_div(a, KL_P, reduction="sum") + F.kl_div(a, KL_P, reduction="mean")
        + (F.kl_div(a, KL_P, reduction="none") * a).sum(),
        lambda a: TF.kl_div(a, torch.tensor(KL_P, dtype=a.dtype), reduction="sum")
        + TF.kl_div(a, torch.tensor(KL_P, dtype=a.dtype), reduction="mean")
        + (TF.kl_div(a, torch.tensor(KL_P, dtype=a.dtype), reduction="none") * a).sum(),
        [(5, 6)],
        False,
    ),
    "kl_div_log_target": (
        lambda a: F.kl_div(a, np.log(KL_P + 0.01), reduction="batchmean", log_target=True),
        lambda a: TF.kl_div(a, torch.tensor(np.log(KL_P + 0.01), dtype=a.dtype),
                            reduction="batchmean", log_target=True),
        [(5, 6)],
        False,
    ),
    "cross_entropy_spatial": (
        lambda a: F.cross_entropy(a, TARGET.reshape(1, 5)),
        lambda a: TF.cross_entropy(a, torch.tensor(TARGET.reshape(1, 5))),
        [(1, 6, 5)],
        False,
    ),
    "layer_norm": (
        lambda x, w, b: F.layer_norm(x, (4,), w, b),
        lambda x, w, b: TF.layer_norm(x, (4,), w, b),
        [(2, 3, 4), (4,), (4,)],
        False,
    ),
    "linear": (F.linear, TF.linear, [(2, 3, 4), (5, 4), (5,)], False),
    "embedding": (
        lambda w: F.embedding(np.array([[1, 2], [2, 0]]), w),
        lambda w: TF.embedding(torch.tensor([[1, 2], [2, 0]]), w),
        [(3, 4)],
        False,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch(name):
    ours, theirs, shapes, positive = CASES[name]
    pairs = [_pair(s, positive, seed=i) for i, s in enumerate(shapes)]
    out = ours(*[p[0] for p in pairs])
    ref = theirs(*[p[1] for p in pairs])
    assert max_relative_error(out.data, ref.detach().numpy()) < TOL
    dout = np.random.default_rng(99).standard_normal(ref.shape)
    out.backward(gradient=dout)
    ref.backward(torch.tensor(dout))
    for mine, theirs_t in pairs:
        assert max_relative_error(mine.grad, theirs_t.grad.numpy()) < TOL, name


def test_float32_values_match_torch():
    data = np.random.default_rng(0).standard_normal((64, 100)).astype(np.float32) * 5
    ours = F.log_softmax(tinyllm.tensor(data), -1).data
    ref = TF.log_softmax(torch.tensor(data), -1).numpy()
    assert ours.dtype == np.float32
    assert max_relative_error(ours, ref) < 1e-6
