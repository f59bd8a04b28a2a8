"""Model directories on disk: weights in safetensors, configuration in JSON. Never pickle.

A directory holds the same two files `transformers`' `save_pretrained` writes::

    config.json          the config's fields, plus model_type and architectures
    model.safetensors    name -> array, tied weights stored once

so tinyllm reads Hugging Face GPT-2 / BERT directories, and `transformers` reads tinyllm's --
except a model it would build differently from the same file (a mean-pooled classifier, muP,
pruned heads: `ModelConfig.tinyllm_only_fields`), whose model_type says "tinyllm-gpt2".
Sharded checkpoints (`model.safetensors.index.json` + shards) are read too. `.bin` / `.pt`
files are pickles and are refused: a pickle runs code when it is loaded.

Every safetensors file tinyllm writes (model directories and training checkpoints) carries
the sha256 of its tensors in its metadata (`payload_sha256`), and reading verifies it: bytes
changed on disk are reported as damage instead of loading as different weights. Files written
elsewhere (by `transformers`) carry none and are read as they are.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .._io import atomic_path, atomic_write

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"
_PICKLES = ("pytorch_model.bin", "model.pt", "model.bin")


class CheckpointError(ValueError):
    """A model directory or file that cannot be read: missing, truncated, or not ours."""


SHA256_KEY = "tinyllm_sha256"


def payload_sha256(arrays: dict[str, np.ndarray]) -> str:
    """The sha256 of a set of named arrays: names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def save_safetensors(path, arrays: dict[str, np.ndarray], metadata: dict[str, str]) -> Path:
    """Write `arrays` with `metadata` plus their sha256, atomically; a failed write (a full
    disk) raises OSError naming the file, and the previous file stays as it was."""
    from safetensors import SafetensorError
    from safetensors.numpy import save_file

    path = Path(path)
    arrays = {name: np.ascontiguousarray(a) for name, a in arrays.items()}
    metadata = {**metadata, SHA256_KEY: payload_sha256(arrays)}
    try:
        with atomic_path(path) as tmp:
            save_file(arrays, tmp, metadata=metadata)
    except SafetensorError as exc:
        raise OSError(f"cannot write {path}: {exc}; the previous file, if any, is "
                      "unchanged") from None
    return path


def read_safetensors_with_metadata(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(arrays, metadata) of one .safetensors file, its checksum verified when it has one."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist")
    try:
        with safe_open(str(path), framework="np") as f:
            metadata = f.metadata() or {}
            arrays = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise CheckpointError(f"cannot read {path} ({os.path.getsize(path)} bytes): the file "
                              f"is truncated, damaged or not a safetensors file ({exc})") from None
    expected = metadata.get(SHA256_KEY)
    if expected is not None and payload_sha256(arrays) != expected:
        raise CheckpointError(f"{path} is damaged: its tensors no longer match the sha256 "
                              "written with them (bytes changed on disk; corrupted)")
    return arrays, metadata


def read_config(directory) -> dict:
    """The parsed config.json of a model directory."""
    path = Path(directory) / CONFIG_NAME
    if not Path(directory).is_dir():
        raise CheckpointError(f"{directory} is not a directory; a model directory holds "
                              f"{CONFIG_NAME} and {WEIGHTS_NAME}")
    if not path.is_file():
        raise CheckpointError(f"{directory} has no {CONFIG_NAME}; a model directory holds "
                              f"{CONFIG_NAME} and {WEIGHTS_NAME}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc})") from None
    except RecursionError:
        raise CheckpointError(f"{path} is nested too deeply to be a model config") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} should hold a JSON object, got {type(config).__name__}")
    return config


def read_safetensors(path) -> dict[str, np.ndarray]:
    """All arrays of one .safetensors file, with a clear error for a damaged file."""
    return read_safetensors_with_metadata(path)[0]


def read_weights(directory) -> dict[str, np.ndarray]:
    """The weights of a model directory: model.safetensors, or the shards an index names."""
    directory = Path(directory)
    single, index = directory / WEIGHTS_NAME, directory / INDEX_NAME
    if single.is_file():
        return read_safetensors(single)
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{index} is not a safetensors index ({exc})") from None
        state: dict[str, np.ndarray] = {}
        for shard in sorted(set(weight_map.values())):
            state.update(read_safetensors(directory / shard))
        return state
    pickles = [name for name in _PICKLES if (directory / name).is_file()]
    if pickles:
        raise CheckpointError(
            f"{directory} has weights only in {pickles[0]}, a pickle file, which tinyllm does "
            f"not load (unpickling runs code). Convert it once with transformers: "
            f"AutoModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)")
    raise CheckpointError(f"{directory} has no {WEIGHTS_NAME} (or {INDEX_NAME})")


def write_model_dir(directory, config: dict, state: dict[str, np.ndarray],
                    metadata: dict[str, str] | None = None) -> Path:
    """Write config.json and model.safetensors (with `metadata` beside the format) into
    `directory` (created if needed).

    Each file is written atomically (`tinyllm._io`), so an interrupted save never leaves a
    half-written model.safetensors or config.json behind.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # "pt": the format transformers expects in the metadata
    save_safetensors(directory / WEIGHTS_NAME, state, {"format": "pt", **(metadata or {})})
    atomic_write(directory / CONFIG_NAME, json.dumps(config, indent=2) + "\n")
    return directory
