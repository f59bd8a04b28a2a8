"""Tokenizers: text to integer ids and back, with special tokens and a JSON file format.

- ``CharTokenizer``: one id per character of the training text; unseen characters become
  ``[UNK]`` (or raise, with ``unk="error"``).
- ``BPETokenizer``: byte-level byte-pair encoding trained to a target vocabulary size; every
  Unicode string round-trips.
- ``WordTokenizer``: one id per word, digit, CJK ideograph, punctuation mark or space run
  (``split_words``); the tokenizer of translation, where every token is readable.
- ``Tokenizer``: their base class. ``Tokenizer.load(path)`` reads any tokenizer file.

Special tokens (``[PAD] [UNK] [CLS] [SEP] [MASK] <|endoftext|>`` by default, plus any you add)
each own one id and are never split. Their *text* in the input is plain text unless
``encode(text, allowed_special=...)`` names them (tiktoken's semantics).

>>> from tinyllm.tokenizers import BPETokenizer
>>> tok = BPETokenizer().train("the cat sat on the mat " * 50, vocab_size=270)
>>> tok.decode(tok.encode("the mat")) == "the mat"
True
"""

from .base import FILE_FORMAT, FILE_VERSION, Tokenizer, TokenizerFileError
from .bpe import PRETOKENIZE_PATTERN, BPETokenizer, pretokenize
from .char import CharTokenizer
from .special import CLS, DEFAULT_SPECIAL_TOKENS, ENDOFTEXT, MASK, PAD, SEP, UNK
from .word import WORD_PATTERN, WordTokenizer, split_words

load_tokenizer = Tokenizer.load

__all__ = [
    "Tokenizer",
    "CharTokenizer",
    "BPETokenizer",
    "WordTokenizer",
    "TokenizerFileError",
    "load_tokenizer",
    "pretokenize",
    "PRETOKENIZE_PATTERN",
    "split_words",
    "WORD_PATTERN",
    "DEFAULT_SPECIAL_TOKENS",
    "PAD",
    "UNK",
    "CLS",
    "SEP",
    "MASK",
    "ENDOFTEXT",
    "FILE_FORMAT",
    "FILE_VERSION",
]
