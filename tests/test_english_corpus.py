"""The "english" corpus: pydoc's help topics, the standard library's docstrings and prose
comments, and the Shakespeare plays, deduplicated by paragraph and shuffled by document."""

import pytest

from tinyllm.data import load_corpus


@pytest.fixture(scope="module")
def english():
    return load_corpus("english")


def test_is_large_enough_and_holds_every_source(english):
    assert english.num_bytes > 3_000_000
    sizes = english.metadata["characters"]
    assert sizes["pydoc"] > 300_000 and sizes["stdlib"] > 1_500_000
    assert sizes["shakespeare"] > 1_000_000
    assert "ROMEO:" in english.text and "Return the" in english.text
    assert "0x0041 -> LATIN CAPITAL" not in english.text         # codec tables left out


def test_no_paragraph_occurs_twice(english):
    keys = [" ".join(p.split()) for p in english.text.split("\n\n")]
    keys = [k for k in keys if k]
    assert len(keys) == len(set(keys))
    assert english.metadata["duplicate_paragraphs_dropped"] > 0


def test_the_validation_tail_mixes_the_sources(english):
    tail = english.text[int(0.9 * len(english.text)):]
    assert ":\n" in tail                          # a speaker's line of a play
    assert "Return " in tail or "return " in tail  # a docstring


def test_deterministic_and_the_seed_only_reorders(english):
    again = load_corpus("english")
    assert again.text == english.text
    assert again.metadata["sha256"] == english.metadata["sha256"]
    other = load_corpus("english", seed=1)
    assert other.text != english.text
    assert sorted(other.text.strip().split("\n\n")) == sorted(english.text.strip().split("\n\n"))


def test_without_comments_it_is_smaller(english):
    docstrings_only = load_corpus("english", comments=False)
    assert docstrings_only.num_bytes < english.num_bytes
