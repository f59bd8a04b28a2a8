"""Cutting a global batch into each rank's rows and each rank's rows into micro-batches.

Every rank draws the same global batch from the same seeded sampler and keeps its own rows,
so the sampler's state is global: a run resumes on any rank count that divides the batch.
"""

from __future__ import annotations

import numpy as np


def _rows(batch) -> int:
    if isinstance(batch, np.ndarray):
        return batch.shape[0]
    values = batch.values() if isinstance(batch, dict) else batch
    counts = {v.shape[0] for v in values if isinstance(v, np.ndarray) and v.ndim}
    if len(counts) != 1:
        raise TypeError(f"cannot tell a batch's rows: its arrays have leading sizes "
                        f"{sorted(counts)}; data-parallel training needs one batch size")
    return counts.pop()


def shard_rows(batch, start: int, stop: int):
    """Rows start:stop of a batch: an array, or a tuple / list / dict of arrays whose leading
    axis is the batch (other values are passed along as they are)."""
    n = _rows(batch)

    def cut(value):
        if isinstance(value, np.ndarray) and value.ndim and value.shape[0] == n:
            return value[start:stop]
        return value

    if isinstance(batch, np.ndarray):
        return cut(batch)
    if isinstance(batch, dict):
        return {k: cut(v) for k, v in batch.items()}
    return type(batch)(cut(v) for v in batch)


def micro_batches(batch, rank: int, size: int, accum: int) -> list:
    """Rank `rank`'s `accum` micro-batches of a global batch split over `size` ranks: the
    global rows in order, rank r's share is the r-th of `size` equal parts, cut into `accum`
    equal micro-batches. The rows must divide evenly (checked when the run starts)."""
    n = _rows(batch)
    share = n // (size * accum)
    first = rank * accum
    return [shard_rows(batch, (first + k) * share, (first + k + 1) * share)
            for k in range(accum)]
