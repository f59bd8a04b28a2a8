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


def baselines_summary(results) -> str:
    """Transformer vs LSTM vs the best n-gram, rung by rung on each corpus, and where each
    model first passes the other ('' without LSTM or n-gram rows)."""
    lines = []
    for corpus in results.corpora():
        base = [r for r in results.rows("baselines") if r.get("corpus") in (None, corpus)]
        lstm = {r["rung"]: r for r in base if r.get("model") == "LSTM"}
        ngrams = [r for r in base if r.get("model") == "n-gram"]
        if not lstm and not ngrams:
            continue
        best = min(ngrams, key=lambda r: r["val_loss_nats"]) if ngrams else None
        gpt = sorted(results.rows("size", corpus), key=lambda r: r["non_embedding_params"])
        lines.append(f"{corpus}: validation loss (nats/char) at the size sweep's tokens"
                     + (f"; best n-gram: order {best['order']}, {best['val_loss_nats']:.4f}"
                        if best else ""))
        lines.append(f"  {'rung':<10}{'N':>11} {'GPT':>8} {'LSTM':>8}  LSTM lr")
        for r in gpt:
            other = lstm.get(r["rung"])
            lines.append(f"  {r['rung']:<10}{r['non_embedding_params']:>11,} "
                         f"{r['val_loss_nats']:>8.4f} "
                         + (f"{other['val_loss_nats']:>8.4f}  {other['lr']:.2e}" if other
                            else f"{'-':>8}"))
        paired = [(r, lstm[r["rung"]]) for r in gpt if r["rung"] in lstm]
        if paired:
            lines.append("  " + _first_below("the Transformer is below the LSTM",
                                             [(g["rung"], g["val_loss_nats"] < m["val_loss_nats"])
                                              for g, m in paired]))
        if best:
            floor = best["val_loss_nats"]
            lines.append("  " + _first_below("the Transformer is below the best n-gram",
                                             [(g["rung"], g["val_loss_nats"] < floor)
                                              for g in gpt]))
            if paired:
                lines.append("  " + _first_below("the LSTM is below the best n-gram",
                                                 [(g["rung"], m["val_loss_nats"] < floor)
                                                  for g, m in paired]))
    return "\n".join(lines)


def _first_below(what: str, flags: list[tuple[str, bool]]) -> str:
    """'<what> from rung X on' (and at every rung above), 'at rungs ...', or 'at no rung'."""
    below = [rung for rung, flag in flags if flag]
    if not below:
        return f"{what} at no rung"
    first = [rung for rung, _ in flags].index(below[0])
    if all(flag for _, flag in flags[first:]):
        return f"{what} from {below[0]} on"
    return f"{what} at {', '.join(below)}"
