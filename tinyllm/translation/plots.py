"""The study's figures (matplotlib), each as PNG and SVG: `plot_all(results, out_dir)`.

    exact_match_vs_params   test exact match vs parameters, one panel per task / SCAN split,
                            one line per family; on the SCAN panels, Lake & Baroni's
                            overall-best and top-for-the-split models as horizontal lines
    bleu_vs_params          test BLEU vs parameters, the same layout

Each `plot_*` function draws into the Axes it is given (a notebook can lay them out);
`plot_all` makes the figures and saves them.
"""

from __future__ import annotations

import math
from pathlib import Path

from .plan import FAMILY_LABELS
from .results import Results

STYLES = {"seq2seq": ("-o", "C0"), "lstm-seq2seq": ("--s", "C3")}
FIGURES = {"exact_match_vs_params": ("test_exact_match", "test exact match (%)"),
           "bleu_vs_params": ("test_bleu", "test BLEU")}
COLUMNS = 3


def _grid(n: int, size=(4.2, 3.4)):
    """A figure of n panels, COLUMNS to a row; the axes in reading order."""
    from matplotlib.figure import Figure

    rows, cols = math.ceil(n / COLUMNS), min(n, COLUMNS)
    fig = Figure(figsize=(size[0] * cols, size[1] * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, list(axes[:n])


def plot_metric_vs_params(ax, results: Results, task: str, column: str = "test_exact_match",
                          ylabel: str = "test exact match (%)") -> None:
    """One line per family: `column` of the task against parameters (exact match in %)."""
    scale = 100.0 if column.endswith("exact_match") else 1.0
    for family in results.families():
        x, y = results.curve(task, family, column)
        if x:
            style, color = STYLES.get(family, ("-o", None))
            ax.plot(x, [scale * v for v in y], style, color=color, ms=5, lw=1.5,
                    label=FAMILY_LABELS[family])
    pub = results.published(task)
    if pub and column == "test_exact_match":
        ax.axhline(pub["overall_best"], color="0.35", ls=":", lw=1,
                   label="Lake & Baroni 2018, overall-best model")
        ax.axhline(pub["top_for_split"], color="0.35", ls="-.", lw=1,
                   label="Lake & Baroni 2018, top model for the split")
    ax.set_xscale("log")
    ax.set_ylim(-3, 103)
    ax.set_xlabel("parameters")
    ax.set_ylabel(ylabel)
    ax.set_title(task)
    ax.grid(alpha=0.3)


def plot_all(results: Results, out_dir) -> list[Path]:
    """Draw every figure into `out_dir` as PNG and SVG; the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = results.tasks()
    paths = []
    for name, (column, ylabel) in FIGURES.items():
        fig, axes = _grid(len(tasks))
        for ax, task in zip(axes, tasks):
            plot_metric_vs_params(ax, results, task, column, ylabel)
        legend = {}
        for ax in axes:                       # every line once (published lines on SCAN only)
            for handle, label in zip(*ax.get_legend_handles_labels()):
                legend.setdefault(label, handle)
        fig.legend(list(legend.values()), list(legend), loc="outside lower center",
                   ncols=min(len(legend), 4), fontsize=8)
        fig.suptitle(f"translation study ({results.budget} budget): {ylabel} vs parameters, "
                     "Transformer vs LSTM")
        for ext in ("png", "svg"):
            path = out_dir / f"{name}.{ext}"
            fig.savefig(path, dpi=110)
            paths.append(path)
    return paths
