"""Question answering by fine-tuning: BERT's extractive head and GPT's generated answers."""

import json

import numpy as np
import pytest

from tinyllm.cli import main
from tinyllm.models import get_family
from tinyllm.tasks import load_task
from tinyllm.training import TrainConfig, Trainer
from tinyllm.training.finetune import FineTuner, finetune_config
from tinyllm.training.task_objectives import ExtractiveQA, GenerativeQA, _best_span

NAMES = ["mary", "john", "sandra", "daniel"]
PLACES = ["kitchen", "garden", "office", "hallway", "bedroom"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("qa")
    rng = np.random.default_rng(0)
    paragraphs = []
    for k in range(160):
        who, where = rng.choice(NAMES), rng.choice(PLACES)
        other = rng.choice([n for n in NAMES if n != who])
        context = f"{who} went to the {where}. {other} left."
        paragraphs.append({"context": context, "qas": [{
            "id": f"q{k}", "question": f"where is {who}?",
            "answers": [{"text": where, "answer_start": context.index(where)}]}]})
    squad = root / "qa.json"
    squad.write_text(json.dumps({"data": [{"title": "t", "paragraphs": paragraphs}]}))
    text = root / "text.txt"
    # the sources read the generative prompt's form too ("Q:", "A:")
    text.write_text("\n".join(f"{p['context']}\nQ: {p['qas'][0]['question']}\nA: "
                              f"{p['qas'][0]['answers'][0]['text']}" for p in paragraphs) * 3)
    return root, text, squad


@pytest.fixture(scope="module")
def sources(files):
    root, text, _ = files
    return {family: Trainer(TrainConfig(model=family, data=str(text), preset="nano", steps=4,
                                        eval_interval=4, eval_iters=1, batch_size=4,
                                        block_size=64, sample_tokens=0,
                                        out=str(root / "runs")), quiet=True).train().run_dir
            for family in ("bert", "gpt")}


@pytest.fixture(params=["bert", "gpt"])
def source(request, sources):
    return sources[request.param]


def _objective(files, sources, family, cls):
    from tinyllm.training.sources import load_source

    tokenizer = load_source(sources[family]).tokenizer
    return cls(load_task(f"squad:{files[2]}"), tokenizer, get_family(family), 64)


def test_extractive_targets_point_at_the_answer(files, sources):
    objective = _objective(files, sources, "bert", ExtractiveQA)
    batch = objective.encode("train", range(20))
    for row, s, e, ex in zip(batch["input_ids"], batch["start_positions"],
                             batch["end_positions"], objective.task.train[:20]):
        assert objective.tokenizer.decode(row[s:e + 1]) == ex.answer


def test_generative_labels_are_the_answer_alone(files, sources):
    objective = _objective(files, sources, "gpt", GenerativeQA)
    batch = objective.encode("train", range(20))
    for labels, ex in zip(batch["labels"], objective.task.train[:20]):
        # the space after "A:" is the answer's first token (one word with it, as in text)
        assert objective.tokenizer.decode(labels[labels != -100]) == " " + ex.answer + "\n"


def test_best_span_is_the_exhaustive_best():
    rng = np.random.default_rng(0)
    for _ in range(20):
        start, end = rng.standard_normal(12), rng.standard_normal(12)
        best = max(((s, e) for s in range(12) for e in range(s, 12)),
                   key=lambda p: start[p[0]] + end[p[1]])
        assert _best_span(start, end) == best


def test_qa_finetuning_trains_evaluates_and_answers(files, source, tmp_path, capsys):
    root, _, squad = files
    tuner = FineTuner(finetune_config(source, task=f"squad:{squad}", steps=20,
                                      eval_interval=10, batch_size=8, lr=3e-3,
                                      out=str(tmp_path)), quiet=True)
    result = tuner.train()
    assert result.status == "finished"
    assert {"val_exact_match", "val_f1"} <= set(result.last_eval)
    capsys.readouterr()
    assert main(["eval", str(result.run_dir)]) == 0
    assert "exact match" in capsys.readouterr().out
    context = "daniel went to the garden. mary left."
    assert main(["predict", str(result.run_dir), "--question", "where is daniel?",
                 "--context", context]) == 0
    answer = capsys.readouterr().out.rstrip("\n")
    assert "bert" not in source.name or answer in context


def test_an_lstm_answers_by_generation(files, tmp_path, capsys):
    root, text, squad = files
    config = TrainConfig(model="lstm", data=str(text), preset="nano", steps=2, eval_interval=2,
                         eval_iters=1, batch_size=2, sample_tokens=0, out=str(tmp_path))
    lstm = Trainer(config, quiet=True).train().run_dir
    assert main(["finetune", str(lstm), "--task", f"squad:{squad}", "--steps", "4",
                 "--out", str(tmp_path), "--quiet"]) == 0
    assert "test exact match" in capsys.readouterr().out


def test_a_word_level_answer_is_the_word_of_running_text(files):
    """With a word tokenizer the answer after "A:" is the token " kitchen" of "went to the
    kitchen" (one the source has seen), not "kitchen" alone, which would be [UNK]."""
    from tinyllm.tokenizers import WordTokenizer

    task = load_task(f"squad:{files[2]}")
    tokenizer = WordTokenizer().train("\n".join("".join(GenerativeQA.prompt_and_target(ex))
                                                for ex in task.train[:1] + task.test))
    objective = GenerativeQA(task, tokenizer, get_family("gpt"), 64)
    batch = objective.encode("test", range(len(task.test)))
    for labels, ex in zip(batch["labels"], task.test):
        answer = labels[labels != -100]
        assert [tokenizer.id_to_token(i) for i in answer] == [" " + ex.answer, "\n"]


def _word_objective(cls, task):
    from tinyllm.tokenizers import WordTokenizer

    text = "\n".join(f"{ex.context}\n{ex.question}" for s in ("train", "test")
                     for ex in task.split(s))
    return cls(task, WordTokenizer().train(text), get_family("bert"), 160)


def test_word_level_extractive_targets_are_the_answer_word():
    """A word tokenizer's spans: the target tokens are the answer's word (" kitchen", with
    its space), and a span read back from the context is the answer itself."""
    objective = _word_objective(ExtractiveQA, load_task("babi1"))
    examples = objective.task.test[:40]
    batch = objective.encode("test", range(40))
    rows = objective._rows(examples)
    for row, s, e, ex, (_, _, offset, at) in zip(batch["input_ids"], batch["start_positions"],
                                                  batch["end_positions"], examples, rows):
        assert s > 0, "babi1's answers fit the block"
        assert objective.tokenizer.decode(row[s:e + 1]) == " " + ex.answer
        assert ex.context[at[s - offset]:at[e - offset + 1]].strip() == ex.answer


def test_word_level_extractive_answers_read_the_predicted_span():
    """answers() returns the context's text under the best span: a model whose logits peak at
    the gold tokens answers every question exactly."""
    from types import SimpleNamespace

    objective = _word_objective(ExtractiveQA, load_task("babi2"))
    examples = objective.task.test[:16]
    batch = objective.encode("test", range(16))
    start = np.full(batch["input_ids"].shape, -5.0)
    end = start.copy()
    rows = np.arange(16)
    start[rows, batch["start_positions"]] = 5.0
    end[rows, batch["end_positions"]] = 5.0
    gold = SimpleNamespace(start_logits=SimpleNamespace(data=start),
                           end_logits=SimpleNamespace(data=end))
    assert objective.answers(lambda **_: gold, examples) == [ex.answer for ex in examples]


def test_extractive_qa_refuses_a_bpe_tokenizer():
    from tinyllm.tokenizers import BPETokenizer

    task = load_task("babi1")
    tokenizer = BPETokenizer().train(task.train[0].context * 20, vocab_size=280)
    objective = ExtractiveQA(task, tokenizer, get_family("bert"), 160)
    with pytest.raises(ValueError, match="one token per piece.*bpe tokenizer makes"):
        objective.encode("train", range(2))


@pytest.mark.parametrize("family", ["gpt", "lstm"])
def test_batched_generative_answers_are_greedy_generation(files, tmp_path, family):
    """The batch's answers (rows padded on the right, read at their own last token) are what
    `model.generate` writes for each prompt alone."""
    from tinyllm.training.inference import load_run

    root, text, squad = files
    run = Trainer(TrainConfig(model=family, data=str(text), preset="nano", steps=1,
                              eval_interval=1, eval_iters=1, batch_size=4, block_size=64,
                              sample_tokens=0, out=str(tmp_path)), quiet=True).train().run_dir
    model, tokenizer, _ = load_run(run)
    rng = np.random.default_rng(0)
    for p in model.parameters():         # large random weights: varied answers and lengths
        p.data += rng.normal(0.0, 0.5, p.data.shape).astype(p.data.dtype)
    objective = GenerativeQA(load_task(f"squad:{squad}"), tokenizer, get_family(family), 64)
    examples = objective.task.test[:12]
    newline = tokenizer.encode("\n")[0]
    expected = []
    for ex in examples:
        prompt = np.array(tokenizer.encode(objective.prompt_and_target(ex)[0])[-64:])
        out = model.generate(prompt[None], 30, do_sample=False, eos_token_id=newline)
        expected.append(tokenizer.decode(out[0, len(prompt):]).split("\n", 1)[0].strip())
    assert len({len(objective._ids(ex)[0]) for ex in examples}) > 1     # ragged prompts
    assert objective.answers(model, examples) == expected
    assert len(set(expected)) > 1, expected      # not all one (or empty) answer


# ---------------------------------------------------------------------- the statement prompt
@pytest.fixture(scope="module")
def babi_gpt(tmp_path_factory):
    """A GPT with a word tokenizer of the study's "babi" pre-training text (a few steps)."""
    from tinyllm.tasks.babi import pretraining_text

    root = tmp_path_factory.mktemp("babi")
    text = root / "babi.txt"
    text.write_text(pretraining_text(stories=200, questions=200))
    return Trainer(TrainConfig(model="gpt", data=str(text), tokenizer="word", preset="nano",
                               steps=2, eval_interval=2, eval_iters=1, batch_size=2,
                               block_size=128, sample_tokens=0, out=str(root)),
                   quiet=True).train().run_dir


def test_a_statement_prompt_asks_in_the_narrators_words(babi_gpt):
    """Prompt form "statement": the story, then "Mary is in the"; the labels are the
    answer's word (with its space) and the newline."""
    from tinyllm.training.sources import load_source

    tokenizer = load_source(babi_gpt).tokenizer
    task = load_task("babi1")
    objective = GenerativeQA(task, tokenizer, get_family("gpt"), 128, "statement")
    batch = objective.encode("test", range(8))
    for ids, labels, ex in zip(batch["input_ids"], batch["labels"], task.test[:8]):
        n = int(np.flatnonzero(labels != -100)[0]) + 1          # prompt tokens
        assert tokenizer.decode(ids[:n]).endswith(f"\n{ex.statement}")
        assert [tokenizer.id_to_token(i) for i in labels[labels != -100]] == \
            [" " + ex.answer, "\n"]


def test_finetune_with_a_statement_prompt_and_predict(babi_gpt, tmp_path, capsys):
    """`tinyllm finetune --prompt statement` keeps the form in the run; `tinyllm predict`
    completes --question as the statement, as the run's objective answers it."""
    from tinyllm.tasks import QAExample
    from tinyllm.training.finetune import _run_objective

    assert main(["finetune", str(babi_gpt), "--task", "babi1", "--prompt", "statement",
                 "--steps", "2", "--batch-size", "2", "--out", str(tmp_path), "--quiet"]) == 0
    run = next(p for p in tmp_path.iterdir() if (p / "train_config.json").is_file())
    assert json.loads((run / "train_config.json").read_text())["prompt"] == "statement"
    capsys.readouterr()
    context = "Mary went to the kitchen.\nJohn moved to the office."
    assert main(["predict", str(run), "--question", "Mary is in the", "--context",
                 context]) == 0
    model, objective = _run_objective(run)
    example = QAExample("x", context, "Where is Mary?", ("kitchen",), (17,), "Mary is in the")
    assert capsys.readouterr().out.strip() == objective.answers(model, [example])[0]


def test_a_statement_prompt_needs_a_causal_lm_and_a_task_that_has_one(files, sources,
                                                                     tmp_path, capsys):
    root, _, squad = files
    assert main(["finetune", str(sources["bert"]), "--task", "babi1", "--prompt",
                 "statement", "--steps", "1", "--out", str(tmp_path)]) == 2
    assert "prompt form 'statement' is how a causal LM is asked a question; a bert on " \
           "'babi1-1k' (ExtractiveQA) has no prompt: drop it" in capsys.readouterr().err
    assert main(["finetune", str(sources["gpt"]), "--task", f"squad:{squad}", "--prompt",
                 "statement", "--steps", "1", "--out", str(tmp_path)]) == 2
    assert "question(s) have no statement form (the first: 'where is" in \
        capsys.readouterr().err
    assert not [p for p in tmp_path.iterdir()]            # nothing written
    with pytest.raises(ValueError, match="unknown prompt 'cloze'; accepted: question, "
                       "statement"):
        finetune_config(sources["gpt"], task=f"squad:{squad}", prompt="cloze")
