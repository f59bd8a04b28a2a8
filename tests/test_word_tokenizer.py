"""Tests for tinyllm.tokenizers.word: the pieces, lossless round trips, the vocabulary, the file."""

import doctest
import json
import random
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyllm.tokenizers.word as word_mod
from tinyllm.tokenizers import (
    DEFAULT_SPECIAL_TOKENS,
    UNK,
    CharTokenizer,
    Tokenizer,
    TokenizerFileError,
    WordTokenizer,
    split_words,
)

SCAN_COMMANDS = ["jump twice after walk left", "walk opposite right thrice and look",
                 "run around left twice", "look", "jump left after turn right"]
SCAN_ACTIONS = ["I_TURN_LEFT I_WALK I_JUMP I_JUMP", "I_TURN_RIGHT I_TURN_RIGHT I_WALK I_LOOK",
                "I_LOOK", "I_TURN_LEFT I_RUN I_TURN_LEFT I_RUN"]
DATES = ["5 décembre 2023", "le 31 janvier 1999", "5. März 2023", "am 1. Dezember",
         "5 de diciembre de 2023", "December 5, 2023", "2023年12月5日", "二〇二三年十二月五日",
         "三千零五", "5 грудня 2023 р.", "Ημερομηνία: 5/12/2023", "5 Aralık 2023"]


def _scan_command(rng):
    verbs = ["jump", "walk", "run", "look", "turn"]
    dirs = ["", " left", " right", " opposite left", " around right"]
    times = ["", " twice", " thrice"]
    part = lambda: rng.choice(verbs) + rng.choice(dirs) + rng.choice(times)  # noqa: E731
    return part() + (rng.choice([" and ", " after "]) + part() if rng.random() < 0.5 else "")


# ---------------------------------------------------------------------- the pieces


def test_pieces_of_scan_text():
    assert split_words("jump twice after walk left") == [
        "jump", " twice", " after", " walk", " left"]
    # Letters joined by underscores are one word: one token per SCAN action.
    assert split_words("I_TURN_LEFT I_WALK") == ["I_TURN_LEFT", " I_WALK"]
    assert split_words("_x_ a__b") == ["_", "x", "_", " a", "_", "_", "b"]


def test_pieces_of_dates_and_numerals():
    assert split_words("三千零五") == ["三", "千", "零", "五"]
    assert split_words("2023年12月5日") == ["2", "0", "2", "3", "年", "1", "2", "月", "5", "日"]
    assert split_words("二〇二三年") == ["二", "〇", "二", "三", "年"]
    assert split_words("5 décembre") == ["5", " décembre"]
    assert split_words("5. März") == ["5", ".", " März"]
    assert split_words("5 грудня") == ["5", " грудня"]
    # A decomposed accent stays in its word.
    nfd = unicodedata.normalize("NFD", "décembre")
    assert split_words(nfd) == [nfd]


def test_leading_space_belongs_to_the_word():
    assert split_words("jump  jump\njump") == ["jump", " ", " jump", "\n", "jump"]
    tok = WordTokenizer().train("jump jump")
    assert tok.encode("jump") != tok.encode(" jump")
    assert split_words(" 5") == [" ", "5"]          # only words take the space
    assert split_words("end  ") == ["end", "  "]


@given(text=st.text())
@settings(max_examples=300, deadline=None)
def test_pieces_join_back_to_any_text(text):
    pieces = split_words(text)
    assert "".join(pieces) == text
    assert all(split_words(p) == [p] for p in pieces)   # each piece is a piece on its own


# ---------------------------------------------------------------------- round trips


@pytest.mark.parametrize("text", SCAN_COMMANDS + SCAN_ACTIONS + DATES + [
    "", " ", "a", "  leading and trailing  ", "line\r\nbreak\n\n", "emoji 👩‍👩‍👧 ok",
    unicodedata.normalize("NFD", "5 décembre"), "tab\tand\x0bvertical", "[PAD] <|endoftext|>"])
