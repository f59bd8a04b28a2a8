"""The study's tables as text: accuracy by task x size x label budget, ULMFiT's comparison,
the Bayes-optimal gap, and the pre-training runs (what `tinyllm finetune-study` prints)."""

from __future__ import annotations

from .results import Results, bayes_gap, labels_to_match, reference_budgets


def _fmt(cell: dict) -> str:
    if not cell["n"]:
        return "-"
    spread = f"±{cell['std']:.3f}" if cell["n"] > 1 else "      "
    return f"{cell['mean']:.3f}{spread}"


def accuracy_table(results: Results, task: str, column: str = "test_accuracy") -> str:
    """Rows: method (and size); columns: label budgets; cells: mean ± std over seeds."""
    budgets = results.label_budgets()
    labels = [results.cell(task, "majority", b)["labels"] for b in budgets]
    head = f"{'method':<11}{'size':<7}{'params':>9} | " + " ".join(
        f"{b + (f' ({n})' if b == 'all' and n else ''):>12}" for b, n in zip(budgets, labels))
    lines = [f"{task}: test {column.replace('test_', '')} (mean ± std over seeds)", head,
             "-" * len(head)]
    for method in ("pretrained", "scratch"):
        for size in results.sizes():
            cells = [_fmt(results.cell(task, method, b, size, column)) for b in budgets]
            params = results.params(size) or 0
            lines.append(f"{method:<11}{size:<7}{params:>9,} | "
                         + " ".join(f"{c:>12}" for c in cells))
    for method in ("logreg", "logreg-full", "majority"):
        cells = [_fmt(results.cell(task, method, b, None, column)) for b in budgets]
        lines.append(f"{method:<12}{'-':<6}{'':>9} | " + " ".join(f"{c:>12}" for c in cells))
    bayes = results.bayes(task)
    if bayes is not None:
        lines.append(f"Bayes-optimal test accuracy (exact): {bayes:.3f}")
    return "\n".join(lines)


def ulmfit_table(results: Results) -> str:
    """For each task and size: the labels scratch training needs to match pre-training at the
    two smallest label budgets."""
    refs = reference_budgets(results)
    lines = ["labels scratch training needs to match the pre-trained model "
             "(ULMFiT: ~100x fewer labels with pre-training)"]
    for task in results.tasks():
        for size in results.sizes():
            parts = []
            for ref in refs:
                m = labels_to_match(results, task, size, ref)
                if m["labels"] is None:
                    what = m["note"]
                else:
                    what = f"{m['labels']} labels ({m['ratio']:.1f}x)"
                    if m["note"]:
                        what += f", {m['note']}"
                parts.append(f"pre-trained at {ref} ({m['target']:.3f}): {what}")
            lines.append(f"  {task:<18} {size:<6} " + "; ".join(parts))
    return "\n".join(lines)


def bayes_table(results: Results, task: str = "markov-source") -> str:
    rows = bayes_gap(results, task)
    if not rows:
        return ""
    lines = [f"{task} at {results.label_budgets()[-1]} labels vs the exact Bayes-optimal "
             f"accuracy {rows[0]['bayes']:.3f}:"]
    for r in rows:
        lines.append(f"  {r['method']:<11}{r['size'] or '-':<7} {r['accuracy']:.3f}  gap "
                     f"{r['gap_points']:+.1f} points")
    return "\n".join(lines)


def pretrain_table(results: Results) -> str:
    if not results.pretrain:
        return ""
    lines = ["pre-training (causal LM, characters; validation loss on the held-out tail of "
             "the corpus):"]
    for r in sorted(results.pretrain, key=lambda r: r["params"]):
        lines.append(f"  {r['size']:<6} {r['params']:>9,} params  {r['tokens']:>10,} tokens  "
                     f"val {r['val_loss_nats']:.3f} nats/char ({r['val_bits_per_char']:.3f} "
                     f"bits)  {r['wall_s']:.0f} s")
    return "\n".join(lines)


def full_report(results: Results) -> str:
    """Every table of the study."""
    parts = [pretrain_table(results)]
    parts += [accuracy_table(results, task) for task in results.tasks()]
    parts += [ulmfit_table(results), bayes_table(results)]
    return "\n\n".join(p for p in parts if p)
