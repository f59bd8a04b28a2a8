"""Validation loss of quantized models per size, and of a distilled student vs the same
student from scratch: the figures behind the compression targets, printed in one run.

1. A ladder of GPTs (presets --presets, default nano..small) is trained on --data for
   --steps each (or reused from --runs if already there), then each is scored on the first
   --eval-batches validation batches in float32 and quantized per scheme (int8 per tensor,
   int8 per channel, 4-bit groups of 32/64/128); the relative loss change is printed beside
   the weight bytes. A scheme whose group size does not divide a layer's width is "n/a".
2. Distillation: the largest rung is the teacher; a --student preset is trained from
   scratch and distilled from it (--temperature, --alpha), same steps, same batches, same
   tokens; their validation losses are printed side by side.

    python benchmarks/quantization_loss.py [--steps 600] [--runs runs/compression]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from tinyllm.compress.analysis import DEFAULT_SCHEMES, loss_by_scheme  # noqa: E402
from tinyllm.data import eval_batches  # noqa: E402
from tinyllm.nn.quantized import quantize_model, weight_bytes  # noqa: E402
from tinyllm.training import TrainConfig, Trainer  # noqa: E402
from tinyllm.training.inference import load_run  # noqa: E402


def _train(args, name: str, preset: str, **extra) -> Path:
    run = Path(args.runs) / name
    if (run / "last.safetensors").is_file():
        return run
    config = TrainConfig(data=args.data, preset=preset, steps=args.steps, batch_size=16,
                         lr=args.lr, min_lr=args.lr / 10, eval_interval=args.steps,
                         eval_iters=4, out=args.runs, name=name, seed=0, **extra)
    start = time.perf_counter()
    Trainer(config, quiet=True).train()
    print(f"  trained {name} ({preset}, {args.steps} steps) in {time.perf_counter() - start:.0f} s")
    return run


def _val_batches(run: Path, n: int):
    trainer = Trainer.resume(run, quiet=True)
    c = trainer.config
    return list(eval_batches(trainer.val_ids, c.batch_size, trainer.block_size, max_batches=n))


def ladder(args) -> Path:
    print(f"1. quantized loss by size ({args.data}, {args.steps} steps each, loss on "
          f"{args.eval_batches} validation batches; change vs float32)")
    header = f"{'preset':7s} {'params':>9s} {'float32':>8s} " + " ".join(
        f"{s:>13s}" for s in DEFAULT_SCHEMES)
    print(header)
    teacher = None
    for preset in args.presets:
        run = _train(args, f"gpt-{preset}", preset)
        model = load_run(run, "last")[0]
        losses = loss_by_scheme(model, _val_batches(run, args.eval_batches), DEFAULT_SCHEMES)
        base = losses["float32"]
        cells = []
        for scheme in DEFAULT_SCHEMES:
            if losses[scheme] is None:
                cells.append(f"{'n/a':>13s}")
                continue
            q = load_run(run, "last")[0]
            quantize_model(q, scheme)
            change = 100 * (losses[scheme] - base) / base
            cells.append(f"{change:+6.2f}% {weight_bytes(q) / 2**20:5.2f}M")
        print(f"{preset:7s} {model.num_params():9,d} {base:8.4f} " + " ".join(cells)
              + f"   (float32 {weight_bytes(model) / 2**20:.2f}M)")
        teacher = run
    print("  cells: loss change, then the weights' MiB (the tied embedding/head stays float32)")
    return teacher


def distillation(args, teacher: Path) -> None:
    print(f"\n2. distillation: a {args.student} student, {args.steps} steps, T={args.temperature}"
          f", alpha={args.alpha}, teacher {teacher.name}")
    scratch = _train(args, f"student-{args.student}-scratch", args.student)
    distilled = _train(args, f"student-{args.student}-distilled-T{args.temperature}"
                       f"-a{args.alpha}", args.student, distill_from=str(teacher),
                       distill_temperature=args.temperature, distill_alpha=args.alpha)
    batches = _val_batches(scratch, args.eval_batches)
    rows = {"teacher": teacher, "scratch": scratch, "distilled": distilled}
    for label, run in rows.items():
        loss = loss_by_scheme(load_run(run, "last")[0], batches, ())["float32"]
        print(f"  {label:10s} validation loss {loss:.4f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="pydoc")
    p.add_argument("--presets", nargs="+", default=["nano", "micro", "tiny", "mini", "small"])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--eval-batches", type=int, default=20)
    p.add_argument("--student", default="micro")
    p.add_argument("--temperature", type=float, default=2.0)
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--runs", default="runs/compression")
    args = p.parse_args()
    teacher = ladder(args)
    distillation(args, teacher)


if __name__ == "__main__":
    main()
