"""A short training run for tests/test_distributed.py, under `mpiexec -n N` or in-process:
rank 0 saves the final weights and every step's loss to OUT.npz.

    python tests/mpi_train_worker.py OUT.npz TEXT DTYPE --batch 8 --accum 1 --steps 6
        [--until 4] [--resume]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def train(out: Path, text: Path, dtype: str, batch: int = 8, accum: int = 1, steps: int = 6,
          until: int | None = None, resume: bool = False, shard: bool = False) -> None:
    """Train `steps` steps (stop at `until`), or resume OUT's run with `accum`; save OUT.npz."""
    from tinyllm import set_default_dtype, set_num_threads
    from tinyllm.training import TrainConfig, Trainer

    set_default_dtype(dtype)
    set_num_threads(1)
    run_dir = out.parent / "runs" / out.stem
    if resume:
        trainer = Trainer.resume(run_dir, quiet=True, grad_accum=accum, shard_optimizer=shard)
    else:
        config = TrainConfig(preset="nano", data=str(text), steps=steps, batch_size=batch,
                             grad_accum=accum, eval_interval=2, eval_iters=2, sample_tokens=0,
                             out=str(run_dir.parent), name=run_dir.name, warmup_steps=1,
                             shard_optimizer=shard)
        trainer = Trainer(config, quiet=True, overwrite=True)
    trainer.train(until=until)
    if trainer.world.is_main:
        weights = {k: np.asarray(v) for k, v in trainer.model.state_dict().items()}
        records = map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
        losses = [r["loss"] for r in records if r["kind"] == "train"]
        moments = sum(v.nbytes for state in trainer.optimizer.state.values()
                      for v in state.values() if isinstance(v, np.ndarray))
        np.savez(out, losses=np.array(losses), ranks=trainer.world.size,
                 optimizer_bytes=moments, **weights)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("out", type=Path)
    p.add_argument("text", type=Path)
    p.add_argument("dtype")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--accum", type=int, default=1)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--until", type=int)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--shard", action="store_true")
    a = p.parse_args()
    train(a.out, a.text, a.dtype, a.batch, a.accum, a.steps, a.until, a.resume, a.shard)
