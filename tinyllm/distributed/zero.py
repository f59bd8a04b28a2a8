"""ZeRO stage 1 (Rajbhandari et al. 2020): each rank keeps the optimizer state of its own
slice of the parameters only.

With plain data parallelism every rank holds AdamW's two moments for every parameter: 8 bytes
per float32 parameter, twice the weights, the same on all N ranks. Stage 1 cuts the parameters
into N contiguous slices (by size, in the optimizer's order). A step then

1. sums the gradients over the ranks with a reduce-scatter: rank r receives the summed
   gradient of slice r only (the other ranks' gradients it never needs);
2. clips them by the norm of the whole gradient (the slices' norms are gathered, in order, so
   the norm is the one a single process computes);
3. lets the optimizer update slice r -- the other parameters have no gradient on this rank, so
   the optimizer never creates their state: moments for 1/N of the model;
4. all-gathers the updated slices, so every rank again holds every weight.

A reduce-scatter and an all-gather move as many bytes as one all-reduce, so communication is
unchanged; the optimizer's memory is divided by N. With 2 ranks the results are bit for bit
those of plain data parallelism (the same sums, the same norm, the same updates).
"""

from __future__ import annotations

import numpy as np

from .world import World


class ShardedGradients:
    """Gradients in one flat buffer in parameter order, summed over the ranks with a
    reduce-scatter: this rank then owns (updates) one contiguous slice of the parameters.
    The same interface as `GradientBuckets` (`zero_`, `accumulate`, `reduce_`), plus
    `clip_grad_norm_` and `gather_parameters`."""

    def __init__(self, params, world: World):
        params = [p for p in params if p.requires_grad]
        dtypes = {p.data.dtype for p in params}
        if len(dtypes) != 1:
            raise ValueError(f"--shard-optimizer needs parameters of one dtype, got "
                             f"{sorted(str(d) for d in dtypes)}")
        self.world, self.params = world, params
        sizes = [p.data.size for p in params]
        self.offsets = np.cumsum([0, *sizes]).tolist()
        total = self.offsets[-1]
        # Rank r owns the parameters whose first entry lies in its share [r, r+1) * total / N.
        self.owner = [min(world.size - 1, start * world.size // total)
                      for start in self.offsets[:-1]]
        bounds = [self.offsets[self.owner.index(r)] if r in self.owner else None
                  for r in range(world.size)] + [total]
        for r in range(world.size - 1, -1, -1):       # a rank that owns nothing: empty slice
            if bounds[r] is None:
                bounds[r] = bounds[r + 1]
        self.counts = [bounds[r + 1] - bounds[r] for r in range(world.size)]
        self.start = bounds[world.rank]
        self.grad = np.zeros(total, dtype=params[0].data.dtype)
        self.has_grad = [False] * len(params)

    @property
    def owned(self) -> list:
        """The parameters this rank updates."""
        return [p for p, r in zip(self.params, self.owner) if r == self.world.rank]

    @property
    def nbytes(self) -> int:
        """Bytes reduce-scattered (and as many all-gathered) per step."""
        return self.grad.nbytes

    def zero_(self) -> None:
        self.grad.fill(0)
        self.has_grad = [False] * len(self.params)

    def accumulate(self) -> None:
        """Add every parameter's `.grad` (one micro-batch's) into the buffer; clear `.grad`."""
        for i, p in enumerate(self.params):
            if p.grad is not None:
                self.grad[self.offsets[i]:self.offsets[i + 1]] += p.grad.reshape(-1)
                self.has_grad[i] = True
                p.grad = None

    def reduce_(self, world: World, scale: float) -> None:
        """Sum over the ranks, keep this rank's slice, scale it: the owned parameters get
        their `.grad` (views), the others none."""
        mine = world.reduce_scatter(self.grad, self.counts)             # (counts[rank],)
        if scale != 1.0:
            mine *= scale
        for i, p in enumerate(self.params):
            if self.owner[i] == world.rank and self.has_grad[i]:
                a, b = self.offsets[i] - self.start, self.offsets[i + 1] - self.start
                p.grad = mine[a:b].reshape(p.data.shape)

    def clip_grad_norm_(self, max_norm: float) -> float:
        """`clip_grad_norm_` over the whole model's gradient, from the owned slices: each
        rank's per-parameter norms are gathered in parameter order, so the total (and the
        coefficient) is exactly what one process computes from the full gradient."""
        norms = [np.sqrt(np.vdot(p.grad.reshape(-1), p.grad.reshape(-1)))
                 for p in self.owned if p.grad is not None]
        every = [n for rank_norms in self.world.gather(norms) for n in rank_norms]
        if not every:
            return 0.0
        total = np.sqrt(np.vdot(np.array(every), np.array(every)))
        coef = max_norm / (total + 1e-6)
        if not coef >= 1.0:
            for p in self.owned:
                if p.grad is not None:
                    p.grad *= coef
        return float(total)

    def gather_parameters(self) -> None:
        """Every rank's updated slice to every rank: the weights agree again."""
        flat = np.empty_like(self.grad)
        for i, p in enumerate(self.params):
            if self.owner[i] == self.world.rank:
                flat[self.offsets[i]:self.offsets[i + 1]] = p.data.reshape(-1)
        self.world.allgather_(flat, self.counts)
        for i, p in enumerate(self.params):
            if self.owner[i] != self.world.rank:
                p.data[...] = flat[self.offsets[i]:self.offsets[i + 1]].reshape(p.data.shape)
