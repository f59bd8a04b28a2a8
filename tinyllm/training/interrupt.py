"""Ctrl-C within seconds, even while a step is inside one long computation.

Python runs a signal handler only between bytecodes: a signal that arrives while the main
thread is inside a single long NumPy, BLAS or compiled-kernel call (a 100,000-token attention,
say) waits until that call returns, which can be minutes. The operating system still writes
the signal's number to the file descriptor given to `signal.set_wakeup_fd` at once, so a
watchdog thread sees it. The Trainer's own handler stops a step between operations; when it
has not done so within `grace_s` seconds, the watchdog calls `on_stuck(signal name)`, which
saves the last complete step and ends the process. Those long calls release the interpreter
lock, which is what lets the watchdog run and save meanwhile.
"""

from __future__ import annotations

import os
import select
import signal
import threading
from collections.abc import Callable

EXIT_INTERRUPTED = 130      # the shell's code for a process ended by SIGINT


class InterruptWatchdog:
    """`start()` watches for SIGINT/SIGTERM; `stop()` ends the watch and restores the
    previous wakeup descriptor. Outside the main thread it does nothing."""

    def __init__(self, on_stuck: Callable[[str], None], grace_s: float = 3.0):
        self.on_stuck = on_stuck
        self.grace_s = grace_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fds: tuple[int, int] | None = None
        self._previous_fd = -1

    def start(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        read, write = os.pipe()
        os.set_blocking(write, False)
        self._fds = (read, write)
        self._previous_fd = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        self._thread = threading.Thread(target=self._watch, name="tinyllm-interrupt",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._fds is None:
            return
        signal.set_wakeup_fd(self._previous_fd)
        self._stop.set()
        self._thread.join()
        for fd in self._fds:
            os.close(fd)
        self._fds = None

    def _watch(self) -> None:
        read = self._fds[0]
        while not self._stop.is_set():
            ready, _, _ = select.select([read], [], [], 0.2)
            if not ready:
                continue
            stops = {signal.SIGINT, signal.SIGTERM} & set(os.read(read, 64))
            if not stops:
                continue
            if self._stop.wait(self.grace_s):   # the handler had its chance
                return
            self.on_stuck(signal.Signals(min(stops)).name)
