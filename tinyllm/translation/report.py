"""The study's tables as text, and the README of a results directory.

    summary_table   rows: family x size; columns: task / split; cells: test exact match (%)
                    or BLEU; Lake & Baroni's SCAN figures as the last rows
    task_table      one task: parameters, steps, validation and test exact match, BLEU, chrF,
                    seconds, per family and size
    full_report     every table (what `tinyllm translation-study` prints)
    write_readme    README.md of a results directory: settings, tables, the published figures
"""

from __future__ import annotations

from .._io import atomic_write
from .plan import FAMILY_LABELS, dropout_text
from .results import Results

#: The metrics of the summary tables: column, title, how a value is printed.
METRICS = {
    "test_exact_match": ("test exact match (%), greedy", lambda v: f"{100 * v:.1f}"),
    "test_bleu": ("test BLEU (task tokenizer), greedy", lambda v: f"{v:.1f}"),
}


def _cell(value, fmt) -> str:
    return "-" if value is None else fmt(value)


def _percent(value: float) -> str:
    return f"{value:g}"


def summary_table(results: Results, column: str = "test_exact_match") -> str:
    """Every task and split against every family and size, with the published SCAN rows."""
    title, fmt = METRICS[column]
    tasks = results.tasks()
    width = max(9, *(len(t) for t in tasks))
    head = f"{'model':<12}{'size':<6}{'params':>10} | " + " ".join(f"{t:>{width}}"
                                                                    for t in tasks)
    lines = [title, head, "-" * len(head)]
    for family in results.families():
        for size in results.sizes():
            params = results.params(family, size)
            if params is None:
                continue
            cells = [_cell(results.value(t, family, size, column), fmt) for t in tasks]
            lines.append(f"{FAMILY_LABELS[family]:<12}{size:<6}{params:>10,} | "
                         + " ".join(f"{c:>{width}}" for c in cells))
    if column == "test_exact_match" and any(results.published(t) for t in tasks):
        for key, label in (("overall_best", "L&B overall-best"),
                           ("top_for_split", "L&B top for split")):
            cells = [_percent(results.published(t)[key]) if results.published(t) else ""
                     for t in tasks]
            lines.append((f"{label:<28} | " + " ".join(f"{c:>{width}}" for c in cells)).rstrip())
        lines.append(f"L&B: {results.citation}")
    lines.append(f"params: on {tasks[0]} (each task's vocabulary sizes the embeddings)")
    return "\n".join(lines)


def task_table(results: Results, task: str) -> str:
    """One task: every family and size with its steps, scores and seconds."""
    r0 = next(r for r in results.runs if r["task"] == task)
    head = (f"{'model':<12}{'size':<6}{'params':>10}{'steps':>7} | {'val EM':>7} "
            f"{'test EM':>8} {'BLEU':>6} {'chrF':>6} | {'train s':>8} {'test s':>7}")
    lines = [f"{task}: {r0['train_pairs']:,} train / {r0['validation_pairs']:,} validation / "
             f"{r0['test_pairs']:,} test pairs (scored: {r0['test_scored']:,}); BLEU "
             f"tokenizer {r0['bleu_tokenize']!r}", head, "-" * len(head)]
    for family in results.families():
        for size in results.sizes():
            r = results.row(task, family, size)
            if r is None:
                continue
            lines.append(
                f"{FAMILY_LABELS[family]:<12}{size:<6}{r['params']:>10,}{r['steps']:>7} | "
                f"{100 * r['val_exact_match']:>6.1f}% {100 * r['test_exact_match']:>7.1f}% "
                f"{r['test_bleu']:>6.1f} {r['test_chrf']:>6.1f} | {r['train_s']:>8.0f} "
                f"{r['test_s']:>7.0f}")
    pub = results.published(task)
    if pub:
        lines.append(f"Lake & Baroni 2018, {pub['name']}: {_percent(pub['overall_best'])}% "
                     f"(overall-best model) / {_percent(pub['top_for_split'])}% (top model for "
                     "the split)")
    return "\n".join(lines)


def published_lines(results: Results) -> str:
    """The published SCAN figures, cited."""
    splits = results.meta.get("published", {}).get("splits", {})
    if not splits:
        return ""
    parts = [f"{s['name']}: {_percent(s['overall_best'])}% / {_percent(s['top_for_split'])}%"
             for s in splits.values()]
    return (f"{results.citation}: " + "; ".join(parts)
            + " (overall-best model / top model for the split)")