def test_round_trip_on_training_text(text):
    tok = WordTokenizer().train(text) if text else WordTokenizer().train("x")
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert tok.unk_token_id not in ids or not text


@given(text=st.text(min_size=1))
@settings(max_examples=200, deadline=None)
def test_round_trip_is_lossless_for_any_seen_text(text):
    tok = WordTokenizer().train(text)
    assert tok.decode(tok.encode(text)) == text


def test_unseen_sentences_of_seen_pieces_round_trip():
    rng = random.Random(0)
    train = [_scan_command(rng) for _ in range(300)]
    tok = WordTokenizer().train(train + SCAN_ACTIONS + DATES)
    test = [_scan_command(rng) for _ in range(200)] + [" ".join(SCAN_ACTIONS)]
    for text in test:
        ids = tok.encode(text)
        assert tok.unk_token_id not in ids
        assert tok.decode(ids) == text
    batch = tok.encode_batch(DATES)
    assert tok.decode_batch(batch) == DATES


# ---------------------------------------------------------------------- the vocabulary


def test_vocabulary_order_is_count_then_text():
    tok = WordTokenizer().train("b a b c c b")
    # pieces "b", " a", " b", " c", " c", " b": " b" and " c" twice, then " a" and "b" once;
    # ties go by text, and the space sorts before the letters.
    assert tok.pieces == [" b", " c", " a", "b"]
    assert tok.vocab_size == 4 + len(DEFAULT_SPECIAL_TOKENS)
    assert tok.special_tokens["[PAD]"] == 4
    assert tok.pad_token_id == 4 and tok.unk_token_id == 5 and tok.eos_token_id == 9


def test_training_is_deterministic_and_order_free():
    rng = random.Random(1)
    sentences = [_scan_command(rng) for _ in range(200)] + DATES
    shuffled = sentences[:]
    rng.shuffle(shuffled)
    a, b = WordTokenizer().train(sentences), WordTokenizer().train(shuffled)
    assert a.to_json() == b.to_json()
    # A list counts each string apart: no piece spans two sentences.
    joined = WordTokenizer().train("\n".join(sentences))
    assert "\n" in joined.pieces and "\n" not in a.pieces


def test_min_frequency_and_max_vocab():
    text = "a a a b b c"
    assert WordTokenizer().train(text, min_frequency=2).pieces == [" a", " b"]
    n_special = len(DEFAULT_SPECIAL_TOKENS)
    tok = WordTokenizer().train(text, max_vocab=n_special + 1)
    assert tok.pieces == [" a"] and tok.vocab_size == n_special + 1
    assert WordTokenizer().train(text, vocab_size=n_special + 2).pieces == [" a", " b"]
    assert tok.decode(tok.encode("a b")) == "[UNK][UNK]"


def test_unknown_pieces():
    tok = WordTokenizer().train("jump twice")
    ids = tok.encode("jump thrice!")
    assert ids == [tok.pieces.index("jump"), tok.unk_token_id, tok.unk_token_id]
    assert tok.decode(ids) == "jump[UNK][UNK]"
    strict = WordTokenizer(unk="error").train("jump twice")
    with pytest.raises(ValueError, match=r"piece ' thrice' at character 4 .* unk='error'"):
        strict.encode("jump thrice")
    no_unk = WordTokenizer(special_tokens=["[PAD]"]).train("jump")
    with pytest.raises(ValueError, match=r"no \[UNK\] special token"):
        no_unk.encode("walk")
    with pytest.raises(ValueError, match="call train"):
        WordTokenizer(special_tokens=[]).encode("walk")
    assert WordTokenizer().encode("walk") == [WordTokenizer().unk_token_id]


def test_empty_string_and_special_tokens():
    tok = WordTokenizer().train(SCAN_COMMANDS)
    assert tok.encode("") == [] and tok.decode([]) == ""
    # Special-token text is plain text unless allowed, as for every tinyllm tokenizer.
    assert tok.encode("[UNK]") == [tok.unk_token_id] * 3        # "[", "UNK", "]" are unseen
    assert tok.encode("look<|endoftext|>", allowed_special="all") == [
        tok.pieces.index("look"), tok.eos_token_id]
    assert tok.decode([tok.pieces.index("look"), tok.eos_token_id]) == "look<|endoftext|>"


