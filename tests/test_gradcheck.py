"""Every op's backward pass against central finite differences, in float64.

Tolerance for every case (unless the case says otherwise): an element passes when
|analytic - numeric| <= 1e-7 + 1e-5 * |numeric|, with eps = 1e-6 (see tinyllm.autograd.gradcheck).
Inputs cover broadcasting, non-contiguous views, several `dim` values and `ignore_index`.
"""

import numpy as np
import pytest

import tinyllm
import tinyllm.functional as F
from tinyllm.autograd.gradcheck import gradcheck
from tinyllm.autograd.ops.nn import linear_in_out

RNG = np.random.default_rng(1234)


def t64(*shape, positive=False):
    """A float64 leaf tensor of random values (positive ones for log/sqrt/pow)."""
    data = RNG.standard_normal(shape)
    if positive:
        data = np.abs(data) + 0.5
    return tinyllm.tensor(data, requires_grad=True)


def noncontig(*shape):
    """A float64 leaf whose data is a transposed (non-contiguous) view."""
    data = RNG.standard_normal(shape[::-1]).T
    assert not data.flags["C_CONTIGUOUS"]
    return tinyllm.Tensor._make(data, requires_grad=True)  # keeps the view, no copy


CASES = {
    # name: (function, list of input factories)
    "add_broadcast": (lambda a, b: a + b, [lambda: t64(3, 4), lambda: t64(4)]),
    "add_broadcast_both": (lambda a, b: a + b, [lambda: t64(3, 1), lambda: t64(1, 4)]),
    "sub_scalar_left": (lambda a: 2.0 - a, [lambda: t64(3)]),
    "mul_broadcast": (lambda a, b: a * b, [lambda: t64(2, 3, 4), lambda: t64(3, 1)]),
    "div": (lambda a, b: a / b, [lambda: t64(3, 4), lambda: t64(4, positive=True)]),
    "pow_scalar": (lambda a: a**3, [lambda: t64(5)]),
    "pow_fractional": (lambda a: a**0.5, [lambda: t64(5, positive=True)]),
    "pow_tensor": (lambda a, b: a**b, [lambda: t64(4, positive=True), lambda: t64(4)]),
    "rpow": (lambda a: 2.0**a, [lambda: t64(4)]),
    "neg": (lambda a: -a, [lambda: t64(3)]),
    "exp": (lambda a: a.exp(), [lambda: t64(3, 2)]),
    "log": (lambda a: a.log(), [lambda: t64(3, 2, positive=True)]),
    "sqrt": (lambda a: a.sqrt(), [lambda: t64(3, positive=True)]),
    "tanh": (lambda a: a.tanh(), [lambda: t64(3, 4)]),
    "sigmoid": (lambda a: a.sigmoid(), [lambda: t64(3, 4)]),
    "relu": (lambda a: a.relu(), [lambda: t64(3, 4)]),
    "abs": (lambda a: a.abs(), [lambda: t64(3, 4)]),
    "gelu_none": (lambda a: F.gelu(a), [lambda: t64(3, 4)]),
    "gelu_tanh": (lambda a: F.gelu(a, approximate="tanh"), [lambda: t64(3, 4)]),
    "matmul_2d": (lambda a, b: a @ b, [lambda: t64(3, 4), lambda: t64(4, 5)]),
    "matmul_batched": (lambda a, b: a @ b, [lambda: t64(2, 3, 4), lambda: t64(2, 4, 5)]),
    "matmul_broadcast_batch": (lambda a, b: a @ b, [lambda: t64(2, 1, 3, 4), lambda: t64(3, 4, 2)]),
    "matmul_shared_weight": (lambda a, b: a @ b, [lambda: t64(2, 3, 4), lambda: t64(4, 5)]),
    "matmul_vec_mat": (lambda a, b: a @ b, [lambda: t64(4), lambda: t64(4, 5)]),
    "matmul_mat_vec": (lambda a, b: a @ b, [lambda: t64(2, 3, 4), lambda: t64(4)]),
    "matmul_vec_vec": (lambda a, b: a @ b, [lambda: t64(4), lambda: t64(4)]),
    "matmul_noncontig": (lambda a, b: a @ b, [lambda: noncontig(3, 4), lambda: noncontig(4, 2)]),
    "sum_all": (lambda a: a.sum(), [lambda: t64(3, 4)]),
    "sum_dim0": (lambda a: a.sum(0), [lambda: t64(3, 4)]),
    "sum_dim_neg_keepdim": (lambda a: a.sum(-1, keepdim=True), [lambda: t64(2, 3, 4)]),
    "sum_dims_tuple": (lambda a: a.sum((0, 2)), [lambda: t64(2, 3, 4)]),
    "mean_dim": (lambda a: a.mean(1), [lambda: t64(2, 3, 4)]),
    "mean_all_noncontig": (lambda a: a.mean(), [lambda: noncontig(3, 5)]),
    "max_all": (lambda a: a.max(), [lambda: t64(3, 4)]),
    "max_dim": (lambda a: a.max(dim=1).values, [lambda: t64(3, 4)]),
    "max_dim_keepdim": (lambda a: a.max(dim=0, keepdim=True).values, [lambda: t64(3, 4)]),
    "var_unbiased": (lambda a: a.var(1), [lambda: t64(3, 5)]),
    "var_biased_keepdim": (lambda a: a.var(-1, correction=0, keepdim=True), [lambda: t64(3, 5)]),
    "var_all": (lambda a: a.var(), [lambda: t64(3, 5)]),
    "reshape": (lambda a: a.reshape(4, -1) * 1.5, [lambda: t64(2, 3, 2)]),
    "view_noncontig": (lambda a: a.view(-1), [lambda: noncontig(3, 4)]),
    "flatten": (lambda a: a.flatten(1), [lambda: t64(2, 3, 2)]),
    "transpose": (lambda a: a.transpose(0, 2), [lambda: t64(2, 3, 4)]),
    "T": (lambda a: a.T, [lambda: t64(2, 3)]),
    "permute": (lambda a: a.permute(2, 0, 1), [lambda: t64(2, 3, 4)]),
    "unsqueeze": (lambda a: a.unsqueeze(1), [lambda: t64(2, 3)]),
    "squeeze": (lambda a: a.squeeze(), [lambda: t64(2, 1, 3, 1)]),
    "squeeze_dim": (lambda a: a.squeeze(1), [lambda: t64(2, 1, 3, 1)]),
    "expand": (lambda a: a.expand(4, 2, 3), [lambda: t64(2, 1)]),
    "index_slice": (lambda a: a[1:, ::2], [lambda: t64(3, 5)]),
    "index_int_and_none": (lambda a: a[1, None, :], [lambda: t64(3, 5)]),
    "index_ellipsis": (lambda a: a[..., -1], [lambda: t64(2, 3, 4)]),
    "index_int_array_repeats": (lambda a: a[np.array([0, 2, 0, 0])], [lambda: t64(3, 4)]),
    "index_pair_arrays": (
        lambda a: a[np.array([0, 1, 1]), np.array([2, 0, 2])],
        [lambda: t64(2, 3)],
    ),
    "index_bool_mask": (lambda a: a[np.array([True, False, True])], [lambda: t64(3, 2)]),
    "cat_dim1": (lambda a, b: tinyllm.cat([a, b], dim=1), [lambda: t64(2, 3), lambda: t64(2, 1)]),
    "stack_dim_last": (
        lambda a, b: tinyllm.stack([a, b], dim=-1),
        [lambda: t64(2, 3), lambda: t64(2, 3)],
    ),
    "split_sizes": (
        lambda a: a.split([1, 3], dim=1)[1] * a.split(2, dim=1)[0].sum(),
        [lambda: t64(2, 4)],
    ),
    "chunk": (lambda a: a.chunk(3, dim=0)[2], [lambda: t64(5, 2)]),
    "where_broadcast": (
        lambda a, b: tinyllm.where(np.array([[True], [False]]), a, b),
        [lambda: t64(2, 3), lambda: t64(3)],
    ),
    "masked_fill": (
        lambda a: a.masked_fill(np.triu(np.ones((3, 3), bool), 1), -5.0) * 1.5,
        [lambda: t64(2, 3, 3)],
    ),
    "softmax_last": (lambda a: F.softmax(a, dim=-1), [lambda: t64(3, 5)]),
    "softmax_dim0": (lambda a: F.softmax(a, dim=0), [lambda: t64(3, 5)]),
    "softmax_middle_noncontig": (lambda a: F.softmax(a, dim=1), [lambda: noncontig(2, 3, 4)]),
    "log_softmax_last": (lambda a: F.log_softmax(a, dim=-1), [lambda: t64(3, 5)]),
    "log_softmax_dim1": (lambda a: F.log_softmax(a, dim=1), [lambda: t64(2, 4, 3)]),
    "cross_entropy_mean": (
        lambda a: F.cross_entropy(a, np.array([0, 3, 1, 4])),
        [lambda: t64(4, 5)],
    ),
    "linear_relu": (
        lambda a, w, b: F.linear_relu(a, w, b),
        [lambda: t64(2, 3, 5), lambda: t64(4, 5), lambda: t64(4)],
    ),
    "linear_in_out": (
        lambda a, w, b: linear_in_out(a, w, b),
        [lambda: t64(2, 3, 5), lambda: t64(5, 4), lambda: t64(4)],
    ),
    "kl_div_batchmean": (
        lambda a: F.kl_div(F.log_softmax(a, -1), np.array([[0.5, 0.0, 0.25, 0.25, 0.0]] * 3),
                           reduction="batchmean"),
        [lambda: t64(3, 5)],
    ),
    "cross_entropy_sum": (
        lambda a: F.cross_entropy(a, np.array([0, 3, 1]), reduction="sum"),
        [lambda: t64(3, 5)],
    ),
    "cross_entropy_none": (
        lambda a: F.cross_entropy(a, np.array([2, 3, 1]), reduction="none"),
        [lambda: t64(3, 5)],
    ),
    "cross_entropy_ignore_index": (
        lambda a: F.cross_entropy(a, np.array([0, -100, 1, -100])),
        [lambda: t64(4, 5)],
    ),
    "cross_entropy_custom_ignore": (
        lambda a: F.cross_entropy(a, np.array([0, 2, 1]), ignore_index=2),
        [lambda: t64(3, 5)],
    ),
    "cross_entropy_label_smoothing": (
        lambda a: F.cross_entropy(a, np.array([0, 3, -100]), label_smoothing=0.1),
        [lambda: t64(3, 5)],
    ),
    "cross_entropy_spatial": (
        lambda a: F.cross_entropy(a, np.array([[0, 2, 1], [1, 1, -100]])),
        [lambda: t64(2, 4, 3)],
    ),
    "layer_norm_affine": (
        lambda x, w, b: F.layer_norm(x, (4,), w, b),
        [lambda: t64(3, 4), lambda: t64(4), lambda: t64(4)],
    ),
    "layer_norm_no_affine_3d": (lambda x: F.layer_norm(x, 4), [lambda: t64(2, 3, 4)]),
    "layer_norm_two_dims": (
        lambda x, w, b: F.layer_norm(x, (3, 4), w, b, eps=1e-3),
        [lambda: t64(2, 3, 4), lambda: t64(3, 4), lambda: t64(3, 4)],
    ),
    "layer_norm_bias_only": (
        lambda x, b: F.layer_norm(x, (4,), None, b),
        [lambda: t64(3, 4), lambda: t64(4)],
    ),
    "layer_norm_noncontig": (lambda x: F.layer_norm(x, 3), [lambda: noncontig(3, 3)]),
    "linear": (
        lambda x, w, b: F.linear(x, w, b),
        [lambda: t64(2, 3, 4), lambda: t64(5, 4), lambda: t64(5)],
    ),
    "linear_no_bias": (lambda x, w: F.linear(x, w), [lambda: t64(3, 4), lambda: t64(2, 4)]),
    "embedding_repeats": (
        lambda w: F.embedding(np.array([[0, 2], [2, 2]]), w),
        [lambda: t64(4, 3)],
    ),
    "dropout_fixed_mask": (
        lambda a: F.dropout(a, 0.4, generator=np.random.default_rng(5)),
        [lambda: t64(4, 5)],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_gradient(name):
    fn, factories = CASES[name]
    inputs = [make() for make in factories]
    assert gradcheck(fn, *inputs)


def test_gradcheck_catches_a_wrong_derivative():
    from tinyllm.autograd.function import Function

    class WrongSquare(Function):
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, dout):
            return dout * self.x  # should be 2 * x

    with pytest.raises(AssertionError, match="differ"):
        gradcheck(WrongSquare.apply, t64(3))


def test_gradcheck_refuses_float32():
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda a: a * 2, tinyllm.tensor([1.0], requires_grad=True))
