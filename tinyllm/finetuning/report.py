"""The study's tables as text: accuracy by task x size x label budget, ULMFiT's comparison,
the Bayes-optimal gap, and the pre-training runs (what `tinyllm finetune-study` prints)."""

from __future__ import annotations

from .plan import BASELINE_METHODS, SIZED_METHODS
from .results import Results, bayes_gap, labels_to_match, reference_budgets


def _fmt(cell: dict) -> str:
    if not cell["n"]:
        return "-"
    spread = f"±{cell['std']:.3f}" if cell["n"] > 1 else "      "
    return f"{cell['mean']:.3f}{spread}"


def accuracy_table(results: Results, task: str, column: str = "test_accuracy") -> str:
    """Rows: method (and size); columns: label budgets; cells: mean ± std over seeds."""
    budgets = results.label_budgets()
    labels = [max((r["train_examples"] for r in results.rows(task, budget=b)), default=None)
              for b in budgets]
    head = f"{'method':<19}{'size':<7}{'params':>9} | " + " ".join(
        f"{b + (f' ({n})' if b == 'all' and n else ''):>12}" for b, n in zip(budgets, labels))
    what = column.replace("test_", "")
    if results.is_qa(task) and what == "accuracy":
        what = "accuracy (exact match)"
    lines = [f"{task}: test {what} (mean ± std over seeds)", head, "-" * len(head)]
    for method in SIZED_METHODS:
        if not results.rows(task, method):
            continue
        for size in results.sizes():
            cells = [_fmt(results.cell(task, method, b, size, column)) for b in budgets]
            params = results.params(size, method) or 0
            lines.append(f"{method:<19}{size:<7}{params:>9,} | "
                         + " ".join(f"{c:>12}" for c in cells))
    for method in BASELINE_METHODS:
        if results.rows(task, method):
            cells = [_fmt(results.cell(task, method, b, None, column)) for b in budgets]
            lines.append(f"{method:<19}{'-':<7}{'':>9} | "
                         + " ".join(f"{c:>12}" for c in cells))
    bayes = results.bayes(task)
    if bayes is not None:
        lines.append(f"Bayes-optimal test accuracy (exact): {bayes:.3f}")
    return "\n".join(lines)


#: The (pre-trained, from scratch) method pairs of ULMFiT's comparison.
ULMFIT_PAIRS = (("pretrained", "scratch"), ("generative", "generative-scratch"),
                ("extractive", "extractive-scratch"))


def _match_cells(m: dict, smallest) -> tuple[str, str]:
    """(labels, ratio) cells of one ULMFiT comparison."""
    if m["labels"] is None:
        return ("chance", "-") if "majority" in m["note"] else (
            ("never", "-") if "never" in m["note"] else ("-", "-"))
    if m["note"]:
        return f"<={smallest}", f"<={m['ratio']:.2g}x"
    return str(m["labels"]), f"{m['ratio']:.2g}x"


def ulmfit_table(results: Results, method: str = "pretrained",
                 baseline: str = "scratch") -> str:
    """For each task (that has `method` runs) and size: the labels `baseline` (from scratch)
    needs to match `method` (pre-trained) at the two smallest label budgets, and the ratio to
    those budgets (ULMFiT: ~100x)."""
    refs = reference_budgets(results)
    smallest = refs[0] if refs else "-"
    head = f"{'task':<18} {'size':<6}|" + "|".join(
        f" {'pre@' + str(r):>8} {'scratch needs':>13} {'ratio':>7} " for r in refs)
    lines = [f"labels {baseline} needs to match {method}'s test accuracy (ULMFiT: about "
             "100x more)", head, "-" * len(head)]
    for task in results.tasks():
        if not results.rows(task, method):
            continue
        for size in results.sizes():
            cells = []
            for ref in refs:
                m = labels_to_match(results, task, size, ref, method, baseline)
                need, ratio = _match_cells(m, smallest)
                cells.append(f" {m['target']:>8.3f} {need:>13} {ratio:>7} ")
            lines.append(f"{task:<18} {size:<6}|" + "|".join(cells))
    lines.append(f"chance: the pre-trained model is no better than the majority class (nothing "
                 f"to match); <={smallest}: scratch already matches it at the smallest budget; "
                 "never: not within the study's budgets")
    return "\n".join(lines)


def bayes_table(results: Results, task: str = "markov-source") -> str:
    rows = bayes_gap(results, task)
    if not rows:
        return ""
    lines = [f"{task} at {results.label_budgets()[-1]} labels vs the exact Bayes-optimal "
             f"accuracy {rows[0]['bayes']:.3f}:"]
    for r in rows:
        lines.append(f"  {r['method']:<19}{r['size'] or '-':<6} {r['accuracy']:.3f}  gap "
                     f"{r['gap_points']:+.1f} points")
    return "\n".join(lines)


def pretrain_table(results: Results) -> str:
    if not results.pretrain:
        return ""
    budget = results.meta.get("budget", {})
    tokens = budget.get("tokenizer", "char")
    corpora = " + ".join(budget.get("pretrain_corpora", []))
    if budget.get("continue_corpora"):           # the GPT's second stage
        corpora += f", then (GPT) {' + '.join(budget['continue_corpora'])}"
    lines = [f"pre-training on {corpora} ({tokens} tokens; GPT a causal LM, BERT a masked LM; "
             "validation loss per token on the held-out tail of the last text read):"]
    for r in sorted(results.pretrain, key=lambda r: (r.get("model") or "gpt", r["params"])):
        lines.append(f"  {(r.get('model') or 'gpt').upper():<5}{r['size']:<6} "
                     f"{r['params']:>9,} params  {r['tokens']:>10,} tokens  val "
                     f"{r['val_loss_nats']:.3f} nats ({r['val_bits_per_char']:.3f} bits/char)"
                     f"  {r['wall_s']:.0f} s")
    return "\n".join(lines)


def full_report(results: Results) -> str:
    """Every table of the study."""
    parts = [pretrain_table(results)]
    parts += [accuracy_table(results, task) for task in results.tasks()]
    parts += [ulmfit_table(results, *pair) for pair in ULMFIT_PAIRS
              if any(results.rows(method=m) for m in pair)]
    parts.append(bayes_table(results))
    return "\n\n".join(p for p in parts if p)
