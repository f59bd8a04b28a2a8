"""Beyond one process: data-parallel training on MPI (mpi4py, optional) and the pieces it
shares with gradient accumulation on one process.

- ``init_world(mode)``: this process's ``World`` (one process, or an MPI rank);
- ``GradientBuckets``: gradients accumulated over micro-batches in flat buffers, summed over
  the ranks in place;
- ``ShardedGradients``: ZeRO stage 1, each rank updating (and keeping AdamW's state for) one
  slice of the parameters;
- ``shard_rows(batch, start, stop)``: a slice of a batch's rows, whatever its container.
"""

from .buckets import GradientBuckets
from .sharding import micro_batches, shard_rows
from .world import (
    MODES,
    DistributedError,
    MPIWorld,
    World,
    agree,
    check_agreement,
    fingerprint,
    init_world,
    launcher_rank,
    launcher_size,
    local_size,
    on_all_ranks,
    solo,
)
from .zero import ShardedGradients

__all__ = [
    "MODES",
    "DistributedError",
    "GradientBuckets",
    "MPIWorld",
    "ShardedGradients",
    "World",
    "agree",
    "check_agreement",
    "fingerprint",
    "init_world",
    "launcher_rank",
    "launcher_size",
    "local_size",
    "micro_batches",
    "on_all_ranks",
    "shard_rows",
    "solo",
]
