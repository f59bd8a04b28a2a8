"""tinyllm.nn: Module bookkeeping, state dicts, layers, initialisers and Transformer blocks.

Numerical comparisons run in float64 with relative error (max |a - b| / max |b|) <= 1e-12;
gradient checks use tinyllm.autograd.gradcheck's tolerance (1e-7 + 1e-5 |numeric|).
"""

import numpy as np
import pytest

import tinyllm
import tinyllm.functional as F
import tinyllm.nn as nn
from tinyllm.autograd.gradcheck import gradcheck, max_relative_error

TOL = 1e-12
RNG = np.random.default_rng(3)


@pytest.fixture
def f64():
    with tinyllm.default_dtype(np.float64):
        yield


class Net(nn.Module):
    """Parameters in every kind of place the walk must find them."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(np.ones(2))
        self.blocks = nn.ModuleList([nn.Linear(2, 3), nn.Linear(3, 2)])
        self.extra = [nn.LayerNorm(2)]
        self.heads = {"a": nn.Linear(2, 1, bias=False)}
        self.tied = nn.Linear(3, 2, bias=False)
        self.tied.weight = self.blocks[1].weight           # one Parameter, two names
        self.not_a_param = tinyllm.tensor([1.0])            # plain tensors are not parameters
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        h = self.extra[0](self.blocks[1](self.blocks[0](x * self.scale)))
        return self.drop(self.heads["a"](h))


NAMES = ["scale", "blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias",
         "extra.0.weight", "extra.0.bias", "heads.a.weight"]


def test_parameters_are_found_in_attributes_lists_dicts_and_module_lists():
    net = Net()
    assert [name for name, _ in net.named_parameters()] == NAMES
    assert len(list(net.parameters())) == len(NAMES)
    assert net.num_params() == 2 + 6 + 3 + 6 + 2 + 2 + 2 + 2


def test_tied_parameter_once_in_parameters_under_every_name_in_state_dict():
    net = Net()
    state = net.state_dict()
    assert list(state) == NAMES + ["tied.weight"]
    assert state["tied.weight"] is state["blocks.1.weight"]
    names = [n for n, _ in net.named_parameters(remove_duplicate=False)]
    assert names.count("tied.weight") == 1 and len(names) == len(NAMES) + 1


def test_named_modules_and_children():
    net = Net()
    names = [n for n, _ in net.named_modules()]
    assert names[0] == "" and "blocks.0" in names and "heads.a" in names and "drop" in names
    assert [n for n, _ in net.named_children()][:3] == ["blocks", "extra.0", "heads.a"]


def test_state_dict_round_trip_and_copy_semantics():
    a, b = Net(), Net()
    for p in a.parameters():
        p.data[...] = RNG.standard_normal(p.shape)
    b_params = list(b.parameters())
    b.load_state_dict(a.state_dict())
    assert list(b.parameters()) == b_params                   # the same Parameter objects
    for (_, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert np.array_equal(pa.data, pb.data) and pa.data is not pb.data


def test_load_state_dict_reports_every_problem():
    net = Net()
    state = dict(net.state_dict())
    del state["scale"], state["blocks.0.bias"]
    state["blocks.0.weight"] = np.zeros((4, 4))
    state["nonsense"] = np.zeros(1)
    with pytest.raises(nn.StateDictError) as info:
        net.load_state_dict(state)
    text = str(info.value)
    assert "blocks.0.weight: expected shape (3, 2), given (4, 4)" in text
    assert "missing keys (2): scale, blocks.0.bias" in text
    assert "unexpected keys (1): nonsense" in text


def test_load_state_dict_non_strict_and_tied_aliases():
    net = Net()
    state = {k: v.copy() for k, v in net.state_dict().items()}
    del state["tied.weight"]                                 # its alias is enough
    assert net.load_state_dict(state) == ([], [])
    state["extra_key"] = np.zeros(1)
    del state["scale"]
    assert net.load_state_dict(state, strict=False) == (["scale"], ["extra_key"])
    state = {k: v.copy() for k, v in net.state_dict().items()}
    state["tied.weight"] = state["tied.weight"] + 1
    with pytest.raises(nn.StateDictError, match="one \\(tied\\) parameter"):
        net.load_state_dict(state)
    state["tied.weight"] = np.zeros((2, 3), dtype=np.int64)
    with pytest.raises(nn.StateDictError, match="floating"):
        net.load_state_dict(state)


def test_train_eval_zero_grad_and_dtype():
    net = Net()
    assert net.training and net.drop.training
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.eval()
    net(tinyllm.randn(4, 2)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(not p.grad.any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    assert net.double().dtype == np.float64
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert net.tied.weight is net.blocks[1].weight            # ties survive the conversion
    assert net.float().dtype == np.float32
    with pytest.raises(TypeError, match="floating"):
        net.to(np.int64)


def test_parameter_and_repr():
    p = nn.Parameter([1, 2])
    assert p.requires_grad and p.is_leaf and p.dtype == tinyllm.get_default_dtype()
    assert nn.Parameter([1.5]).dtype == tinyllm.get_default_dtype()
    assert nn.Parameter(np.zeros(2)).dtype == np.float64     # arrays keep their dtype
    assert repr(p).startswith("Parameter containing:")
    text = repr(Net())
    assert "(blocks): ModuleList(" in text and "(0): Linear(in_features=2" in text


def test_module_list_rejects_non_modules_and_slices():
    with pytest.raises(TypeError, match="can only hold Modules"):
        nn.ModuleList([1])
    ml = nn.ModuleList([nn.Linear(1, 1), nn.Linear(1, 1), nn.Linear(1, 1)])
    assert len(ml[1:]) == 2 and len(list(ml)) == 3


# ----------------------------------------------------------------- layers
def test_linear_and_conv1d_agree(f64):
    lin, conv = nn.Linear(4, 3), nn.Conv1D(4, 3)
    conv.weight.data[...] = lin.weight.data.T
    conv.bias.data[...] = lin.bias.data
    x = tinyllm.tensor(RNG.standard_normal((2, 5, 4)))
    assert max_relative_error(conv(x).data, lin(x).data) <= TOL
    assert max_relative_error(lin(x).data, x.data @ lin.weight.data.T + lin.bias.data) <= TOL
    assert gradcheck(lambda a, *ps: conv(a), tinyllm.tensor(x.data, requires_grad=True),
                     *conv.parameters())


def test_linear_default_init_bounds():
    tinyllm.manual_seed(0)
    lin = nn.Linear(100, 50)
    assert np.abs(lin.weight.data).max() <= 0.1 and np.abs(lin.bias.data).max() <= 0.1
    assert lin.weight.data.std() > 0.05                        # U(-0.1, 0.1): std 0.0577


def test_embedding_padding_idx_gets_no_gradient(f64):
    emb = nn.Embedding(5, 3, padding_idx=0)
    assert not emb.weight.data[0].any()
    ids = np.array([[0, 1, 0, 2]])
    emb(ids).sum().backward()
    assert not emb.weight.grad[0].any()
    assert np.array_equal(emb.weight.grad[1], np.ones(3))
    with pytest.raises(IndexError, match="index 5 is out of range"):
        emb(np.array([5]))
    with pytest.raises(ValueError, match="padding_idx 7"):
        nn.Embedding(5, 3, padding_idx=7)


@pytest.mark.parametrize("vocab, shape", [(4, (6, 20)),       # many rows per id: reduceat
                                          (1000, (3, 5)),      # few rows per id: np.add.at
                                          (7, (0, 3))])        # no index at all
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_embedding_gradient_sums_the_rows_of_each_id(vocab, shape, dtype):
    """Both ways of summing the rows (reduceat for few ids, np.add.at for many) equal the
    float64 scatter-add to round-off, and each used id's rows are all counted."""
    rng = np.random.default_rng(3)
    ids = rng.integers(0, vocab, shape)
    weight = tinyllm.tensor(rng.standard_normal((vocab, 5)).astype(dtype), requires_grad=True)
    dout = rng.standard_normal((*shape, 5))
    (F.embedding(ids, weight) * tinyllm.tensor(dout.astype(dtype))).sum().backward()
    expected = np.zeros((vocab, 5))
    np.add.at(expected, ids.reshape(-1), dout.reshape(-1, 5))
    assert weight.grad.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-13
    assert np.allclose(weight.grad, expected, rtol=tol, atol=tol)
    assert not weight.grad[np.setdiff1d(np.arange(vocab), ids)].any()


