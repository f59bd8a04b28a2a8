"""tinyllm.optim: optimizers, schedules and clipping, step by step against torch.optim.

Parity runs use float64 parameters and one fixed sequence of gradients fed to both libraries;
parameters must agree to 1e-12 after every step (the only differences are rounding in fused
multiply-adds). float32 runs must stay float32 and agree to float32 rounding.
"""

import json
import math

import numpy as np
import pytest

import tinyllm
import tinyllm.optim as optim

SHAPES = [(4, 3), (3,), (2, 3, 2)]
TOL = 1e-12


def _initial(dtype=np.float64):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]


def _grads(step, dtype=np.float64):
    rng = np.random.default_rng(1000 + step)
    # A shrinking scale so AMSGrad's running maximum differs from the plain second moment.
    scale = 2.0**-step if step % 2 else 1.0
    return [(scale * rng.standard_normal(shape)).astype(dtype) for shape in SHAPES]


def _tensors(arrays):
    return [tinyllm.tensor(a.copy(), requires_grad=True) for a in arrays]


def _set_grads(params, step, dtype=np.float64, missing=None):
    """Give every parameter its gradient for `step`; `missing(step, i)` leaves one as None."""
    for i, (p, g) in enumerate(zip(params, _grads(step, dtype))):
        p.grad = None if missing and missing(step, i) else g


def _two_groups(params):
    return [{"params": params[:2]}, {"params": params[2:], "lr": 0.05, "weight_decay": 0.0}]


def _parity(name, kwargs, grouped=False, steps=6, dtype=np.float64, missing=None, tol=TOL):
    """Step tinyllm's and torch's optimizer `name` side by side; compare after every step."""
    torch = pytest.importorskip("torch")
    ours = _tensors(_initial(dtype))
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in _initial(dtype)]
    opt = getattr(optim, name)(_two_groups(ours) if grouped else ours, **kwargs)
    ref = getattr(torch.optim, name)(_two_groups(theirs) if grouped else theirs, **kwargs)
    for step in range(steps):
        _set_grads(ours, step, dtype, missing)
        for p, q in zip(ours, theirs):
            q.grad = None if p.grad is None else torch.tensor(p.grad.copy())
        opt.step()
        ref.step()
        for p, q in zip(ours, theirs):
            assert p.data.dtype == dtype
            np.testing.assert_allclose(
                p.data,
                q.detach().numpy(),
                rtol=tol,
                atol=tol,
                err_msg=f"{name}({kwargs}) step {step}",
            )
    return opt, ref


# ----------------------------------------------------------------------------- parity
SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.1, momentum=0.9, nesterov=True),
    dict(lr=0.1, weight_decay=0.01),
    dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.05),
    dict(lr=0.1, momentum=0.8, nesterov=True, weight_decay=0.05, maximize=True),
]


@pytest.mark.parametrize("kwargs", SGD_CASES, ids=str)
def test_sgd_matches_torch(kwargs):
    _parity("SGD", kwargs)


ADAM_CASES = [
    ("AdamW", {}),
    ("AdamW", dict(lr=0.01, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01, amsgrad=True)),
    (
        "AdamW",
        dict(lr=0.01, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1, amsgrad=True, maximize=True),
    ),
    ("AdamW", dict(lr=0.01, betas=(0.3, 0.999))),  # lerp weight >= 0.5: the other branch
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
]


@pytest.mark.parametrize(("name", "kwargs"), ADAM_CASES, ids=str)
def test_adam_matches_torch(name, kwargs):
    _parity(name, kwargs)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.1)),
        ("AdamW", dict(lr=0.01, weight_decay=0.1)),
        ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ],
    ids=str,
)
def test_param_groups_with_their_own_lr_match_torch(name, kwargs):
    opt, _ = _parity(name, kwargs, grouped=True)
    assert [g["lr"] for g in opt.param_groups] == [kwargs["lr"], 0.05]


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("SGD", dict(lr=0.1, momentum=0.9)), ("AdamW", dict(lr=0.01, amsgrad=True))],
    ids=str,
)
def test_parameters_without_grad_are_skipped_as_torch_does(name, kwargs):
    opt, _ = _parity(name, kwargs, missing=lambda step, i: i == 1 and step in (0, 3))
    p = opt.param_groups[0]["params"][1]
    if name == "AdamW":
        assert opt.state[p]["step"] == 4  # 6 steps, 2 without a gradient


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
        ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ],
    ids=str,
)
def test_float32_stays_float32(name, kwargs):
    opt, _ = _parity(name, kwargs, dtype=np.float32, tol=1e-5)
    for state in opt.state.values():
        for value in state.values():
            if isinstance(value, np.ndarray):
                assert value.dtype == np.float32


