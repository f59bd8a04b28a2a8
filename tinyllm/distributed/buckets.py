"""Gradients in flat buckets: accumulated over micro-batches, summed over ranks in place.

Data parallelism keeps one copy of the model per rank; each rank computes the gradient of its
own rows of the global batch, and the ranks then average their gradients, so that every rank
takes the same optimizer step. Averaging one flat buffer per few megabytes, not one message
per tensor, is what makes it cheap (PyTorch DDP's buckets, Li et al. 2020): a message pays a
latency once, and a bucket fills the network.

``GradientBuckets(params, bucket_mb)`` packs the parameters' gradients, in reverse order (the
order backward finishes them), into buffers of at most ``bucket_mb`` megabytes, one dtype
each. A step is::

    buckets.zero_()
    for micro_batch in my_rows:          # K micro-batches: gradient accumulation
        loss(micro_batch).backward()
        buckets.accumulate()             # add the gradients in; .grad is cleared
    buckets.reduce_(world, 1 / (N * K))  # sum over the N ranks, scale, and hand back as .grad

Every micro-batch's gradient is added to the bucket as one whole, so accumulating K on one
process and summing over K ranks add the same numbers in the same order where the order is
the same (two terms: a + b = b + a exactly): 1 process x --grad-accum 2 equals 2 ranks bit for bit.
"""

from __future__ import annotations

import numpy as np

from .world import World


class GradientBuckets:
    """Flat gradient buffers for `params` (those that require a gradient)."""

    def __init__(self, params, bucket_mb: float = 25.0):
        if not bucket_mb > 0:
            raise ValueError(f"--bucket-mb must be > 0, got {bucket_mb}")
        params = [p for p in params if p.requires_grad]
        if not params:
            raise ValueError("no parameter requires a gradient: nothing to all-reduce")
        limit = int(bucket_mb * 2**20)
        self.buckets: list[tuple[list, np.ndarray, list[int]]] = []
        group: list = []
        size = 0
        for p in reversed(params):                    # backward finishes the last layers first
            nbytes = p.data.size * p.data.itemsize
            if group and (size + nbytes > limit or p.data.dtype != group[0].data.dtype):
                self._add(group)
                group, size = [], 0
            group.append(p)
            size += nbytes
        self._add(group)
        self.has_grad = {id(p): False for p in params}

    def _add(self, group: list) -> None:
        offsets = np.cumsum([0] + [p.data.size for p in group]).tolist()
        self.buckets.append((group, np.zeros(offsets[-1], dtype=group[0].data.dtype), offsets))

    @property
    def nbytes(self) -> int:
        """Bytes summed over the ranks per step (all buckets)."""
        return sum(buf.nbytes for _, buf, _ in self.buckets)

    def zero_(self) -> None:
        """Start a step: empty buckets, no gradient seen."""
        for _, buf, _ in self.buckets:
            buf.fill(0)
        self.has_grad = dict.fromkeys(self.has_grad, False)

    def accumulate(self) -> None:
        """Add every parameter's `.grad` (one micro-batch's) into its bucket; clear `.grad`."""
        for group, buf, offsets in self.buckets:
            for p, start, stop in zip(group, offsets, offsets[1:]):
                if p.grad is not None:
                    buf[start:stop] += p.grad.reshape(-1)
                    self.has_grad[id(p)] = True
                    p.grad = None

    def reduce_(self, world: World, scale: float) -> None:
        """Sum the buckets over the ranks in place, multiply by `scale`, and set each
        parameter's `.grad` to its slice (a view: no copy). A parameter no micro-batch gave
        a gradient keeps `.grad = None`, as it would on one process."""
        for group, buf, offsets in self.buckets:
            world.allreduce_(buf)
            if scale != 1.0:
                buf *= scale
            for p, start, stop in zip(group, offsets, offsets[1:]):
                if self.has_grad[id(p)]:
                    p.grad = buf[start:stop].reshape(p.data.shape)
