"""The `tinyllm` command: train, generate, eval, finetune, predict, translate, info.

    tinyllm train                      # the default GPT on the built-in English corpus, ~5 min
    tinyllm generate runs/gpt-small-pydoc --prompt "The "
    tinyllm eval runs/gpt-small-pydoc
    tinyllm train --model seq2seq --data scan:simple
    tinyllm translate runs/seq2seq-small-scan-simple --text "jump twice" --beam 4
    tinyllm info

Library code raises; this module turns a user error into one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys

from .finetuning.cli import add_finetune_study_parser, cmd_finetune_study
from .scaling.cli import (
    add_accounting_parser,
    add_frontier_parser,
    add_induction_parser,
    add_mup_parser,
    add_scaling_parser,
    cmd_accounting,
    cmd_frontier,
    cmd_induction,
    cmd_mup,
    cmd_scaling,
)
from .translation.cli import add_translation_study_parser, cmd_translation_study

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

_TRAIN_DESCRIPTION = """\
Train a GPT or an LSTM (causal LMs), a BERT (masked LM), or an encoder-decoder (seq2seq,
lstm-seq2seq) on a translation task. With no options: the 'small' GPT on the built-in
English corpus, characters as tokens, 2,000 steps. Progress, evaluations
and samples are printed; checkpoints, metrics.jsonl and the final model go to <out>/<name>/.
"""

_TRAIN_EXAMPLES = """examples:
  tinyllm train                                   # small GPT on CPython's docs, characters
  tinyllm train --preset tiny --steps 500         # a smaller, quicker run
  tinyllm train --data stdlib --tokenizer bpe --vocab-size 1024
  tinyllm train --data notes.txt --model bert     # a masked LM on your own text file
  tinyllm train --resume runs/gpt-small-pydoc     # continue where a run stopped
  tinyllm train --data shakespeare                # nanoGPT's first run, on the built-in plays
  tinyllm train --init-from runs/gpt-small-pydoc --data notes.txt --steps 500
                                                  # fine-tune its weights on another text
  tinyllm train --model seq2seq --data scan:simple --steps 3000
                                                  # translation: SCAN commands -> actions
  tinyllm train --model lstm-seq2seq --data tsv:pairs.tsv   # your own source<TAB>target lines
  mpiexec -n 2 tinyllm train --preset base      # data parallel: 2 ranks, 6 rows each per step
  tinyllm train --batch-size 48 --grad-accum 4  # 4 micro-batches of 12 rows per step