def test_grad_is_not_modified_by_step():
    params = _tensors(_initial())
    opt = optim.AdamW(params, lr=0.01, weight_decay=0.1, maximize=True)
    _set_grads(params, 0)
    before = [p.grad.copy() for p in params]
    opt.step()
    for p, g in zip(params, before):
        np.testing.assert_array_equal(p.grad, g)


def test_adamw_decays_weights_independently_of_the_gradient():
    w = tinyllm.tensor(np.array([2.0, -4.0]), requires_grad=True)
    opt = optim.AdamW([w], lr=0.1, weight_decay=0.5)
    w.grad = np.zeros(2)  # m = 0, so only the decay moves w
    opt.step()
    np.testing.assert_allclose(w.data, [2.0 * 0.95, -4.0 * 0.95], rtol=1e-15)


# ----------------------------------------------------------------------------- state dicts
def _checkpoint_round_trip(sd):
    """Save as a trainer does: state arrays aside (safetensors), everything else through JSON."""
    arrays = {
        (i, k): v for i, s in sd["state"].items() for k, v in s.items() if isinstance(v, np.ndarray)
    }
    meta = {
        "state": {
            i: {k: v for k, v in s.items() if not isinstance(v, np.ndarray)}
            for i, s in sd["state"].items()
        },
        "param_groups": sd["param_groups"],
    }
    meta = json.loads(json.dumps(meta))  # state keys become strings, betas a list
    for (i, k), v in arrays.items():
        meta["state"][str(i)][k] = v.copy()
    return meta


MAKERS = {
    "sgd": lambda ps, lr: optim.SGD(
        _two_groups(ps), lr=lr, momentum=0.9, nesterov=True, weight_decay=0.01
    ),
    "adamw": lambda ps, lr: optim.AdamW(
        _two_groups(ps), lr=lr, betas=(0.8, 0.95), weight_decay=0.1, amsgrad=True
    ),
    "adam": lambda ps, lr: optim.Adam(ps, lr=lr, weight_decay=0.1),
}


@pytest.mark.parametrize("kind", MAKERS)
def test_state_dict_round_trip_gives_bit_identical_steps(kind):
    make = MAKERS[kind]
    a = _tensors(_initial())
    opt_a = make(a, 0.01)
    for step in range(3):
        _set_grads(a, step)
        opt_a.step()
    saved = _checkpoint_round_trip(opt_a.state_dict())

    b = _tensors([p.data for p in a])
    opt_b = make(b, 123.0)  # hyperparameters come from the checkpoint, not the constructor
    opt_b.load_state_dict(saved)
    for key in opt_a.param_groups[0]:
        if key != "params":
            assert opt_b.param_groups[0][key] == opt_a.param_groups[0][key], key
    for step in range(3, 6):
        _set_grads(a, step)
        _set_grads(b, step)
        opt_a.step()
        opt_b.step()
        for p, q in zip(a, b):
            np.testing.assert_array_equal(p.data, q.data)


def test_state_dict_layout_is_torch_like_and_a_snapshot():
    params = _tensors(_initial())
    opt = optim.AdamW(_two_groups(params), lr=0.01, amsgrad=True)
    _set_grads(params, 0)
    opt.step()
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert sd["param_groups"][1]["lr"] == 0.05 and sd["param_groups"][0]["lr"] == 0.01
    assert set(sd["state"]) == {0, 1, 2}
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert sd["state"][0]["step"] == 1 and isinstance(sd["state"][0]["step"], int)
    json.dumps(sd["param_groups"])
    before = sd["state"][0]["exp_avg"].copy()
    _set_grads(params, 1)
    opt.step()
    np.testing.assert_array_equal(sd["state"][0]["exp_avg"], before)


def test_state_dict_round_trip_casts_to_the_parameter_dtype():
    params = [tinyllm.tensor(np.ones((2, 2), dtype=np.float32), requires_grad=True)]
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    sd = {
        "state": {0: {"momentum_buffer": np.ones((2, 2))}},
        "param_groups": opt.state_dict()["param_groups"],
    }
    opt.load_state_dict(sd)
    assert opt.state[params[0]]["momentum_buffer"].dtype == np.float32


