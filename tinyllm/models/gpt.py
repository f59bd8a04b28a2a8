"""GPT: GPT-2's decoder-only Transformer, weight for weight as Hugging Face's GPT2LMHeadModel.

Shapes: B batch, T positions, C channels (n_embd), nh heads, hs head size (C / nh),
I inner width (4C), V vocabulary, L layers.

    x      = wte[idx] + wpe[pos]                   token + learned position embeddings
    x      = block_l(x),  l = 1..L                 pre-LN blocks, causal attention, GELU-tanh
    logits = ln_f(x) @ wte^T                       output head tied to the token embedding

`GPT2ForSequenceClassification` puts a linear classifier, `score`, on the last real token's
state instead of the LM head (Hugging Face's class of the same name).

Parameter names are GPT2LMHeadModel's (`transformer.h.0.attn.c_attn.weight`, ...), with its
(in, out) "Conv1D" layout, so `GPT.from_pretrained` reads a `save_pretrained` directory (real
GPT-2 weights included) as it is, and `transformers` reads what `GPT.save` writes.

>>> model = GPT(GPTConfig.from_preset("nano", vocab_size=65), seed=0)
>>> logits, loss = model(idx, targets)            # idx, targets: (B, T) int arrays
>>> model.generate(idx[:1, :4], max_new_tokens=20, do_sample=False).shape
(1, 24)
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd.grad_mode import no_grad
from ..autograd.random import default_generator
from ..autograd.tensor import Tensor
from ..nn import (
    Dropout,
    Embedding,
    KVCache,
    LayerNorm,
    Linear,
    Module,
    ModuleList,
    TransformerBlock,
    init,
)
from .base import (
    LMOutput,
    PretrainedModel,
    as_ids,
    as_padding_mask,
    classification_loss,
    lm_loss,
)
from .config import GPT_PRESETS, GPTConfig
from .registry import ModelFamily, register_family
from .sampling import generating, next_tokens, start_generation


class GPTTransformer(Module):
    """The stack without the head (Hugging Face's GPT2Model): ids (B, T) -> (B, T, C)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        c = config.n_embd
        self.wte = Embedding(config.vocab_size, c)
        self.wpe = Embedding(config.n_positions, c)
        self.drop = Dropout(config.embd_pdrop)
        self.h = ModuleList(
            TransformerBlock(c, config.heads_in_layer(i), config.n_inner,
                             activation=config.activation_function, dropout=config.resid_pdrop,
                             attn_dropout=config.attn_pdrop,
                             layer_norm_eps=config.layer_norm_epsilon, norm_first=True,
                             is_causal=True, head_dim=config.head_dim,
                             attn_scale=config.attention_scale)
            for i in range(config.n_layer))
        self.ln_f = LayerNorm(c, eps=config.layer_norm_epsilon)

    def forward(self, idx: np.ndarray, kv_cache: KVCache | None = None,
                key_padding_mask: np.ndarray | None = None) -> Tensor:
        """`key_padding_mask` (B, T), True = padding: no position attends to those keys
        (positions still count from 0, as in Hugging Face's GPT2Model)."""
        past = 0 if kv_cache is None else kv_cache.length
        pos = np.arange(past, past + idx.shape[1])                     # (T,)
        x = self.drop(self.wte(idx) + self.wpe(pos))                   # (B, T, C)
        for i, block in enumerate(self.h):
            x = block(x, key_padding_mask=key_padding_mask,
                      kv_cache=None if kv_cache is None else kv_cache[i])  # (B, T, C)
        return self.ln_f(x)                                            # (B, T, C)


def _is_hidden_weight(name: str) -> bool:
    """A block's matrix whose both sides grow with the width (muP's "hidden" weights)."""
    return name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight"))


class _GPTPretrained(PretrainedModel):
    """What GPT-2's models share: the config, the initialisation, sizes, Hugging Face files."""

    config_class = GPTConfig
    # GPT2Config would otherwise default these to GPT-2's 50256, outside a small vocabulary.
    hf_config_extras = {"bos_token_id": None, "eos_token_id": None}
    # Top-level parameters that are not under `transformer.` (the heads).
    _head_names = ("lm_head.", "score.")
    # Parameters of another model's head, dropped when a directory holds them.
    _other_heads: tuple[str, ...] = ()

    def init_weights(self, seed: int | None = None) -> None:
        """GPT-2's initialisation: weights N(0, 0.02^2), biases 0, LayerNorm 1 and 0, and the
        projections into the residual stream (`c_proj`) scaled by 1/sqrt(2 L), so the 2L
        branches added to the stream do not make it grow with depth at the start of training
        (notebook 03 measures it).

        Under muP (`GPTConfig.mup_base_width`) the hidden weights' standard deviation is also
        divided by sqrt(m), m = `config.mup_width_mult`: a variance of 1/fan_in relative to the
        base width."""
        rng = np.random.default_rng(seed) if seed is not None else default_generator()
        std = self.config.initializer_range
        hidden = 1.0 / math.sqrt(self.config.mup_width_mult)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                init.zeros_(p)
            elif ".ln_" in name:
                init.ones_(p)
            elif name.endswith("c_proj.weight"):
                init.normal_(p, std=hidden * std / math.sqrt(2 * self.config.n_layer),
                             generator=rng)
            elif _is_hidden_weight(name):
                init.normal_(p, std=hidden * std, generator=rng)
            else:
                init.normal_(p, std=std, generator=rng)

    def lr_multipliers(self) -> dict[str, float]:
        """Under muP, {name: 1/m} for the hidden weights (Adam's learning rate for a matrix
        whose fan-in grows with the width); {} in the standard parametrisation."""
        m = self.config.mup_width_mult
        if self.config.mup_base_width is None or m == 1.0:
            return {}
        return {name: 1.0 / m for name, _ in self.named_parameters() if _is_hidden_weight(name)}

    def _output_multiplier(self, logits: Tensor) -> Tensor:
        """The logits as muP reads them out: divided by m (unchanged in the standard
        parametrisation)."""
        m = self.config.mup_width_mult
        return logits if self.config.mup_base_width is None or m == 1.0 else logits * (1.0 / m)

    # ----------------------------------------------------------------- size and cost
    def num_params(self, non_embedding: bool = False) -> int:
        """Number of parameters (the tied head counted once). non_embedding=True leaves out
        the token and position embeddings: Kaplan et al.'s N, the one scaling laws use.

        (nanoGPT subtracts only the position embeddings, because the tied token embedding
        also serves as the output head. Here the head's cost is counted in FLOPs instead.)
        """
        n = super().num_params()
        if non_embedding:
            n -= self.transformer.wte.weight.data.size + self.transformer.wpe.weight.data.size
        return n

    def flops_per_token(self, training: bool = True, seq_len: int | None = None) -> int:
        """Matmul FLOPs per token of a forward pass (training=False) or of forward and
        backward (training=True: 3x, since each product's backward is two products of its
        size, one for each operand's gradient). See `flops_breakdown`."""
        forward = sum(self.flops_breakdown(seq_len).values())
        return 3 * forward if training else forward

    def _transformer_flops(self, t: int) -> dict[str, int]:
        cfg = self.config
        c, i, n_layer = cfg.n_embd, cfg.inner_dim, cfg.n_layer
        a = cfg.total_attention_width()                  # n_layer * c unless heads pruned
        return {
            "attn.c_attn": 2 * c * 3 * a,
            "attn.scores": 2 * t * a,
            "attn.values": 2 * t * a,
            "attn.c_proj": 2 * a * c,
            "mlp.c_fc": n_layer * 2 * c * i,
            "mlp.c_proj": n_layer * 2 * i * c,
        }

    # ----------------------------------------------------------------- Hugging Face files
    @classmethod
    def check_hf_config(cls, raw: dict, directory) -> None:
        for option, wanted in (("scale_attn_weights", True),
                               ("scale_attn_by_inverse_layer_idx", False),
                               ("add_cross_attention", False)):
            if option in raw and raw[option] != wanted:
                cls._refuse(cls.__name__, directory, option, raw[option], repr(wanted))

    @classmethod
    def convert_state_dict(cls, state):
        """Accept the original GPT-2 files' names (no `transformer.` prefix) and drop the
        causal-mask buffers (`attn.bias`, `attn.masked_bias`) older files carry, and the
        weights of another head (a classifier's `score` in a language model's file)."""
        if not any(k.startswith("transformer.") for k in state):
            state = {(k if k.startswith(cls._head_names) else "transformer." + k): v
                     for k, v in state.items()}
        return {k: v for k, v in state.items()
                if not k.endswith((".attn.bias", ".attn.masked_bias"))
                and not k.startswith(cls._other_heads)}


class GPT(_GPTPretrained):
    """GPT-2: `GPT(config, seed=None)`; `model(idx, targets=None)` -> `LMOutput(logits, loss)`.

    `seed` makes the initialisation reproducible; without it the weights come from tinyllm's
    global generator (`tinyllm.manual_seed`).
    """

    hf_architecture = "GPT2LMHeadModel"
    _other_heads = ("score.",)

    def __init__(self, config: GPTConfig | None = None, seed: int | None = None):
        super().__init__(GPTConfig() if config is None else config)
        config = self.config
        self.transformer = GPTTransformer(config)
        self.lm_head = Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            # One matrix reads tokens in and scores them out: V * C parameters saved, and
            # what the model learns about a token's input use shapes its output use too.
            self.lm_head.weight = self.transformer.wte.weight
        self.init_weights(seed)

    # ----------------------------------------------------------------- forward
    def forward(self, idx, targets=None, kv_cache: KVCache | None = None) -> LMOutput:
        """Logits (B, T, V) for ids `idx` (B, T), and the mean cross-entropy against
        `targets` (B, T) if given (ids of -100 are ignored).

        With `kv_cache` (a `KVCache`), `idx` holds only the new positions: earlier ones are
        read from the cache, which is then extended.
        """
        config = self.config
        past = 0 if kv_cache is None else kv_cache.length
        idx = as_ids("idx", idx, config.vocab_size)
        if past + idx.shape[1] > config.n_positions:
            where = f" ({past} cached + {idx.shape[1]} new)" if past else ""
            raise ValueError(f"GPT: sequence of {past + idx.shape[1]} positions{where} is "
                             f"longer than the context n_positions={config.n_positions}; "
                             "crop it to the last n_positions ids")
        x = self.transformer(idx, kv_cache)                            # (B, T, C)
        logits = self._output_multiplier(self.lm_head(x))              # (B, T, V)
        loss = None if targets is None else lm_loss("GPT", logits, targets)
        return LMOutput(logits, loss)

    @no_grad()
    def attentions(self, idx) -> list[np.ndarray]:
        """What each layer's heads look at: softmax(q k^T / sqrt(hs) + causal mask) for ids
        `idx` (B, T), one (B, nh, T, T) array per layer, row t the weights that position t
        gives to positions 0..t (Hugging Face's `output_attentions=True`)."""
        idx = as_ids("idx", idx, self.config.vocab_size)
        if idx.shape[1] > self.config.n_positions:
            raise ValueError(f"GPT.attentions: {idx.shape[1]} positions is longer than the "
                             f"context n_positions={self.config.n_positions}")
        t = self.transformer
        x = t.drop(t.wte(idx) + t.wpe(np.arange(idx.shape[1])))        # (B, T, C)
        maps = []
        for block in t.h:                                              # pre-LN blocks
            maps.append(block.attn.attention_maps(block.ln_1(x)))      # (B, nh, T, T)
            x = block(x)                                               # (B, T, C)
        return maps

    # ----------------------------------------------------------------- generation
    @no_grad()
    def generate(self, idx, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, do_sample: bool = True,
                 eos_token_id: int | None = None, seed: int | None = None,
                 use_cache: bool = True, streamer=None) -> np.ndarray:
        """Continue each row of `idx` ((B, T) or (T,) ids) by up to `max_new_tokens` tokens.

        - `do_sample=False` (or temperature=0): greedy, the most likely token each step.
        - otherwise sample from softmax(logits / temperature), restricted to the `top_k` most
          likely tokens and/or the smallest set whose probability reaches `top_p` (nucleus).
        - `eos_token_id`: a row that emits it is finished (later tokens repeat it); stops
          early when every row is.
        - `seed`: a private generator for the sampling (default: tinyllm's global one).
        - `use_cache`: keep each layer's keys and values so a step feeds one token, not the
          whole sequence. Once the sequence outgrows the context, every step re-reads the
          last n_positions ids without the cache (the positions shift); greedy decoding gives
          the same tokens either way.
        - `streamer`: an object whose `put(ids)` receives each step's new tokens (B,) as they
          are chosen and whose `end()` is called when generation stops (Hugging Face's
          streamer protocol; `tinyllm.training.inference.TextStreamer` prints text).

        Returns an int64 array: the input followed by the new tokens, of the input's rank.
        Runs in evaluation mode (no dropout) and restores the mode afterwards.
        """
        ids, one_row, rng, greedy = start_generation(
            idx, self.config.vocab_size, max_new_tokens, temperature, top_k, top_p,
            eos_token_id, seed, do_sample)
        n_ctx = self.config.block_size
        cache = KVCache(self.config.n_layer) if use_cache else None
        finished = np.zeros(len(ids), dtype=bool)
        with generating(self, streamer):
            for _ in range(max_new_tokens):
                if cache is not None and ids.shape[1] <= n_ctx:
                    logits = self(ids[:, cache.length:], kv_cache=cache).logits
                else:
                    logits = self(ids[:, -n_ctx:]).logits
                nxt = next_tokens(logits.data[:, -1, :], greedy, temperature, top_k, top_p,
                                  rng, finished, eos_token_id, streamer)  # (B,)
                ids = np.concatenate([ids, nxt[:, None].astype(np.int64)], axis=1)
                if eos_token_id is not None and finished.all():
                    break
        return ids[0] if one_row else ids

    # ----------------------------------------------------------------- size and cost
    def flops_breakdown(self, seq_len: int | None = None) -> dict[str, int]:
        """Forward-pass FLOPs per token, by component, at context `seq_len` (default: full).

        Only matrix products count, at 2 FLOPs (a multiply and an add) per multiply-add:
        a (m, k) @ (k, n) product is 2 m k n. LayerNorm, GELU, softmax and the embedding
        lookups are O(C) per token and left out. Attention scores and their weighted sum
        are counted over all T x T query-key pairs, masked half included, because that is
        what is computed: per token 2 T C each.
        """
        cfg = self.config
        t = cfg.n_positions if seq_len is None else seq_len
        return {**self._transformer_flops(t), "lm_head": 2 * cfg.n_embd * cfg.vocab_size}


class GPT2ForSequenceClassification(_GPTPretrained):
    """GPT-2 with a linear classifier on one token per sequence (Hugging Face's
    GPT2ForSequenceClassification): `score` (C -> K, no bias) reads the state of the last
    token that is not `config.pad_token_id` -- under causal attention, the only position that
    has seen the whole text. With `config.classifier_pooling` "mean" (tinyllm's; no
    `transformers` twin) it reads the mean of the states of every token that is not padding.
    From a language-model directory `score` starts new (with a warning) and `lm_head` is left
    out.

    `model(input_ids, attention_mask=None, labels=None)` -> `LMOutput(logits (B, K), loss)`;
    labels (B,) class ids (floats for K = 1, regression: mean squared error).

    As in Hugging Face, the token classified in each row is the rightmost one that is not
    `pad_token_id` (position 0 if the row is all padding); without a `pad_token_id` it is the
    last position, which only makes sense for a batch of one. `attention_mask` (B, T),
    1 = token and 0 = padding, hides padded keys -- needed with left padding only: under
    causal attention right padding comes after the token classified.

    >>> clf = GPT2ForSequenceClassification(GPTConfig(vocab_size=50, pad_token_id=0,
    ...                                                num_labels=3), seed=0)
    >>> clf(np.array([[5, 6, 7, 0, 0], [8, 9, 0, 0, 0]])).logits.shape   # reads 7 and 9
    (2, 3)
    """

    hf_architecture = "GPT2ForSequenceClassification"
    optional_prefixes = ("score.",)
    _other_heads = ("lm_head.",)

    def __init__(self, config: GPTConfig | None = None, seed: int | None = None):
        super().__init__(GPTConfig() if config is None else config)
        self.transformer = GPTTransformer(self.config)
        self.score = Linear(self.config.n_embd, self.config.num_labels, bias=False)
        self.init_weights(seed)

    def forward(self, input_ids, attention_mask=None, labels=None) -> LMOutput:
        cfg = self.config
        ids = as_ids("input_ids", input_ids, cfg.vocab_size, cfg.n_positions)   # (B, T)
        mean = cfg.classifier_pooling == "mean"
        last = None if mean else self.last_token_index(ids)            # (B,)
        padding = as_padding_mask("GPT", attention_mask, ids.shape)    # (B, T) or None
        x = self.transformer(ids, key_padding_mask=padding)            # (B, T, C)
        if mean:
            w = self.mean_weights(ids, padding).astype(x.data.dtype)   # (B, T)
            pooled = (x * Tensor(w[..., None])).sum(1)                 # (B, C)
        else:
            pooled = x[np.arange(len(ids)), last]                      # (B, C)
        logits = self._output_multiplier(self.score(pooled))           # (B, K)
        loss = None if labels is None else classification_loss("GPT", logits, labels)
        return LMOutput(logits, loss)

    def mean_weights(self, input_ids: np.ndarray, padding: np.ndarray | None) -> np.ndarray:
        """(B, T) weights of mean pooling: 1 / n on each of a row's n tokens that are neither
        `pad_token_id` nor masked by `padding` (True = padding), 0 elsewhere (a row of padding
        only pools to zeros)."""
        keep = np.ones(input_ids.shape) if self.config.pad_token_id is None else (
            input_ids != self.config.pad_token_id).astype(np.float64)
        if padding is not None:
            keep *= ~padding
        return keep / np.maximum(keep.sum(axis=1, keepdims=True), 1)

    def last_token_index(self, input_ids: np.ndarray) -> np.ndarray:
        """The position classified in each row of `input_ids` (B, T): (B,) int indices."""
        b, t = input_ids.shape
        pad = self.config.pad_token_id
        if pad is None:
            if b != 1:
                raise ValueError(
                    f"GPT2ForSequenceClassification: a batch of {b} sequences needs "
                    "config.pad_token_id to find each one's last token, and it is None "
                    "(accepted: a batch of 1, or a pad_token_id, e.g. "
                    "from_pretrained(directory, pad_token_id=tokenizer.pad_token_id))")
            return np.full(b, t - 1)
        # argmax of position * (not padding) is the rightmost real token (Hugging Face's
        # rule, which serves left and right padding alike).
        return (np.arange(t) * (input_ids != pad)).argmax(axis=1)

    # ----------------------------------------------------------------- size and cost
    def flops_breakdown(self, seq_len: int | None = None) -> dict[str, float]:
        """As `GPT.flops_breakdown`, without the LM head; `score` runs once per sequence, so
        its share per token is divided by `seq_len` (and may be fractional)."""
        cfg = self.config
        t = cfg.n_positions if seq_len is None else seq_len
        return {**self._transformer_flops(t), "score": 2 * cfg.n_embd * cfg.num_labels / t}


register_family(ModelFamily(
    name="gpt", config_class=GPTConfig, model_class=GPT, objective="causal-lm",
    presets=GPT_PRESETS, dropout_fields=("resid_pdrop", "embd_pdrop", "attn_pdrop"),
    hf_class="GPT2LMHeadModel", lora_targets=("c_attn",),
    heads={"sequence-classification": GPT2ForSequenceClassification},
    description="GPT-2's decoder-only Transformer (causal LM)"))
