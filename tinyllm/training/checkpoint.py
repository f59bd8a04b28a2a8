"""Training checkpoints that lose nothing: one safetensors file, written atomically.

A checkpoint holds every array of the run (model weights under `model.<name>`, optimizer
state under `optim.<index>.<key>`) and, in the file's metadata, one JSON document with
everything else: step, train and model configs, optimizer hyper-parameters, scheduler and
batch-sampler state, the global RNG state and the best validation loss so far.

Writing goes through `tinyllm._io.atomic_path` (a temporary file in the same directory,
flushed to disk, then renamed over the old checkpoint): a crash at any moment leaves either the
old checkpoint or the new one, never a torn file. No pickle anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._io import atomic_path, atomic_write
from ..models.checkpoint import CheckpointError

FORMAT = "tinyllm-train-checkpoint"
VERSION = 1


def save_checkpoint(path, arrays: dict[str, np.ndarray], meta: dict) -> Path:
    """Atomically write `arrays` and the JSON-able `meta` to `path`."""
    from safetensors.numpy import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"format": FORMAT, "version": str(VERSION),
              "meta": json.dumps(meta, separators=(",", ":"))}
    contiguous = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    with atomic_path(path) as tmp:
        save_file(contiguous, tmp, metadata=header)
    return path


def load_checkpoint(path) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, meta) from a checkpoint, or a CheckpointError saying what is wrong."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="np") as f:
            header = f.metadata() or {}
            arrays = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or corrupted?): "
                              f"{exc}") from None
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a tinyllm training checkpoint "
                              f"(format {header.get('format')!r}, expected {FORMAT!r})")
    if header.get("version") != str(VERSION):
        raise CheckpointError(f"{path} has checkpoint version {header.get('version')!r}; "
                              f"this tinyllm reads version {VERSION}")
    try:
        meta = json.loads(header["meta"])
    except (KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: the checkpoint's metadata is not valid JSON "
                              f"({exc})") from None
    return arrays, meta


def write_json_atomic(path, obj) -> None:
    """Write `obj` as indented JSON, atomically (see `tinyllm._io`)."""
    atomic_write(path, json.dumps(obj, indent=2) + "\n")
