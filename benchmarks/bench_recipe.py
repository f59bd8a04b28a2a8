"""nanoGPT's CPU recipe on Shakespeare, in tinyllm and in PyTorch, side by side.

Recipe (nanoGPT README, "I only have a macbook"): characters, 90/10 split, 4 layers, 4 heads,
d=128, block 64, batch 12, AdamW lr 1e-3 betas (0.9, 0.99) weight decay 0.1, 100 warmup steps,
cosine to 1e-4 over 2,000 iterations, dropout 0, gradient clipping 1.0, GPT-2 initialisation.
nanoGPT reports a validation loss of about 1.88 for it.

Both sides start from the same initial weights and see the same batches in the same order;
both run with the same number of threads (printed). The PyTorch side is Hugging Face's
GPT2LMHeadModel with the same config and weights.

The text is the built-in ``shakespeare`` corpus (the plays of the tinyshakespeare file, in its
layout, shipped inside the package); ``--data`` takes another corpus name or a text file.

    python benchmarks/bench_recipe.py [--iters 2000] [--threads 1] [--data shakespeare|PATH]
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np


def _set_threads(n: int) -> str:
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
        return f"threadpoolctl limit {n}"
    except ImportError:
        return f"OMP/OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')} (unchanged)"


def _data(name_or_path: str):
    from tinyllm.data import load_corpus, train_val_split
    from tinyllm.tokenizers import CharTokenizer

    corpus = load_corpus(name_or_path)
    tok = CharTokenizer(special_tokens=()).train(corpus.text)
    ids = np.array(tok.encode(corpus.text), dtype=np.int64)
    train, val = train_val_split(ids, 0.1)
    return tok, np.asarray(train), np.asarray(val)


def _batches(train, iters, seed=1337):
    from tinyllm.data import LMBatcher

    batcher = LMBatcher(train, batch_size=12, block_size=64, seed=seed)
    return [next(batcher) for _ in range(iters)]


def _eval_sets(train, val, n=50):
    from tinyllm.data import eval_batches

    return (list(eval_batches(train, 12, 64, max_batches=n)),
            list(eval_batches(val, 12, 64, max_batches=n)))


def run_tinyllm(model, batches, evals, iters):
    import tinyllm
    from tinyllm.optim import AdamW, WarmupCosine, clip_grad_norm_, param_groups_for_weight_decay

    opt = AdamW(param_groups_for_weight_decay(model, 0.1), lr=1e-3, betas=(0.9, 0.99))
    sched = WarmupCosine(opt, warmup_steps=min(100, iters), total_steps=iters, min_lr=1e-4)
    t0 = time.perf_counter()
    for x, y in batches:
        loss = model(x, y).loss
        opt.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    wall = time.perf_counter() - t0
    with tinyllm.no_grad():
        losses = [float(np.mean([model(x, y).loss.item() for x, y in s])) for s in evals]
    return wall, losses


def run_torch(state, config, batches, evals, iters):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from tinyllm.optim import is_no_decay, warmup_cosine_lr

    hf = GPT2LMHeadModel(GPT2Config(**{k: v for k, v in config.to_dict().items()
                                       if k not in ("model_type", "architectures")},
                                    bos_token_id=None, eos_token_id=None,
                                    attn_implementation="eager"))
    hf.load_state_dict({k: torch.tensor(v) for k, v in state.items()}, strict=False)
    hf.train()
    named = [(n, p) for n, p in hf.named_parameters()]
    decay = [p for n, p in named if not is_no_decay(n, p.detach().numpy())]
    no_decay = [p for n, p in named if is_no_decay(n, p.detach().numpy())]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: warmup_cosine_lr(s, 1.0, min(100, iters), iters, 0.1))
    t0 = time.perf_counter()
    for x, y in batches:
        logits = hf(torch.from_numpy(x)).logits
        loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)),
                                                 torch.from_numpy(y).view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(hf.parameters(), 1.0)
        opt.step()
        sched.step()
    wall = time.perf_counter() - t0
    hf.eval()
    with torch.no_grad():
        losses = []
        for s in evals:
            vals = []
            for x, y in s:
                logits = hf(torch.from_numpy(x)).logits
                vals.append(torch.nn.functional.cross_entropy(
                    logits.view(-1, logits.size(-1)), torch.from_numpy(y).view(-1)).item())
            losses.append(float(np.mean(vals)))
    return wall, losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", default="shakespeare",
                        help="a corpus name or a UTF-8 text file (default: shakespeare)")
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args()

    threads = _set_threads(args.threads)
    from tinyllm import kernels
    from tinyllm.models import GPT, GPTConfig

    tok, train, val = _data(args.data)
    config = GPTConfig.from_preset("small", vocab_size=tok.vocab_size)
    model = GPT(config, seed=1337)
    init_state = {k: v.copy() for k, v in model.state_dict().items()}
    batches = _batches(train, args.iters)
    evals = _eval_sets(train, val)
    print(f"nanoGPT CPU recipe on {args.data.name}: {args.iters} iterations, "
          f"{model.num_params():,} parameters, V={tok.vocab_size}; threads: {threads}; "
          f"tinyllm kernels: {kernels.backend()}")
    rows = [("tinyllm", *run_tinyllm(model, batches, evals, args.iters))]
    if not args.no_torch:
        try:
            import torch

            torch.set_num_threads(args.threads)
            torch.manual_seed(0)
            rows.append((f"PyTorch {torch.__version__}",
                         *run_torch(init_state, config, batches, evals, args.iters)))
        except ImportError:
            print("(PyTorch/transformers not installed: tinyllm only)")
    print(f"{'':16s} {'wall s':>8s} {'ms/iter':>8s} {'train':>7s} {'val':>7s}")
    for name, wall, (tr, va) in rows:
        print(f"{name:16s} {wall:8.1f} {1000 * wall / args.iters:8.1f} {tr:7.4f} {va:7.4f}")
    if len(rows) == 2:
        (_, w1, (_, v1)), (_, w2, (_, v2)) = rows
        print(f"ratio tinyllm/PyTorch wall time: {w1 / w2:.2f}x   "
              f"|val loss difference|: {abs(v1 - v2):.4f} "
              f"(targets: <= 1.5x, <= 0.05); val loss in bits/char: {v1 / math.log(2):.3f}")


if __name__ == "__main__":
    main()
