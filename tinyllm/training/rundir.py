"""A run directory's safety: never a silent overwrite, and one writer at a time.

A directory "holds a run" when any file a run writes is there. A new run refuses such a
directory unless asked to replace it (`overwrite=True`, the command's `--overwrite`), and
`RunLock` (an advisory `flock` on `<run>/.lock`) keeps a second process from writing into a
run another process is writing. The lock dies with its process, so a killed run never leaves
a stale lock behind.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# What a run writes into its directory (`model/` is a directory).
RUN_FILES = ("train_config.json", "tokenizer.json", "metrics.jsonl", "last.safetensors",
             "best.safetensors", "model")
LOCK_NAME = ".lock"


class RunDirError(ValueError):
    """A run directory that cannot be used as asked (it holds a run, or is being written)."""


def run_files(run_dir) -> list[str]:
    """The names of the run files present in `run_dir` (empty when it holds no run)."""
    run_dir = Path(run_dir)
    return [name for name in RUN_FILES if (run_dir / name).exists()]


def check_new_run_dir(run_dir, overwrite: bool = False) -> None:
    """Refuse a directory that already holds a run, saying how to go on, unless `overwrite`."""
    found = run_files(run_dir)
    if found and not overwrite:
        raise RunDirError(
            f"{run_dir} already holds a run ({', '.join(found)}); continue it with --resume "
            f"{run_dir}, start another with --name NEW_NAME, or replace it with --overwrite")


def clear_run(run_dir) -> None:
    """Remove the files of the run in `run_dir` (for --overwrite); other files stay."""
    run_dir = Path(run_dir)
    for name in run_files(run_dir):
        path = run_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


class RunLock:
    """`with RunLock(run_dir):` holds an exclusive advisory lock on the run, or raises
    RunDirError naming the process that holds it. Where `fcntl` does not exist (Windows)
    it does nothing."""

    def __init__(self, run_dir):
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # no advisory locks on this platform
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunDirError(f"another process (pid {holder}) is writing to "
                              f"{self.path.parent}; wait for it to finish or use another "
                              "--name") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode("ascii"))
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)   # closing releases the lock
            self._fd = None
