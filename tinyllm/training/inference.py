"""Using a finished run: generate text from it, or measure its loss on some text."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

from .._checks import positive_int
from ..autograd import no_grad
from ..data import encode_corpus, eval_batches, load_corpus, train_val_split
from ..models import ModelFamily, family_names, get_family
from ..models.checkpoint import CONFIG_NAME, read_config
from ..nn.lora import apply_lora
from ..tokenizers import Tokenizer, TokenizerFileError
from .checkpoint import CheckpointError, load_checkpoint
from .config import FineTuneConfig, TrainConfig

LN2 = math.log(2.0)
TOKENIZER_NAME = "tokenizer.json"
TRAIN_CONFIG_NAME = "train_config.json"


def load_run(run_dir, which: str = "best"):
    """(model, tokenizer, train config) from a run directory's best (or last) checkpoint,
    or, with which="average", its averaged weights (tinyllm train --average)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir} is not a directory; pass a run directory such as "
                              "runs/gpt-small-pydoc")
    path = run_dir / f"{which}.safetensors"
    if not path.exists() and which == "average":
        raise CheckpointError(f"{run_dir} has no average.safetensors: the run did not average "
                              "its weights (tinyllm train --average swa|ema)")
    if not path.exists():
        path = run_dir / "last.safetensors"
    if not path.exists() and (run_dir / CONFIG_NAME).is_file():
        return load_model_dir(run_dir)
    arrays, meta = load_checkpoint(path)
    try:
        config_class = FineTuneConfig if meta.get("run_kind") == "finetune" else TrainConfig
        config = config_class.from_dict(meta["train_config"])
        family = get_family(meta["model_type"])
        model_class = family.head(meta["head"]) if meta.get("head") else family.model_class
        model = model_class(family.config_from_dict(meta["model_config"]))
        if getattr(config, "lora_rank", 0):      # a LoRA fine-tune: its adapters' weights too
            apply_lora(model, config.lora_rank, config.lora_alpha,
                       config.lora_targets or list(family.lora_targets),
                       modules_to_save=model.head_modules() or None)
        model.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("model.")})
        tokenizer = Tokenizer.from_dict(meta["tokenizer"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path} is incomplete or of an unknown kind "
                              f"({type(exc).__name__}: {exc})") from None
    _check_finite(model, path)
    model.eval()
    return model, tokenizer, config


