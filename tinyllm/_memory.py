"""Memory: this process's peak, what the machine has available, and whether a job fits."""

from __future__ import annotations

import os
import sys


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB.

    Linux: VmHWM from /proc/self/status. Not getrusage's ru_maxrss there: a child started by
    fork + exec (multiprocessing's "spawn") inherits its parent's maximum, so a small run in a
    worker would report the parent's peak.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def available_memory_bytes() -> int | None:
    """Memory the OS says is available now (Linux's MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(need_bytes: int, what: str, way_out: str, available: int | None = None,
               fraction: float = 0.9) -> None:
    """A ValueError, before anything is allocated, when `need_bytes` exceeds `fraction` of the
    available memory, naming both figures, `what` needs it and `way_out`."""
    available = available_memory_bytes() if available is None else available
    if available is not None and need_bytes > fraction * available:
        raise ValueError(f"{what} needs about {format_bytes(need_bytes)} of memory, but this "
                         f"machine has {format_bytes(available)} available; {way_out}")


def format_bytes(n: float) -> str:
    """`n` bytes in MiB, GiB or TiB, whichever reads best."""
    if n < 2**30:
        return f"{n / 2**20:.1f} MiB"
    return f"{n / 2**30:.2f} GiB" if n < 2**40 else f"{n / 2**40:.1f} TiB"
