"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Every file tinyllm rewrites whole (checkpoints, model directories, token caches, tokenizers,
a study's CSVs and JSON) goes through this module:

1. write to a temporary file with a unique name in the same directory (`tempfile.mkstemp`),
2. give it the mode a plain `open()` would (0o666 less the umask; mkstemp makes 0o600),
3. flush it to disk (fsync), rename it over the target (`os.replace`, atomic on POSIX and
   Windows), and fsync the directory so that the rename survives a power cut.

If anything fails on the way, KeyboardInterrupt included, the temporary file is removed and
the old file is untouched. Two writers racing for one path each rename a whole file; the last
rename wins.

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
>>> atomic_write(path, "hello\\n").read_text()
'hello\\n'

This module imports nothing from tinyllm, so every layer can use it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def atomic_write(path, data: bytes | str) -> Path:
    """Replace `path` with `data` (a str is written as UTF-8, with no newline translation)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    elif not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"atomic_write writes bytes or str, got {type(data).__name__}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


@contextlib.contextmanager
def atomic_path(path) -> Iterator[Path]:
    """A temporary path to write to; it replaces `path` when the block ends without error.

    For writers that want a file name, not bytes (safetensors' `save_file`, `np.save`)::

        with atomic_path("model.safetensors") as tmp:
            save_file(arrays, tmp)

    The directory of `path` must exist.
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        os.close(fd)
        yield tmp
        os.chmod(tmp, 0o666 & ~current_umask())
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    # Elsewhere the umask can only be read by setting it: put it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_file(path: Path) -> None:
    """Flush a written file's data and metadata to the disk."""
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable (POSIX); a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