def test_layer_norm_and_dropout_modules(f64):
    ln = nn.LayerNorm(6, eps=1e-5)
    x = tinyllm.tensor(RNG.standard_normal((2, 6)))
    y = ln(x).data
    assert np.allclose(y.mean(-1), 0) and np.allclose(y.var(-1), 1, atol=1e-4)
    drop = nn.Dropout(0.5)
    z = drop(tinyllm.ones(1000))
    assert set(np.unique(z.data)) <= {0.0, 2.0}
    drop.eval()
    assert np.array_equal(drop(x).data, x.data)
    with pytest.raises(ValueError, match="p must be in"):
        nn.Dropout(1.5)


def test_bad_layer_arguments():
    with pytest.raises(ValueError, match="in_features must be a positive integer, got 0"):
        nn.Linear(0, 3)
    with pytest.raises(ValueError, match="activation: unknown name 'mish'"):
        nn.FeedForward(4, activation="mish")


def test_initialisers():
    g = np.random.default_rng(0)
    w = nn.Parameter(np.empty((200, 100)))
    assert abs(nn.init.normal_(w, std=0.02, generator=g).data.std() - 0.02) < 1e-3
    bound = np.sqrt(6 / 300)
    assert np.abs(nn.init.xavier_uniform_(w, generator=g).data).max() <= bound
    assert abs(nn.init.xavier_normal_(w, generator=g).data.std() - np.sqrt(2 / 300)) < 2e-3
    assert np.abs(nn.init.kaiming_uniform_(w, a=np.sqrt(5), generator=g).data).max() <= 0.1
    assert nn.init.zeros_(w).data.sum() == 0 and nn.init.ones_(w).data.mean() == 1
    assert nn.init.constant_(w, 3.0).data.max() == 3.0
    same = [nn.init.normal_(nn.Parameter(np.empty(3), ), generator=np.random.default_rng(1))
            for _ in range(2)]
    assert np.array_equal(same[0].data, same[1].data)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        nn.init.xavier_uniform_(nn.Parameter(np.empty(3)))


