"""The size ladder: GPT shapes from ~2e3 to ~6e6 non-embedding parameters, and what each costs.

The rule (depth and width grow together, the head size stays near 16):

    n_embd  = the rung's width w
    n_layer = max(1, round(w / 32))        aspect ratio w / L of about 32
    n_head  = max(1, w // 16)              heads of 16 channels (one head below w = 32)

Non-embedding parameters per layer are 12 w^2 + 13 w (attention 4 w^2 + 4 w, MLP 8 w^2 + 5 w,
two LayerNorms 4 w), plus 2 w for the final LayerNorm: Kaplan et al.'s N.

======  ===== ======= ====== ============
width   layers heads  non-emb. N  (rule)
======  ===== ======= ====== ============
12      1      1      1,908
16      1      1      3,312
24      1      1      7,272
32      1      2      12,768
48      2      3      56,640
64      2      4      100,096
96      3      6      335,712
128     4      8      793,344
192     6      12     2,669,568
256     8      16     6,318,592
======  ===== ======= ====== ============

>>> [r.name for r in make_ladder((12, 128))]
['w12-l1', 'w128-l4']
>>> Rung.from_width(128).non_embedding_params()
793344
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .._memory import available_memory_bytes

#: Widths of the whole ladder (3.5 orders of magnitude of N); each budget takes a prefix of it
#: (`full`: the first nine, `default`: the first eight).
WIDTHS: tuple[int, ...] = (12, 16, 24, 32, 48, 64, 96, 128, 192, 256)

#: float32 bytes per number.
BYTES = 4
#: What a worker process holds before any model exists (interpreter, NumPy, corpus), bytes.
BASE_PROCESS_BYTES = 250 * 2**20


@dataclass(frozen=True)
class Rung:
    """One model size of the ladder: a GPT shape without vocabulary or context."""

    n_layer: int
    n_head: int
    n_embd: int

    @classmethod
    def from_width(cls, width: int) -> Rung:
        """The rung of width `width` by the ladder's rule (see the module docstring)."""
        if isinstance(width, bool) or not isinstance(width, int) or width < 4:
            raise ValueError(f"ladder width must be an integer >= 4, got {width!r}")
        return cls(n_layer=max(1, round(width / 32)), n_head=max(1, width // 16), n_embd=width)

    @property
    def name(self) -> str:
        return f"w{self.n_embd}-l{self.n_layer}"

    def overrides(self, block_size: int) -> dict:
        """`GPTConfig` fields of this rung at context `block_size` (TrainConfig.model_overrides)."""
        return {"n_layer": self.n_layer, "n_head": self.n_head, "n_embd": self.n_embd,
                "n_positions": block_size}

    def config(self, vocab_size: int, block_size: int):
        """The full `GPTConfig`."""
        from ..models import GPTConfig

        return GPTConfig(vocab_size=vocab_size, **self.overrides(block_size))

    def non_embedding_params(self) -> int:
        """Kaplan's N by formula (equals `GPT.num_params(non_embedding=True)`)."""
        w = self.n_embd
        return self.n_layer * (12 * w * w + 13 * w) + 2 * w

    def params(self, vocab_size: int, block_size: int) -> int:
        """All parameters: N plus the token and position embeddings (the head is tied)."""
        return self.non_embedding_params() + (vocab_size + block_size) * self.n_embd

    def flops_per_token(self, vocab_size: int, block_size: int, training: bool = True) -> int:
        """Matmul FLOPs per token, attention and output head included (equals
        `GPT.flops_per_token(training, seq_len=block_size)`): see `GPT.flops_breakdown`."""
        w, L, t = self.n_embd, self.n_layer, block_size
        forward = L * (2 * w * 3 * w + 4 * t * w + 2 * w * w + 16 * w * w) + 2 * w * vocab_size
        return 3 * forward if training else forward

    def train_memory_bytes(self, vocab_size: int, block_size: int, batch_size: int) -> int:
        """A generous estimate of one training process's peak memory: the model's own
        (`GPTConfig.train_memory_bytes`: weights, gradients, AdamW moments, activations)
        plus a fixed base for the interpreter, NumPy and the corpus."""
        config = self.config(vocab_size, block_size)
        return BASE_PROCESS_BYTES + config.train_memory_bytes(batch_size, block_size, BYTES)

    def to_dict(self) -> dict:
        return {"rung": self.name, **asdict(self),
                "non_embedding_params": self.non_embedding_params()}


def make_ladder(widths=WIDTHS) -> list[Rung]:
    """Rungs for `widths`, smallest first; widths must be distinct."""
    widths = list(widths)
    if len(set(widths)) != len(widths):
        raise ValueError(f"ladder widths must be distinct, got {widths}")
    return [Rung.from_width(w) for w in sorted(widths)]


def check_fits_in_memory(ladder: list[Rung], vocab_size: int, block_size: int, batch_size: int,
                         jobs: int = 1, available: int | None = None) -> None:
    """Raise ValueError if the largest rung, `jobs` at a time, would not fit in memory."""
    available = available_memory_bytes() if available is None else available
    if available is None or not ladder:
        return
    biggest = max(ladder, key=lambda r: r.train_memory_bytes(vocab_size, block_size, batch_size))
    need = jobs * biggest.train_memory_bytes(vocab_size, block_size, batch_size)
    if need > 0.8 * available:
        raise ValueError(
            f"the ladder does not fit in memory: rung {biggest.name} "
            f"({biggest.non_embedding_params():,} non-embedding parameters) needs about "
            f"{need / 2**30:.2f} GiB to train at batch {batch_size} x block {block_size} with "
            f"{jobs} job(s), but only {available / 2**30:.2f} GiB is available; accepted: a "
            "ladder whose largest rung fits in 80% of it (use fewer --jobs, a smaller "
            "--batch-size or drop the widest rungs with --max-width)")