def load_model_dir(path: Path):
    """(model, tokenizer, train config) of a model directory that carries its run's
    tokenizer.json and train_config.json (what `tinyllm compress` writes): the commands that
    take a run take it too."""
    family = family_of_directory(path)
    model = family.model_class.from_pretrained(path)
    tokenizer = directory_tokenizer(path)
    settings = path / TRAIN_CONFIG_NAME
    if not settings.is_file():
        raise CheckpointError(f"{path} is a model directory without {TRAIN_CONFIG_NAME}; the "
                              "commands that take a run need its training settings (tinyllm "
                              "compress writes them beside the model)")
    try:
        config = TrainConfig.from_dict(json.loads(settings.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{settings} is not a run's training settings ({exc})") from None
    _check_finite(model, path / "model.safetensors")
    model.eval()
    return model, tokenizer, config


def family_of_directory(path: Path) -> ModelFamily:
    """The registered family whose config's model_type a model directory's config names."""
    model_type = read_config(path).get("model_type")
    for name in family_names():
        family = get_family(name)
        if family.config_class.reads_model_type(model_type):
            return family
    known = sorted({get_family(n).config_class.model_type for n in family_names()})
    raise CheckpointError(f"{path / CONFIG_NAME} has model_type {model_type!r}, which no "
                          f"model family reads; accepted: {', '.join(known)}")


def directory_tokenizer(path: Path) -> Tokenizer:
    """The tinyllm tokenizer.json in a model directory or beside it (a run's model/ folder)."""
    for candidate in (path / TOKENIZER_NAME, path.parent / TOKENIZER_NAME):
        if candidate.is_file():
            try:
                return Tokenizer.load(candidate)
            except TokenizerFileError as exc:
                raise CheckpointError(f"{candidate} is not a tinyllm tokenizer ({exc}); "
                                      "tinyllm cannot read Hugging Face tokenizers") from None
    raise CheckpointError(f"{path} has no {TOKENIZER_NAME} (in it or its parent): a model "
                          "directory needs the tinyllm tokenizer it was trained with")


def _check_finite(model, path: Path) -> None:
    """Weights with NaN or infinity are damage, not a model: refuse them naming the file."""
    bad = [name for name, p in model.named_parameters() if not np.isfinite(p.data).all()]
    if bad:
        other = "last" if path.name.startswith("best") else "best"
        raise CheckpointError(f"{path} holds non-finite weights ({len(bad)} tensors, e.g. "
                              f"{bad[0]}); the file is damaged: try {other}.safetensors of "
                              "the run, or train again")


def load_causal_lm(run_dir, command: str, which: str = "best"):
    """`load_run` for a command that needs a causal LM (GPT, LSTM): others are an error."""
    model, tokenizer, config = load_run(run_dir, which)
    family = get_family(config.model)
    if not family.can_generate or type(model) is not family.model_class:
        causal = ", ".join(n for n in family_names() if get_family(n).can_generate)
        kind = (f"a {type(model).__name__}" if type(model) is not family.model_class
                else f"a {config.model} ({family.objective})")
        raise ValueError(f"{command} needs a causal language model ({causal}); {run_dir} "
                         f"holds {kind}; train one with --model gpt")
    return model, tokenizer, config


def encode_prompt(tokenizer: Tokenizer, prompt: str) -> list[int]:
    """Prompt ids; characters the tokenizer has never seen are an error naming them.

    An empty prompt starts from a newline (the start of a paragraph) when the tokenizer knows
    it, else from the end-of-text token, else from id 0.
    """
    if prompt == "":
        newline = tokenizer.encode("\n")
        if tokenizer.unk_token_id not in newline:
            return newline
        return [tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0]
    ids = tokenizer.encode(prompt)
    unk = tokenizer.unk_token_id
    if unk is not None and unk in ids:
        unknown = sorted({ch for ch in prompt if unk in tokenizer.encode(ch)})
        raise ValueError(f"the prompt has characters this run's tokenizer never saw: "
                         f"{''.join(unknown)!r}; remove them or train on text that has them")
    return ids


class TextStreamer:
    """Writes a generated row's text to `file` as its tokens arrive (`generate(streamer=)`).

    Each `put` decodes everything so far and writes only what is new; a trailing U+FFFD (a
    byte-level token that ends inside a multi-byte character) waits for the next token.
    """

    def __init__(self, tokenizer: Tokenizer, file=None):
        self.tokenizer = tokenizer
        self.file = file if file is not None else sys.stdout
        self.ids: list[int] = []
        self.written = 0

    def put(self, ids: np.ndarray) -> None:
        """Take the new token of row 0 (`ids` has shape (B,))."""
        self.ids.append(int(ids[0]))
        self._write(self.tokenizer.decode(self.ids).rstrip("\ufffd"))

    def end(self) -> None:
        """Write what was held back."""
        self._write(self.tokenizer.decode(self.ids))

    def _write(self, text: str) -> None:
        if len(text) > self.written:
            self.file.write(text[self.written:])
            self.file.flush()
            self.written = len(text)

    @property
    def text(self) -> str:
        return self.tokenizer.decode(self.ids)


@no_grad()
def generate_text(run_dir, prompt: str = "", max_new_tokens: int = 200,
                  temperature: float = 0.8, top_k: int | None = None,
                  top_p: float | None = None, seed: int | None = None,
                  stream=None, checkpoint: str = "best") -> str:
    """The prompt continued by a run's GPT (greedy when temperature is 0).

    With `stream` (a text file such as sys.stdout) the prompt and then each piece of new text
    are written to it as they are produced, so an interrupted generation keeps what it wrote.
    """
    model, tokenizer, _ = load_causal_lm(run_dir, "generate", checkpoint)
    ids = np.array(encode_prompt(tokenizer, prompt), dtype=np.int64)
    context = model.config.block_size
    streamer = None
    if stream is not None:
        stream.write(prompt)
        streamer = TextStreamer(tokenizer, stream)
    out = model.generate(ids[-context:][None], max_new_tokens, temperature=temperature,
                         top_k=top_k, top_p=top_p, do_sample=temperature > 0, seed=seed,
                         streamer=streamer)
    new = out[0, min(len(ids), context):]
    return prompt + tokenizer.decode(new)


@no_grad()
def evaluate_run(run_dir, data: str | None = None, max_batches: int | None = None,
                 checkpoint: str = "best") -> dict:
    """Mean loss of a run's GPT on its whole validation split (or on another corpus or
    file), in consecutive windows of the run's block size; `max_batches` caps the batches.

    Training's evaluations measure only the first `eval_iters` batches of the split, so their
    figure differs from this one; `scope` in the result says which part was measured.
    """
    if max_batches is not None:
        positive_int("max_batches", max_batches)
    model, tokenizer, config = load_causal_lm(run_dir, "tinyllm eval", checkpoint)
    corpus = load_corpus(data or config.data)
    all_ids = encode_corpus(corpus, tokenizer)
    chars_per_token = len(corpus.text) / max(len(all_ids), 1)
    ids = train_val_split(all_ids, config.val_fraction)[1] if data is None else all_ids
    block = config.block_size or model.config.block_size
    unk = tokenizer.unk_token_id
    total, counted, unknown, windows = 0.0, 0, 0, 0
    for x, y in eval_batches(ids, config.batch_size, block, max_batches=max_batches):
        if unk is not None:        # a character the tokenizer never saw: not scored
            unknown += int(np.count_nonzero(y == unk))
            y = np.where(y == unk, -100, y)
        n = int(np.count_nonzero(y != -100))
        if n:
            total += model(x, y).loss.item() * n
        counted, windows = counted + n, windows + len(y)
    if counted == 0:
        raise ValueError(f"{data} has no token this run's tokenizer knows; nothing to measure")
    loss = total / counted
    if not math.isfinite(loss):
        raise ValueError(f"the loss of {run_dir} on {data or config.data} is {loss}: the "
                         "model overflows on this text; evaluate a healthy checkpoint")
    scope = ("all of it" if windows == (len(ids) - 1) // block
             else f"the first {windows} windows of {block} tokens")
    return {"data": data or f"{config.data} (validation split)", "loss": loss,
            "perplexity": math.exp(min(loss, 700.0)), "bits_per_token": loss / LN2,
            "bits_per_char": loss / LN2 / chars_per_token, "tokens": counted,
            "unknown_tokens": unknown, "scope": scope}


def attention_maps(run_dir, text: str, which: str = "best"):
    """(tokens, maps) for `text` read by a run's model: the text of each token (T,) and one
    (nh, T, T) array of attention weights per layer (see `GPT.attentions`)."""
    model, tokenizer, _ = load_run(run_dir, which)
    if not callable(getattr(model, "attentions", None)):
        raise ValueError(f"{run_dir} holds a {type(model).__name__}, which has no attention "
                         "maps to draw; train a GPT (--model gpt)")
    if not text:
        raise ValueError("--text is empty; give the text whose attention to draw")
    ids = encode_prompt(tokenizer, text)
    context = model.config.n_positions
    if len(ids) > context:
        raise ValueError(f"--text is {len(ids)} tokens, longer than the model's context of "
                         f"{context}; shorten it")
    tokens = [tokenizer.decode([i]) for i in ids]
    maps = [m[0] for m in model.attentions(np.asarray([ids]))]         # L x (nh, T, T)
    return tokens, maps
