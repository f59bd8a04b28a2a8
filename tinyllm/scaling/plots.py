"""The study's figures (matplotlib), each as PNG and SVG: `plot_all(results, out_dir)`.

    loss_vs_params     L(N) per corpus: the size sweep, Kaplan and offset fits, the entropy floor,
                       and the n-gram / LSTM baselines when a baselines CSV is present
    loss_vs_compute    every logged evaluation against its FLOPs, the IsoFLOP minima, and the
                       compute-optimal frontier N_opt(C)
    isoflop            loss vs N at each compute budget, with the fitted parabolas
    loss_vs_tokens     validation loss vs tokens seen for every size, with the L(N, D) fit
    task_accuracy      exact-match accuracy of the capability task vs size
    cost               wall time and peak memory vs size
    baselines          Transformer vs LSTM vs n-gram on the same axes (only with baselines)
    lr_tuning          loss vs learning rate (multiples of Kaplan's) per rung (a tuned study)

Each `plot_*` function draws into the matplotlib Axes it is given (so a notebook can lay
them out); `plot_all` makes the figures and saves them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .fits import fit_study

N_LABEL = "non-embedding parameters N"


def _axes_grid(n: int, size=(5.2, 4.0)):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0] * n, size[1]), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    return fig, list(axes)


def _colors(n: int):
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(x) for x in np.linspace(0.05, 0.9, max(n, 1))]


def _floor(ax, results, corpus):
    h = results.entropy_rate(corpus)
    if h:
        ax.axhline(h, color="k", ls=":", lw=1, label=f"entropy rate {h:.3f} (floor)")
    w = results.window_floor(corpus)
    if w:
        ax.axhline(w, color="k", ls="--", lw=0.8,
                   label=f"least loss on the study's windows {w:.3f}")


def plot_loss_vs_params(ax, results, corpus, fits=None):
    """Final validation loss of the size sweep vs N (log-log), with fits and floor."""
    fits = fit_study(results, corpus, n_boot=0) if fits is None else fits
    n = results.column("size", "non_embedding_params", corpus)
    loss = results.column("size", "val_loss_nats", corpus)
    ax.loglog(n, loss, "o", color="C0", label="GPT (size sweep)")
    grid = np.geomspace(n.min() / 1.5, n.max() * 1.5, 100)
    if "kaplan" in fits:
        f = fits["kaplan"]
        ax.loglog(grid, f.predict(grid), "--", color="C1",
                  label=f"Kaplan $(N_c/N)^{{a_N}}$, $a_N$={f.params['a_N']:.3f}")
    if "offset" in fits:
        f = fits["offset"]
        ax.loglog(grid, f.predict(grid), "-", color="C2",
                  label=f"$E + A/N^\\alpha$, E={f.params['E']:.3f}, "
                        f"$\\alpha$={f.params['alpha']:.2f}")
    _floor(ax, results, corpus)
    _baseline_points(ax, results, corpus, x="params_non_embedding")
    tokens = results.column("size", "tokens", corpus)
    ax.set(xlabel=N_LABEL, ylabel="validation loss (nats / token)",
           title=f"{corpus}: loss vs size at {tokens.max():.3g} tokens")
    ax.legend(fontsize=7)


def _baseline_points(ax, results, corpus, x="params"):
    """Baseline rows of `corpus` at their `x` (params_non_embedding falls back to params)."""
    def size(r):
        return r.get(x) or r.get("params")

    rows = [r for r in results.rows("baselines")
            if r.get("corpus") in (None, corpus) and size(r) and r.get("val_loss_nats")]
    styles = {"ngram": ("s", "C4"), "lstm": ("^", "C3")}   # colors the fits do not use
    for model in sorted({str(r["model"]) for r in rows}):
        pts = sorted((r for r in rows if str(r["model"]) == model), key=size)
        marker, color = styles.get(model.lower().replace("-", ""), ("D", "C5"))
        ax.loglog([size(r) for r in pts], [r["val_loss_nats"] for r in pts], marker + "--",
                  color=color, mfc="none", lw=0.8,
                  label=model + (" (order)" if any(r.get("order") for r in pts) else ""))
        for r in pts:
            if r.get("order"):
                ax.annotate(f"{r['order']}", (size(r), r["val_loss_nats"]), fontsize=6,
                            xytext=(3, 3), textcoords="offset points")


def plot_loss_vs_compute(axes, results, corpus, fits=None):
    """Left: loss vs training FLOPs for every size (logged evaluations) and the IsoFLOP
    minima. Right: N_opt vs C with the fitted frontier."""
    fits = fit_study(results, corpus, n_boot=0) if fits is None else fits
    ax, ax2 = axes
    size_rows = results.rows("size", corpus)
    colors = _colors(len(size_rows))
    for color, run in zip(colors, sorted(size_rows, key=lambda r: r["non_embedding_params"])):
        pts = [r for r in results.rows("curves", corpus) if r["run_id"] == run["run_id"]]
        ax.loglog([r["flops"] for r in pts], [r["val_loss_nats"] for r in pts], "-",
                  color=color, lw=1.2, label=f"N={run['non_embedding_params']:.2g}")
    iso = results.rows("isoflop", corpus)
    ax.loglog([r["flops"] for r in iso], [r["val_loss_nats"] for r in iso], "x", color="0.4",
              ms=4, label="IsoFLOP runs")
    _floor(ax, results, corpus)
    ax.set(xlabel="training compute C (FLOPs, attention and head included)",
           ylabel="validation loss (nats / token)", title=f"{corpus}: loss vs compute")
    if "frontier" in fits:
        f = fits["frontier"]
        minima = [m for m in f.extra["minima"] if m.get("inside", True)] or f.extra["minima"]
        ax.loglog([m["flops"] for m in minima], [m["loss_opt"] for m in minima], "*",
                  color="red", ms=10, label="IsoFLOP minima")
        c = np.array([m["flops"] for m in minima])
        ax2.loglog(c, [m["N_opt"] for m in minima], "*", color="red", ms=10,
                   label="IsoFLOP minima")
        grid = np.geomspace(c.min() / 3, c.max() * 3, 50)
        lo, hi = f.intervals.get("a", (np.nan, np.nan))
        ax2.loglog(grid, f.predict(grid), "-", color="C3",
                   label=f"$N_{{opt}} \\propto C^{{{f.params['a']:.2f}}}$ "
                         f"[{lo:.2f}, {hi:.2f}]")
    else:
        why = fits.get("skipped", {}).get("frontier", "no IsoFLOP runs")
        ax2.text(0.5, 0.5, "frontier not fitted:\n" + why[:60], ha="center", va="center",
                 fontsize=8, transform=ax2.transAxes, wrap=True)
    ax2.set(xlabel="training compute C (FLOPs)", ylabel="compute-optimal N",
            title=f"{corpus}: compute-optimal frontier")
    ax.legend(fontsize=6, ncol=2)
    if ax2.get_legend_handles_labels()[0]:
        ax2.legend(fontsize=7)


def plot_isoflop(ax, results, corpus, fits=None):
    """Loss vs N at each compute budget, with the parabola in log N and its minimum."""
    rows = results.rows("isoflop", corpus)
    budgets = sorted({r["flops_budget"] for r in rows})
    for color, c in zip(_colors(len(budgets)), budgets):
        pts = sorted((r for r in rows if r["flops_budget"] == c),
                     key=lambda r: r["non_embedding_params"])
        n = np.array([r["non_embedding_params"] for r in pts], float)
        loss = np.array([r["val_loss_nats"] for r in pts], float)
        ax.semilogx(n, loss, "o", color=color, label=f"C = {c:.2g} FLOPs")
        if len(n) >= 3:
            coef = np.polyfit(np.log(n), loss, 2)
            grid = np.geomspace(n.min(), n.max(), 60)
            ax.semilogx(grid, np.polyval(coef, np.log(grid)), "-", color=color, lw=1)
            x = -coef[1] / (2 * coef[0]) if coef[0] > 0 else np.nan
            if np.log(n.min()) <= x <= np.log(n.max()):  # no star for an extrapolated minimum
                ax.semilogx(np.exp(x), np.polyval(coef, x), "*", color=color, ms=12, mec="k")
    _floor(ax, results, corpus)
    ax.set(xlabel=N_LABEL, ylabel="validation loss (nats / token)",
           title=f"{corpus}: IsoFLOP curves (Chinchilla approach 2)")
    ax.legend(fontsize=7)


def plot_loss_vs_tokens(ax, results, corpus, fits=None):
    """Validation loss vs tokens seen, one line per size, with the L(N, D) fit dashed."""
    fits = fit_study(results, corpus, n_boot=0) if fits is None else fits
    size_rows = sorted(results.rows("size", corpus), key=lambda r: r["non_embedding_params"])
    for color, run in zip(_colors(len(size_rows)), size_rows):
        pts = [r for r in results.rows("curves", corpus) if r["run_id"] == run["run_id"]]
        d = np.array([r["tokens"] for r in pts], float)
        ax.loglog(d, [r["val_loss_nats"] for r in pts], "o-", color=color, ms=3, lw=1,
                  label=f"N={run['non_embedding_params']:.2g}")
        if "chinchilla" in fits and len(d):
            grid = np.geomspace(d.min(), d.max(), 40)
            ax.loglog(grid, fits["chinchilla"].predict(run["non_embedding_params"], grid),
                      "--", color=color, lw=0.8)
    _floor(ax, results, corpus)
    title = f"{corpus}: loss vs tokens"
    if "chinchilla" in fits:
        p = fits["chinchilla"].params
        title += (f"\n(dashed: E + A/N^a + B/D^b, E={p['E']:.3f}, a={p['alpha']:.2f}, "
                  f"b={p['beta']:.2f})")
    ax.set(xlabel="tokens seen D", ylabel="validation loss (nats / token)", title=title)
    ax.legend(fontsize=6, ncol=2)


def plot_task_accuracy(ax, results):
    """Exact-match accuracy of the capability task vs N."""
    rows = sorted(results.rows("task"), key=lambda r: r["non_embedding_params"])
    if not rows:
        ax.text(0.5, 0.5, "no task runs", ha="center", transform=ax.transAxes)
        return
    ax.semilogx([r["non_embedding_params"] for r in rows], [r["accuracy"] for r in rows],
                "o-", color="C4")
    ax.set(xlabel=N_LABEL, ylabel="exact-match accuracy", ylim=(-0.03, 1.03),
           title=f"capability: {rows[0]['task']} ({rows[0]['steps']} steps each)")
    ax.grid(alpha=0.3)


def plot_cost(axes, results):
    """Wall time and peak memory of the size-sweep runs vs N, per corpus."""
    ax, ax2 = axes
    for corpus in results.corpora():
        rows = sorted(results.rows("size", corpus), key=lambda r: r["non_embedding_params"])
        n = [r["non_embedding_params"] for r in rows]
        ax.loglog(n, [r["wall_s"] for r in rows], "o-", label=f"{corpus} "
                  f"({rows[0]['steps']} steps of {rows[0]['batch_size']}x"
                  f"{rows[0]['block_size']})")
        ax2.semilogx(n, [r["peak_rss_mb"] for r in rows], "o-", label=corpus)
    ax.set(xlabel=N_LABEL, ylabel="wall time per run (s)", title="time vs size")
    ax2.set(xlabel=N_LABEL, ylabel="peak resident memory (MiB)",
            title="memory vs size (whole worker process)")
    ax.legend(fontsize=7)
    ax2.legend(fontsize=7)


def plot_baselines(ax, results, corpus):
    """Transformer vs LSTM vs n-gram: validation loss vs parameters (all parameters)."""
    rows = results.rows("size", corpus)
    ax.loglog([r["params"] for r in rows], [r["val_loss_nats"] for r in rows], "o-",
              label="GPT")
    _baseline_points(ax, results, corpus)
    _floor(ax, results, corpus)
    ax.set(xlabel="parameters (all, embeddings included)",
           ylabel="validation loss (nats / token)", title=f"{corpus}: Transformer vs baselines")
    ax.legend(fontsize=7)


def plot_lr_tuning(ax, results, corpus):
    """Final validation loss vs learning rate, one line per rung, the tuned rate circled."""
    from .tuning import lr_exponent

    runs = [r for r in results.lr_runs if r["corpus"] == corpus]
    widths = sorted({r["n_embd"] for r in runs})
    tuned = {r["n_embd"]: r for r in results.rows("size", corpus)}
    for color, width in zip(_colors(len(widths)), widths):
        rows = sorted((r for r in runs if r["n_embd"] == width), key=lambda r: r["lr"])
        ax.semilogx([r["lr"] for r in rows], [r["val_loss_nats"] for r in rows], "o-",
                    color=color, ms=3, label=f"{rows[0]['rung']}")
        best = tuned[width]
        ax.plot(best["lr"], best["val_loss_nats"], "o", mfc="none", mec="k", ms=8)
    k_range = sorted({lr_exponent(r) for r in runs})
    ax.set(xlabel="peak learning rate", ylabel="final validation loss (nats / token)",
           title=f"{corpus}: rates 2^{k_range[0]}..2^{k_range[-1]} x Kaplan's (o: tuned)")
    ax.legend(fontsize=6, ncol=2)
    ax.grid(alpha=0.3)


def _save(fig, out_dir: Path, name: str) -> list[Path]:
    paths = []
    for ext in ("png", "svg"):
        path = out_dir / f"{name}.{ext}"
        fig.savefig(path, dpi=120)
        paths.append(path)
    return paths


def plot_all(results, out_dir, fits: dict | None = None) -> list[Path]:
    """Draw every figure of `results` into `out_dir` (PNG and SVG); returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fits = fits or {c: fit_study(results, c, n_boot=0) for c in results.corpora()}
    corpora = results.corpora()
    paths = []
    if corpora:
        fig, axes = _axes_grid(len(corpora))
        for ax, c in zip(axes, corpora):
            plot_loss_vs_params(ax, results, c, fits[c])
        paths += _save(fig, out_dir, "loss_vs_params")
        fig, axes = _axes_grid(2 * len(corpora))
        for i, c in enumerate(corpora):
            plot_loss_vs_compute(axes[2 * i:2 * i + 2], results, c, fits[c])
        paths += _save(fig, out_dir, "loss_vs_compute")
        fig, axes = _axes_grid(len(corpora))
        for ax, c in zip(axes, corpora):
            plot_isoflop(ax, results, c, fits[c])
        paths += _save(fig, out_dir, "isoflop")
        fig, axes = _axes_grid(len(corpora))
        for ax, c in zip(axes, corpora):
            plot_loss_vs_tokens(ax, results, c, fits[c])
        paths += _save(fig, out_dir, "loss_vs_tokens")
        fig, axes = _axes_grid(2)
        plot_cost(axes, results)
        paths += _save(fig, out_dir, "cost")
    if results.rows("task"):
        fig, axes = _axes_grid(1)
        plot_task_accuracy(axes[0], results)
        paths += _save(fig, out_dir, "task_accuracy")
    with_baselines = [c for c in corpora if any(r.get("corpus") in (None, c)
                                                for r in results.rows("baselines"))]
    if with_baselines:
        fig, axes = _axes_grid(len(with_baselines))
        for ax, c in zip(axes, with_baselines):
            plot_baselines(ax, results, c)
        paths += _save(fig, out_dir, "baselines")
    if len(results.lr_runs) > len(results.rows("size")):
        fig, axes = _axes_grid(len(corpora))
        for ax, c in zip(axes, corpora):
            plot_lr_tuning(ax, results, c)
        paths += _save(fig, out_dir, "lr_tuning")
    return paths
