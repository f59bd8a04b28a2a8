"""tinyllm.exercises: each grader passes its reference solution, fails plausible wrong answers,
explains without giving the answer away, and the exercise notebooks run as handed out.

``WRONG_VARIANTS`` is the table of mistakes each grader must catch (quoted in the docs).
"""

import inspect
from pathlib import Path

import exercise_solutions as S
import numpy as np
import pytest

from tinyllm import exercises
from tinyllm.exercises.top_p import library_top_p, prefix_margin
from tinyllm.models.sampling import sample

SOLUTIONS = {
    "mul_backward": S.mul_backward,
    "sum_backward": S.sum_backward,
    "softmax_backward": S.softmax_backward,
    "log_softmax_backward": S.log_softmax_backward,
    "layer_norm": (S.layer_norm_forward, S.layer_norm_backward),
    "attention_head": (S.attention_forward, S.attention_backward),
    "bpe_merge": S.bpe_merge,
    "most_frequent_pair": S.most_frequent_pair,
    "adamw_step": S.adamw_step,
    "top_p_filter": S.top_p_filter,
}


# ---------------------------------------------------------------- wrong variants
def _mul_unreduced(a, b, dout):
    return dout * b, dout * a


def _mul_leading_only(a, b, dout):
    def reduce(g, shape):
        return g.sum(axis=tuple(range(g.ndim - len(shape))))
    return reduce(dout * b, np.shape(a)), reduce(dout * a, np.shape(b))


def _mul_swapped(a, b, dout):
    return S._reduce_to(dout * a, np.shape(a)), S._reduce_to(dout * b, np.shape(b))


def _sum_plain_broadcast(x_shape, dim, keepdim, dout):
    return np.broadcast_to(dout, x_shape).copy()


def _sum_mean_backward(x_shape, dim, keepdim, dout):
    dx = S.sum_backward(x_shape, dim, keepdim, dout)
    return dx * np.prod(dout.shape) / np.prod(x_shape)


def _sum_ignores_keepdim(x_shape, dim, keepdim, dout):
    return S.sum_backward(x_shape, dim, False, dout)


def _softmax_no_sum(y, dout, dim=-1):
    return y * dout


def _softmax_last_axis(y, dout, dim=-1):
    return S.softmax_backward(y, dout, -1)


def _softmax_diagonal(y, dout, dim=-1):
    return y * (1 - y) * dout


def _log_softmax_uses_y(y, dout, dim=-1):
    return dout - y * np.sum(dout, axis=dim, keepdims=True)


def _log_softmax_no_sum(y, dout, dim=-1):
    return dout - np.exp(y) * dout


def _log_softmax_last_axis(y, dout, dim=-1):
    return S.log_softmax_backward(y, dout, -1)


def _ln_backward_without(term):
    def backward(dout, cache):
        xhat, rstd, weight = cache
        dx, dweight, dbias = S.layer_norm_backward(dout, cache)
        dxhat = dout * weight
        if term == "mean":
            dx = dx + rstd * dxhat.mean(axis=-1, keepdims=True)
        else:
            dx = dx + rstd * xhat * (dxhat * xhat).mean(axis=-1, keepdims=True)
        return dx, dweight, dbias
    return S.layer_norm_forward, backward