"""


def _train_parser(sub) -> None:
    from .data import list_corpora
    from .models import family_names, get_family
    from .training.config import TOKENIZERS, TrainConfig

    d = TrainConfig()
    families = "; ".join(f"{n}: {get_family(n).description}" for n in family_names())
    p = sub.add_parser("train", help="train a model (the default run takes ~5 minutes)",
                       description=_TRAIN_DESCRIPTION,
                       epilog=_TRAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=family_names(),
                   help=f"model family (default {d.model}) -- {families}")
    p.add_argument("--preset", help=f"model size (default {d.preset}); see `tinyllm info`")
    p.add_argument("--data", help=f"corpus name ({', '.join(list_corpora())}) or a UTF-8 "
                   f"text file (default {d.data}); for seq2seq / lstm-seq2seq a translation task: "
                   "scan:simple, scan:length, scan:addprim-jump, numbers-en-zh, numbers-zh-en, "
                   "dates or tsv:FILE")
    p.add_argument("--tokenizer", choices=TOKENIZERS, help=f"default {d.tokenizer} (word for "
                   "an encoder-decoder)")
    p.add_argument("--objective", choices=("mlm+nsp",), help="instead of the family's own: "
                   "mlm+nsp trains BERT's pre-training head (masked tokens and next-sentence "
                   "prediction, BertForPreTraining)")
    p.add_argument("--vocab-size", type=positive, help=f"BPE vocabulary size "
                   f"(default {d.vocab_size})")
    p.add_argument("--steps", type=positive, help=f"optimizer steps (default {d.steps})")
    p.add_argument("--batch-size", type=positive, help=f"rows per optimizer step, over all "
                   f"micro-batches and ranks (default {d.batch_size})")
    p.add_argument("--grad-accum", type=positive, metavar="K", help="gradient accumulation: "
                   "each step adds the gradients of K micro-batches of batch-size / K rows "
                   "(the same update, less memory; default 1)")
    p.add_argument("--distributed", choices=("auto", "mpi", "none"), help="data parallel on "
                   "MPI: 'auto' (default) when mpiexec started tinyllm with several ranks "
                   "(each takes batch-size / ranks rows; gradients are averaged), 'mpi' to "
                   "require it, 'none' for one process (pip install \".[mpi]\")")
    p.add_argument("--bucket-mb", type=float, help=f"MiB of gradients per all-reduce "
                   f"message (default {d.bucket_mb})")
    p.add_argument("--shard-optimizer", action="store_const", const=True, help="ZeRO stage 1 "
                   "(MPI only): each rank keeps AdamW's moments for its slice of the weights "
                   "(reduce-scatter + all-gather instead of all-reduce; same results, optimizer "
                   "memory / ranks)")
    p.add_argument("--block-size", type=positive, help="context length (default: the preset's)")
    p.add_argument("--lr", type=float, help=f"peak learning rate (default {d.lr})")
    p.add_argument("--min-lr", type=float, help=f"the schedule's floor (default {d.min_lr})")
    p.add_argument("--schedule", choices=("cosine", "wsd"), help="learning-rate schedule after "
                   "warmup: cosine decay, or wsd: constant, then a linear decay over the last "
                   "--decay-fraction of the steps; a wsd run resumed before its decay with "
                   f"more --steps continues exactly (default {d.schedule})")
    p.add_argument("--decay-fraction", type=float, help=f"wsd's decay share of the steps "
                   f"(default {d.decay_fraction})")
    p.add_argument("--warmup-steps", type=non_negative,
                   help="linear warmup (default: 100, or a tenth of a run shorter than 1,000 "
                   "steps)")
    p.add_argument("--weight-decay", type=float, help=f"default {d.weight_decay}")
    p.add_argument("--dropout", type=float, help=f"default {d.dropout}")
    p.add_argument("--eval-interval", type=positive, help=f"evaluate and checkpoint every N "
                   f"steps (default {d.eval_interval})")
    p.add_argument("--eval-iters", type=positive, help=f"batches per evaluation, from the "
                   f"start of each split (default {d.eval_iters})")
    p.add_argument("--seed", type=non_negative, help=f"default {d.seed}")
    p.add_argument("--out", help=f"directory for runs (default {d.out})")
    p.add_argument("--name", help="run name (default <model>-<preset>-<data>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its last "
                   "checkpoint (only --steps may change)")
    p.add_argument("--init-from", metavar="SOURCE", help="start a new run from the weights "
                   "and tokenizer of a run directory or a model directory (continued "
                   "language-model training on --data; the source is not modified)")
    p.add_argument("--distill-from", metavar="RUN[,RUN...]", help="knowledge distillation: "
                   "learn the softened next-token distribution of this causal-LM run (the "
                   "teacher; several, comma-separated: their mean, an ensemble) as well as "
                   "the text (the teacher's tokenizer is used); validation reports plain CE")
    p.add_argument("--temperature", type=float, dest="distill_temperature",
                   help=f"--distill-from: the softening T of both distributions (default "
                   f"{d.distill_temperature})")
    p.add_argument("--alpha", type=float, dest="distill_alpha", help=f"--distill-from: the "
                   f"weight of the teacher's term, 1 - alpha the text's (default "
                   f"{d.distill_alpha})")
    p.add_argument("--prune-to", type=float, metavar="SPARSITY", help="gradual magnitude "
                   "pruning (Zhu & Gupta 2017): zero this fraction of the Linear/Conv1D "
                   "weights by --prune-end, on a cubic schedule (default: no pruning)")
    p.add_argument("--prune-start", type=non_negative, help="first pruning step (default 0)")
    p.add_argument("--prune-end", type=positive, help="the step the sparsity reaches "
                   "--prune-to (default: 3/4 of --steps)")
    p.add_argument("--prune-every", type=positive, help=f"steps between prunings (default "
                   f"{d.prune_every})")
    p.add_argument("--prune-scope", choices=("global", "layer"), help="one threshold for all "
                   "layers, or the same fraction in each (default global)")
    p.add_argument("--average", choices=("swa", "ema"), help="also keep an average of the "
                   "weights along the run: swa (the mean from --average-start on) or ema "
                   "(exponential, --ema-decay); evaluations report its validation loss too "
                   "and it is saved as average.safetensors (--checkpoint average)")
    p.add_argument("--ema-decay", type=float, help=f"--average ema: the decay (default "
                   f"{d.ema_decay})")
    p.add_argument("--average-start", type=non_negative, help="--average: the first step "
                   "averaged (default 0 for ema, 3/4 of --steps for swa)")
    p.add_argument("--overwrite", action="store_true", help="replace the run already in "
                   "<out>/<name>/ (without it, such a run is never touched)")
    p.add_argument("--ignore-memory-check", action="store_true", help="train even when the "
                   "estimated memory of a step exceeds what the machine has available")
    p.add_argument("--quiet", action="store_true", help="no progress bar or messages")
    _threads_option(p)


def _int_option(least: int, what: str):
    """An argparse type: an integer >= `least`, or an error naming the option and value."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < least:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    parse.__name__ = what
    return parse


positive = _int_option(1, "a positive integer")
non_negative = _int_option(0, "a non-negative integer")


def threads_value(text: str):
    """An argparse type for --threads: "auto" or a positive integer."""
    if text.strip().lower() == "auto":
        return "auto"
    return _int_option(1, "'auto' or a positive integer")(text)


threads_value.__name__ = "'auto' or a positive integer"