def test_load_state_dict_rejects_mismatches():
    params = _tensors(_initial())
    opt = optim.AdamW(_two_groups(params), lr=0.01)
    _set_grads(params, 0)
    opt.step()
    sd = opt.state_dict()

    one_group = optim.AdamW(params, lr=0.01)
    with pytest.raises(ValueError, match="2 parameter groups but this optimizer has 1"):
        one_group.load_state_dict(sd)

    other = _tensors(_initial())
    sizes = optim.AdamW([{"params": other[:1]}, {"params": other[1:]}], lr=0.01)
    with pytest.raises(ValueError, match="group 0 has 2 parameters but this optimizer's has 1"):
        sizes.load_state_dict(sd)

    bad_shape = opt.state_dict()
    bad_shape["state"][1]["exp_avg"] = np.zeros((5,))
    with pytest.raises(ValueError, match=r"'exp_avg' for parameter 1 has shape \(5,\)"):
        opt.load_state_dict(bad_shape)

    bad_index = opt.state_dict()
    bad_index["state"][7] = bad_index["state"][0]
    with pytest.raises(ValueError, match="parameter 7"):
        opt.load_state_dict(bad_index)


# ----------------------------------------------------------------------------- API
def test_constructor_errors_name_the_bad_value():
    params = _tensors(_initial())
    cases = [
        (lambda: optim.SGD(params, lr=-0.1), ValueError, "lr=-0.1"),
        (lambda: optim.SGD(params, momentum=-1), ValueError, "momentum=-1"),
        (lambda: optim.SGD(params, weight_decay=-1), ValueError, "weight_decay=-1"),
        (lambda: optim.SGD(params, nesterov=True), ValueError, "Nesterov"),
        (
            lambda: optim.SGD(params, momentum=0.9, dampening=0.1, nesterov=True),
            ValueError,
            "dampening=0.1",
        ),
        (lambda: optim.SGD([{"params": params, "lr": -1.0}]), ValueError, "lr=-1.0"),
        (lambda: optim.AdamW(params, lr=-1e-3), ValueError, "lr=-0.001"),
        (lambda: optim.AdamW(params, eps=-1.0), ValueError, "eps=-1.0"),
        (lambda: optim.AdamW(params, betas=(1.0, 0.999)), ValueError, "index 0: 1.0"),
        (lambda: optim.AdamW(params, betas=(0.9, -0.1)), ValueError, "index 1: -0.1"),
        (lambda: optim.AdamW(params, weight_decay=-0.1), ValueError, "weight_decay=-0.1"),
        (lambda: optim.AdamW([]), ValueError, "empty parameter list"),
        (lambda: optim.AdamW(params[0]), TypeError, "single Tensor"),
        (lambda: optim.AdamW(set(params)), TypeError, "set"),
        (lambda: optim.AdamW([np.zeros(3)]), TypeError, "ndarray"),
        (lambda: optim.AdamW([params[0], params[0]]), ValueError, "twice"),
        (
            lambda: optim.AdamW([{"params": params[:1]}, {"params": params[:2]}]),
            ValueError,
            "more than one parameter group",
        ),
        (lambda: optim.AdamW([params[0] * 2]), ValueError, "non-leaf"),
    ]
    for make, error, message in cases:
        with pytest.raises(error, match=message):
            make()


def test_groups_fill_defaults_and_accept_names():
    a, b, c = _tensors(_initial())
    opt = optim.SGD([("a", a), ("b", b)], lr=0.1, momentum=0.9)
    assert opt.param_groups[0]["param_names"] == ["a", "b"]
    opt.add_param_group({"params": [("c", c)], "lr": 0.5})
    group = opt.param_groups[1]
    assert group["lr"] == 0.5 and group["momentum"] == 0.9 and group["params"] == [c]
    with pytest.raises(ValueError, match="with names"):
        opt.add_param_group({"params": [tinyllm.zeros(2, requires_grad=True)]})
    assert "Parameter Group 1" in repr(opt) and "momentum: 0.9" in repr(opt)


