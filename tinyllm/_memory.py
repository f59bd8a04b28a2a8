"""Peak resident memory of this process, for the benchmarks and the scaling study."""

from __future__ import annotations

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