# ----------------------------------------------------------------- blocks
@pytest.mark.parametrize("activation, fn", [
    ("gelu_new", lambda h: F.gelu(h, approximate="tanh")),
    ("relu", F.relu),
])
def test_feed_forward_formula(f64, activation, fn):
    ffn = nn.FeedForward(4, 8, activation=activation)
    for p in ffn.parameters():
        p.data[...] = RNG.standard_normal(p.shape)
    x = tinyllm.tensor(RNG.standard_normal((2, 3, 4)))
    w1, b1, w2, b2 = (p.data for p in ffn.parameters())
    h = fn(tinyllm.tensor(x.data @ w1 + b1)).data
    assert max_relative_error(ffn(x).data, h @ w2 + b2) <= TOL


@pytest.mark.parametrize("norm_first", [True, False])
def test_transformer_block_residual_layout(f64, norm_first):
    block = nn.TransformerBlock(8, 2, norm_first=norm_first, is_causal=True)
    x = tinyllm.tensor(RNG.standard_normal((2, 3, 8)))
    if norm_first:
        h = x + block.attn(block.ln_1(x))
        ref = h + block.mlp(block.ln_2(h))
    else:
        h = block.ln_1(x + block.attn(x))
        ref = block.ln_2(h + block.mlp(h))
    assert max_relative_error(block(x).data, ref.data) <= TOL


@pytest.mark.parametrize("norm_first", [True, False])
def test_transformer_block_gradcheck(f64, norm_first):
    tinyllm.manual_seed(1)
    block = nn.TransformerBlock(4, 2, n_inner=6, norm_first=norm_first, is_causal=True)
    for p in block.parameters():
        p.data[...] += RNG.standard_normal(p.shape) * 0.1
    x = tinyllm.tensor(RNG.standard_normal((2, 3, 4)), requires_grad=True)
    assert gradcheck(lambda a, *ps: block(a), x, *block.parameters())


def test_post_ln_block_is_berts_layer(f64):
    """BERT's layer (Hugging Face's module tree) computes TransformerBlock(norm_first=False)."""
    from tinyllm.models import BertConfig
    from tinyllm.models.bert import BertLayer

    cfg = BertConfig(hidden_size=8, num_attention_heads=2, intermediate_size=12,
                     hidden_act="relu", layer_norm_eps=1e-5)
    bert_layer = BertLayer(cfg)
    for p in bert_layer.parameters():
        p.data[...] = RNG.standard_normal(p.shape) * 0.5
    block = nn.TransformerBlock(8, 2, n_inner=12, activation="relu", norm_first=False)
    sa, out = bert_layer.attention.self, bert_layer.attention.output
    block.attn.c_attn.weight.data[...] = np.concatenate(
        [sa.query.weight.data.T, sa.key.weight.data.T, sa.value.weight.data.T], axis=1)
    block.attn.c_attn.bias.data[...] = np.concatenate(
        [sa.query.bias.data, sa.key.bias.data, sa.value.bias.data])
    block.attn.c_proj.weight.data[...] = out.dense.weight.data.T
    block.attn.c_proj.bias.data[...] = out.dense.bias.data
    block.ln_1.load_state_dict(out.LayerNorm.state_dict())
    block.mlp.c_fc.weight.data[...] = bert_layer.intermediate.dense.weight.data.T
    block.mlp.c_fc.bias.data[...] = bert_layer.intermediate.dense.bias.data
    block.mlp.c_proj.weight.data[...] = bert_layer.output.dense.weight.data.T
    block.mlp.c_proj.bias.data[...] = bert_layer.output.dense.bias.data
    block.ln_2.load_state_dict(bert_layer.output.LayerNorm.state_dict())
    x = tinyllm.tensor(RNG.standard_normal((2, 5, 8)))
    pad = np.array([[False] * 5, [False, False, False, True, True]])
    assert max_relative_error(bert_layer(x, pad).data, block(x, key_padding_mask=pad).data) <= TOL


def test_torch_parity_of_layers(f64):
    torch = pytest.importorskip("torch")
    lin, ln = nn.Linear(4, 3), nn.LayerNorm(4)
    tlin, tln = torch.nn.Linear(4, 3).double(), torch.nn.LayerNorm(4).double()
    with torch.no_grad():
        tlin.weight.copy_(torch.tensor(lin.weight.data))
        tlin.bias.copy_(torch.tensor(lin.bias.data))
    x = RNG.standard_normal((2, 4))
    ours = ln(lin(tinyllm.tensor(x)) @ tinyllm.tensor(np.ones((3, 4))))
    theirs = tln(tlin(torch.tensor(x)) @ torch.ones(3, 4, dtype=torch.float64))
    assert max_relative_error(ours.data, theirs.detach().numpy()) <= TOL
    assert set(dict(lin.state_dict())) == set(tlin.state_dict())
