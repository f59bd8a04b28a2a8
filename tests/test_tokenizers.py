"""Tests for tinyllm.tokenizers: round trips, BPE training, special tokens, the JSON file."""

import json
import re
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyllm.data import load_corpus
from tinyllm.tokenizers import (
    DEFAULT_SPECIAL_TOKENS,
    ENDOFTEXT,
    PRETOKENIZE_PATTERN,
    BPETokenizer,
    CharTokenizer,
    Tokenizer,
    TokenizerFileError,
    pretokenize,
)
from tinyllm.tokenizers.bpe import _encode_long_chunk, _encode_short_chunk
from tinyllm.tokenizers.special import special_pattern

ROUND_TRIP_EXAMPLES = 300

EDGE_CASES = [
    "",
    "a",
    "hello world",
    "🙂",
    "👩‍👩‍👧 family",  # emoji joined by zero-width joiners
    "👍🏽",  # emoji with a skin-tone modifier
    "中文字符和日本語のテキスト",
    "e\u0301 n\u0303",  # combining marks
    "line one\r\nline two\r\n",
    "nul\x00byte",
    "   leading and trailing   ",
    "tabs\t\tand\x0bvertical\x0cfeeds",
    "1234567890 3.14159",
    "__dunder__ _private snake_case",
    "don't we'll they're I'd",
    "\u200b\ufeff\u2028",  # zero-width space, BOM, line separator
    "[PAD][UNK]<|endoftext|>[MASK]",
    "\U0010ffff\U0001f600",
]


@pytest.fixture(scope="module")
def prose():
    try:
        return load_corpus("pydoc").text[:60_000]
    except RuntimeError:  # a Python build without pydoc_data: code is text too
        return load_corpus("stdlib", max_bytes=60_000).text


@pytest.fixture(scope="module")
def bpe(prose):
    return BPETokenizer().train(prose, vocab_size=512)


@pytest.fixture(scope="module")
def char(prose):
    return CharTokenizer().train(prose)


# ---------------------------------------------------------------------- round trips


@pytest.mark.parametrize("text", EDGE_CASES)
@pytest.mark.parametrize("allowed", ["none", "all"])
def test_bpe_round_trip_edge_cases(bpe, text, allowed):
    ids = bpe.encode(text, allowed_special=allowed)
    assert bpe.decode(ids) == text
    assert all(0 <= i < bpe.vocab_size for i in ids)


@settings(
    max_examples=ROUND_TRIP_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=st.text())
def test_bpe_round_trip_any_unicode(bpe, text):
    assert bpe.decode(bpe.encode(text)) == text
    assert bpe.decode(bpe.encode(text, allowed_special="all")) == text


special_mixed_text = st.lists(
    st.one_of(st.text(max_size=8), st.sampled_from(DEFAULT_SPECIAL_TOKENS)), max_size=8
).map("".join)


@settings(
    max_examples=ROUND_TRIP_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=special_mixed_text)
def test_bpe_round_trip_with_special_text(bpe, text):
    plain = bpe.encode(text)
    assert bpe.decode(plain) == text
    assert not set(plain) & bpe.special_ids  # never a control id unless allowed
    assert bpe.decode(bpe.encode(text, allowed_special="all")) == text


