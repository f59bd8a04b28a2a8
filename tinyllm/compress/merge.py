"""`tinyllm merge RUN RUN [...] --out DIR`: one model whose weights are the (weighted) mean
of several runs' -- a "model soup" (Wortsman et al. 2022).

Averaging weights only makes sense for models that sit in one basin of the loss: siblings
fine-tuned from the same pre-trained run (the soup), or checkpoints of one run. Two models
trained from different random starts average to nonsense (their hidden units are permuted
relative to each other). So every run must have the same architecture, head and
tokenizer; that they share an ancestor is the user's part, and `tinyllm eval` says whether
the soup works.

The output is a run directory holding only last.safetensors (the averaged weights, the
first run's settings and `merged_from`), so `tinyllm eval`, `generate` and `predict` read
it; it cannot be resumed (there is no optimizer state to continue).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

#: Checkpoint metadata that only resuming a run needs: a merged model drops it.
_RESUME_ONLY = ("optimizer", "scheduler", "batcher", "rng", "best_val_loss", "last_eval",
                "n_averaged")


@dataclass
class MergeResult:
    out: Path
    runs: list[Path]
    weights: list[float]
    tensors: int


def _checkpoint(run: Path) -> tuple[dict, dict, Path]:
    for name in ("best.safetensors", "last.safetensors"):
        if (run / name).is_file():
            arrays, meta = load_checkpoint(run / name)
            return arrays, meta, run / name
    raise CheckpointError(f"{run} holds no checkpoint (best.safetensors or last.safetensors); "
                          "tinyllm merge takes run directories")


def _weights(weights, n: int) -> list[float]:
    if weights is None:
        return [1.0 / n] * n
    weights = [float(w) for w in weights]
    if len(weights) != n or any(not np.isfinite(w) or w < 0 for w in weights) \
            or sum(weights) <= 0:
        raise ValueError(f"--weights {','.join(map(str, weights))}: give {n} non-negative "
                         "numbers, one per run, not all zero (they are normalised to sum to 1)")
    total = sum(weights)
    return [w / total for w in weights]


def merge_runs(runs, out, weights=None, overwrite: bool = False) -> MergeResult:
    """Average the best (else last) weights of `runs` into a new run directory `out`."""
    runs, out = [Path(r) for r in runs], Path(out)
    if len(runs) < 2:
        raise ValueError(f"tinyllm merge needs at least two runs, got {len(runs)}")
    if any(out.resolve() == r.resolve() for r in runs):
        raise ValueError(f"--out {out} is one of the runs; write the merged model elsewhere")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"{out} exists and is not empty; choose another --out or pass "
                         "--overwrite")
    w = _weights(weights, len(runs))
    loaded = [_checkpoint(r) for r in runs]
    first_arrays, first_meta, first_path = loaded[0]
    keys = sorted(k for k in first_arrays if k.startswith("model."))
    for arrays, meta, path in loaded[1:]:
        for what in ("model_type", "model_config", "tokenizer", "head"):
            if meta.get(what) != first_meta.get(what):
                raise ValueError(f"{path} and {first_path} differ in their {what.replace('_', ' ')}"
                                 "; only models of one architecture, head and tokenizer can be "
                                 "averaged (siblings fine-tuned from one pre-trained run)")
        mine = sorted(k for k in arrays if k.startswith("model."))
        if mine != keys:
            raise ValueError(f"{path} and {first_path} hold different weights "
                             f"({len(mine)} vs {len(keys)} tensors)")
    merged = {}
    for key in keys:
        total = sum(wi * arrays[key].astype(np.float64) for wi, (arrays, _, _) in zip(w, loaded))
        merged[key] = total.astype(first_arrays[key].dtype)
    meta = {k: v for k, v in first_meta.items() if k not in _RESUME_ONLY}
    meta["merged_from"] = [str(r) for r in runs]
    meta["merge_weights"] = w
    if out.exists():
        shutil.rmtree(out)
    save_checkpoint(out / "last.safetensors", merged, meta)
    return MergeResult(out, runs, w, len(keys))
