"""LSTMLM: the recurrent language model that came before the Transformer, as a baseline.

Shapes: B batch, T positions, E embedding width (n_embd), H hidden size, L layers,
V vocabulary.

    x      = drop(embedding[idx])                  (B, T, E)
    h, _   = lstm(x)                               L stacked LSTM layers, dropout between them
    logits = drop(h) @ lm_head.weight^T + bias     (B, T, V); the weight tied to the embedding

Unlike GPT it has no position embeddings and no fixed context: the state (h, c) carries
everything it has read, so `generate` feeds one token per step and never re-reads the
prompt. `n_positions` is only the window length the Trainer cuts batches to (the same as the
GPT preset of the same name, so both see the same windows; each window starts from a zero
state). Parameter names are PyTorch's word_language_model example's layout with
`torch.nn.LSTM`'s names: `embedding.weight`, `lstm.weight_ih_l0`, ..., `lm_head.weight`,
`lm_head.bias`.

Presets match the GPT presets' total parameter counts at the placeholder vocab_size=256
(tied head, E = H; the LSTM's own weights are 4H(E + H) + 8H per layer):

====== ====== ===== ===== =========== =========== =========== ================
preset layers H     n_pos LSTM params GPT params  non-emb.    fwd FLOPs/token
====== ====== ===== ===== =========== =========== =========== ================
nano   1      24    32    11,200      11,200      5,056       21,504
micro  1      52    64    35,616      35,712      22,304      69,888
tiny   2      96    64    173,824     170,560     149,248     344,064
mini   2      164   64    475,200     478,272     433,216     944,640
small  2      220   64    834,496     834,304     778,176     1,661,440
base   2      404   128   2,721,600   2,743,296   2,618,176   5,429,760
medium 2      780   128   9,946,816   9,987,200   9,747,136   19,868,160
====== ====== ===== ===== =========== =========== =========== ================

>>> model = LSTMLM(LSTMConfig.from_preset("nano", vocab_size=65), seed=0)
>>> logits, loss = model(idx, targets)            # idx, targets: (B, T) int arrays
>>> model.generate(idx[:1, :4], max_new_tokens=20, do_sample=False).shape
(1, 24)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import positive_int, probability
from ..autograd.grad_mode import no_grad
from ..autograd.random import default_generator
from ..autograd.tensor import Tensor
from ..nn import LSTM, Dropout, Embedding, Linear, init
from .base import LMOutput, PretrainedModel, as_ids, lm_loss
from .config import ModelConfig
from .registry import ModelFamily, register_family
from .sampling import generating, next_tokens, start_generation

# name: (num_layers, hidden_size, n_positions); n_embd = hidden_size (tied head)
_SIZES = {
    "nano": (1, 24, 32),
    "micro": (1, 52, 64),
    "tiny": (2, 96, 64),
    "mini": (2, 164, 64),
    "small": (2, 220, 64),
    "base": (2, 404, 128),
    "medium": (2, 780, 128),
}

# The embedding's (and head's) initial range, as PyTorch's word_language_model example.
INIT_RANGE = 0.1

LSTM_PRESETS = {name: dict(num_layers=l, hidden_size=h, n_positions=t)
                for name, (l, h, t) in _SIZES.items()}


@dataclass
class LSTMConfig(ModelConfig):
    """An LSTM language model's architecture. Defaults are the `small` preset.

    `n_embd=None` means `hidden_size` (required when the head is tied to the embedding);
    `dropout` applies to the embeddings, between LSTM layers and before the head.
    """

    vocab_size: int = 256
    n_embd: int | None = None
    hidden_size: int = 220
    num_layers: int = 2
    n_positions: int = 64
    dropout: float = 0.0
    tie_word_embeddings: bool = True

    model_type = "lstm"
    architecture = "LSTMLM"
    preset_family = "lstm"
    context_field = "n_positions"

    def __post_init__(self):
        name = type(self).__name__
        if self.n_embd is None:
            self.n_embd = self.hidden_size
        for field in ("vocab_size", "n_embd", "hidden_size", "num_layers", "n_positions"):
            positive_int(field, getattr(self, field), where=name)
        probability("dropout", self.dropout, where=name)
        if self.tie_word_embeddings and self.n_embd != self.hidden_size:
            raise ValueError(f"{name}: a head tied to the embedding needs n_embd == hidden_size, "
                             f"got n_embd={self.n_embd} and hidden_size={self.hidden_size}; "
                             "set them equal or tie_word_embeddings=False")


    def param_count(self) -> int:
        h, v = self.hidden_size, self.vocab_size
        inputs = [self.n_embd] + [h] * (self.num_layers - 1)     # each layer's input width
        lstm = sum(4 * h * (e + h) + 8 * h for e in inputs)
        head = v + (0 if self.tie_word_embeddings else v * h)
        return v * self.n_embd + lstm + head

    def activation_count(self, batch_size: int, block_size: int, score_copies: int = 3) -> int:
        # per position and layer: the input, four gates, the cell and hidden states and
        # their tanh (~8 H), plus the logits, probabilities and their gradient at the head
        h = self.hidden_size
        return batch_size * block_size * (self.num_layers * (self.n_embd + 8 * h)
                                          + 3 * self.vocab_size)


class LSTMLM(PretrainedModel):
    """`LSTMLM(config, seed=None)`; `model(idx, targets=None)` -> `LMOutput(logits, loss)`."""

    config_class = LSTMConfig
    hf_architecture = "LSTMLM"

    def __init__(self, config: LSTMConfig | None = None, seed: int | None = None):
        super().__init__(LSTMConfig() if config is None else config)
        c = self.config
        self.embedding = Embedding(c.vocab_size, c.n_embd)
        self.drop = Dropout(c.dropout)
        self.lstm = LSTM(c.n_embd, c.hidden_size, c.num_layers, dropout=c.dropout)
        self.lm_head = Linear(c.hidden_size, c.vocab_size)
        if c.tie_word_embeddings:
            # Press and Wolf (2017): tying saves V * H parameters and helps small LSTM LMs.
            self.lm_head.weight = self.embedding.weight
        self.init_weights(seed)

    def init_weights(self, seed: int | None = None) -> None:
        """PyTorch's word_language_model scheme: embedding and head U(-0.1, 0.1), head bias 0,
        LSTM weights U(-1/sqrt(H), 1/sqrt(H)) as `torch.nn.LSTM`."""
        rng = np.random.default_rng(seed) if seed is not None else default_generator()
        r = INIT_RANGE
        init.uniform_(self.embedding.weight, -r, r, generator=rng)
        if not self.config.tie_word_embeddings:
            init.uniform_(self.lm_head.weight, -r, r, generator=rng)
        init.zeros_(self.lm_head.bias)
        self.lstm.reset_parameters(generator=rng)

    # ----------------------------------------------------------------- forward
    def forward(self, idx, targets=None, hx: tuple[Tensor, Tensor] | None = None) -> LMOutput:
        """Logits (B, T, V) for ids `idx` (B, T), and the mean cross-entropy against
        `targets` (B, T) if given (ids of -100 are ignored). `hx` = (h, c), each (L, B, H),
        starts from a given state instead of zeros."""
        logits, _ = self.forward_with_state(idx, hx)
        loss = None if targets is None else lm_loss("LSTMLM", logits, targets)
        return LMOutput(logits, loss)

    def forward_with_state(self, idx, hx: tuple[Tensor, Tensor] | None = None):
        """(logits (B, T, V), (h_n, c_n) each (L, B, H)): the state after the last position,
        to continue from (generation, or truncated backpropagation through time)."""
        idx = as_ids("idx", idx, self.config.vocab_size)
        if idx.shape[1] == 0:
            raise ValueError("LSTMLM: idx must hold at least one position, got shape "
                             f"{idx.shape}")
        x = self.drop(self.embedding(idx))                             # (B, T, E)
        h, state = self.lstm(x, hx)                                    # (B, T, H)
        return self.lm_head(self.drop(h)), state                       # (B, T, V)

    # ----------------------------------------------------------------- generation
    @no_grad()
    def generate(self, idx, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, do_sample: bool = True,
                 eos_token_id: int | None = None, seed: int | None = None,
                 streamer=None) -> np.ndarray:
        """Continue each row of `idx` ((B, T) or (T,) ids) by up to `max_new_tokens` tokens.

        The sampling options are `GPT.generate`'s (greedy with `do_sample=False` or
        temperature 0; `top_k`, `top_p`, `eos_token_id`, `seed`, `streamer`). The prompt is
        read once; each new token then costs one step of the recurrence, however long the
        text grows.
        Returns the input followed by the new tokens, int64, of the input's rank.
        """
        ids, one_row, rng, greedy = start_generation(
            idx, self.config.vocab_size, max_new_tokens, temperature, top_k, top_p,
            eos_token_id, seed, do_sample)
        finished = np.zeros(len(ids), dtype=bool)
        new, feed, state = [], ids, None
        with generating(self, streamer):
            for _ in range(max_new_tokens):
                logits, state = self.forward_with_state(feed, state)
                nxt = next_tokens(logits.data[:, -1, :], greedy, temperature, top_k, top_p,
                                  rng, finished, eos_token_id, streamer)  # (B,)
                feed = nxt[:, None].astype(np.int64)                   # (B, 1)
                new.append(feed)
                if eos_token_id is not None and finished.all():
                    break
        out = np.concatenate([ids, *new], axis=1)
        return out[0] if one_row else out

    # ----------------------------------------------------------------- size and cost
    def num_params(self, non_embedding: bool = False) -> int:
        """Number of parameters (the tied head counted once). non_embedding=True leaves out
        the token embedding, as `GPT.num_params` does (Kaplan et al.'s N)."""
        n = super().num_params()
        if non_embedding:
            n -= self.embedding.weight.data.size
        return n

    def flops_breakdown(self, seq_len: int | None = None) -> dict[str, int]:
        """Forward-pass matmul FLOPs per token, by component (2 per multiply-add, as GPT).

        Each layer multiplies its input (E, or H above layer 0) and its previous state (H)
        by the 4H gate rows: 2 (in + H) 4H. Gate nonlinearities and the elementwise cell
        update are O(H) and left out. An LSTM's cost does not depend on the context length:
        `seq_len` is accepted only so the call matches `GPT.flops_breakdown`.
        """
        c = self.config
        h = c.hidden_size
        out = {f"lstm.l{k}": 2 * ((c.n_embd if k == 0 else h) + h) * 4 * h
               for k in range(c.num_layers)}
        out["lm_head"] = 2 * h * c.vocab_size
        return out

    def flops_per_token(self, training: bool = True, seq_len: int | None = None) -> int:
        """Matmul FLOPs per token of a forward pass, or of forward and backward
        (training=True: 3x, each product's backward being two products of its size)."""
        forward = sum(self.flops_breakdown(seq_len).values())
        return 3 * forward if training else forward


register_family(ModelFamily(
    name="lstm", config_class=LSTMConfig, model_class=LSTMLM, objective="causal-lm",
    presets=LSTM_PRESETS, dropout_fields=("dropout",),
    description="LSTM language model (the recurrent baseline; presets match GPT's sizes)"))