def _ln_backward_axis0(dout, cache):
    xhat, _, _ = cache
    dx, _, _ = S.layer_norm_backward(dout, cache)
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def _ln_forward_unbiased(x, weight, bias, eps=1e-5):
    mean = x.mean(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(x.var(axis=-1, ddof=1, keepdims=True) + eps)
    xhat = (x - mean) * rstd
    return xhat * weight + bias, (xhat, rstd, weight)


def _ln_forward_eps_outside(x, weight, bias, eps=1e-5):
    mean = x.mean(axis=-1, keepdims=True)
    rstd = 1.0 / (x.std(axis=-1, keepdims=True) + eps)
    xhat = (x - mean) * rstd
    return xhat * weight + bias, (xhat, rstd, weight)


def _attention(causal=True, scale_power=0.5, max_shift=True):
    def forward(q, k, v):
        T, hs = q.shape[-2], q.shape[-1]
        scale = 1.0 / hs ** scale_power
        scores = scale * q @ np.swapaxes(k, -1, -2)
        if causal:
            scores = np.where(np.tril(np.ones((T, T), dtype=bool)), scores, -np.inf)
        shift = scores.max(axis=-1, keepdims=True) if max_shift else 0.0
        e = np.exp(scores - shift)
        att = e / e.sum(axis=-1, keepdims=True)
        return att @ v, (q, k, v, att, scale)
    return forward, S.attention_backward


def _attention_backward_no_sum(dout, cache):
    q, k, v, att, scale = cache
    dscores = att * (dout @ np.swapaxes(v, -1, -2))
    return scale * dscores @ k, scale * np.swapaxes(dscores, -1, -2) @ q, \
        np.swapaxes(att, -1, -2) @ dout


def _attention_backward_dk_untransposed(dout, cache):
    dq, _, dv = S.attention_backward(dout, cache)
    q, k, v, att, scale = cache
    datt = dout @ np.swapaxes(v, -1, -2)
    dscores = att * (datt - np.sum(datt * att, axis=-1, keepdims=True))
    return dq, scale * dscores @ q, dv


def _merge_overlapping(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == tuple(pair):
            out.append(new_id)
        elif not (i > 0 and (ids[i - 1], ids[i]) == tuple(pair)):
            out.append(ids[i])
        i += 1
    return out


def _merge_drops_last(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids) - 1:
        if (ids[i], ids[i + 1]) == tuple(pair):
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _merge_right_to_left(ids, pair, new_id):
    return S.bpe_merge(ids[::-1], pair[::-1], new_id)[::-1]


def _merge_either_order(ids, pair, new_id):
    a, b = pair
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and {ids[i], ids[i + 1]} == {a, b}:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _merge_in_place(ids, pair, new_id):
    merged = S.bpe_merge(ids, pair, new_id)
    ids[:] = merged
    return ids


def _pair_first_seen(ids):
    counts = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return max(counts, key=counts.get) if counts else None


def _pair_non_overlapping(ids):
    counts, i = {}, 0
    while i < len(ids) - 1:
        pair = (ids[i], ids[i + 1])
        counts[pair] = counts.get(pair, 0) + 1
        i += 2 if ids[i] == ids[i + 1] else 1
    return min(counts, key=lambda p: (-counts[p], p)) if counts else None


def _pair_largest_on_ties(ids):
    counts = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return max(counts, key=lambda p: (counts[p], p)) if counts else None


def _pair_raises_on_empty(ids):
    counts = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return min(counts, key=lambda p: (-counts[p], p))


def _adamw(bias_correction=True, coupled=False, decay_lr=True, eps_inside=False,
           decay_after=False):
    def step(p, g, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        beta1, beta2 = betas
        factor = 1 - (lr * weight_decay if decay_lr else weight_decay)
        if coupled:
            g = g + weight_decay * p
        elif not decay_after:
            p = p * factor
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1 ** t) if bias_correction else m
        v_hat = v / (1 - beta2 ** t) if bias_correction else v
        denom = np.sqrt(v_hat + eps) if eps_inside else np.sqrt(v_hat) + eps
        p = p - lr * m_hat / denom
        if decay_after and not coupled:
            p = p * factor
        return p, m, v
    return step


def _top_p(keep_crossing=True, stable_ties=True, renormalise=True, max_shift=True):
    def top_p_filter(logits, p):
        logits = np.asarray(logits, dtype=np.float64)
        shift = logits.max(axis=-1, keepdims=True) if max_shift else 0.0
        probs = np.exp(logits - shift)
        probs = probs / probs.sum(axis=-1, keepdims=True)
        if p >= 1.0:
            return probs
        if stable_ties:
            order = np.argsort(-probs, axis=-1, kind="stable")
        else:
            order = np.flip(np.argsort(probs, axis=-1, kind="stable"), axis=-1)
        sorted_probs = np.take_along_axis(probs, order, axis=-1)
        mass = np.cumsum(sorted_probs, axis=-1)
        keep_sorted = (mass - sorted_probs < p) if keep_crossing else (mass < p)
        keep_sorted[..., 0] |= not keep_crossing  # the argmax always stays
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=-1)
        kept = np.where(keep, probs, 0.0)
        return kept / kept.sum(axis=-1, keepdims=True) if renormalise else kept
    return top_p_filter


#: exercise -> {plausible mistake: a function making it}; each grader must fail every one.
WRONG_VARIANTS = {
    "mul_backward": {
        "no reduction: returns dout * b, dout * a at the broadcast shape": _mul_unreduced,
        "sums the added leading axes but not the stretched size-1 axes": _mul_leading_only,
        "swaps the factors: da = dout * a": _mul_swapped,
    },
    "sum_backward": {
        "broadcasts dout without re-inserting the summed axes": _sum_plain_broadcast,
        "mean's backward: divides by the number of summed entries": _sum_mean_backward,
        "ignores keepdim: re-inserts axes that are still there": _sum_ignores_keepdim,
    },
    "softmax_backward": {
        "forgets the -sum(dout * y) term: dx = y * dout": _softmax_no_sum,
        "sums over the last axis whatever dim is": _softmax_last_axis,
        "only the Jacobian's diagonal: dx = y (1 - y) dout": _softmax_diagonal,
    },
    "log_softmax_backward": {
        "uses y (log-probabilities) where softmax = exp(y) belongs": _log_softmax_uses_y,
        "forgets the sum over dim: dx = dout - exp(y) * dout": _log_softmax_no_sum,
        "sums over the last axis whatever dim is": _log_softmax_last_axis,
    },
    "layer_norm": {
        "dx forgets the -mean(dxhat) term": _ln_backward_without("mean"),
        "dx forgets the -xhat * mean(dxhat * xhat) term": _ln_backward_without("var"),
        "dweight, dbias summed over axis 0 only": (S.layer_norm_forward, _ln_backward_axis0),
        "forward uses the unbiased variance (ddof=1)": (_ln_forward_unbiased,
                                                        S.layer_norm_backward),
        "forward adds eps outside the square root": (_ln_forward_eps_outside,
                                                     S.layer_norm_backward),
    },
    "attention_head": {
        "no causal mask": _attention(causal=False),
        "scale 1/hs instead of 1/sqrt(hs)": _attention(scale_power=1.0),
        "no max subtraction: overflows on large scores": _attention(max_shift=False),
        "backward forgets the softmax's -sum term": (S.attention_forward,
                                                     _attention_backward_no_sum),
        "dk = scale * dscores @ q (dscores not transposed)": (
            S.attention_forward, _attention_backward_dk_untransposed),
    },
    "bpe_merge": {
        "overlapping merges: [a, a, a] -> [new, new]": _merge_overlapping,
        "drops the last id when it is not merged": _merge_drops_last,
        "merges right to left: [a, a, a] -> [a, new]": _merge_right_to_left,
        "matches the pair in either order": _merge_either_order,
        "rewrites the input list in place": _merge_in_place,
    },
    "most_frequent_pair": {
        "ties go to the first pair seen (max over a dict)": _pair_first_seen,
        "counts non-overlapping occurrences only": _pair_non_overlapping,
        "ties go to the largest pair": _pair_largest_on_ties,
        "raises on a list without pairs": _pair_raises_on_empty,
    },
    "adamw_step": {
        "no bias correction": _adamw(bias_correction=False),
        "Adam's coupled L2 decay: g += weight_decay * p": _adamw(coupled=True),
        "decay without the learning rate: p *= 1 - weight_decay": _adamw(decay_lr=False),
        "eps inside the square root": _adamw(eps_inside=True),
        "decays after the update instead of before": _adamw(decay_after=True),
    },
    "top_p_filter": {
        "drops the token that crosses p (keeps mass < p)": _top_p(keep_crossing=False),
        "breaks ties by the higher index": _top_p(stable_ties=False),
        "forgets to renormalise": _top_p(renormalise=False),
        "no max subtraction: overflows on large logits": _top_p(max_shift=False),
    },
}

WRONG_CASES = [(name, label) for name, table in WRONG_VARIANTS.items() for label in table]


# ---------------------------------------------------------------- graders
def test_every_exercise_has_a_solution_and_wrong_variants():
    assert set(SOLUTIONS) == set(exercises.list_exercises()) == set(WRONG_VARIANTS)
    assert all(len(table) >= 2 for table in WRONG_VARIANTS.values())


@pytest.mark.parametrize("name", SOLUTIONS)
def test_reference_solution_passes(name, capsys):
    result = exercises.check(name, SOLUTIONS[name])
    assert result, result.failures
    assert result.passed and not result.failures and result.n_cases >= 4
    assert capsys.readouterr().out.strip() == f"{name}: passed: {result.n_cases} cases"


@pytest.mark.parametrize("name, label", WRONG_CASES, ids=[f"{n}: {l}" for n, l in WRONG_CASES])
def test_wrong_variant_fails(name, label, capsys):
    result = exercises.check(name, WRONG_VARIANTS[name][label])
    out = capsys.readouterr().out
    assert not result and not result.not_implemented
    assert result.failures and result.hint and 0 < result.n_failed <= result.n_cases
    assert out.startswith(f"{name}: FAILED {result.n_failed} of {result.n_cases} cases")
    assert f"hint: {result.hint}" in out
    _assert_no_solution_in(out, name)


def _assert_no_solution_in(text: str, name: str) -> None:
    """No code in a report: no source line of the reference solution, no def/return."""
    fns = SOLUTIONS[name] if isinstance(SOLUTIONS[name], tuple) else (SOLUTIONS[name],)
    for fn in fns:
        for line in inspect.getsource(fn).splitlines():
            line = line.strip()
            if len(line) > 12 and not line.startswith(('"""', "#")):
                assert line not in text, line
    assert "def " not in text and "return " not in text and "np." not in text


def test_messages_say_what_is_wrong_in_terms_of_properties():
    result = exercises.check("mul_backward", _mul_unreduced, verbose=False)
    assert any("your db has shape (3, 4) but b has shape (4,)" in f for f in result.failures)
    assert "sum over those uses" in result.hint
    result = exercises.check("sum_backward", _sum_mean_backward, verbose=False)
    assert any("off by a factor of 0.25" in f for f in result.failures)
    result = exercises.check("layer_norm", _ln_backward_without("mean"), verbose=False)
    assert any("your dx is off by up to" in f and "relative error" in f
               and "central differences of your forward" in f for f in result.failures)
    # The answer itself is not printed: "three in a row" merges [7, 7, 7] into [256, 7].
    result = exercises.check("bpe_merge", _merge_overlapping, verbose=False)
    three = next(f for f in result.failures if "three in a row" in f)
    assert "[256, 256]" in three and "[256, 7]" not in three
    result = exercises.check("top_p_filter", _top_p(keep_crossing=False), verbose=False)
    assert any("should be kept" in f for f in result.failures)


def test_a_wrong_forward_is_graded_apart_from_a_right_backward():
    result = exercises.check("layer_norm", (_ln_forward_eps_outside, S.layer_norm_backward),
                             verbose=False)
    assert any("your y is off" in f for f in result.failures)
    assert any("compared with tinyllm's gradient" in f for f in result.failures)


def test_adamw_reports_the_first_step_that_differs():
    result = exercises.check("adamw_step", _adamw(bias_correction=False), verbose=False)
    assert all("step t=1:" in f or "step t=100:" in f for f in result.failures)


# ---------------------------------------------------------------- the check() contract
def test_unknown_exercise_names_the_accepted_ones():
    with pytest.raises(ValueError, match="unknown exercise 'softmax'; accepted: .*softmax_"
                                         "backward.*top_p_filter"):
        exercises.check("softmax", S.softmax_backward)
    with pytest.raises(ValueError, match="unknown exercise"):
        exercises.describe("nope")


def test_fn_must_be_callable_or_a_pair_of_callables():
    with pytest.raises(TypeError, match="mul_backward must be a function, got int"):
        exercises.check("mul_backward", 3)
    with pytest.raises(TypeError, match=r"expects the pair \(layer_norm_forward, "
                                        r"layer_norm_backward\)"):
        exercises.check("layer_norm", S.layer_norm_forward)
    with pytest.raises(TypeError, match="attention_backward must be a function"):
        exercises.check("attention_head", (S.attention_forward, None))


def test_a_raising_function_is_a_failure_not_a_crash(capsys):
    def softmax_backward(y, dout, dim=-1):
        raise ValueError("operands could not be broadcast")

    result = exercises.check("softmax_backward", softmax_backward)
    out = capsys.readouterr().out
    assert not result and result.n_failed == result.n_cases
    assert "softmax_backward raised ValueError: operands could not be broadcast (line" in out


def test_not_implemented_is_reported_once_as_not_yet_implemented(capsys):
    def bpe_merge(ids, pair, new_id):
        raise NotImplementedError("your code here")

    result = exercises.check("bpe_merge", bpe_merge)
    out = capsys.readouterr().out
    assert not result and result.not_implemented
    assert out.startswith("bpe_merge: not yet implemented (bpe_merge raised "
                          "NotImplementedError: your code here")
    assert out.count("\n") == 1


def test_wrong_return_type_is_reported():
    result = exercises.check("mul_backward", lambda a, b, dout: dout, verbose=False)
    assert "mul_backward must return 2 things (da, db); it returned a ndarray" in \
        result.failures[0]
    result = exercises.check("bpe_merge", lambda ids, pair, new: None, verbose=False)
    assert "must return a list of ints; it returned a NoneType" in result.failures[0]


def test_results_are_reproducible():
    first = exercises.check("attention_head", _attention(causal=False), verbose=False)
    second = exercises.check("attention_head", _attention(causal=False), verbose=False)
    assert first == second


def test_list_and_describe():
    listed = exercises.list_exercises()
    assert list(listed)[:2] == ["mul_backward", "sum_backward"]
    assert all(isinstance(s, str) and "\n" not in s for s in listed.values())
    assert "layer_norm_backward(dout, cache) -> (dx, dweight, dbias)" in \
        exercises.describe("layer_norm")


# ---------------------------------------------------------------- references are the library's
def test_top_p_reference_is_the_samplers_distribution():
    """Feed ``sample`` fixed quantiles; its tokens are the inverse CDF of library_top_p."""
    class Quantiles:
        def __init__(self, u):
            self.u = u

        def random(self, shape):
            return self.u.reshape(shape)

    n = 4001
    u = (np.arange(n) + 0.5) / n
    rng = np.random.default_rng(0)
    rows = [2.0 * rng.standard_normal(12) for _ in range(20)]
    rows += [np.array([0.0, 2.0, 2.0, 2.0, 1.0]), np.zeros(5), np.log([0.2, 0.4, 0.1, 0.3])]
    for logits in rows:
        for p in (0.3, 0.5, 0.6, 0.9, 1.0):
            if prefix_margin(logits, p) < 1e-6:
                continue
            tokens = sample(np.tile(logits, (n, 1)), 1.0, None, p, Quantiles(u))
            cdf = np.cumsum(library_top_p(logits, p))
            expected = np.minimum((cdf[None] <= u[:, None] * cdf[-1]).sum(-1), len(cdf) - 1)
            np.testing.assert_array_equal(tokens, expected)


# ---------------------------------------------------------------- notebooks
NOTEBOOK_DIR = Path(__file__).parent.parent / "notebooks" / "exercises"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def test_notebooks_are_handed_out_clean():
    nbformat = pytest.importorskip("nbformat")
    assert len(NOTEBOOKS) >= 6
    names = set()
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert all(not c.get("outputs") and c.get("execution_count") is None
                   for c in nb.cells if c.cell_type == "code"), path.name
        assert "exercise_solutions" not in code and "NotImplementedError" in code
        names |= {n for n in SOLUTIONS if f'check("{n}"' in code}
        assert (NOTEBOOK_DIR / "README.md").read_text().count(path.name) == 1
    assert names == set(SOLUTIONS)


def _execute(nb, tmp_path):
    nbclient = pytest.importorskip("nbclient")
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", startup_timeout=300,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    # One text per check cell: a stream may arrive in several chunks (a loaded machine).
    return ["".join(o.get("text", "") for o in c.get("outputs", [])) for c in nb.cells
            if c.cell_type == "code" and "exercises.check(" in c.source]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_as_handed_out_runs_and_reports_not_implemented(path, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("ipykernel")
    texts = _execute(nbformat.read(path, as_version=4), tmp_path)
    assert texts and all("not yet implemented" in t for t in texts)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_with_the_solutions_filled_in_passes(path, tmp_path):
    """The solutions' source is run in the kernel just before each check cell."""
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(path, as_version=4)
    source = Path(S.__file__).read_text()
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "code" and "exercises.check(" in cell.source:
            cells.append(nbformat.v4.new_code_cell(source))
        cells.append(cell)
    nb.cells = cells
    texts = _execute(nb, tmp_path)
    assert texts and all(": passed: " in t and "FAILED" not in t for t in texts)