def _threads_option(p) -> None:
    p.add_argument("--threads", type=threads_value, default="auto",
                   help="threads to compute on (default auto: the physical cores this process "
                   "may use, fewer only where a quick probe measures more as slower; "
                   "`tinyllm info` shows the choice)")


def _generate_parser(sub) -> None:
    p = sub.add_parser("generate", help="write text with a trained GPT",
                       description="Continue a prompt with the best checkpoint of a run.",
                       epilog='example:\n  tinyllm generate runs/gpt-small-pydoc --prompt "The '
                       'module" --max-new-tokens 300 --temperature 0.8 --top-k 20',
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--prompt", default="", help="text to continue (default: empty)")
    p.add_argument("--max-new-tokens", type=non_negative, default=200)
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    p.add_argument("--top-k", type=positive, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--seed", type=non_negative, default=None)
    _checkpoint_option(p)
    _threads_option(p)


def _checkpoint_option(p) -> None:
    p.add_argument("--checkpoint", choices=("best", "last", "average"), default="best",
                   help="which weights of the run: the best validation loss (default), the "
                   "last step, or the averaged weights of tinyllm train --average")


def _compress_parser(sub) -> None:
    p = sub.add_parser("compress", help="quantize (int8, 4-bit) or prune a run's model",
                       description="Quantize the Linear/Conv1D weights of a run's best model "
                       "(post-training; a head tied to the token embedding stays float) and "
                       "write a model directory that tinyllm generate, tinyllm eval and "
                       "GPT.load read: int8 with one scale per tensor or per output channel, "
                       "or 4 bits per weight with one float16 scale per group of inputs "
                       "(llama.cpp's Q4_0 layout at group size 32); or prune it: magnitude "
                       "pruning (zeros), or whole MLP neurons or attention heads removed (smaller "
                       "matrices; fine-tune after with tinyllm train --init-from OUT). The "
                       "source run is only read.",
                       epilog="examples:\n  tinyllm compress runs/gpt-small-pydoc --method "
                       "int8-channel --out runs/gpt-small-pydoc-int8\n  tinyllm compress "
                       "runs/gpt-small-pydoc --method int4 --group-size 32 --out /tmp/q4\n"
                       "  tinyllm eval runs/gpt-small-pydoc-int8\n"
                       "  tinyllm compress runs/gpt-small-pydoc --report   # where it hurts\n"
                       "  tinyllm compress runs/gpt-small-pydoc --method prune-heads --sparsity "
                       "0.25 --out /tmp/h\n  tinyllm train --init-from /tmp/h --steps 200 --lr "
                       "1e-4   # recovery",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--report", action="store_true", help="write nothing: print each layer's "
                   "weight and activation outliers and output error per scheme, and the "
                   "validation loss per quantization scheme and per pruning sparsity")
    p.add_argument("--method", metavar="METHOD",
                   help="int8-tensor, int8-channel, int4, prune (magnitude pruning), "
                   "prune-ffn (remove MLP neurons) or prune-heads (remove attention heads); "
                   "the last two make the matrices smaller (GPT)")
    p.add_argument("--group-size", type=positive, default=None,
                   help="int4 only: inputs per scale, 32, 64 or 128 (default 64)")
    p.add_argument("--sparsity", type=float, default=None, help="prune: the fraction of the "
                   "Linear/Conv1D weights set to zero, smallest first; prune-ffn: the fraction "
                   "of every MLP's neurons removed, least important first; prune-heads: the "
                   "fraction of all attention heads removed, least important first, every "
                   "layer keeping one (0 <= s < 1)")
    p.add_argument("--scope", choices=("global", "layer"), default="global",
                   help="prune only: one threshold for all layers, or the same fraction in "
                   "each (default global)")
    p.add_argument("--out", help="directory to write (must be new or empty)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")


def _merge_parser(sub) -> None:
    p = sub.add_parser("merge", help="average the weights of several runs (a model soup)",
                       description="Write a run whose weights are the (weighted) mean of the "
                       "runs' best weights: a model soup (Wortsman et al. 2022). The runs must "
                       "share architecture, head and tokenizer -- in practice siblings "
                       "fine-tuned from one pre-trained run; tinyllm eval says whether the "
                       "soup works.",
                       epilog="example:\n  tinyllm merge runs/ft-a runs/ft-b runs/ft-c --out "
                       "runs/soup\n  tinyllm eval runs/soup",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", metavar="RUN", nargs="+")
    p.add_argument("--out", required=True, help="directory to write (must be new or empty)")
    p.add_argument("--weights", help="comma-separated, one per run (default: equal)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")


def _eval_parser(sub) -> None:
    p = sub.add_parser("eval", help="a run's loss and bits per character, or a fine-tuned "
                       "run's task scores",
                       description="Evaluate a run's best checkpoint on its whole validation "
                       "split, or on another corpus or text file with --data. (Training's "
                       "evaluations measure only the first --eval-iters batches of the split, "
                       "so their figure differs.) Characters the run's tokenizer never saw are "
                       "not scored, and their number is reported. For a fine-tuned run: its "
                       "task's test-split scores (accuracy, macro-F1 and the confusion matrix, "
                       "or exact match and F1).",
                       epilog="examples:\n  tinyllm eval runs/gpt-small-pydoc\n"
                       "  tinyllm eval runs/gpt-small-pydoc --data stdlib",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--data", help="corpus name or text file (default: the run's validation split)")
    p.add_argument("--max-batches", type=positive, default=None,
                   help="measure only the first N batches (default: all of the text)")
    p.add_argument("--split", choices=("train", "validation", "test"),
                   help="a translation run: the split of its task to score (default test)")
    p.add_argument("--beam", type=positive, default=1, help="a translation run: beam size "
                   "(default 1, greedy)")
    _checkpoint_option(p)
    _threads_option(p)


def _translate_parser(sub) -> None:
    p = sub.add_parser("translate", help="translate with an encoder-decoder run",
                       description="Translate --text (or each line of standard input) with "
                       "the best checkpoint of a translation run (tinyllm train --model "
                       "seq2seq|lstm-seq2seq --data TASK): greedy, or beam search with --beam.",
                       epilog='examples:\n  tinyllm translate runs/seq2seq-small-scan-simple '
                       '--text "jump twice after walk left"\n  tinyllm translate '
                       'runs/seq2seq-small-numbers-en-zh --beam 4 < numbers.txt',
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--text", help="the text to translate (default: read lines from stdin)")
    p.add_argument("--beam", type=positive, default=1,
                   help="beam size (default 1: greedy decoding)")
    p.add_argument("--max-new-tokens", type=positive, default=None,
                   help="longest translation in tokens (default: the model's positions)")
    p.add_argument("--length-penalty", type=float, default=1.0,
                   help="beam search: a hypothesis scores sum(log p) / length**penalty "
                   "(Hugging Face's length_penalty; default 1.0)")
    _threads_option(p)


_FINETUNE_EXAMPLES = """examples:
  tinyllm finetune runs/bert-small-pydoc --task pydoc-topics
  tinyllm finetune runs/gpt-small-pydoc --task stdlib-docstrings --freeze body --epochs 2
  tinyllm finetune runs/bert-small-pydoc --task csv:reviews.csv --train-examples 128
  tinyllm finetune runs/gpt-mini-babi --task babi1 --prompt statement   # "Mary is in the"
  tinyllm finetune runs/gpt-mini-bpe --task pydoc-topics --pooling mean --train-examples 32
  tinyllm finetune --resume runs/bert-small-pydoc-pydoc-topics    # continue after Ctrl-C
"""


def _finetune_parser(sub) -> None:
    from .models.config import CLASSIFIER_POOLING
    from .tasks.base import PROMPT_FORMS
    from .training.config import CLASSIFIERS, FREEZE, FineTuneConfig

    d = FineTuneConfig(init_from="SOURCE", task="TASK")
    p = sub.add_parser(
        "finetune", help="fine-tune a trained model on a labelled task (a new run)",
        description="Continue from SOURCE (a tinyllm train run directory, or a model directory "
        "with its tokenizer.json) on a labelled TASK: a classification head for pydoc-topics, "
        "stdlib-docstrings, markov-source or csv:FILE / jsonl:FILE (text,label or "
        "text_a,text_b,label columns); question answering for babi or squad:FILE (BERT's span "
        "head, or a GPT/LSTM generating the answer). Writes a new run directory; SOURCE is "
        "never modified. Checkpoints, --resume and Ctrl-C work as in tinyllm train.",
        epilog=_FINETUNE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="SOURCE", nargs="?", help="run or model directory")
    p.add_argument("--task", help="a built-in task, or csv:FILE / jsonl:FILE / squad:FILE")
    p.add_argument("--steps", type=positive, help="optimizer steps (default: --epochs)")
    p.add_argument("--epochs", type=float, help="passes over the training examples "
                   "(default 3, when --steps is not given)")
    p.add_argument("--batch-size", type=positive, help=f"default {d.batch_size}")
    p.add_argument("--block-size", type=positive, help="tokens per example (default: the "
                   "source's context)")
    p.add_argument("--lr", type=float, help=f"peak learning rate (default {d.lr})")
    p.add_argument("--freeze", choices=FREEZE, help="keep these weights fixed (default none)")
    p.add_argument("--classifier", choices=CLASSIFIERS,
                   help="a classification task read by a head on the model (default), or "
                   "'generative': a causal LM (gpt, lstm) fine-tuned on each text after its "
                   "label's line, which picks the label that makes the text most likely "
                   "(Bayes' rule)")
    p.add_argument("--prompt", choices=PROMPT_FORMS,
                   help="how a GPT is asked a question: 'question' (the story, then 'Q: "
                   "Where is Mary?' and 'A:'; default) or 'statement' (the story, then the "
                   "sentence that answers it cut before the answer, 'Mary is in the': the "
                   "narrator's words a model pre-trained on the babi text knows; bAbI tasks 1-3)")
    p.add_argument("--pooling", choices=CLASSIFIER_POOLING,
                   help="what a GPT's classification head reads: the 'last' token (Hugging "
                   "Face's GPT2ForSequenceClassification; default) or the 'mean' of every "
                   "token's state (a part of ULMFiT's concat pooling; no transformers twin: saved "
                   "with model_type tinyllm-gpt2)")
    p.add_argument("--from-scratch", action="store_true", default=None,
                   help="the source's architecture and tokenizer with random weights (the "
                   "baseline that shows what pre-training buys)")
    p.add_argument("--train-examples", type=positive, help="a label budget: train on this "
                   "many examples (a stratified sample; default all)")
    p.add_argument("--lora-rank", type=non_negative, help="train rank-R LoRA adapters "
                   "instead of the body (default 0: off)")
    p.add_argument("--lora-alpha", type=float, help=f"LoRA scale alpha (default {d.lora_alpha})")
    p.add_argument("--lora-targets", help="comma-separated module names for the adapters "
                   "(default: the attention projections)")
    p.add_argument("--eval-interval", type=positive, help=f"evaluate and checkpoint every N "
                   f"steps (default {d.eval_interval})")
    p.add_argument("--seed", type=non_negative, help=f"default {d.seed}")
    p.add_argument("--out", help=f"directory for runs (default {d.out})")
    p.add_argument("--name", help="run name (default <source>-<task>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue this fine-tuning run")
    p.add_argument("--overwrite", action="store_true", help="replace the run already there")
    p.add_argument("--ignore-memory-check", action="store_true",
                   help="train even when the estimated memory exceeds what is available")
    p.add_argument("--quiet", action="store_true", help="no progress bar or messages")
    _threads_option(p)


def _attention_parser(sub) -> None:
    p = sub.add_parser("attention", help="draw the attention maps of a trained GPT",
                       description="Draw what each attention head of a run's model looks at "
                       "while it reads TEXT: one heat map per layer and head (rows: the "
                       "position that attends; columns: the positions it attends to).",
                       epilog="examples:\n  tinyllm attention runs/gpt-small-pydoc --text "
                       "\"def f(x): return x\" --out attention.png\n  tinyllm attention "
                       "runs/gpt-small-pydoc --text \"The module \" --layer 3 --head 1 "
                       "--out l3h1.png", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--text", required=True, help="the text the model reads (at most its "
                   "context, in tokens)")
    p.add_argument("--layer", type=int, default=None, help="one layer (0-based; negative "
                   "counts from the end; default: all)")
    p.add_argument("--head", type=int, default=None, help="one head (default: all)")
    p.add_argument("--out", default="attention.png", help="image file, .png/.svg/.pdf/.jpg "
                   "(default attention.png)")
    _checkpoint_option(p)
    _threads_option(p)


def _predict_parser(sub) -> None:
    p = sub.add_parser("predict", help="what a fine-tuned run answers",
                       description="Print the label (and its probability) that a fine-tuned "
                       "classifier gives --text (and --text-b for a pair), or the answer a "
                       "question-answering run gives --question about --context.",
                       epilog='example:\n  tinyllm predict runs/bert-small-pydoc-pydoc-topics '
                       '--text "The with statement ..."',
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--text", help="the text to label")
    p.add_argument("--text-b", help="the second text of a pair")
    p.add_argument("--question", help="a question (question-answering runs; a run "
                   "fine-tuned with --prompt statement completes it: 'Mary is in the')")
    p.add_argument("--context", help="the text that holds the answer")
    _threads_option(p)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="tinyllm", description="Train, sample and measure small language models on NumPy.",
        epilog="start here:  tinyllm train      (then: tinyllm generate runs/gpt-small-pydoc)")
    parser.add_argument("--version", action="version", version=f"tinyllm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _train_parser(sub)
    _generate_parser(sub)
    _eval_parser(sub)
    _compress_parser(sub)
    _merge_parser(sub)
    _finetune_parser(sub)
    _predict_parser(sub)
    _attention_parser(sub)
    _translate_parser(sub)
    add_scaling_parser(sub)
    add_frontier_parser(sub)
    add_mup_parser(sub)
    add_induction_parser(sub)
    add_accounting_parser(sub)
    add_finetune_study_parser(sub)
    add_translation_study_parser(sub)
    p = sub.add_parser("bench", help="kernel and training-step speed vs PyTorch, side by side",
                       description="Time the softmax and attention kernels and a GPT training "
                       "step at the presets: compiled kernels vs NumPy twins vs PyTorch, same "
                       "threads, at 1 thread and at --threads side by side (parallel speedup "
                       "and efficiency); generation tokens/s vs Hugging Face; model FLOPs "
                       "utilisation and peak memory.")
    p.add_argument("--threads", type=threads_value, default="auto",
                   help="the second thread count every row is measured at, beside 1 thread "
                   "(default auto, as for train)")
    p.add_argument("--presets", default="tiny,mini,small,base,medium",
                   help="comma-separated GPT presets (default: tiny to medium)")
    p.add_argument("--repeats", type=positive, default=5, help="timed repeats per entry (5)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-RSS measurement")
    p.add_argument("--no-numpy", action="store_true", help="skip the NumPy-twin training column")
    p.add_argument("--no-generation", action="store_true", help="skip the generation rows")
    sub.add_parser("info", help="version, kernel backend and why, threads",
                   description="Print tinyllm's version, the active kernel backend and why, "
                   "NumPy and its BLAS threads, and the model presets.")
    return parser


# ---------------------------------------------------------------------- commands
def cmd_train(args) -> int:
    from .distributed import on_all_ranks
    from .training import TrainConfig, Trainer
    from .training.trainer import RESUME_MAY_CHANGE

    options = {k: v for k, v in vars(args).items()
               if k not in ("command", "resume", "quiet", "threads", "overwrite",
                            "ignore_memory_check") and v is not None}
    if args.resume:
        may_change = ("steps", *RESUME_MAY_CHANGE)
        extra = sorted(set(options) - set(may_change))
        if extra:
            raise on_all_ranks(ValueError(
                f"--resume continues a run with its saved settings; only "
                f"{', '.join('--' + k.replace('_', '-') for k in may_change)} may change, got "
                f"--{extra[0].replace('_', '-')}"))
        trainer = Trainer.resume(args.resume, quiet=args.quiet,
                                 check_memory=not args.ignore_memory_check,
                                 **{k: options.get(k) for k in may_change})
    else:
        given = [f for f in ("distill_temperature", "distill_alpha") if f in options]
        if given and not args.distill_from:
            raise ValueError(f"--{given[0].split('_')[1]} is a setting of --distill-from; "
                             "give the teacher run too")
        given = [f for f in ("ema_decay", "average_start") if f in options]
        if given and not args.average:
            raise ValueError(f"--{given[0].replace('_', '-')} is a setting of --average; "
                             "give --average swa or ema too")
        given = [f for f in ("prune_start", "prune_end", "prune_every", "prune_scope")
                 if f in options]
        if given and not args.prune_to:
            raise ValueError(f"--{given[0].replace('_', '-')} is a setting of --prune-to; "
                             "give the final sparsity too")
        if args.init_from:
            _init_from_options(options)
        else:
            _check_preset(options.get("model", TrainConfig.model), options.get("preset"))
        try:
            config = TrainConfig(**options)
        except ValueError as exc:
            raise on_all_ranks(exc) from None   # settings from the command line: every rank's
        trainer = Trainer(config, quiet=args.quiet, overwrite=args.overwrite,
                          check_memory=not args.ignore_memory_check)
    result = trainer.train()
    if result.status == "interrupted":
        return EXIT_INTERRUPTED
    if result.status == "stopped":
        return 1
    if trainer.world.is_main:
        print(trainer.summary(result))
    return 0


def _init_from_options(options: dict) -> None:
    """--init-from takes the model family and size from the source."""
    from .training.sources import source_family

    if "preset" in options:
        raise ValueError(f"--init-from {options['init_from']} takes the model's size from it; "
                         "drop --preset")
    options.setdefault("model", source_family(options["init_from"]).name)


def _check_preset(model: str, preset: str | None) -> None:
    from .models import get_family

    presets = get_family(model).presets
    if preset is not None and preset not in presets:
        raise ValueError(f"unknown preset {preset!r}; accepted: {', '.join(presets)}")


def cmd_generate(args) -> int:
    from .training.inference import generate_text

    try:
        generate_text(args.run_dir, args.prompt, max_new_tokens=args.max_new_tokens,
                      temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                      seed=args.seed, stream=sys.stdout, checkpoint=args.checkpoint)
    except KeyboardInterrupt:
        print(flush=True)      # what was printed stays; end its line
        raise
    print()
    return 0


def cmd_compress(args) -> int:
    from ._memory import format_bytes
    from .compress import compress_run
    from .compress.quantize import report_run

    if args.report:
        if args.method or args.out:
            raise ValueError("--report writes nothing; drop --method and --out")
        report_run(args.run_dir)
        return 0
    if not args.method or not args.out:
        raise ValueError("compress needs --method and --out (or --report); see tinyllm "
                         "compress --help")
    r = compress_run(args.run_dir, args.method, args.out, group_size=args.group_size,
                     overwrite=args.overwrite, sparsity=args.sparsity, scope=args.scope)
    if args.method == "prune":
        print(f"{r.scheme}: {r.sparsity:.1%} of the weights of {len(r.layers)} layers are zero "
              f"(dense storage: model.safetensors {format_bytes(r.file_bytes)})")
    elif args.method in ("prune-ffn", "prune-heads"):
        what = "MLPs narrowed" if args.method == "prune-ffn" else "layers lost heads"
        print(f"{r.scheme}: {len(r.layers)} {what} | weights "
              f"{format_bytes(r.float_bytes)} -> {format_bytes(r.weight_bytes)} ({r.ratio:.1%})"
              f" | model.safetensors {format_bytes(r.file_bytes)}")
    else:
        print(f"{r.scheme}: {len(r.layers)} layers quantized | weights "
              f"{format_bytes(r.float_bytes)} -> {format_bytes(r.weight_bytes)} ({r.ratio:.1%})"
              f" | model.safetensors {format_bytes(r.file_bytes)}")
    print(f"saved to {r.out}/. Next: tinyllm eval {r.out}  or  tinyllm generate {r.out}")
    return 0


def cmd_merge(args) -> int:
    from .compress import merge_runs

    weights = None
    if args.weights is not None:
        try:
            weights = [float(w) for w in args.weights.split(",")]
        except ValueError:
            raise ValueError(f"--weights {args.weights!r}: give comma-separated numbers, one "
                             "per run") from None
    r = merge_runs(args.runs, args.out, weights=weights, overwrite=args.overwrite)
    shares = ", ".join(f"{w:.3g}" for w in r.weights)
    print(f"merged {len(r.runs)} runs ({r.tensors} tensors, weights {shares}) into {r.out}/. "
          f"Next: tinyllm eval {r.out}")
    return 0


def cmd_finetune(args) -> int:
    from .training.finetune import FineTuner, finetune_config

    if args.resume:
        if args.source or args.task:
            raise ValueError("--resume continues a fine-tuning run with its saved settings; "
                             "give no SOURCE or --task")
        trainer = FineTuner.resume(args.resume, steps=args.steps, quiet=args.quiet,
                                   check_memory=not args.ignore_memory_check)
    else:
        if not args.source or not args.task:
            raise ValueError("finetune needs a SOURCE (a run or model directory) and --task "
                             "(see tinyllm finetune --help)")
        options = {k: v for k, v in vars(args).items() if v is not None and k not in (
            "command", "source", "resume", "quiet", "threads", "overwrite",
            "ignore_memory_check")}
        trainer = FineTuner(finetune_config(args.source, **options), quiet=args.quiet,
                            overwrite=args.overwrite, check_memory=not args.ignore_memory_check)
    result = trainer.train()
    if result.status != "finished":
        return EXIT_INTERRUPTED if result.status == "interrupted" else 1
    test = trainer.scores("test")
    scores = " | ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in test.items() if k != "loss")
    print(f"done: {result.step} steps in {result.elapsed_s:.0f} s | test {scores} (best "
          f"validation loss {result.best_val_loss:.4f})")
    print(f"saved to {result.run_dir}/. Next: tinyllm eval {result.run_dir}  or  tinyllm "
          f"predict {result.run_dir} --text ...")
    return 0


def cmd_translate(args) -> int:
    from .training.translation import translate

    texts = [args.text] if args.text is not None else [
        line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise ValueError("translate needs --text or lines on standard input; got neither")
    for line in translate(args.run_dir, texts, num_beams=args.beam,
                          max_new_tokens=args.max_new_tokens,
                          length_penalty=args.length_penalty):
        print(line, flush=True)
    return 0


def cmd_attention(args) -> int:
    from .training.attention_plot import save_attention_plot
    from .training.inference import attention_maps

    tokens, maps = attention_maps(args.run_dir, args.text, args.checkpoint)
    path = save_attention_plot(tokens, maps, args.out, args.layer, args.head)
    print(f"attention maps of {len(tokens)} tokens, {len(maps)} layers x {maps[0].shape[0]} "
          f"heads -> {path}")
    return 0


def cmd_predict(args) -> int:
    from .training.finetune import predict

    given = {k: v for k, v in vars(args).items()
             if k in ("text", "text_b", "question", "context") and v is not None}
    if not given:
        raise ValueError("predict needs --text (a classifier) or --question and --context "
                         "(question answering)")
    print(predict(args.run_dir, **given))
    return 0


def cmd_eval(args) -> int:
    from .training.finetune import evaluate_finetuned, is_finetune_run
    from .training.inference import evaluate_run
    from .training.translation import evaluate_translation, is_translation_run

    if is_finetune_run(args.run_dir):
        print(evaluate_finetuned(args.run_dir))
        return 0
    if is_translation_run(args.run_dir):
        if args.data:
            raise ValueError("a translation run is scored on its own task's splits; drop "
                             "--data (use --split)")
        r = evaluate_translation(args.run_dir, split=args.split or "test", num_beams=args.beam)
        how = "greedy" if r["num_beams"] == 1 else f"beam {r['num_beams']}"
        print(f"{r['task']} ({r['split']} split, {r['pairs']:,} pairs, {how}): exact match "
              f"{r['exact_match']:.4f} | BLEU {r['bleu']:.2f} | chrF {r['chrf']:.2f}")
        return 0
    if args.split or args.beam != 1:
        raise ValueError("--split and --beam are for translation runs (tinyllm train --model "
                         "seq2seq); this run is a language model")

    r = evaluate_run(args.run_dir, data=args.data, max_batches=args.max_batches,
                     checkpoint=args.checkpoint)
    print(f"{r['data']}: loss {r['loss']:.4f} nats/token | perplexity {r['perplexity']:.2f} | "
          f"{r['bits_per_token']:.3f} bits/token | {r['bits_per_char']:.3f} bits/char "
          f"({r['tokens']:,} tokens: {r['scope']})")
    if r["unknown_tokens"]:
        print(f"note: {r['unknown_tokens']:,} tokens are characters this run's tokenizer never "
              "saw; they were not scored (bits/char is over the known characters)")
    return 0


def cmd_info(args) -> int:
    import os

    import numpy as np

    from . import __version__, kernels
    from .models import GPT, GPTConfig, family_names, get_family

    print(f"tinyllm {__version__} (Python {sys.version.split()[0]}, NumPy {np.__version__})")
    print(f"kernels: {kernels.backend()} -- {kernels.backend_reason()}")
    from . import threads
    n, why = threads.resolve("auto")
    print(f"threads: --threads auto computes on {n} ({why})")
    print(f"thread pools now: {_blas_threads()}; OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS')}; CPUs: {os.cpu_count()}")
    print("model families (tinyllm train --model NAME):")
    width = max(map(len, family_names()))
    for family in map(get_family, family_names()):
        print(f"  {family.name:{width}s} {family.objective:10s} presets {', '.join(family.presets)}"
              f" -- {family.description}")
    print("GPT presets (parameters at a 65-character vocabulary):")
    for name in get_family("gpt").presets:
        cfg = GPTConfig.from_preset(name, vocab_size=65)
        print(f"  {name:7s} layers={cfg.n_layer} heads={cfg.n_head} n_embd={cfg.n_embd} "
              f"context={cfg.n_positions} params={GPT(cfg, seed=0).num_params():,}")
    return 0


def _blas_threads() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS threads unknown (pip install threadpoolctl to see them)"
    pools = [f"{p.get('internal_api')}={p.get('num_threads')}" for p in threadpool_info()]
    return "BLAS/OpenMP pools: " + (", ".join(pools) or "none found")


def cmd_bench(args) -> int:
    from . import bench, threads

    presets = tuple(p for p in args.presets.split(",") if p)
    n, why = threads.resolve(args.threads)
    bench.run(threads=n, presets=presets, repeats=args.repeats, memory=not args.no_memory,
              numpy_twin=not args.no_numpy, generation=not args.no_generation,
              header=f"threads: 1 and {n} ({why})")
    return 0


COMMANDS = {"train": cmd_train, "generate": cmd_generate, "eval": cmd_eval, "info": cmd_info,
            "finetune": cmd_finetune, "predict": cmd_predict, "translate": cmd_translate,
            "attention": cmd_attention,
            "scaling": cmd_scaling, "frontier-study": cmd_frontier, "mup-study": cmd_mup,
            "induction-study": cmd_induction, "accounting-study": cmd_accounting,
            "bench": cmd_bench,
            "finetune-study": cmd_finetune_study,
            "translation-study": cmd_translation_study, "compress": cmd_compress,
            "merge": cmd_merge}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `tinyllm` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        with _thread_limit(getattr(args, "threads", None)):
            code = COMMANDS[args.command](args)
        sys.stdout.flush()      # a closed pipe shows here, inside the handlers below
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (`tinyllm info | head -3`): not an error
        _silence_stdout()
        return 0
    except (ValueError, OSError) as exc:  # user errors; anything else is a bug: traceback
        return _user_error(args.command, exc)
    except BaseException:
        _abort_other_ranks(1)
        raise


def _user_error(command: str, exc: BaseException) -> int:
    """Print a user error in one line (in an MPI job: from rank 0 when every rank met it,
    else from the rank that did, which then ends the job) and return exit code 2."""
    from .distributed import launcher_rank, launcher_size

    ranks = launcher_size()
    if ranks == 1:
        print(f"tinyllm {command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    rank = launcher_rank()
    every_rank = getattr(exc, "tinyllm_all_ranks", False)
    if rank == 0 or not every_rank:
        where = "" if every_rank else f" (rank {rank} of {ranks})"
        print(f"tinyllm {command}{where}: error: {_one_line(exc)}", file=sys.stderr)
    if not every_rank:
        _abort_other_ranks(EXIT_USER_ERROR)
    return EXIT_USER_ERROR


def _abort_other_ranks(code: int) -> None:
    """In an MPI job, an error on one rank ends them all (MPI_Abort): the others would
    otherwise wait for it forever in their next collective."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized() \
            and mpi.COMM_WORLD.Get_size() > 1:
        sys.stderr.flush()
        mpi.COMM_WORLD.Abort(code)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _thread_limit(spec):
    """Compute on --threads for one command (a no-op for commands without the option)."""
    import contextlib

    if spec is None:
        return contextlib.nullcontext()
    from . import threads

    return threads.limited(threads.resolve(spec)[0])


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
