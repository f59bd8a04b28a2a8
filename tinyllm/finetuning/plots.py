"""The study's figures (matplotlib), each as PNG and SVG: `plot_all(results, out_dir)`.

    accuracy_vs_labels   test accuracy (exact match on a question-answering task) vs
                         labelled examples, one panel per task: pre-trained (solid) and
                         scratch (dashed) at every size, the generative classifier (squares)
                         and BERT's span head (triangles) where the study ran them, logistic
                         regression on the GPTs' context and on whole texts, the majority
                         class, and the Bayes-optimal accuracy where it is known
    accuracy_vs_params   test accuracy vs parameters, one panel per task: pre-trained (solid)
                         and scratch (dashed) at each label budget; logistic regression and
                         the majority class at the largest budget

Error bars are the standard deviation over seeds. Each `plot_*` function draws into the Axes
it is given (a notebook can lay them out); `plot_all` makes the figures and saves them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .results import Results

LABELS_AXIS = "labelled training examples"
BASELINE_NAMES = {"logreg": "TF-IDF logistic regression (same context)",
                  "logreg-full": "TF-IDF logistic regression (whole text)",
                  "majority": "majority class"}
ACCURACY_AXIS = "test accuracy"
#: The sized methods' line styles: pre-trained solid, from scratch dashed; the generative
#: classifier with squares and dots.
SIZED_STYLES = {"pretrained": "-o", "scratch": "--x", "generative": "-s",
                "generative-scratch": ":s", "extractive": "-^", "extractive-scratch": ":^"}


def _figure(n: int, size=(5.0, 4.0)):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0] * n, size[1]), layout="constrained")
    return fig, list(fig.subplots(1, n, squeeze=False)[0])


def _colors(n: int):
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(x) for x in np.linspace(0.1, 0.85, max(n, 1))]


def _bayes(ax, results: Results, task: str) -> None:
    bayes = results.bayes(task)
    if bayes is not None:
        ax.axhline(bayes, color="k", ls=":", lw=1, label=f"Bayes-optimal {bayes:.3f}")


def plot_accuracy_vs_labels(ax, results: Results, task: str) -> None:
    """Accuracy vs labels for every method (sizes as colours)."""
    for size, color in zip(results.sizes(), _colors(len(results.sizes()))):
        for method, style in SIZED_STYLES.items():
            x, y, err = results.curve(task, method, size)
            if len(x):
                ax.errorbar(x, y, yerr=err, fmt=style, color=color, ms=4, capsize=2, lw=1.3,
                            label=f"{method} {size}")
    for method, style, color in (("logreg", "-s", "C3"), ("logreg-full", "-.s", "C1"),
                                 ("majority", ":", "0.5")):
        x, y, err = results.curve(task, method)
        if len(x):
            ax.errorbar(x, y, yerr=err, fmt=style, color=color, ms=4, capsize=2, lw=1.5,
                        label=BASELINE_NAMES[method])
    _bayes(ax, results, task)
    ax.set_xscale("log", base=2)
    ax.set_xlabel(LABELS_AXIS)
    ax.set_ylabel(_accuracy_axis(results, task))
    ax.set_title(task)
    ax.grid(alpha=0.3)


def _accuracy_axis(results: Results, task: str) -> str:
    return ACCURACY_AXIS + (" (exact match)" if results.is_qa(task) else "")


def plot_accuracy_vs_params(ax, results: Results, task: str) -> None:
    """Accuracy vs parameters at each label budget (pre-trained solid, scratch dashed)."""
    sizes = results.sizes()
    budgets = results.label_budgets()
    for budget, color in zip(budgets, _colors(len(budgets))):
        for method, style in SIZED_STYLES.items():
            params = np.array([results.params(s, method) or np.nan for s in sizes], dtype=float)
            cells = [results.cell(task, method, budget, s) for s in sizes]
            y = np.array([c["mean"] for c in cells])
            err = np.array([c["std"] for c in cells])
            if np.isfinite(y).any():
                ax.errorbar(params, y, yerr=err, fmt=style, color=color, ms=4, capsize=2,
                            lw=1.3, label=f"{method}, {budget} labels")
    top = results.cell(task, "logreg", budgets[-1])
    if top["n"]:
        ax.axhline(top["mean"], color="C3", ls="-.", lw=1,
                   label=f"TF-IDF logistic regression (same context), {budgets[-1]} labels")
    chance = results.cell(task, "majority", budgets[-1])
    if chance["n"]:
        ax.axhline(chance["mean"], color="0.5", ls=":", lw=1, label="majority class")
    _bayes(ax, results, task)
    ax.set_xscale("log")
    ax.set_xlabel("parameters of the model")
    ax.set_ylabel(_accuracy_axis(results, task))
    ax.set_title(task)
    ax.grid(alpha=0.3)


def plot_all(results: Results, out_dir) -> list[Path]:
    """Draw every figure into `out_dir` as PNG and SVG; the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = results.tasks()
    paths = []
    for name, draw in (("accuracy_vs_labels", plot_accuracy_vs_labels),
                       ("accuracy_vs_params", plot_accuracy_vs_params)):
        fig, axes = _figure(len(tasks))
        for ax, task in zip(axes, tasks):
            draw(ax, results, task)
        legend = {}
        for ax in axes:                       # every line once (the Bayes line is on one)
            for handle, label in zip(*ax.get_legend_handles_labels()):
                legend.setdefault(label, handle)
        fig.legend(list(legend.values()), list(legend), loc="outside right upper", fontsize=7)
        fig.suptitle(f"fine-tuning study ({results.budget} budget): {name.replace('_', ' ')}")
        for ext in ("png", "svg"):
            path = out_dir / f"{name}.{ext}"
            fig.savefig(path, dpi=120)
            paths.append(path)
    return paths
