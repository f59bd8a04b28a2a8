"""The engine's behaviour: graph building, accumulation, freeing, grad mode, dtype rules."""

import numpy as np
import pytest

import tinyllm
from tinyllm import Tensor, no_grad, tensor


def test_leaf_gradients_accumulate_like_pytorch():
    x = tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, [3 + 2, 3 + 4])


def test_shared_input_gets_summed_gradient():
    x = tensor(2.0, requires_grad=True)
    y = x * x + x  # dy/dx = 2x + 1
    y.backward()
    assert x.grad == pytest.approx(5.0)


def test_diamond_graph_visits_each_node_once():
    x = tensor(3.0, requires_grad=True)
    a = x * 2
    b = a * a + a * 3  # db/dx = (2a + 3) * 2 = 30
    b.backward()
    assert x.grad == pytest.approx(30.0)


def test_long_chain_does_not_recurse():
    x = tensor(1.0, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y + 1e-4
    y.backward()
    assert x.grad == pytest.approx(1.0)


def test_second_backward_through_freed_graph_raises():
    x = tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, [4.0, 8.0])


def test_nonscalar_backward_needs_gradient():
    x = tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"scalar outputs.*\(2,\)"):
        (x * 2).backward()
    (x * 2).backward(gradient=np.array([1.0, 10.0]))
    np.testing.assert_allclose(x.grad, [2.0, 20.0])


def test_gradient_of_wrong_shape_is_rejected():
    x = tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"gradient has shape \(3,\)"):
        (x * 2).backward(gradient=np.ones(3))


def test_backward_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tensor([1.0]).sum().backward()


def test_no_grad_records_nothing_and_restores():
    x = tensor([1.0], requires_grad=True)
    with no_grad():
        y = x * 2
        assert not tinyllm.is_grad_enabled()
    assert tinyllm.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None


def test_no_grad_as_decorator():
    @no_grad()
    def f(t):
        return t * 2

    assert not f(tensor([1.0], requires_grad=True)).requires_grad


def test_retain_grad_keeps_intermediate_gradient():
    x = tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad, 2 * np.array([3.0, 6.0]))


def test_intermediate_grad_is_not_kept_by_default():
    x = tensor([1.0], requires_grad=True)
    h = x * 3
    h.sum().backward()
    assert h.grad is None and x.grad is not None


def test_detach_cuts_the_graph():
    x = tensor([1.0], requires_grad=True)
    y = (x * 2).detach() * x
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [2.0])


def test_default_dtype_rules():
    assert tensor([1.0]).dtype == np.float32
    assert tensor([1]).dtype == np.int64
    assert tensor(np.zeros(2, dtype=np.float64)).dtype == np.float64
    assert tensor([1.0], dtype="float64").dtype == np.float64
    with tinyllm.default_dtype(np.float64):
        assert tensor([1.0]).dtype == np.float64
        assert tinyllm.randn(2).dtype == np.float64
    assert tensor([1.0]).dtype == np.float32


def test_set_default_dtype_rejects_others():
    with pytest.raises(ValueError, match="float16.*accepted: float32, float64"):
        tinyllm.set_default_dtype(np.float16)


def test_python_scalars_do_not_upcast():
    x = tensor([1.0], requires_grad=True)
    assert (x * 2.5).dtype == np.float32
    assert (2.5 - x).dtype == np.float32


def test_grad_has_leaf_dtype_and_shape():
    x = tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    b = tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    (x + b).sum().backward()
    assert x.grad.dtype == np.float32 and b.grad.shape == (3,)
    np.testing.assert_allclose(b.grad, [2.0, 2.0, 2.0])


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="floating"):
        tensor([1, 2], requires_grad=True)


def test_manual_seed_reproduces():
    tinyllm.manual_seed(7)
    a = tinyllm.randn(4).data
    tinyllm.manual_seed(7)
    np.testing.assert_array_equal(a, tinyllm.randn(4).data)
    with pytest.raises(ValueError, match="non-negative integer"):
        tinyllm.manual_seed(-1)


def test_item_and_repr():
    assert tensor([2.5]).item() == 2.5
    with pytest.raises(ValueError, match="one-element"):
        tensor([1.0, 2.0]).item()
    assert "requires_grad=True" in repr(tensor([1.0], requires_grad=True))
    assert "grad_fn" in repr(tensor([1.0], requires_grad=True) * 2)


def test_numpy_refuses_while_tracking():
    with pytest.raises(RuntimeError, match="detach"):
        tensor([1.0], requires_grad=True).numpy()
    assert isinstance(tensor([1.0]).numpy(), np.ndarray)


def test_graph_is_freed_after_backward():
    x = tensor([1.0], requires_grad=True)
    y = x * 2
    z = y * 3
    z.sum().backward()
    assert z.grad_fn.parents is None and y.grad_fn.parents is None


def test_comparisons_are_constants():
    x = tensor([1.0, 3.0], requires_grad=True)
    m = x > 2
    assert m.dtype == np.bool_ and not m.requires_grad


def test_tensor_from_tensor_and_isinstance():
    t = tensor([1.0])
    assert isinstance(Tensor(t), Tensor)
    with pytest.raises(TypeError, match="dtype"):
        tensor(["a"])


def test_cast_passes_gradient_back_in_the_input_dtype():
    x = tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    y = x.double()
    assert y.dtype == np.float64
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, [2.0, 4.0])


def test_ops_package_lists_every_op_module():
    """`tinyllm.autograd.ops` imports each ops/*.py, so `ops.rnn` works without `tinyllm.nn`."""
    from pathlib import Path

    from tinyllm.autograd import ops

    modules = {p.stem for p in Path(ops.__file__).parent.glob("*.py") if not p.stem.startswith("_")}
    assert set(ops.__all__) == modules
    assert all(hasattr(ops, name) for name in modules)
