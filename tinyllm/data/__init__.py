"""Corpora and datasets: text that needs no download, token streams, and training batches.

Data flows one way: ``load_corpus`` gives text, a tokenizer turns it into ids once
(``encode_corpus``, cached as a ``.npy`` memmap), ``train_val_split`` cuts the stream, and the
batchers hand out NumPy ``int64`` arrays: ``(x, y)`` windows for GPT, masked sentence pairs
for BERT. Nothing here imports the autograd engine or the models.

>>> from tinyllm.data import load_corpus, encode_corpus, train_val_split, LMBatcher
>>> from tinyllm.tokenizers import CharTokenizer
>>> corpus = load_corpus("markov", length=5000)
>>> tok = CharTokenizer().train(corpus.text)
>>> train, val = train_val_split(encode_corpus(corpus, tok))
>>> x, y = next(LMBatcher(train, batch_size=4, block_size=16, seed=0))
>>> x.shape, x.dtype.name
((4, 16), 'int64')
"""

from .corpora import (
    CORPORA,
    Corpus,
    MarkovSource,
    list_corpora,
    load_corpus,
    markov_corpus,
    pydoc_corpus,
    stdlib_corpus,
    stdlib_files,
    text_file_corpus,
)
from .datasets import (
    IGNORE_INDEX,
    BertBatcher,
    LMBatcher,
    as_generator,
    cache_key,
    encode_corpus,
    eval_batches,
    get_batch,
    id_dtype,
    make_pair_batch,
    mlm_mask,
    train_val_split,
)

__all__ = [
    "CORPORA",
    "Corpus",
    "MarkovSource",
    "list_corpora",
    "load_corpus",
    "markov_corpus",
    "pydoc_corpus",
    "stdlib_corpus",
    "stdlib_files",
    "text_file_corpus",
    "IGNORE_INDEX",
    "BertBatcher",
    "LMBatcher",
    "as_generator",
    "cache_key",
    "encode_corpus",
    "eval_batches",
    "get_batch",
    "id_dtype",
    "make_pair_batch",
    "mlm_mask",
    "train_val_split",
]