# ---------------------------------------------------------------------- the file


def test_save_load_and_from_dict(tmp_path):
    tok = WordTokenizer(unk="error").train(SCAN_COMMANDS + SCAN_ACTIONS + DATES)
    tok.add_special_tokens(["<2fr>"])
    path = tok.save(tmp_path / "tokenizer.json")
    loaded = Tokenizer.load(path)
    assert type(loaded) is WordTokenizer and loaded.unk == "error"
    assert loaded.pieces == tok.pieces and loaded.special_tokens == tok.special_tokens
    for text in DATES + SCAN_ACTIONS:
        assert loaded.encode(text) == tok.encode(text)
    assert Tokenizer.from_dict(tok.to_dict()).to_dict() == tok.to_dict()
    assert WordTokenizer.load(path).vocab_size == tok.vocab_size
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["type"] == "word" and data["pattern"] == word_mod.WORD_PATTERN
    assert Tokenizer._registry["word"] is WordTokenizer
    with pytest.raises(TokenizerFileError, match="not a 'char' one"):
        CharTokenizer.from_dict(tok.to_dict())


@pytest.mark.parametrize("change, message", [
    ({"pieces": ["jump", "jump twice"]}, r'"pieces"\[1\] is \'jump twice\''),
    ({"pieces": ["jump", "jump"]}, r"piece 'jump' appears twice"),
    ({"pieces": "jump"}, r'"pieces" must be a list'),
    ({"pieces": [3]}, r'"pieces"\[0\] is 3'),
    ({"pattern": r"\w+|\W"}, r"not this tinyllm's WORD_PATTERN"),
    ({"unk": "skip"}, r'"unk" must be one of'),
])
def test_bad_files_are_refused(change, message):
    data = WordTokenizer().train("jump twice").to_dict()
    data.update(change)
    with pytest.raises(TokenizerFileError, match=message):
        Tokenizer.from_dict(data)


# ---------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("call, error, message", [
    (lambda: WordTokenizer().train(""), ValueError, "cannot train on empty text"),
    (lambda: WordTokenizer().train([]), ValueError, "cannot train on empty text"),
    (lambda: WordTokenizer().train(["", ""]), ValueError, "cannot train on empty text"),
    (lambda: WordTokenizer().train(42), TypeError, "expects str or a list of str, got int"),
    (lambda: WordTokenizer().train(["a", 1]), TypeError, "expects str or a list of str"),
    (lambda: WordTokenizer().train("a\ud800"), ValueError, "lone surrogate U\\+D800"),
    (lambda: WordTokenizer().train("a", min_frequency=0), ValueError,
     "min_frequency must be a positive integer, got 0"),
    (lambda: WordTokenizer().train("a b", min_frequency=3), ValueError,
     "no piece occurs min_frequency=3 times .* occurs 1 times"),
    (lambda: WordTokenizer().train("a", max_vocab=6), ValueError,
     "max_vocab=6 leaves no room for words: the 6 special tokens"),
    (lambda: WordTokenizer().train("a", max_vocab=8, vocab_size=9), ValueError,
     "name the same limit"),
    (lambda: WordTokenizer().train("a", max_vocab=7.5), TypeError, "must be an int or None"),
    (lambda: WordTokenizer(unk="skip"), ValueError, "unk must be one of"),
    (lambda: WordTokenizer().train("a").encode(b"a"), TypeError, "expects str"),
    (lambda: WordTokenizer().train("a").decode([99]), ValueError, "outside the vocabulary"),
])
def test_bad_inputs_say_what_was_wrong(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_unk_marker_is_configurable_through_special_tokens():
    tok = WordTokenizer(special_tokens=["[PAD]", UNK]).train("a")
    assert tok.decode(tok.encode("b")) == "[UNK]"


def test_doctests():
    result = doctest.testmod(word_mod)
    assert result.attempted >= 5 and result.failed == 0
