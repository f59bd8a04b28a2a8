"""Pre-trained models to continue from: a `tinyllm train` run, or a model directory.

`load_source(path)` accepts

- a run directory (`runs/gpt-small-pydoc`: its best checkpoint, or last, with the tokenizer
  stored in it), or
- a model directory (`config.json` + `model.safetensors`, as `model.save` and
  `transformers`' `save_pretrained` write) with a tinyllm `tokenizer.json` in it or beside it
  (a run's `model/` folder has one beside it; tinyllm cannot read Hugging Face tokenizers).

and returns the model family (from the models registry), the config, the weights and the
tokenizer. Nothing is written to the source: `tinyllm train --init-from` and `tinyllm
finetune` always write a new run directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..models import ModelFamily, get_family
from ..models.checkpoint import CONFIG_NAME, CheckpointError
from ..nn.quantized import quantized_layers
from ..tokenizers import Tokenizer
from .inference import directory_tokenizer, family_of_directory, load_run


@dataclass
class Source:
    """A pre-trained model: its family, config, weights (name -> array) and tokenizer."""

    path: Path
    kind: str                        # "run" or "model directory"
    family: ModelFamily
    config: object                   # the family's config class
    state: dict[str, np.ndarray]
    tokenizer: Tokenizer


def is_run_dir(path: Path) -> bool:
    return (path / "last.safetensors").is_file() or (path / "best.safetensors").is_file()


def load_source(path) -> Source:
    """The run or model directory at `path`, or a CheckpointError saying what it is not."""
    path = Path(path)
    if is_run_dir(path):
        model, tokenizer, config = load_run(path)
        return Source(path, "run", get_family(config.model), model.config,
                      model.state_dict(), tokenizer)
    if (path / CONFIG_NAME).is_file():
        family = family_of_directory(path)
        model = family.model_class.from_pretrained(path)
        quantized = quantized_layers(model)
        if quantized:
            raise CheckpointError(
                f"{path} holds a quantized model ({quantized[0][1].scheme.name}); training "
                "cannot continue from integer weights: continue from the float run it was "
                "compressed from")
        return Source(path, "model directory", family, model.config, model.state_dict(),
                      directory_tokenizer(path))
    raise CheckpointError(
        f"{path} is neither a tinyllm run directory (best.safetensors or last.safetensors) "
        f"nor a model directory ({CONFIG_NAME} + model.safetensors); accepted: a directory "
        "written by tinyllm train, or by model.save / save_pretrained")


def source_family(path) -> ModelFamily:
    """The family of the source at `path`, read without loading its weights where possible."""
    path = Path(path)
    if is_run_dir(path) or not (path / CONFIG_NAME).is_file():
        return load_source(path).family
    return family_of_directory(path)


def check_encodable(tokenizer: Tokenizer, ids, text: str | list[str], what: str,
                    source: Path) -> None:
    """Refuse text (one string, or the strings encoded one by one) with pieces the source's
    tokenizer never saw (they would all be [UNK]), naming them (`Tokenizer.split_pieces`:
    characters, or words for a word-level tokenizer). A model continued from a source can
    only read its own pieces."""
    unk = tokenizer.unk_token_id
    if unk is None or not np.any(np.asarray(ids) == unk):
        return
    kind = tokenizer.piece_kind
    pieces = {p for s in ([text] if isinstance(text, str) else text)
              for p in tokenizer.split_pieces(s)}
    unknown = sorted(p for p in pieces if unk in tokenizer.encode(p))
    shown = (repr("".join(unknown[:30])) if kind == "characters"
             else ", ".join(map(repr, unknown[:30])))
    shown += "..." if len(unknown) > 30 else ""
    raise ValueError(f"{what} has {len(unknown)} {kind} the tokenizer of {source} never "
                     f"saw: {shown}; a model continued from it reads only its own "
                     f"{kind}, also from scratch (remove them, or pre-train a source on "
                     f"text that holds them: tinyllm train --data FILE)")
