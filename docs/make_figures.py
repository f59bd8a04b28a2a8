"""Draw the README's figures from the results that ship with the package.

    python docs/make_figures.py [--out docs/images]

- ``scaling.png``: validation loss against non-embedding parameters for the shipped ``full``
  scaling study, one panel per corpus, with the fitted laws, the entropy floor of the Markov
  source and the n-gram / LSTM baselines (``tinyllm.scaling.plots.plot_loss_vs_params``);
- ``scaling_v2.png``: the same for the shipped ``v2`` study (the hidden Markov source with its
  estimated entropy rate, and ``english``), with its n-gram baselines and its
  parameter-matched LSTMs, each at its own tuned learning rate;
- ``lr_tuning_v2.png``: the ``v2`` study's learning-rate search, validation loss against the
  peak learning rate for every rung, each rung's tuned rate circled
  (``tinyllm.scaling.plots.plot_lr_tuning``);
- ``training_curve.png``: one run of that study, the ``small`` preset's shape (4 layers, d=128,
  0.8 M parameters, what ``tinyllm train`` trains by default) on ``pydoc``: training and
  validation loss against tokens seen, beside the corpus's unigram entropy.

Nothing is trained: the figures are read from ``tinyllm/scaling/results/full`` and ``v2``. Needs
matplotlib (``pip install ".[plot]"``). The committed PNGs are this script's output.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from matplotlib.figure import Figure

from tinyllm.scaling import plots
from tinyllm.scaling.fits import fit_study
from tinyllm.scaling.results import load_results, shipped

OUT = Path(__file__).resolve().parent / "images"
#: The study's run with the shape of the default `tinyllm train` model (`small` on pydoc).
CURVE_RUN = "size-pydoc-w128-l4"


def scaling_figure(results) -> Figure:
    corpora = results.corpora()
    fig = Figure(figsize=(5.4 * len(corpora), 4.2), layout="constrained")
    for ax, corpus in zip(fig.subplots(1, len(corpora), squeeze=False)[0], corpora):
        plots.plot_loss_vs_params(ax, results, corpus, fit_study(results, corpus, n_boot=0))
    return fig


def lr_tuning_figure(results) -> Figure:
    corpora = results.corpora()
    fig = Figure(figsize=(5.4 * len(corpora), 4.2), layout="constrained")
    for ax, corpus in zip(fig.subplots(1, len(corpora), squeeze=False)[0], corpora):
        plots.plot_lr_tuning(ax, results, corpus)
    return fig


def training_curve_figure(results, run_id: str = CURVE_RUN) -> Figure:
    points = [r for r in results.rows("curves") if r["run_id"] == run_id]
    if not points:
        raise SystemExit(f"the shipped study has no run {run_id!r}")
    run = next(r for r in results.rows("size") if r["run_id"] == run_id)
    tokens = [r["tokens"] for r in points]
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.subplots()
    ax.plot(tokens, [r["train_loss_nats"] for r in points], "o-", ms=3, label="training loss")
    ax.plot(tokens, [r["val_loss_nats"] for r in points], "s-", ms=3, label="validation loss")
    ax.axhline(run["unigram_nats"], color="k", ls=":", lw=1,
               label=f"unigram entropy {run['unigram_nats']:.2f} (no context)")
    ax.set(xlabel="tokens seen (characters)", ylabel="loss (nats / character)",
           title=f"GPT {run['n_layer']} layers, d={run['n_embd']}, "
                 f"{run['params'] / 1e6:.2f} M parameters, on {run['corpus']}")
    ax.grid(alpha=0.3)
    ax.legend(loc="center right")
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder (default {OUT})")
    args = parser.parse_args()
    results = load_results(shipped("full"))           # with its baselines.csv
    args.out.mkdir(parents=True, exist_ok=True)
    v2 = load_results(shipped("v2"))
    for name, fig in (("scaling.png", scaling_figure(results)),
                      ("scaling_v2.png", scaling_figure(v2)),
                      ("lr_tuning_v2.png", lr_tuning_figure(v2)),
                      ("training_curve.png", training_curve_figure(results))):
        fig.savefig(args.out / name, dpi=110)
        print(args.out / name)


if __name__ == "__main__":
    main()
