"""Who computes with whom: one process, or N processes started by an MPI launcher.

``init_world(mode)`` returns a ``World``: ``rank``, ``size``, ``is_main`` and the few
collectives data-parallel training needs, each a no-op (or the identity) for one process.
``mode`` is ``"auto"`` (MPI when an MPI launcher started this process with more than one
rank, else one process), ``"mpi"`` (MPI, required) or ``"none"``. mpi4py is imported only
when MPI is used, so without it nothing changes.

>>> world = init_world("none")
>>> world.rank, world.size, world.is_main
(0, 1, True)
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import sys

import numpy as np

#: Environment variables MPI launchers set to the number of ranks (Open MPI, MPICH and Intel
#: MPI through PMI, MVAPICH2).
SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")
#: ... and to the number of ranks on this machine (they share its cores).
LOCAL_SIZE_VARIABLES = ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS",
                        "MV2_COMM_WORLD_LOCAL_SIZE")
MODES = ("auto", "mpi", "none")
#: Inside `solo()`: "auto" means one process even under an MPI launcher.
_SOLO = contextvars.ContextVar("tinyllm_solo", default=False)
MPI_EXTRA = 'pip install ".[mpi]"'


#: ... and to this process's rank.
RANK_VARIABLES = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "MV2_COMM_WORLD_RANK")


class DistributedError(ValueError):
    """The ranks of a job disagree, or MPI was asked for and is not there (a user error)."""


def launcher_size(environ=None) -> int:
    """The rank count an MPI launcher announced in the environment (1 when none did)."""
    environ = os.environ if environ is None else environ
    for name in SIZE_VARIABLES:
        value = environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def launcher_rank(environ=None) -> int:
    """This process's rank as the MPI launcher announced it (0 when none did)."""
    environ = os.environ if environ is None else environ
    for name in RANK_VARIABLES:
        value = environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


def local_size(environ=None) -> int:
    """How many ranks of the job run on this machine (1 without a launcher)."""
    environ = os.environ if environ is None else environ
    for name in LOCAL_SIZE_VARIABLES:
        value = environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return launcher_size(environ)


class World:
    """One process: rank 0 of 1; every collective leaves its data as it is."""

    rank = 0
    size = 1
    backend = "none"

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that prints, writes metrics and saves checkpoints."""
        return self.rank == 0

    def allreduce_(self, array: np.ndarray) -> np.ndarray:
        """Sum `array` over the ranks, in place (every rank gets the sum)."""
        return array

    def sum(self, values) -> np.ndarray:
        """The sum over the ranks of a few float64 numbers (losses, counts, flags)."""
        return self.allreduce_(np.array(values, dtype=np.float64))

    def broadcast_(self, array: np.ndarray, root: int = 0) -> np.ndarray:
        """Overwrite `array` on every rank with rank `root`'s, in place."""
        return array

    def reduce_scatter(self, array: np.ndarray, counts: list[int]) -> np.ndarray:
        """Sum `array` over the ranks and return this rank's part of the sum: the `counts[r]`
        entries after the first sum(counts[:r]) (MPI_Reduce_scatter)."""
        return array.copy()

    def allgather_(self, array: np.ndarray, counts: list[int]) -> np.ndarray:
        """Fill every rank's part of `array` (laid out as in `reduce_scatter`) with the values
        its rank holds there, in place (MPI_Allgatherv)."""
        return array

    def gather_to_main(self, obj) -> list | None:
        """Every rank's `obj`, in rank order, on rank 0 (None on the others)."""
        return [obj]

    def gather(self, obj) -> list:
        """Every rank's `obj` (a small picklable value), in rank order, on every rank."""
        return [obj]

    def barrier(self) -> None:
        """Wait until every rank has arrived."""

    def abort(self, code: int = 1) -> None:
        """End every rank of the job (one process: exit)."""
        sys.exit(code)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, size={self.size})"


