"""Training checkpoints that lose nothing: one safetensors file, written atomically.

A checkpoint holds every array of the run (model weights under `model.<name>`, optimizer
state under `optim.<index>.<key>`) and, in the file's metadata, one JSON document with
everything else: step, train and model configs, optimizer hyper-parameters, scheduler and
batch-sampler state, the global RNG state and the best validation loss so far.

Writing goes through `tinyllm._io.atomic_path` (a temporary file in the same directory,
flushed to disk, then renamed over the old checkpoint): a crash at any moment leaves either the
old checkpoint or the new one, never a torn file. The metadata also holds the sha256 of every
tensor, verified on load, so bytes damaged on disk are refused, not trained on. No pickle.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._io import atomic_write
from ..models.checkpoint import CheckpointError, read_safetensors_with_metadata, save_safetensors

FORMAT = "tinyllm-train-checkpoint"
VERSION = 1


def save_checkpoint(path, arrays: dict[str, np.ndarray], meta: dict) -> Path:
    """Atomically write `arrays` and the JSON-able `meta` to `path` (with their sha256)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"format": FORMAT, "version": str(VERSION),
              "meta": json.dumps(meta, separators=(",", ":"))}
    return save_safetensors(path, arrays, header)


def load_checkpoint(path) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, meta) from a checkpoint, or a CheckpointError saying what is wrong (and, for
    a damaged last.safetensors, that best.safetensors may still be whole)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        arrays, header = read_safetensors_with_metadata(path)
    except CheckpointError as exc:
        other = path.with_name("best.safetensors")
        hint = (f"; {other} may be whole: copy it over {path.name} to resume from it"
                if path.name == "last.safetensors" and other.is_file() else "")
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or corrupted?): "
                              f"{exc}{hint}") from None
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