def test_zero_grad():
    params = _tensors(_initial())
    opt = optim.SGD(params, lr=0.1)
    _set_grads(params, 0)
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in params)
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_step_with_closure_returns_its_loss():
    w = tinyllm.tensor([3.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with tinyllm.no_grad():  # the closure still records its graph
        loss = opt.step(closure)
    assert loss.item() == 9.0
    np.testing.assert_allclose(w.data, [1.5])  # 3 - 0.25 * 2 * 3


# ----------------------------------------------------------------------------- schedules
def _sgd_two_groups(lrs=(0.5, 0.1)):
    return optim.SGD([{"params": [tinyllm.zeros(2, requires_grad=True)], "lr": lr} for lr in lrs])


def _torch_sgd_two_groups(lrs=(0.5, 0.1)):
    torch = pytest.importorskip("torch")
    return torch.optim.SGD(
        [{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in lrs]
    )


def _compare_schedules(ours, theirs, steps, rtol=TOL):
    for step in range(steps):
        np.testing.assert_allclose(
            ours.get_last_lr(), theirs.get_last_lr(), rtol=rtol, atol=1e-15, err_msg=f"step {step}"
        )
        assert [g["lr"] for g in ours.optimizer.param_groups] == ours.get_last_lr()
        ours.optimizer.step()
        theirs.optimizer.step()
        ours.step()
        theirs.step()


def test_lambda_lr_matches_torch():
    torch = pytest.importorskip("torch")
    fns = [lambda k: 0.9**k, lambda k: 1.0 / (k + 1)]
    ours = optim.LambdaLR(_sgd_two_groups(), fns)
    theirs = torch.optim.lr_scheduler.LambdaLR(_torch_sgd_two_groups(), fns)
    _compare_schedules(ours, theirs, 10)
    with pytest.raises(ValueError, match="expected 2 lr_lambdas"):
        optim.LambdaLR(_sgd_two_groups(), fns[:1])


@pytest.mark.parametrize("kwargs", [dict(), dict(factor=0.25, total_iters=3)], ids=str)
def test_constant_lr_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    ours = optim.ConstantLR(_sgd_two_groups(), **kwargs)
    theirs = torch.optim.lr_scheduler.ConstantLR(_torch_sgd_two_groups(), **kwargs)
    _compare_schedules(ours, theirs, 8)
    assert ours.get_last_lr() == [0.5, 0.1]  # exactly the base rate afterwards


def _nanogpt_get_lr(it, learning_rate, warmup_iters, lr_decay_iters, min_lr):
    """nanoGPT's train.py `get_lr`, restated as the reference."""
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    assert 0 <= decay_ratio <= 1
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
    return min_lr + coeff * (learning_rate - min_lr)


@pytest.mark.parametrize(("warmup", "total"), [(0, 10), (1, 10), (4, 12), (10, 200)])
def test_warmup_cosine_is_nanogpts_get_lr(warmup, total):
    for k in range(total + 5):
        assert optim.warmup_cosine_lr(k, 6e-4, warmup, total, 6e-5) == _nanogpt_get_lr(
            k, 6e-4, warmup, total, 6e-5
        )
    sched = optim.WarmupCosine(_sgd_two_groups(), warmup, total, min_lr=0.01)
    for k in range(total + 5):
        assert sched.last_epoch == k
        assert sched.get_last_lr() == [
            _nanogpt_get_lr(k, base, warmup, total, 0.01) for base in (0.5, 0.1)
        ]
        sched.step()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_warmup_cosine_matches_torch_linear_then_cosine():
    torch = pytest.importorskip("torch")
    warmup, total, min_lr = 4, 20, 0.01
    ref_opt = _torch_sgd_two_groups()
    lrs = torch.optim.lr_scheduler
    warm = lrs.LinearLR(
        ref_opt,
        start_factor=1 / (warmup + 1),
        end_factor=warmup / (warmup + 1),
        total_iters=warmup - 1,
    )
    cosine = lrs.CosineAnnealingLR(ref_opt, T_max=total - warmup, eta_min=min_lr)
    theirs = lrs.SequentialLR(ref_opt, [warm, cosine], milestones=[warmup])
    ours = optim.WarmupCosine(_sgd_two_groups(), warmup, total, min_lr)
    _compare_schedules(ours, theirs, total + 1)  # torch's cosine turns back up after T_max


def test_inverse_sqrt_is_vaswanis_schedule_with_peak_at_base_lr():
    d_model, warmup = 512, 40
    base = (d_model * warmup) ** -0.5
    sched = optim.InverseSqrt(_sgd_two_groups((base, 2 * base)), warmup_steps=warmup)
    values = []
    for k in range(400):
        t = k + 1  # the paper's step_num counts from 1
        paper = d_model**-0.5 * min(t**-0.5, t * warmup**-1.5)
        np.testing.assert_allclose(sched.get_last_lr(), [paper, 2 * paper], rtol=1e-12)
        values.append(sched.get_last_lr()[0])
        sched.step()
    assert max(values) == values[warmup - 1] == base
    assert optim.inverse_sqrt_lr(warmup - 1, 1e-3, warmup) == 1e-3
    assert optim.inverse_sqrt_lr(4 * warmup - 1, 1e-3, warmup) == 0.5e-3  # 1/sqrt decay


@pytest.mark.parametrize(
    "make",
    [
        lambda o: optim.WarmupCosine(o, 3, 10, min_lr=0.01),
        lambda o: optim.InverseSqrt(o, 4),
        lambda o: optim.ConstantLR(o, factor=0.5, total_iters=4),
        lambda o: optim.LambdaLR(o, lambda k: 0.5**k),
    ],
    ids=["cosine", "inverse_sqrt", "constant", "lambda"],
)
def test_scheduler_state_dict_resumes_the_schedule(make):
    original = make(_sgd_two_groups())
    for _ in range(5):
        original.step()
    saved = json.loads(json.dumps(original.state_dict()))

    resumed = make(_sgd_two_groups())  # rates now at step 0
    resumed.load_state_dict(saved)
    assert resumed.last_epoch == original.last_epoch == 5
    assert [g["lr"] for g in resumed.optimizer.param_groups] == original.get_last_lr()
    for _ in range(8):
        original.step()
        resumed.step()
        assert resumed.get_last_lr() == original.get_last_lr()


def test_scheduler_errors():
    with pytest.raises(ValueError, match="total_steps=5 is less than warmup_steps=10"):
        optim.WarmupCosine(_sgd_two_groups(), 10, 5)
    with pytest.raises(ValueError, match="warmup_steps=-1"):
        optim.warmup_cosine_lr(0, 1.0, -1, 5)
    with pytest.raises(ValueError, match="warmup_steps=0"):
        optim.InverseSqrt(_sgd_two_groups(), 0)
    with pytest.raises(ValueError, match="factor=2"):
        optim.ConstantLR(_sgd_two_groups(), factor=2)
    with pytest.raises(KeyError, match="initial_lr"):
        optim.WarmupCosine(_sgd_two_groups(), 2, 5, last_epoch=3)
    with pytest.raises(TypeError, match="expected an optimizer"):
        optim.InverseSqrt([1.0], 10)
    assert optim.warmup_cosine_lr(5, 1.0, 5, 5, min_lr=0.1) == 0.1  # empty cosine phase


# ----------------------------------------------------------------------------- clipping
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    torch = pytest.importorskip("torch")
    ours = _tensors(_initial())
    theirs = [torch.tensor(a, requires_grad=True) for a in _initial()]
    _set_grads(ours, 0, missing=lambda step, i: i == 1)
    for p, q in zip(ours, theirs):
        q.grad = None if p.grad is None else torch.tensor(p.grad.copy())
    total = optim.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    ref = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(total, np.float64)
    np.testing.assert_allclose(total, ref.item(), rtol=TOL)
    for p, q in zip(ours, theirs):
        if p.grad is None:
            assert q.grad is None
        else:
            np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=TOL, atol=1e-15)


def test_clip_grad_norm_float32_and_single_tensor():
    torch = pytest.importorskip("torch")
    g = np.random.default_rng(0).standard_normal((64, 32)).astype(np.float32)
    w = tinyllm.zeros(64, 32, requires_grad=True)
    w.grad = g.copy()
    ref = torch.zeros(64, 32, requires_grad=True)
    ref.grad = torch.tensor(g.copy())
    total = optim.clip_grad_norm_(w, 1.0)
    expected = torch.nn.utils.clip_grad_norm_(ref, 1.0)
    assert isinstance(total, np.float32) and w.grad.dtype == np.float32
    np.testing.assert_allclose(total, expected.item(), rtol=1e-6)
    np.testing.assert_allclose(w.grad, ref.grad.numpy(), rtol=1e-6)
    assert abs(np.linalg.norm(w.grad) - 1.0) < 1e-5


def test_clip_grad_norm_non_finite_and_edge_cases():
    w = tinyllm.zeros(3, requires_grad=True)
    w.grad = np.array([1.0, np.nan, 2.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        optim.clip_grad_norm_([w], 1.0, error_if_nonfinite=True)
    assert np.isnan(optim.clip_grad_norm_([w], 1.0))
    assert np.isnan(w.grad).all()  # as torch: the NaN reaches every gradient

    w.grad = np.array([0.3, 0.4])
    assert optim.clip_grad_norm_([w], 1.0) == np.sqrt(0.25)
    np.testing.assert_array_equal(w.grad, [0.3, 0.4])  # under the limit: untouched
    assert optim.clip_grad_norm_([tinyllm.zeros(2, requires_grad=True)], 1.0) == 0.0
    with pytest.raises(ValueError, match="norm_type=0.0"):
        optim.clip_grad_norm_([w], 1.0, norm_type=0)
    with pytest.raises(ValueError, match="max_norm=-1.0"):
        optim.clip_grad_norm_([w], -1.0)


# ----------------------------------------------------------------------------- decay groups
def _p(*shape, requires_grad=True):
    return tinyllm.zeros(*shape, requires_grad=requires_grad)


def test_decay_groups_for_gpt2_names_with_tied_head():
    wte = _p(50, 8)
    named = [
        ("transformer.wte.weight", wte),
        ("transformer.wpe.weight", _p(16, 8)),
        ("transformer.h.0.ln_1.weight", _p(8)),
        ("transformer.h.0.ln_1.bias", _p(8)),
        ("transformer.h.0.attn.c_attn.weight", _p(8, 24)),
        ("transformer.h.0.attn.c_attn.bias", _p(24)),
        ("transformer.h.0.attn.c_proj.weight", _p(8, 8)),
        ("transformer.h.0.mlp.c_fc.weight", _p(8, 32)),
        ("transformer.ln_f.weight", _p(8)),
        ("lm_head.weight", wte),  # tied: the same tensor under a second name
    ]
    decay, no_decay = optim.param_groups_for_weight_decay(named, weight_decay=0.1)
    assert decay["param_names"] == [
        "transformer.h.0.attn.c_attn.weight",
        "transformer.h.0.attn.c_proj.weight",
        "transformer.h.0.mlp.c_fc.weight",
    ]
    assert no_decay["param_names"] == [
        "transformer.wte.weight",
        "transformer.wpe.weight",
        "transformer.h.0.ln_1.weight",
        "transformer.h.0.ln_1.bias",
        "transformer.h.0.attn.c_attn.bias",
        "transformer.ln_f.weight",
    ]
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (0.1, 0.0)
    assert sum(p is wte for g in (decay, no_decay) for p in g["params"]) == 1


def test_decay_groups_for_bert_names_frozen_params_and_models():
    named = [
        ("bert.embeddings.word_embeddings.weight", _p(30, 8)),
        ("bert.embeddings.LayerNorm.weight", _p(8)),
        ("bert.encoder.layer.0.attention.self.query.weight", _p(8, 8)),
        ("bert.encoder.layer.0.attention.output.LayerNorm.bias", _p(8)),
        ("bert.encoder.layer.0.output.dense.weight", _p(32, 8)),
        ("bert.pooler.dense.weight", _p(8, 8, requires_grad=False)),  # frozen: left out
    ]

    class Model:
        def named_parameters(self):
            return iter(named)

    decay, no_decay = optim.param_groups_for_weight_decay(Model(), 0.01)
    assert decay["param_names"] == [
        "bert.encoder.layer.0.attention.self.query.weight",
        "bert.encoder.layer.0.output.dense.weight",
    ]
    assert len(no_decay["params"]) == 3
    assert optim.is_no_decay("blocks.0.norm1.weight", _p(8, 8))
    assert not optim.is_no_decay("blocks.0.linear.weight", _p(8, 8))
    with pytest.raises(TypeError, match="pairs"):
        optim.param_groups_for_weight_decay([_p(2, 2)], 0.1)


def test_decay_groups_drive_adamw():
    weight, bias = _p(3, 3), _p(3)
    weight.data[:] = 1.0
    bias.data[:] = 1.0
    groups = optim.param_groups_for_weight_decay(
        [("fc.weight", weight), ("fc.bias", bias)], weight_decay=0.5
    )
    opt = optim.AdamW(groups, lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["fc.weight"]
    weight.grad, bias.grad = np.zeros((3, 3), np.float32), np.zeros(3, np.float32)
    opt.step()
    np.testing.assert_allclose(weight.data, 0.95)
    np.testing.assert_array_equal(bias.data, 1.0)
