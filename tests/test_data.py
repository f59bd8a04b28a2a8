"""Tests for tinyllm.data: built-in corpora, the Markov source's entropy, caching and batches."""

import ast
import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyllm.data import (
    CORPORA,
    IGNORE_INDEX,
    BertBatcher,
    LMBatcher,
    MarkovSource,
    encode_corpus,
    eval_batches,
    get_batch,
    list_corpora,
    load_corpus,
    make_pair_batch,
    mlm_mask,
    train_val_split,
)
from tinyllm.tokenizers import BPETokenizer, CharTokenizer

PACKAGE = Path(__file__).resolve().parents[1] / "tinyllm"


@pytest.fixture(scope="module")
def pydoc():
    return load_corpus("pydoc")


@pytest.fixture(scope="module")
def char_tok(pydoc):
    return CharTokenizer().train(pydoc.text)


@pytest.fixture(scope="module")
def ids(pydoc, char_tok):
    return encode_corpus(pydoc.text[:50_000], char_tok)


# ---------------------------------------------------------------------- corpora


def test_corpus_names():
    assert list_corpora() == list(CORPORA) == ["pydoc", "stdlib", "shakespeare", "markov", "hmm",
                                               "english"]


def test_unknown_corpus_lists_the_known_ones():
    message = r"unknown corpus 'hamlet'.*'pydoc', 'stdlib', 'shakespeare', 'markov'"
    with pytest.raises(ValueError, match=message):
        load_corpus("hamlet")


def test_missing_file_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no file at .*nope\.txt.*'pydoc'"):
        load_corpus(tmp_path / "nope.txt")
    with pytest.raises(ValueError, match="not a regular file"):
        load_corpus(tmp_path)


def test_pydoc_corpus(pydoc):
    assert 400_000 < pydoc.num_bytes < 2_000_000
    assert " the " in pydoc.text and "lambda" in pydoc.text
    assert pydoc.entropy_rate_bits is None
    assert load_corpus("pydoc").text == pydoc.text  # deterministic


