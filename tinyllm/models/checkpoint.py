"""Model directories on disk: weights in safetensors, configuration in JSON. Never pickle.

A directory holds the same two files `transformers`' `save_pretrained` writes::

    config.json          the config's fields, plus model_type and architectures
    model.safetensors    name -> array, tied weights stored once

so tinyllm reads Hugging Face GPT-2 / BERT directories, and `transformers` reads tinyllm's.
Sharded checkpoints (`model.safetensors.index.json` + shards) are read too. `.bin` / `.pt`
files are pickles and are refused: a pickle runs code when it is loaded.
"""

from __future__ import annotations

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
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} should hold a JSON object, got {type(config).__name__}")
    return config


def read_safetensors(path) -> dict[str, np.ndarray]:
    """All arrays of one .safetensors file, with a clear error for a damaged file."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    if not Path(path).is_file():
        raise CheckpointError(f"{path} does not exist")
    try:
        return load_file(str(path))
    except (SafetensorError, ValueError, TypeError) as exc:
        size = os.path.getsize(path)
        raise CheckpointError(f"cannot read {path} ({size} bytes): the file is truncated, "
                              f"damaged or not a safetensors file ({exc})") from None


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


def write_model_dir(directory, config: dict, state: dict[str, np.ndarray]) -> Path:
    """Write config.json and model.safetensors into `directory` (created if needed).

    Each file is written atomically (`tinyllm._io`), so an interrupted save never leaves a
    half-written model.safetensors or config.json behind.
    """
    from safetensors.numpy import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {name: np.ascontiguousarray(a) for name, a in state.items()}
    with atomic_path(directory / WEIGHTS_NAME) as tmp:
        save_file(arrays, tmp, metadata={"format": "pt"})  # "pt": what transformers expects
    atomic_write(directory / CONFIG_NAME, json.dumps(config, indent=2) + "\n")
    return directory