@settings(
    max_examples=ROUND_TRIP_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_char_round_trip_on_training_characters(char, data):
    text = data.draw(st.text(alphabet=st.sampled_from(char.chars)))
    assert char.decode(char.encode(text)) == text


@given(text=st.text())
@settings(max_examples=ROUND_TRIP_EXAMPLES, deadline=None)
def test_pretokenizer_covers_every_character(text):
    assert "".join(pretokenize(text)) == text


def test_pretokenizer_keeps_classes_apart():
    assert pretokenize("Hello, world!  It's 12345 ok_go\n\nx") == [
        "Hello",
        ",",
        " world",
        "!",
        " ",
        " It",
        "'s",
        " 123",
        "45",
        " ok",
        "_",
        "go",
        "\n",
        "\n",
        "x",
    ]


# ---------------------------------------------------------------------- BPE training


def _naive_merges(text, n_merges, min_frequency=2):
    """Textbook BPE: recount every pair after every merge (slow, obviously right)."""
    words = Counter(re.findall(PRETOKENIZE_PATTERN, text))
    seqs = {w: list(w.encode("utf-8")) for w in words}
    merges = []
    for m in range(n_merges):
        counts = Counter()
        for w, f in words.items():
            s = seqs[w]
            for pair in zip(s, s[1:]):
                counts[pair] += f
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        if counts[best] < min_frequency:
            break
        merges.append(best)
        for w, s in seqs.items():
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    out.append(256 + m)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    return merges


def test_incremental_training_equals_naive_recount(prose):
    text = prose[:8000] + " aaaa aaa aaaaa bbbb"  # runs of one byte exercise (a, a) pairs
    tok = BPETokenizer(special_tokens=[]).train(text, vocab_size=256 + 120)
    assert tok.merges == _naive_merges(text, 120)


def test_incremental_training_on_text_without_spaces():
    text = load_corpus("markov", length=3000, alphabet=5, seed=2).text  # one 3000-byte chunk
    tok = BPETokenizer(special_tokens=[]).train(text, vocab_size=256 + 80)
    assert tok.merges == _naive_merges(text, 80)


@pytest.mark.filterwarnings("ignore:BPE training stopped")
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_long_chunk_encoder_equals_simple_loop(data):
    alphabet = st.sampled_from(b"abc")
    merges_seed = data.draw(st.lists(alphabet, min_size=50, max_size=200))
    tok = BPETokenizer(special_tokens=[]).train(
        bytes(merges_seed).decode(), 256 + 30, min_frequency=1
    )
    ids = data.draw(st.lists(alphabet, min_size=0, max_size=300))
    assert _encode_long_chunk(list(ids), tok._ranks) == _encode_short_chunk(list(ids), tok._ranks)


def test_training_is_deterministic_and_hits_vocab_size(prose, bpe):
    again = BPETokenizer().train(prose, vocab_size=512)
    assert again.merges == bpe.merges
    assert bpe.vocab_size == 512 == len(bpe)
    assert bpe.num_regular_tokens == 512 - len(DEFAULT_SPECIAL_TOKENS)


def test_first_merge_is_the_most_frequent_pair():
    tok = BPETokenizer(special_tokens=[]).train("ab ab ab cd", vocab_size=257)
    assert tok.merges == [(ord("a"), ord("b"))]
    assert tok.encode("ab") == [256]


def test_merges_apply_in_rank_order():
    a, b, c = b"abc"
    data = {"format": "tinyllm-tokenizer", "version": 1, "type": "bpe", "special_tokens": {}}
    first_ab = BPETokenizer.from_dict({**data, "merges": [[a, b], [b, c]]})
    first_bc = BPETokenizer.from_dict({**data, "merges": [[b, c], [a, b]]})
    assert first_ab.encode("abc") == [256, c]
    assert first_bc.encode("abc") == [a, 256]


def test_untrained_bpe_is_a_byte_tokenizer():
    tok = BPETokenizer()
    assert tok.vocab_size == 256 + len(DEFAULT_SPECIAL_TOKENS)
    assert tok.encode("hé") == list("hé".encode())


def test_bpe_compresses_english(prose, bpe):
    ids = bpe.encode(prose)
    assert len(ids) < 0.5 * len(prose.encode())


def test_bpe_encode_cache_gives_identical_ids(prose, bpe):
    fresh = BPETokenizer.from_dict(bpe.to_dict())  # cold cache
    assert fresh.encode(prose[:5000]) == bpe.encode(prose[:5000])


def test_bpe_vocab_size_too_small():
    with pytest.raises(ValueError, match=r"vocab_size=100 is too small.*at least 262"):
        BPETokenizer().train("hello", vocab_size=100)


def test_bpe_stops_early_with_a_warning():
    with pytest.warns(UserWarning, match=r"stopped after \d+ of 994 merges"):
        tok = BPETokenizer(special_tokens=[]).train("abab", vocab_size=1250)
    assert tok.vocab_size < 1250


# ---------------------------------------------------------------------- special tokens


def test_special_ids_follow_regular_vocabulary(bpe, char):
    for tok in (bpe, char):
        expected = {t: tok.num_regular_tokens + i for i, t in enumerate(DEFAULT_SPECIAL_TOKENS)}
        assert tok.special_tokens == expected
        assert tok.pad_token_id == expected["[PAD]"]
        assert tok.unk_token_id == expected["[UNK]"]
        assert tok.cls_token_id == expected["[CLS]"]
        assert tok.sep_token_id == expected["[SEP]"]
        assert tok.mask_token_id == expected["[MASK]"]
        assert tok.eos_token_id == expected[ENDOFTEXT]


def test_missing_special_token_ids_are_none():
    tok = CharTokenizer(special_tokens=[ENDOFTEXT]).train("abc")
    assert tok.pad_token_id is None and tok.eos_token_id == 3
    with pytest.raises(ValueError, match=r"no special token '\[MASK\]'.*add_special_tokens"):
        tok.require_special("[MASK]")


@pytest.mark.parametrize("name", ["bpe", "char"])
def test_special_text_is_plain_text_by_default(name, request):
    tok = request.getfixturevalue(name)
    text = "the end<|endoftext|>[CLS] new start"
    plain = tok.encode(text)
    assert not set(plain) & tok.special_ids
    assert tok.decode(plain) == text
    control = tok.encode(text, allowed_special="all")
    assert control.count(tok.eos_token_id) == 1 and control.count(tok.cls_token_id) == 1
    assert tok.decode(control) == text
    only_eos = tok.encode(text, allowed_special={ENDOFTEXT})
    assert tok.eos_token_id in only_eos and tok.cls_token_id not in only_eos


def test_special_tokens_are_never_split(bpe):
    for special, i in bpe.special_tokens.items():
        assert bpe.encode(f"x{special}y", allowed_special="all")[1:-1] == [i]


@pytest.mark.filterwarnings("ignore:BPE training stopped")
def test_training_never_merges_across_special_tokens():
    text = ("hello<|endoftext|>" * 50) + "[SEP]" * 50
    tok = BPETokenizer().train(text, vocab_size=300, min_frequency=1)
    learned = [tok.token_bytes(i) for i in range(256, tok.num_regular_tokens)]
    assert not any(b"<|" in t or b"|>" in t or b"[S" in t for t in learned)


def test_disallowed_special_raises(bpe):
    with pytest.raises(ValueError, match=r"special token '<\|endoftext\|>' at position 3"):
        bpe.encode("abc<|endoftext|>", disallowed_special="all")
    assert bpe.encode("abc<|endoftext|>", allowed_special="all", disallowed_special="all")


def test_unknown_allowed_special_lists_known(bpe):
    with pytest.raises(ValueError, match=r"\['<\|bogus\|>'\].*special tokens are \['\[PAD\]'"):
        bpe.encode("x", allowed_special={"<|bogus|>"})
    with pytest.raises(ValueError, match="must be 'all', 'none' or a set"):
        bpe.encode("x", allowed_special="some")


def test_user_defined_special_tokens(prose):
    tok = BPETokenizer(special_tokens=["<|user|>", "<|assistant|>"]).train(prose[:5000], 300)
    assert tok.special_tokens == {"<|user|>": 298, "<|assistant|>": 299}
    (tool,) = tok.add_special_tokens(["<|tool|>"])
    assert tool == 300 and tok.vocab_size == 301
    text = "<|user|>hi<|tool|>"
    ids = tok.encode(text, allowed_special="all")
    assert ids[0] == 298 and ids[-1] == 300
    assert tok.decode(ids) == text


def test_longest_special_token_wins():
    pattern = special_pattern(["<|a|>", "<|a|>x"])
    assert pattern.split("<|a|>x<|a|>") == ["", "<|a|>x", "", "<|a|>", ""]


def test_bad_special_token_lists():
    with pytest.raises(ValueError, match="listed twice"):
        BPETokenizer(special_tokens=["[PAD]", "[PAD]"])
    with pytest.raises(ValueError, match="non-empty string"):
        CharTokenizer(special_tokens=[""])
    with pytest.raises(TypeError, match="wrap it in a list"):
        CharTokenizer(special_tokens="[PAD]")


# ---------------------------------------------------------------------- CharTokenizer


def test_char_vocabulary_and_unk(char):
    assert char.chars == sorted(set(char.chars))
    ids = char.encode("a\u2603b")  # the snowman is not in the pydoc text
    assert ids[1] == char.unk_token_id
    assert char.decode(ids) == "a[UNK]b"


def test_char_unk_error_names_character_and_position():
    tok = CharTokenizer(unk="error").train("abc")
    with pytest.raises(ValueError, match=r"'\u2603' \(U\+2603\) at position 2.*unk='error'"):
        tok.encode("ab\u2603")


def test_char_without_unk_token_explains():
    tok = CharTokenizer(special_tokens=[ENDOFTEXT]).train("abc")
    with pytest.raises(ValueError, match=r"'z' \(U\+007A\) at position 0.*no \[UNK\]"):
        tok.encode("z")


def test_char_vocab_size_keeps_most_frequent():
    tok = CharTokenizer(special_tokens=["[UNK]"]).train("aaaabbbcc d", vocab_size=3)
    assert tok.chars == ["a", "b"]
    assert tok.encode("abc") == [0, 1, 2]
    with pytest.raises(ValueError, match=r"vocab_size=1 leaves no room.*at least 2"):
        CharTokenizer(special_tokens=["[UNK]"]).train("abc", vocab_size=1)


def test_char_bad_arguments():
    with pytest.raises(ValueError, match=r"unk must be one of \('replace', 'error'\)"):
        CharTokenizer(unk="skip")
    with pytest.raises(ValueError, match="empty text"):
        CharTokenizer().train("")


# ---------------------------------------------------------------------- bad input


def test_decode_rejects_ids_outside_vocabulary(bpe):
    message = r"token id 9999 at position 1 .*vocab_size is 512.*0\.\.511"
    with pytest.raises(ValueError, match=message):
        bpe.decode([1, 9999])
    with pytest.raises(ValueError, match=r"token id -1 at position 0"):
        bpe.decode(np.array([-1, 3]))
    with pytest.raises(TypeError, match="must be integers"):
        bpe.decode([1.0, 2.0])
    with pytest.raises(TypeError, match="1-D sequence"):
        bpe.decode(np.zeros((2, 2), dtype=np.int64))


def test_decode_accepts_numpy_and_empty(bpe):
    ids = bpe.encode("numpy ids")
    assert bpe.decode(np.array(ids, dtype=np.uint16)) == "numpy ids"
    assert bpe.decode([]) == ""
    assert bpe.decode_batch([ids, []]) == ["numpy ids", ""]
    assert bpe.encode_batch(["a", "b"]) == [bpe.encode("a"), bpe.encode("b")]


def test_encode_rejects_non_text(bpe):
    with pytest.raises(TypeError, match="expects str, got bytes"):
        bpe.encode(b"bytes")
    with pytest.raises(ValueError, match=r"lone surrogate U\+D800 at position 1"):
        bpe.encode("a\ud800")


# ---------------------------------------------------------------------- save / load


@pytest.mark.parametrize("name", ["bpe", "char"])
def test_save_load_round_trip(name, request, tmp_path, prose):
    tok = request.getfixturevalue(name)
    path = tok.save(tmp_path / "tok.json")
    for loader in (Tokenizer.load, type(tok).load):
        back = loader(path)
        assert type(back) is type(tok)
        assert back.to_dict() == tok.to_dict()
        assert back.encode(prose[:3000]) == tok.encode(prose[:3000])
    data = json.loads(path.read_text(encoding="utf-8"))
    assert (data["format"], data["version"], data["type"]) == ("tinyllm-tokenizer", 1, name)


def test_saved_file_is_readable(bpe, tmp_path):
    text = bpe.save(tmp_path / "bpe.json").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert f"    [{bpe.merges[0][0]}, {bpe.merges[0][1]}]," in lines  # one merge per line
    assert any(line.strip().startswith('"256": ') for line in lines)  # readable vocab preview


def _write(tmp_path, content):
    path = tmp_path / "bad.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


GOOD = {"format": "tinyllm-tokenizer", "version": 1, "type": "bpe", "merges": [[97, 98]]}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", r"not valid JSON \(Expecting property name .* line 1, column 2\)"),
        (b"\xff\xfe{}", r"not UTF-8 text \(byte 0xff at offset 0\)"),
        ([1, 2], "expected a JSON object, got list"),
        ({**GOOD, "format": "pickle"}, "not a tinyllm tokenizer file.*'pickle'"),
        ({**GOOD, "version": 99}, "unsupported tokenizer file version 99; this tinyllm reads"),
        ({**GOOD, "type": "wordpiece"}, r"unknown tokenizer type 'wordpiece'; known types are"),
        ({**GOOD, "merges": [[97, 300]]}, r"merge 0 is \[97, 300\].*ids in 0\.\.255"),
        ({**GOOD, "merges": [[97]]}, r"merge 0 is \[97\]"),
        ({**GOOD, "merges": "ab"}, '"merges" must be a list'),
        ({**GOOD, "pattern": "(unclosed"}, "not a valid regular expression"),
        ({**GOOD, "special_tokens": [1]}, '"special_tokens" must be an object'),
        ({**GOOD, "vocab": {"256": "xy"}}, '"vocab" disagrees with "merges" at id 256'),
        ({**GOOD, "vocab": {"256": "ab", "257": "c"}}, "at id 257"),
        ({**GOOD, "special_tokens": {"[PAD]": 5}}, r"special-token ids \[5\] must be exactly 257"),
        ({**GOOD, "special_tokens": {"[PAD]": "x"}}, "ids must be integers"),
        (
            {"format": "tinyllm-tokenizer", "version": 1, "type": "char", "chars": ["a", "a"]},
            "character 'a' appears twice",
        ),
        (
            {"format": "tinyllm-tokenizer", "version": 1, "type": "char", "chars": ["ab"]},
            "each entry must be one character",
        ),
    ],
)
def test_malformed_files_raise_clear_errors(tmp_path, content, message):
    if isinstance(content, dict):
        content = {"special_tokens": {}, **content}
    path = _write(tmp_path, content)
    with pytest.raises(TokenizerFileError, match=message):
        Tokenizer.load(path)


def test_loading_the_wrong_type_says_so(char, tmp_path):
    path = char.save(tmp_path / "char.json")
    with pytest.raises(TokenizerFileError, match="holds a 'char' tokenizer, not a 'bpe' one"):
        BPETokenizer.load(path)