def test_shakespeare_corpus_is_the_tinyshakespeare_layout():
    corpus = load_corpus("shakespeare")
    text = corpus.text
    assert 1_100_000 < len(text) < 1_130_000 and len(set(text)) < 70
    assert text.startswith("First Citizen:\nBefore we proceed any further, hear me speak.\n\n")
    blocks = text.rstrip("\n").split("\n\n")  # every speech: "Speaker:" then its lines
    assert all(b.split("\n")[0].endswith(":") and len(b.split("\n")) >= 2 for b in blocks)
    assert "_" not in text and "**" not in text and "#" not in text  # no Markdown left
    assert corpus.metadata["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert load_corpus("shakespeare").text == text


def test_shakespeare_damaged_file_is_an_error(tmp_path, monkeypatch):
    import lzma

    from tinyllm.data import corpora

    damaged = tmp_path / "shakespeare.txt.xz"
    damaged.write_bytes(lzma.compress(b"First Citizen:\nnot the text\n"))
    monkeypatch.setattr(corpora, "SHAKESPEARE_PATH", damaged)
    with pytest.raises(RuntimeError, match=r"has SHA-256 [0-9a-f]{64}, expected .*damaged"):
        load_corpus("shakespeare")
    damaged.write_bytes(b"not xz")
    with pytest.raises(RuntimeError, match=r"cannot read the built-in Shakespeare corpus"):
        load_corpus("shakespeare")


def test_shakespeare_builder_keeps_speeches_only():
    spec = importlib.util.spec_from_file_location(
        "build_shakespeare", Path(__file__).parents[1] / "scripts" / "build_shakespeare.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    markdown = ("# Coriolanus\n\n## ACT I\n\n_Enter Citizens, with\nstaves_\n\n"
                "**First Citizen**  \nBefore we proceed,  \n_\\[To them]_  \n"
                "hear _[me]_ speak.\n\n**All**  \nSpeak.\n\n_Exeunt_\n")
    assert build.speeches(markdown) == [
        ("First Citizen", ["Before we proceed,", "hear me speak."]), ("All", ["Speak."])]


def test_pydoc_missing_names_alternatives(monkeypatch):
    monkeypatch.setitem(sys.modules, "pydoc_data.topics", None)  # import now fails
    with pytest.raises(RuntimeError, match=r"lacks pydoc_data\.topics.*'stdlib'.*'markov'"):
        load_corpus("pydoc")


def test_stdlib_corpus_size_order_and_exclusions():
    corpus = load_corpus("stdlib", max_bytes=300_000)
    assert corpus.num_bytes <= 300_000 and corpus.num_bytes > 299_990
    files = corpus.metadata["files"]
    assert files == sorted(files)
    assert not any(part in ("test", "tests", "idlelib") for f in files for part in f.split("/"))
    assert "def " in corpus.text and "import " in corpus.text
    assert load_corpus("stdlib", max_bytes=300_000).text == corpus.text


def test_stdlib_bad_size_and_unknown_option():
    with pytest.raises(ValueError, match="max_bytes must be a positive int or None, got -5"):
        load_corpus("stdlib", max_bytes=-5)
    with pytest.raises(TypeError, match=r"unknown options \['size'\]; it accepts max_bytes"):
        load_corpus("stdlib", size=10)


def test_text_file_corpus(tmp_path):
    path = tmp_path / "poem.txt"
    path.write_text("roses are red\nviolets 🙂\n", encoding="utf-8")
    corpus = load_corpus(path)
    assert corpus.text == "roses are red\nviolets 🙂\n" and corpus.name == "poem.txt"
    assert load_corpus(str(path)).text == corpus.text


def test_non_utf8_file_names_file_and_offset(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("line one\ncaf\xe9 au lait".encode("latin-1"))
    with pytest.raises(
        ValueError, match=r"latin1\.txt' is not valid UTF-8: byte 0xe9 at offset 12 "
    ):
        load_corpus(path)


def test_empty_file_says_how_long(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.txt' is empty \(0 bytes\); it needs at least 1"):
        load_corpus(path)


# ---------------------------------------------------------------------- Markov source


def test_markov_corpus_is_seeded_and_uses_its_alphabet():
    a = load_corpus("markov", length=5000, seed=3, alphabet="xyz ", order=1, branching=2)
    assert len(a.text) == 5000 and set(a.text) <= set("xyz ")
    assert (
        a.text
        == load_corpus("markov", length=5000, seed=3, alphabet="xyz ", order=1, branching=2).text
    )
    assert (
        a.text
        != load_corpus("markov", length=5000, seed=4, alphabet="xyz ", order=1, branching=2).text
    )
    assert a.entropy_rate_nats == pytest.approx(a.entropy_rate_bits * np.log(2))


def test_markov_entropy_matches_a_long_sample():
    corpus = load_corpus("markov", order=2, alphabet=16, branching=3, length=300_000, seed=0)
    source = corpus.metadata["source"]
    exact = corpus.entropy_rate_bits
    assert exact == pytest.approx(source.entropy_rate())
    # -mean log2 P(x | context) converges to H by the ergodic theorem.
    assert source.cross_entropy(corpus.text) == pytest.approx(exact, rel=0.01)
    # The plug-in estimate from counts is biased low by about (cells)/(2 N ln 2) bits.
    assert source.empirical_entropy(corpus.text) == pytest.approx(exact, rel=0.02)


def test_markov_window_entropy_is_the_floor_of_a_windowed_loss():
    corpus = load_corpus("markov", order=2, alphabet=6, branching=2, length=200_000, seed=3)
    source = corpus.metadata["source"]
    h = source.entropy_rate()
    pi = source.stationary().reshape(6, 6).sum(axis=1)           # P(x) of one symbol
    assert source.conditional_entropy(0) == pytest.approx(-(pi * np.log2(pi)).sum())
    assert source.conditional_entropy(2) == source.conditional_entropy(5) == pytest.approx(h)
    assert source.conditional_entropy(0) > source.conditional_entropy(1) > h
    # Empirically: the best predictor of the 1st target of a window sees 1 symbol, the rest 2.
    s = np.array([source.alphabet.index(c) for c in corpus.text])
    pair = np.zeros((6, 6))
    np.add.at(pair, (s[:-1], s[1:]), 1)
    cond = pair / pair.sum(axis=1, keepdims=True)
    assert -np.log2(cond[s[:-1], s[1:]]).mean() == pytest.approx(
        source.conditional_entropy(1), rel=0.01)
    T = 8
    assert source.window_entropy(T) == pytest.approx(
        (source.conditional_entropy(1) + (T - 1) * h) / T)
    assert source.window_entropy(1) == source.conditional_entropy(1)
    assert source.window_entropy(10_000) == pytest.approx(h, rel=1e-3)
    with pytest.raises(ValueError, match="block_size must be a positive integer, got 0"):
        source.window_entropy(0)
    with pytest.raises(ValueError, match="context must be a non-negative integer, got -1"):
        source.conditional_entropy(-1)


def test_stationary_distribution_matches_dense_eigenvector():
    source = MarkovSource.random(order=2, alphabet=5, branching=2, epsilon=0.05, seed=1)
    C = source.num_contexts
    P = np.zeros((C, C))  # (C, C) transition matrix between contexts
    np.add.at(P, (np.repeat(np.arange(C), 5), source.next_context().ravel()), source.probs.ravel())
    w, v = np.linalg.eig(P.T)
    pi = np.real(v[:, np.argmax(np.real(w))])
    pi /= pi.sum()
    np.testing.assert_allclose(source.stationary(), pi, atol=1e-12)
    np.testing.assert_allclose(source.stationary() @ P, source.stationary(), atol=1e-14)


def test_uniform_markov_source_has_log2_alphabet_entropy():
    source = MarkovSource.random(order=3, alphabet=6, branching=6, epsilon=1.0, seed=0)
    assert source.entropy_rate() == pytest.approx(np.log2(6), abs=1e-12)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"epsilon": 0.0}, r"epsilon must be in \(0, 1\], got 0.0; it must be positive"),
        ({"branching": 40}, r"branching must be an int in 1\.\.16"),
        ({"alphabet": "aa"}, "at least 2 distinct characters"),
        ({"alphabet": 1}, r"alphabet size must be in 2\.\.62, got 1"),
        ({"order": 9}, r"order must be an int in 0\.\.8"),
        ({"length": 0}, "length must be a positive integer, got 0"),
        ({"temperature": 2}, r"unknown options \['temperature'\]; it accepts order, alphabet"),
    ],
)
def test_markov_bad_options(options, message):
    with pytest.raises((ValueError, TypeError), match=message):
        load_corpus("markov", length=options.pop("length", 100), **options)


