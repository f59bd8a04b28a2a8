"""Using a finished run: generate text from it, or measure its loss on some text."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..autograd import no_grad
from ..data import encode_corpus, eval_batches, load_corpus, train_val_split
from ..models import family_names, get_family
from ..tokenizers import Tokenizer
from .checkpoint import CheckpointError, load_checkpoint
from .config import TrainConfig

LN2 = math.log(2.0)


def load_run(run_dir, which: str = "best"):
    """(model, tokenizer, train config) from a run directory's best (or last) checkpoint."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir} is not a directory; pass a run directory such as "
                              "runs/gpt-small-pydoc")
    path = run_dir / f"{which}.safetensors"
    if not path.exists():
        path = run_dir / "last.safetensors"
    arrays, meta = load_checkpoint(path)
    try:
        config = TrainConfig.from_dict(meta["train_config"])
        family = get_family(meta["model_type"])
        model = family.build(family.config_from_dict(meta["model_config"]))
        model.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("model.")})
        tokenizer = Tokenizer.from_dict(meta["tokenizer"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path} is incomplete or of an unknown kind "
                              f"({type(exc).__name__}: {exc})") from None
    model.eval()
    return model, tokenizer, config


def load_causal_lm(run_dir, command: str):
    """`load_run` for a command that needs a causal LM (GPT, LSTM): others are an error."""
    model, tokenizer, config = load_run(run_dir)
    family = get_family(config.model)
    if not family.can_generate:
        causal = ", ".join(n for n in family_names() if get_family(n).can_generate)
        raise ValueError(f"{command} needs a causal language model ({causal}); {run_dir} "
                         f"holds a {config.model} ({family.objective}); train one with "
                         "--model gpt")
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


@no_grad()
def generate_text(run_dir, prompt: str = "", max_new_tokens: int = 200,
                  temperature: float = 0.8, top_k: int | None = None,
                  top_p: float | None = None, seed: int | None = None) -> str:
    """The prompt continued by a run's GPT (greedy when temperature is 0)."""
    model, tokenizer, _ = load_causal_lm(run_dir, "generate")
    ids = np.array(encode_prompt(tokenizer, prompt), dtype=np.int64)
    context = model.config.block_size
    out = model.generate(ids[-context:][None], max_new_tokens, temperature=temperature,
                         top_k=top_k, top_p=top_p, do_sample=temperature > 0, seed=seed)
    new = out[0, min(len(ids), context):]
    return prompt + tokenizer.decode(new)


@no_grad()
def evaluate_run(run_dir, data: str | None = None, max_batches: int = 200) -> dict:
    """Mean loss of a run's GPT on its validation split, or on another corpus or file."""
    model, tokenizer, config = load_causal_lm(run_dir, "tinyllm eval")
    corpus = load_corpus(data or config.data)
    ids = encode_corpus(corpus, tokenizer)
    if data is None:
        ids = train_val_split(ids, config.val_fraction)[1]
    block = config.block_size or model.config.block_size
    losses, counts = [], []
    for x, y in eval_batches(ids, config.batch_size, block, max_batches=max_batches):
        losses.append(model(x, y).loss.item())
        counts.append(y.size)
    loss = float(np.average(losses, weights=counts))
    sample = np.asarray(ids[:200_000])
    chars_per_token = len(tokenizer.decode(sample)) / max(len(sample), 1)
    return {"data": data or f"{config.data} (validation split)", "loss": loss,
            "perplexity": math.exp(min(loss, 700.0)), "bits_per_token": loss / LN2,
            "bits_per_char": loss / LN2 / chars_per_token, "tokens": int(sum(counts))}
