"""tinyllm._io: atomic writes land whole, fail cleanly, respect the umask and survive races."""

import os
import stat
import threading

import numpy as np
import pytest

from tinyllm._io import atomic_path, atomic_write, current_umask


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    saved = os.umask(0o022)
    os.umask(saved)
    yield os.umask
    os.umask(saved)


def test_content_lands(tmp_path):
    path = tmp_path / "a.txt"
    assert atomic_write(path, "héllo\n") == path
    assert path.read_bytes() == "héllo\n".encode()
    atomic_write(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert leftovers(tmp_path) == []


def test_atomic_path_for_writers_that_want_a_file_name(tmp_path):
    path = tmp_path / "ids.npy"
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        assert tmp.parent == tmp_path and tmp != path
        np.save(f, np.arange(5))
    np.testing.assert_array_equal(np.load(path), np.arange(5))
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_failure_mid_write_keeps_the_old_file_and_no_temp_file(tmp_path, error):
    path = tmp_path / "a.txt"
    atomic_write(path, "old")
    with pytest.raises(error), atomic_path(path) as tmp:
        tmp.write_text("half of the ne")
        raise error
    assert path.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_bad_data_type_says_what_is_accepted(tmp_path):
    with pytest.raises(TypeError, match="bytes or str, got list"):
        atomic_write(tmp_path / "a", [1, 2])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_mode_respects_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    assert current_umask() == mask
    atomic_write(tmp_path / "a", "x")
    with atomic_path(tmp_path / "b") as tmp:
        tmp.write_text("y")
    for name in ("a", "b"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_concurrent_writers_never_leave_a_torn_file(tmp_path):
    path = tmp_path / "shared.bin"
    payloads = [bytes([65 + k]) * 200_000 for k in range(2)]
    atomic_write(path, payloads[0])
    torn, stop = [], threading.Event()

    def write(data):
        for _ in range(40):
            atomic_write(path, data)

    def read():
        while not stop.is_set():
            if path.read_bytes() not in payloads:
                torn.append(True)

    reader = threading.Thread(target=read)
    writers = [threading.Thread(target=write, args=(p,)) for p in payloads]
    reader.start()
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    stop.set()
    reader.join()
    assert not torn
    assert path.read_bytes() in payloads
    assert leftovers(tmp_path) == []
