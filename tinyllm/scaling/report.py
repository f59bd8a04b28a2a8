"""Text summaries of a study: the table of sizes and the fitted laws with their intervals."""

from __future__ import annotations


def summary_table(results) -> str:
    """One line per rung: N, final validation loss per corpus (nats and bits), task
    accuracy, and the size-sweep runs' wall time and peak memory."""
    corpora = results.corpora()
    rungs = {}
    for sweep in ("size", "task"):
        for r in results.rows(sweep):
            rungs.setdefault(r["rung"], r["non_embedding_params"])
    head = f"{'rung':10s} {'N':>10s}"
    for c in corpora:
        head += f" | {c[:10]:>10s} nats  bits  time  MiB"
    task = results.rows("task")
    if task:
        head += f" | {task[0]['task']} acc"
    lines = [head, "-" * len(head)]
    for rung, n in sorted(rungs.items(), key=lambda kv: kv[1]):
        line = f"{rung:10s} {n:>10,d}"
        for c in corpora:
            row = next((r for r in results.rows("size", c) if r["rung"] == rung), None)
            line += (f" | {row['val_loss_nats']:>15.4f} {row['val_loss_bits']:5.3f} "
                     f"{row['wall_s']:5.0f} {row['peak_rss_mb']:4.0f}" if row else
                     f" | {'-':>15s} {'':5s} {'':5s} {'':4s}")
        if task:
            row = next((r for r in task if r["rung"] == rung), None)
            line += f" | {row['accuracy']:.3f}" if row else " | -"
        lines.append(line)
    return "\n".join(lines)


def lr_summary(results) -> str:
    """The learning rates a tuned study tried per rung ('' for a study at Kaplan's rule)."""
    from .tuning import tuning_table

    table = tuning_table(results.lr_runs)
    return (f"learning rates (validation loss at powers of 2 times Kaplan's rate; * = the "
            f"rung's tuned rate):\n{table}" if table else "")


def fits_summary(results, fits: dict) -> str:
    """The fitted exponents with 95% bootstrap intervals, and E against the entropy rate."""
    lines = []
    for corpus, f in fits.items():
        lines.append(f"{corpus}:")
        if "kaplan" in f:
            k = f["kaplan"]
            lines.append(f"  Kaplan     L = (N_c/N)^a_N         a_N   = {k.interval('a_N')}")
        if "offset" in f:
            o = f["offset"]
            lines.append(f"  offset     L = E + A/N^alpha       E     = {o.interval('E')}, "
                         f"alpha = {o.interval('alpha')}")
        if "chinchilla" in f:
            c = f["chinchilla"]
            lines.append(f"  Chinchilla L = E + A/N^a + B/D^b   E     = {c.interval('E')}, "
                         f"alpha = {c.interval('alpha')}, beta = {c.interval('beta')}")
        if "frontier" in f:
            fr = f["frontier"]
            lines.append(f"  IsoFLOP    N_opt ~ C^a              a     = {fr.interval('a')}, "
                         f"D_opt ~ C^{fr.interval('b')}, D/N at optimum "
                         f"{fr.params['tokens_per_param']:.3g}")
        floor, window = results.entropy_rate(corpus), results.window_floor(corpus)
        if floor:
            for name in ("offset", "chinchilla"):
                if name in f:
                    e = f[name].params["E"]
                    lines.append(f"  {name} E = {e:.4f} vs entropy rate {floor:.4f} nats/char: "
                                 f"{100 * (e / floor - 1):+.1f}%" + (
                                     f"; vs the least loss on the study's windows {window:.4f}: "
                                     f"{100 * (e / window - 1):+.1f}%" if window else ""))
        for name, why in f.get("skipped", {}).items():
            lines.append(f"  ({name} not fitted: {why})")
    return "\n".join(lines)