# ---------------------------------------------------------------------- encoding + cache


def test_encode_corpus_in_memory(pydoc, char_tok):
    out = encode_corpus(pydoc.text[:1000], char_tok)
    assert out.dtype == np.uint8 and out.shape == (1000,)
    assert char_tok.decode(out) == pydoc.text[:1000]
    with pytest.raises(ValueError, match=r"corpus 'text' is empty \(0 characters\)"):
        encode_corpus("", char_tok)


def test_cache_is_reused_not_re_encoded(tmp_path, monkeypatch):
    corpus = load_corpus("markov", length=20_000)
    tok = BPETokenizer().train(corpus.text, vocab_size=300)
    first = encode_corpus(corpus, tok, cache_dir=tmp_path)
    assert isinstance(first, np.memmap) and first.dtype == np.uint16
    assert len(list(tmp_path.glob("markov-bpe300-*.npy"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("encode() called although the ids are cached")

    monkeypatch.setattr(tok, "encode", fail)
    second = encode_corpus(corpus, tok, cache_dir=tmp_path)
    assert isinstance(second, np.memmap)
    np.testing.assert_array_equal(first, second)
    monkeypatch.undo()
    other = BPETokenizer().train(corpus.text, vocab_size=290)  # a new tokenizer: a new file
    encode_corpus(corpus, other, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npy"))) == 2


def test_damaged_cache_is_rebuilt(tmp_path, char_tok):
    mapped = encode_corpus("hello world", char_tok, cache_dir=tmp_path)
    ids = np.array(mapped)
    del mapped  # never truncate a file that is still memory-mapped
    (path,) = tmp_path.glob("*.npy")
    path.write_bytes(b"garbage")
    again = encode_corpus("hello world", char_tok, cache_dir=tmp_path)
    np.testing.assert_array_equal(ids, again)


def test_train_val_split(ids):
    train, val = train_val_split(ids, 0.1)
    assert len(train) == 45_000 and len(val) == 5_000
    np.testing.assert_array_equal(np.concatenate([train, val]), ids)
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\), got 1.5"):
        train_val_split(ids, 1.5)
    with pytest.raises(ValueError, match="cannot split 3 tokens with val_fraction=0.1"):
        train_val_split(ids[:3], 0.1)


# ---------------------------------------------------------------------- GPT batches


def test_get_batch_shapes_targets_and_seed(ids):
    x, y = get_batch(ids, batch_size=8, block_size=32, rng=0)
    assert x.shape == y.shape == (8, 32) and x.dtype == y.dtype == np.int64
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    stream = np.asarray(ids)
    for row_x, row_y in zip(x, y):
        start = next(i for i in range(len(stream)) if (stream[i : i + 32] == row_x).all())
        np.testing.assert_array_equal(stream[start + 1 : start + 33], row_y)
    x2, _ = get_batch(ids, batch_size=8, block_size=32, rng=0)
    np.testing.assert_array_equal(x, x2)
    x3, _ = get_batch(ids, batch_size=8, block_size=32, rng=1)
    assert not np.array_equal(x, x3)


def test_get_batch_accepts_lists_and_rejects_other_shapes():
    x, y = get_batch(list(range(20)), batch_size=3, block_size=4, rng=0)
    assert x.shape == (3, 4) and (y == x + 1).all()
    with pytest.raises(TypeError, match=r"1-D stream of integer token ids, got shape \(2, 10\)"):
        get_batch(np.zeros((2, 10), dtype=np.int64), batch_size=1, block_size=4)


def test_get_batch_uses_every_window():
    starts = {int(x[0, 0]) for x, _ in (get_batch(np.arange(10), 1, 4, rng=s) for s in range(200))}
    assert starts == set(range(6))  # 10 tokens hold windows starting at 0..5


def test_too_short_stream_says_both_lengths():
    message = r"has 5 tokens, but one window of block_size=8 needs at least 9"
    with pytest.raises(ValueError, match=message):
        get_batch(np.arange(5), batch_size=2, block_size=8)
    with pytest.raises(ValueError, match=r"has 8 tokens.*block_size=8 needs at least 9"):
        LMBatcher(np.arange(8), batch_size=2, block_size=8)


def test_lm_batcher_resumes_bit_identically(ids):
    a = LMBatcher(ids, batch_size=4, block_size=16, seed=7)
    for _ in range(3):
        next(a)
    state = json.loads(json.dumps(a.state_dict()))  # survives a JSON checkpoint
    expected = [next(a) for _ in range(3)]
    b = LMBatcher(ids, batch_size=4, block_size=16, seed=0)
    b.load_state_dict(state)
    assert b.step == 3
    for (x1, y1), (x2, y2) in zip(expected, (next(b) for _ in range(3))):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    with pytest.raises(ValueError, match="saved block_size=16 differs from this batcher's"):
        LMBatcher(ids, batch_size=4, block_size=32).load_state_dict(state)


def test_eval_batches_are_fixed_and_cover_the_stream():
    stream = np.arange(103)
    batches = list(eval_batches(stream, batch_size=4, block_size=10))
    xs = np.concatenate([x for x, _ in batches])
    assert xs.shape == (10, 10) and [len(x) for x, _ in batches] == [4, 4, 2]
    np.testing.assert_array_equal(xs[:, 0], np.arange(0, 100, 10))
    assert len(list(eval_batches(stream, 4, 10, max_batches=2))) == 2


# ---------------------------------------------------------------------- BERT batches


def test_mlm_mask_proportions(char_tok):
    rng = np.random.default_rng(0)
    n_regular = char_tok.num_regular_tokens
    ids = rng.integers(0, n_regular, size=(400, 500))
    ids[:, 0], ids[:, -1] = char_tok.cls_token_id, char_tok.sep_token_id
    masked, labels = mlm_mask(ids, char_tok, rng=1)
    assert masked.dtype == labels.dtype == np.int64
    selected = labels != IGNORE_INDEX
    eligible = ids.size - 2 * 400
    assert selected.sum() / eligible == pytest.approx(0.15, abs=0.003)
    assert not selected[:, 0].any() and not selected[:, -1].any()  # specials never masked
    np.testing.assert_array_equal(labels[selected], ids[selected])
    np.testing.assert_array_equal(masked[~selected], ids[~selected])
    sel_in, sel_orig = masked[selected], ids[selected]
    frac_mask = (sel_in == char_tok.mask_token_id).mean()
    frac_same = (sel_in == sel_orig).mean()
    frac_random = 1 - frac_mask - frac_same
    assert frac_mask == pytest.approx(0.8, abs=0.01)
    # "random" can redraw the original token: expect 0.1 + 0.1 / n_regular unchanged.
    assert frac_same == pytest.approx(0.1 + 0.1 / n_regular, abs=0.007)
    assert frac_random == pytest.approx(0.1 - 0.1 / n_regular, abs=0.007)
    assert not np.isin(sel_in[sel_in != char_tok.mask_token_id], list(char_tok.special_ids)).any()


def test_mlm_mask_needs_mask_token():
    tok = CharTokenizer(special_tokens=["[UNK]"]).train("abc")
    with pytest.raises(ValueError, match=r"no special token '\[MASK\]'"):
        mlm_mask(np.array([0, 1, 2]), tok)


def test_make_pair_batch_layout(char_tok):
    t = char_tok
    batch = make_pair_batch([("ab", "cde"), ("xyz", None)], t)
    cls, sep, pad = t.cls_token_id, t.sep_token_id, t.pad_token_id
    a, b, c, d, e = t.encode("abcde")
    x, y, z = t.encode("xyz")
    np.testing.assert_array_equal(
        batch["input_ids"], [[cls, a, b, sep, c, d, e, sep], [cls, x, y, z, sep, pad, pad, pad]]
    )
    np.testing.assert_array_equal(
        batch["token_type_ids"], [[0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0, 0, 0]]
    )
    np.testing.assert_array_equal(
        batch["attention_mask"], [[1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0, 0]]
    )
    trimmed = make_pair_batch([("abcdef", "xy")], t, max_length=8)["input_ids"][0]
    assert t.decode(trimmed) == "[CLS]abc[SEP]xy[SEP]"  # the longer segment is cut first
    with pytest.raises(ValueError, match="max_length=2 cannot hold the 3 special tokens"):
        make_pair_batch([("a", "b")], t, max_length=2)


def test_bert_batcher(ids, char_tok):
    batcher = BertBatcher(ids, char_tok, batch_size=64, max_length=32, seed=0)
    batch = next(batcher)
    assert set(batch) == {
        "input_ids",
        "token_type_ids",
        "attention_mask",
        "labels",
        "next_sentence_label",
    }
    for key in ("input_ids", "token_type_ids", "attention_mask", "labels"):
        assert batch[key].shape == (64, 32) and batch[key].dtype == np.int64
    assert (batch["input_ids"][:, 0] == char_tok.cls_token_id).all()
    assert ((batch["input_ids"] == char_tok.sep_token_id).sum(axis=1) == 2).all()
    padded = batch["attention_mask"] == 0
    assert (batch["input_ids"][padded] == char_tok.pad_token_id).all()
    assert (batch["labels"][padded] == IGNORE_INDEX).all()
    nsp = np.concatenate([next(batcher)["next_sentence_label"] for _ in range(10)])
    assert 0.4 < nsp.mean() < 0.6


def test_bert_batcher_true_pairs_are_contiguous(ids, char_tok):
    batch = next(BertBatcher(ids, char_tok, 32, max_length=24, seed=1, mask_prob=0.0))
    stream = np.asarray(ids).tolist()
    text = char_tok.decode(stream)
    for row, label, types in zip(
        batch["input_ids"], batch["next_sentence_label"], batch["token_type_ids"]
    ):
        seps = np.flatnonzero(row == char_tok.sep_token_id)
        a, b = row[1 : seps[0]], row[seps[0] + 1 : seps[1]]
        assert (types[1 : seps[0] + 1] == 0).all() and (types[seps[0] + 1 : seps[1] + 1] == 1).all()
        if label == 0:
            assert char_tok.decode(np.concatenate([a, b])) in text


def test_bert_batcher_resume_and_errors(ids, char_tok):
    a = BertBatcher(ids, char_tok, 4, max_length=16, seed=3)
    next(a)
    state = json.loads(json.dumps(a.state_dict()))
    expected = next(a)
    b = BertBatcher(ids, char_tok, 4, max_length=16, seed=0)
    b.load_state_dict(state)
    got = next(b)
    for key in expected:
        np.testing.assert_array_equal(expected[key], got[key])
    with pytest.raises(ValueError, match=r"has 10 tokens, but BERT rows of max_length=16 need"):
        BertBatcher(ids[:10], char_tok, 4, max_length=16)


# ---------------------------------------------------------------------- layering


@pytest.mark.parametrize("package", ["data", "tokenizers"])
def test_data_and_tokenizers_do_not_import_the_engine(package):
    forbidden = ("autograd", "nn", "models", "training", "optim")
    for path in (PACKAGE / package).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                module = ("." * node.level) + (node.module or "")
                assert not any(f in module.split(".") for f in forbidden), (path, module)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert not any(f in alias.name.split(".") for f in forbidden), (path, alias)