class MPIWorld(World):
    """The ranks of an MPI communicator (mpi4py): sums in place with MPI_Allreduce."""

    backend = "mpi"

    def __init__(self, comm):
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()

    def allreduce_(self, array: np.ndarray) -> np.ndarray:
        from mpi4py import MPI

        if not array.flags.c_contiguous:
            raise ValueError("allreduce_ needs a C-contiguous array (a flat gradient bucket)")
        self.comm.Allreduce(MPI.IN_PLACE, array, op=MPI.SUM)
        return array

    def broadcast_(self, array: np.ndarray, root: int = 0) -> np.ndarray:
        self.comm.Bcast(array, root=root)
        return array

    def reduce_scatter(self, array: np.ndarray, counts: list[int]) -> np.ndarray:
        from mpi4py import MPI

        mine = np.empty(counts[self.rank], dtype=array.dtype)
        self.comm.Reduce_scatter(array, mine, recvcounts=counts, op=MPI.SUM)
        return mine

    def allgather_(self, array: np.ndarray, counts: list[int]) -> np.ndarray:
        from mpi4py import MPI

        starts = np.cumsum([0, *counts[:-1]]).tolist()
        self.comm.Allgatherv(MPI.IN_PLACE, [array, (counts, starts)])   # the dtype: the array's
        return array

    def gather(self, obj) -> list:
        return self.comm.allgather(obj)

    def gather_to_main(self, obj) -> list | None:
        return self.comm.gather(obj, root=0)

    def barrier(self) -> None:
        self.comm.Barrier()

    def abort(self, code: int = 1) -> None:
        sys.stderr.flush()
        sys.stdout.flush()
        self.comm.Abort(code)


@contextlib.contextmanager
def solo():
    """Inside the block `init_world("auto")` is one process, launcher or not: the workers of
    an MPI pool (a distributed sweep) each train runs of their own, not one run together."""
    token = _SOLO.set(True)
    try:
        yield
    finally:
        _SOLO.reset(token)


def init_world(mode: str = "auto") -> World:
    """The World this process belongs to; see the module docstring for `mode`."""
    if mode not in MODES:
        raise ValueError(f"--distributed {mode!r} is not a mode; accepted: {', '.join(MODES)}")
    launched = launcher_size()
    if mode == "none" or (mode == "auto" and (launched == 1 or _SOLO.get())):
        return World()
    try:
        from mpi4py import MPI
    except ImportError:
        why = (f"an MPI launcher started this process as one of {launched} ranks"
               if mode == "auto" else "--distributed mpi was given")
        raise DistributedError(f"{why}, but mpi4py is not installed; install it with "
                               f"{MPI_EXTRA} (it brings the MPI runtime too)") from None
    return MPIWorld(MPI.COMM_WORLD)


def fingerprint(*parts) -> str:
    """A short SHA-256 of strings and arrays: what ranks compare to prove they agree."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            digest.update(str((part.dtype.str, part.shape)).encode())
            digest.update(np.ascontiguousarray(part).tobytes())
        else:
            digest.update(str(part).encode())
    return digest.hexdigest()[:16]


def check_agreement(world: World, what: str, value: str) -> None:
    """Raise on every rank when the ranks' `value`s differ (configs, versions, weights)."""
    values = world.gather(value)
    if len(set(values)) > 1:
        ranks = ", ".join(f"rank {r}: {v}" for r, v in enumerate(values))
        raise on_all_ranks(DistributedError(
            f"the ranks disagree on {what} ({ranks}); start every rank from the same tinyllm "
            "version, command line and files"))


def on_all_ranks(error: BaseException) -> BaseException:
    """Mark `error` as raised on every rank alike: rank 0 reports it, the others need not."""
    error.tinyllm_all_ranks = True
    return error


def agree(world: World, error: BaseException | None) -> None:
    """Every rank calls this at the same point with the error it met (or None). If any rank
    met one, every rank raises -- its own error, or one naming the first rank that failed --
    so that no rank waits forever in a later collective for a rank that has gone."""
    if world.size == 1:
        if error is not None:
            raise error
        return
    reports = world.gather(None if error is None else f"{error}")
    failed = [(rank, report) for rank, report in enumerate(reports) if report is not None]
    if not failed:
        return
    if error is not None and len({report for _, report in failed}) == 1 \
            and len(failed) == world.size:
        raise on_all_ranks(error)
    rank, report = failed[0]
    raise on_all_ranks(DistributedError(f"rank {rank} of {world.size} failed: {report}"))
