"""`tinyllm compress RUN --method ... --out DIR`: quantize (or prune) a run's model and
write it.

The output is a model directory: config.json (with a `quantization_config` naming the scheme
and the quantized layers), model.safetensors (int8, or uint8 holding two 4-bit values per
byte, plus float scales; the scheme also in its metadata; no pickle), and the run's
tokenizer.json and train_config.json, so `tinyllm generate DIR`, `tinyllm eval DIR` and
`GPT.load(DIR)` read it. The source run is only read.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from .._checks import choice
from .._io import atomic_write
from ..data import encode_corpus, eval_batches, load_corpus, train_val_split
from ..nn.prune import SCOPES, check_sparsity, prunable_weights, prune_model, sparsity_of
from ..nn.quantized import INT4_GROUP_SIZES, QuantScheme, quantize_model, weight_bytes
from ..training.inference import TOKENIZER_NAME, TRAIN_CONFIG_NAME, load_causal_lm
from .analysis import report
from .structured import ffn_importance, head_importance, prune_ffn, prune_heads

#: The --method values: int8 with one scale per tensor or per output channel; int4 in
#: groups; prune: unstructured magnitude pruning to --sparsity (dense storage, zeros);
#: prune-ffn: remove --sparsity of every MLP's neurons; prune-heads: remove --sparsity of all
#: attention heads (both: smaller matrices; GPT only).
METHODS = ("int8-tensor", "int8-channel", "int4", "prune", "prune-ffn", "prune-heads")
PRUNING = ("prune", "prune-ffn", "prune-heads")
IMPORTANCE_BATCHES = 8          # training batches that score the neurons or heads
DEFAULT_GROUP_SIZE = 64


@dataclass
class CompressResult:
    """What `compress_run` wrote and how much smaller it is."""

    out: Path
    scheme: str
    layers: list[str]            # the quantized layers' names
    float_bytes: int             # the weights before (float parameters, a tied one once)
    weight_bytes: int            # after: float parameters left + integers + scales
    file_bytes: int              # model.safetensors on disk
    sparsity: float = 0.0        # the fraction of the Linear/Conv1D weights that are zero

    @property
    def ratio(self) -> float:
        return self.weight_bytes / self.float_bytes


def scheme_for(method: str, group_size: int | None = None) -> QuantScheme:
    """The scheme of a quantizing --method (and --group-size for int4), or a ValueError
    naming the accepted values."""
    if method not in METHODS or method in PRUNING:
        raise ValueError(f"unknown quantization method {method!r}; accepted: "
                         f"{', '.join(m for m in METHODS if m not in PRUNING)}")
    if method != "int4":
        if group_size is not None:
            raise ValueError(f"--group-size is for --method int4; {method} has no groups")
        return QuantScheme.parse(method)
    g = DEFAULT_GROUP_SIZE if group_size is None else group_size
    if g not in INT4_GROUP_SIZES:
        raise ValueError(f"--group-size {g} is not accepted; accepted: "
                         f"{', '.join(map(str, INT4_GROUP_SIZES))}")
    return QuantScheme.parse(f"int4-g{g}")


def compress_run(run_dir, method: str, out, group_size: int | None = None,
                 overwrite: bool = False, sparsity: float | None = None,
                 scope: str = "global") -> CompressResult:
    """Quantize (or prune) the best model of `run_dir`, a language-model run (GPT or LSTM;
    a model directory this function wrote is refused when quantizing: it is already
    quantized), and write it to `out`. Every check runs before anything is written."""
    if method not in METHODS:
        raise ValueError(f"unknown compression method {method!r}; accepted: "
                         f"{', '.join(METHODS)}")
    if method in PRUNING:
        if sparsity is None:
            raise ValueError(f"--method {method} needs --sparsity (the fraction of weights "
                             "or neurons to remove, 0 <= sparsity < 1)")
        if group_size is not None:
            raise ValueError(f"--group-size is for --method int4; {method} has no groups")
        check_sparsity(sparsity)
        choice("scope", scope, SCOPES)
    elif sparsity is not None:
        raise ValueError(f"--sparsity is for --method {', '.join(PRUNING)}; {method} quantizes")
    scheme = None if method in PRUNING else scheme_for(method, group_size)
    run_dir, out = Path(run_dir), Path(out)
    if out.resolve() == run_dir.resolve():
        raise ValueError(f"--out {out} is the source run; write the compressed model elsewhere")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"{out} exists and is not empty; choose another --out or pass "
                         "--overwrite")
    model, tokenizer, config = load_causal_lm(run_dir, "tinyllm compress")
    float_bytes = weight_bytes(model)
    if method == "prune-ffn":
        importance = ffn_importance(model, run_batches(config, tokenizer, model))
        model, _ = prune_ffn(model, sparsity, importance)
        layers = [f"transformer.h.{i}.mlp" for i in range(len(importance))]
        name = f"prune-ffn-{sparsity:g}"
    elif method == "prune-heads":
        importance = head_importance(model, run_batches(config, tokenizer, model))
        model, removed = prune_heads(model, sparsity, importance)
        layers = [f"transformer.h.{i}.attn" for i in removed]
        name = f"prune-heads-{sparsity:g}"
    elif scheme is None:
        prune_model(model, sparsity, scope)
        layers, name = list(prunable_weights(model)), f"prune-{scope}-{sparsity:g}"
    else:
        layers, name = quantize_model(model, scheme), scheme.name   # refuses a quantized one
    save_model_dir(model, tokenizer, config, out)
    return CompressResult(out, name, layers, float_bytes, weight_bytes(model),
                          (out / "model.safetensors").stat().st_size, sparsity_of(model))


def save_model_dir(model, tokenizer, config, out) -> None:
    """Write `model` as a model directory that `tinyllm generate`, `tinyllm eval`, `GPT.load`
    and `train --init-from` read: its files, the run's tokenizer and train config (`out` is
    replaced)."""
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    model.save(out)
    tokenizer.save(out / TOKENIZER_NAME)
    atomic_write(out / TRAIN_CONFIG_NAME, json.dumps(config.to_dict(), indent=2) + "\n")


def run_batches(config, tokenizer, model, split: str = "train",
                      n: int = IMPORTANCE_BATCHES) -> list:
    """The first `n` (x, y) batches of a run's training (or validation) split (`config` is
    the run's TrainConfig; the frontier study measures on them too)."""
    ids = encode_corpus(load_corpus(config.data), tokenizer)
    train_ids, val_ids = train_val_split(ids, config.val_fraction)
    block = config.block_size or model.config.block_size
    return list(eval_batches(train_ids if split == "train" else val_ids, config.batch_size,
                             block, max_batches=n))


def report_run(run_dir, batches: int = 8, out=print) -> None:
    """Print where quantization and pruning hurt a run's model (compress.analysis.report)
    on the first `batches` validation batches; nothing is written."""
    model, tokenizer, config = load_causal_lm(run_dir, "tinyllm compress --report")
    report(model, run_batches(config, tokenizer, model, "validation", batches), out)