def full_report(results: Results) -> str:
    """Every table of the study."""
    parts = [summary_table(results, c) for c in METRICS]
    parts += [task_table(results, t) for t in results.tasks()]
    parts.append(published_lines(results))
    return "\n\n".join(p for p in parts if p)


# ---------------------------------------------------------------------- README.md
def _settings(meta: dict) -> list[str]:
    b = meta["budget"]
    steps = ", ".join(f"{s} {n}" for s, n in b["steps_by_size"])
    scale = ", ".join(f"{t} x{f:g}" for t, f in b["task_scale"]) or "none"
    test = "every test pair" if b["max_test_pairs"] is None else \
        f"the first {b['max_test_pairs']} test pairs of each task"
    lrs = ", ".join(f"{FAMILY_LABELS[f]} {lr:g}" for f, lr in b["lr"])
    init = ("each family's own initialisation" if b["init_scale"] is None else
            f"weights drawn with standard deviation {b['init_scale']:g}/sqrt(width) (the "
            "families' own initialisations, sized for widths of 512 to 1,000, stall these "
            "narrow models)")
    return [
        f"* **Models**: {' vs '.join(FAMILY_LABELS[f] for f in meta['families'])} "
        f"encoder-decoders (`seq2seq`, `lstm-seq2seq`) at the presets {', '.join(b['sizes'])};"
        " word tokenizer trained on each task's training pairs.",
        f"* **Tasks**: {', '.join(f'`{t}`' for t in meta['tasks'])}.",
        f"* **Training**: AdamW, lr {lrs} (cosine to {b['min_lr_ratio']:g} of it, warmup "
        f"{b['warmup_fraction']:.0%} of the steps), batch {b['batch_size']}, weight decay "
        f"{b['weight_decay']:g}, gradient norm clipped at 1, "
        f"{dropout_text(b['dropout'], b['dropout_from'])}, {init}; steps by size: {steps}; task "
        f"factors: {scale}. One run (seed {b['seed']}) per task, family and size; the model "
        "after the last step is scored.",
        f"* **Scores**: greedy decoding of {test}: exact match (the whole output equals the "
        "reference), corpus BLEU with the task's tokenizer, chrF; the validation exact match "
        f"on the first {b['eval_iters'] * b['batch_size']} validation pairs at the end.",
    ]


def readme_text(results: Results) -> str:
    """The README of a results directory (markdown)."""
    meta = results.meta
    m = meta.get("machine", {})
    sessions = meta.get("sessions", [])
    jobs = sorted({s.get("jobs") for s in sessions if s.get("jobs") is not None})
    lines = [f"# The translation study, {results.budget} budget", "",
             f"`tinyllm translation-study --budget {results.budget}`: "
             f"{len(results.runs)} runs, wall time {meta.get('wall_s', 0) / 60:.1f} min over "
             f"{len(sessions)} session(s) (jobs {', '.join(map(str, jobs)) or '?'}), tinyllm "
             f"{meta.get('tinyllm_version')}, Python {m.get('python')}, NumPy "
             f"{m.get('numpy')}, {m.get('cpus')} CPUs, kernels {m.get('kernels')!r}. "
             "Written by `tinyllm.translation.report` from the files beside it.", "",
             "## Settings", "", *_settings(meta), "",
             "## Test exact match and BLEU", "", "```"]
    lines += [summary_table(results, c) + "\n" for c in METRICS]
    lines[-1] = lines[-1].rstrip("\n")
    lines += ["```", "", "## Per task", "", "```"]
    lines.append("\n\n".join(task_table(results, t) for t in results.tasks()))
    lines += ["```", "", "## Published figures", "", published_lines(results) + ".", "",
              "## Files", "",
              "`study.json` (budget, settings, versions, machine, wall time, the published "
              "figures), `runs.csv` (one row per run, columns in "
              "`tinyllm.translation.RUN_COLUMNS`), `study.log` (one line per run), `plots/` "
              "(PNG and SVG; not installed with the package, the CSV and JSON are). "
              "`tinyllm translation-study --plot DIR` prints these tables and redraws the "
              "figures; `tinyllm.translation.load_results(root=DIR)` reads the files.", ""]
    return "\n".join(lines)


def write_readme(results: Results, path=None):
    """Write README.md into the results directory (or `path`); the path written."""
    return atomic_write(path or results.root / "README.md", readme_text(results))
