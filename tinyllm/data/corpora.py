"""Built-in corpora that need no download, and any UTF-8 text file.

``load_corpus(name_or_path, **options)`` returns a ``Corpus``:

- ``"pydoc"``: English prose, the help topics CPython ships in ``pydoc_data.topics`` (~465 KB).
- ``"stdlib"``: Python source from the running interpreter's standard library, files in sorted
  path order, test suites excluded; ``max_bytes`` selects the size.
- ``"shakespeare"``: nine of Shakespeare's plays in the layout of the classic
  ``tinyshakespeare`` file (``Speaker:``, the speech, a blank line; ~1.1 M characters, public
  domain), shipped compressed inside the package.
- ``"markov"``: a synthetic language from a seeded, random, sparse Markov chain whose entropy
  rate ``H`` (bits per character) is computed exactly. No model can beat a cross-entropy of
  ``H * ln 2`` nats per character on it: that is the irreducible loss of the scaling study.
- ``"english"``: the three above as English prose, deduplicated: pydoc's topics, the
  standard library's docstrings and prose comments, the plays (~3.9 MB on Python 3.11).
- ``"hmm"``: a synthetic language from a seeded, random, sparse hidden Markov model
  (`tinyllm.data.hmm`): what comes next depends on the whole past through the belief over
  1,024 hidden states, so it takes far more capacity than an order-2 chain to approach its
  entropy rate, which the forward algorithm estimates to about +-0.2%.
- anything else is read as the path of a UTF-8 text file.

>>> corpus = load_corpus("markov", length=2000, seed=1)
>>> len(corpus.text), round(corpus.entropy_rate_bits, 3)
(2000, 1.277)
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import inspect
import lzma
import os
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._checks import non_negative_int, positive_int

#: Directories of the standard library that hold tests, an IDE, or third-party packages.
STDLIB_EXCLUDED_DIRS = frozenset(
    {"test", "tests", "idle_test", "idlelib", "site-packages", "dist-packages", "__pycache__"}
)

#: Characters a Markov alphabet given as a size draws from, in order.
MARKOV_SYMBOLS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@dataclass(frozen=True)
class Corpus:
    """A named text, with its exact entropy rate when the source is synthetic."""

    name: str
    text: str = field(repr=False)
    #: Bits per character of the source that generated ``text``, or None when unknown.
    entropy_rate_bits: float | None = None
    metadata: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.text)

    @property
    def num_bytes(self) -> int:
        """Size of the text in UTF-8 bytes."""
        return len(self.text.encode("utf-8"))

    @property
    def entropy_rate_nats(self) -> float | None:
        """The entropy rate in nats per character: the floor of a character-level LM's loss."""
        return None if self.entropy_rate_bits is None else self.entropy_rate_bits * np.log(2)


def list_corpora() -> list[str]:
    """The names of the built-in corpora."""
    return list(_BUILDERS)


def load_corpus(name_or_path: str | os.PathLike, **options) -> Corpus:
    """Load a built-in corpus by name, or a UTF-8 text file by path.

    Options: ``"stdlib"`` takes ``max_bytes``; ``"markov"`` takes ``order``, ``alphabet``,
    ``branching``, ``epsilon``, ``length`` and ``seed`` (see ``markov_corpus``); ``"hmm"``
    takes ``states``, ``alphabet``, ``branching``, ``emit_branching``, ``epsilon``, ``zipf``,
    ``length`` and ``seed`` (see ``hmm_corpus``).
    """
    if isinstance(name_or_path, str) and name_or_path in _BUILDERS:
        func = _BUILDERS[name_or_path]
        accepted = list(inspect.signature(func).parameters)
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise TypeError(
                f"corpus {name_or_path!r} got unknown options {unknown}; it accepts "
                f"{', '.join(accepted) if accepted else 'none'}"
            )
        return func(**options)
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(
            f"load_corpus expects a corpus name or a path, got {type(name_or_path).__name__}"
        )
    path = Path(name_or_path)
    if options:
        raise TypeError(f"a text-file corpus takes no options, got {sorted(options)}")
    if path.is_file():
        return text_file_corpus(path)
    known = ", ".join(repr(n) for n in _BUILDERS)
    if path.exists():
        raise ValueError(f"{str(path)!r} is not a regular file; give a UTF-8 text file")
    if isinstance(name_or_path, str) and os.sep not in name_or_path and "." not in name_or_path:
        raise ValueError(
            f"unknown corpus {name_or_path!r}: the built-in corpora are {known}; "
            "anything else must be the path of a UTF-8 text file"
        )
    raise FileNotFoundError(
        f"no file at {str(path)!r}; give an existing UTF-8 text file or a built-in corpus: {known}"
    )


# ---------------------------------------------------------------------- text files


def text_file_corpus(path: str | os.PathLike) -> Corpus:
    """Read a UTF-8 text file; errors name the file and the first bad byte's offset."""
    path = Path(path)
    raw = path.read_bytes()
    if not raw:
        raise ValueError(f"corpus file {str(path)!r} is empty (0 bytes); it needs at least 1 byte")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ValueError(
            f"corpus file {str(path)!r} is not valid UTF-8: byte 0x{raw[exc.start]:02x} at "
            f"offset {exc.start} (line {line}) cannot be decoded ({exc.reason}). Convert the "
            "file to UTF-8, e.g. with iconv"
        ) from None
    return Corpus(name=path.name, text=text, metadata={"path": str(path.resolve())})


# ---------------------------------------------------------------------- pydoc


def pydoc_corpus() -> Corpus:
    """English prose: the help topics of ``pydoc_data.topics``, in sorted topic order."""
    try:
        from pydoc_data.topics import topics
    except ImportError:
        raise RuntimeError(
            f"this Python build ({sys.version.split()[0]}, {sys.executable}) lacks "
            "pydoc_data.topics, the source of the 'pydoc' corpus (some distributions strip it, "
            "e.g. Debian's python3-minimal). Use load_corpus('stdlib'), load_corpus('markov') "
            "or the path of a UTF-8 text file instead"
        ) from None
    text = "\n\n".join(topics[k].strip("\n") for k in sorted(topics)) + "\n"
    return Corpus(
        name="pydoc",
        text=text,
        metadata={"topics": len(topics), "python": sys.version.split()[0]},
    )


# ---------------------------------------------------------------------- shakespeare

#: The shipped Shakespeare text (``scripts/build_shakespeare.py`` writes it) and its checksum.
SHAKESPEARE_PATH = Path(__file__).with_name("shakespeare.txt.xz")
SHAKESPEARE_SHA256 = "a19fbe190119aeb5471a5f32e38557ea0e6def7fd8789c1781602c4ed88625aa"
SHAKESPEARE_PLAYS = (
    "Coriolanus", "Richard III", "The Winter's Tale", "Richard II", "Henry VI, Part 3",
    "Romeo and Juliet", "Measure for Measure", "The Taming of the Shrew", "The Tempest",
)


def shakespeare_corpus() -> Corpus:
    """Nine plays of Shakespeare (public domain), spoken lines only, ~1.1 M characters.

    The layout is the ``tinyshakespeare`` file's that nanoGPT's character-level recipe trains
    on: ``Speaker:`` on a line, the speech, a blank line. The text is checked against its
    SHA-256, so a damaged install is an error rather than a different corpus.
    """
    path = SHAKESPEARE_PATH
    try:
        raw = lzma.decompress(path.read_bytes())
    except (OSError, lzma.LZMAError) as exc:
        raise RuntimeError(
            f"cannot read the built-in Shakespeare corpus at {str(path)!r} ({exc}); install the "
            "package again from a checkout (pip install .) or rebuild the file with "
            "scripts/build_shakespeare.py"
        ) from None
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SHAKESPEARE_SHA256:
        raise RuntimeError(
            f"the built-in Shakespeare corpus at {str(path)!r} has SHA-256 {digest}, expected "
            f"{SHAKESPEARE_SHA256}: the file is damaged; install the package again from a "
            "checkout (pip install .)"
        )
    meta = {"plays": SHAKESPEARE_PLAYS, "sha256": digest, "licence": "public domain"}
    return Corpus(name="shakespeare", text=raw.decode("utf-8"), metadata=meta)


# ---------------------------------------------------------------------- stdlib


def stdlib_files(root: str | os.PathLike | None = None) -> list[Path]:
    """The standard library's ``.py`` files in sorted path order, test suites excluded."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in STDLIB_EXCLUDED_DIRS]
        found += [Path(dirpath) / f for f in filenames if f.endswith(".py")]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def stdlib_corpus(max_bytes: int | None = 2_000_000) -> Corpus:
    """Python source from the standard library, up to ``max_bytes`` UTF-8 bytes (None: all).

    Files are concatenated in sorted path order, so the text depends only on the Python
    version and ``max_bytes``; the last file is cut at a character boundary to fit.
    """
    if max_bytes is not None and (
        isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1
    ):
        raise ValueError(f"max_bytes must be a positive int or None, got {max_bytes!r}")
    root = Path(sysconfig.get_paths()["stdlib"])
    parts: list[bytes] = []
    used, files = 0, []
    for path in stdlib_files(root):
        try:
            data = path.read_bytes()
            data.decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # unreadable or legacy-encoded: skip rather than guess
        data += b"\n"
        if max_bytes is not None and used + len(data) > max_bytes:
            data = data[: max_bytes - used]
        parts.append(data)
        files.append(path.relative_to(root).as_posix())
        used += len(data)
        if max_bytes is not None and used >= max_bytes:
            break
    if not parts:
        raise RuntimeError(f"found no readable .py files under the standard library at {root}")
    # errors="ignore" only drops a multi-byte character cut in half by max_bytes.
    text = b"".join(parts).decode("utf-8", errors="ignore")
    meta = {"root": str(root), "files": files, "python": sys.version.split()[0]}
    return Corpus(name="stdlib", text=text, metadata=meta)


# ---------------------------------------------------------------------- Markov source


@dataclass(eq=False)
class MarkovSource:
    """An order-``k`` Markov chain over an alphabet of ``A`` characters.

    A context is the last ``k`` symbols, coded in base ``A`` with the newest symbol last:
    ``c = s[t-k] * A**(k-1) + ... + s[t-1]``. ``probs[c, x] = P(next = x | context c)``.
    Shapes: ``C = A**k`` contexts, ``probs`` is ``(C, A)``.
    """

    alphabet: str
    order: int
    probs: np.ndarray  # (C, A)

    @property
    def num_contexts(self) -> int:
        return len(self.alphabet) ** self.order

    def next_context(self) -> np.ndarray:
        """``(C, A)`` int array: the context after context ``c`` emits symbol ``x``."""
        A, C = len(self.alphabet), self.num_contexts
        c = np.arange(C)[:, None]
        return (c * A + np.arange(A)[None, :]) % C

    def stationary(self, tol: float = 1e-15, max_iter: int = 1_000_000) -> np.ndarray:
        """The stationary distribution ``pi`` over contexts, ``pi = pi P``, by power iteration.

        The chain is irreducible and aperiodic (every transition has probability at least
        ``epsilon / A``), so the iteration converges to the unique ``pi`` from any start.
        """
        C = self.num_contexts
        nxt = self.next_context().ravel()
        pi = np.full(C, 1.0 / C)
        for _ in range(max_iter):
            new = np.bincount(nxt, weights=(pi[:, None] * self.probs).ravel(), minlength=C)
            new /= new.sum()
            if np.abs(new - pi).sum() < tol:
                return new
            pi = new
        raise RuntimeError(f"stationary distribution did not converge in {max_iter} iterations")

    def entropy_rate(self) -> float:
        """Exact entropy rate in bits per symbol: ``H = sum_c pi(c) H(P(. | c))``."""
        p = self.probs
        logp = np.log2(p, where=p > 0, out=np.zeros_like(p))
        h_ctx = -(p * logp).sum(axis=1)  # (C,) bits of the next symbol in each context
        return float(self.stationary() @ h_ctx)

    def conditional_entropy(self, context: int) -> float:
        """Bits of the next symbol given only the last ``context`` symbols (0 <= context):
        ``H(X_t | X_{t-j}..X_{t-1})`` under the stationary chain, j = min(context, order).
        Falls from the unigram entropy (j = 0) to the entropy rate (j >= order)."""
        context = non_negative_int("context", context, where="MarkovSource.conditional_entropy")
        A, k = len(self.alphabet), self.order
        j = min(context, k)
        # joint[c, x] = P(context c, next x); keep the newest j symbols of c (base A digits).
        joint = self.stationary()[:, None] * self.probs                     # (C, A)
        kept = np.arange(self.num_contexts) % A**j                          # (C,)
        marginal = np.zeros((A**j, A))
        np.add.at(marginal, kept, joint)                                    # (A^j, A)
        cond = marginal / marginal.sum(axis=1, keepdims=True)
        logc = np.log2(cond, where=cond > 0, out=np.zeros_like(cond))
        return float(-(marginal * logc).sum())

    def window_entropy(self, block_size: int) -> float:
        """The least mean loss, in bits, of a model that sees only its window: a language
        model on windows of ``block_size`` inputs predicts its i-th target from i + 1 symbols,
        so the first ``order - 1`` predictions cannot reach the entropy rate. This, not the
        rate, is the floor of a loss measured on such windows; it tends to the rate as the
        window grows."""
        block_size = positive_int("block_size", block_size, where="MarkovSource.window_entropy")
        head = min(block_size, self.order)
        known = sum(self.conditional_entropy(i + 1) for i in range(head))
        return (known + (block_size - head) * self.entropy_rate()) / block_size

    def window_floor_nats(self, block_size: int) -> float:
        """``window_entropy`` in nats: the floor of a loss measured on such windows (the
        interface the scaling study reads a synthetic source's floor through)."""
        return self.window_entropy(block_size) * float(np.log(2))

    def sample(self, length: int, seed=0) -> str:
        """``length`` characters of the chain, started from its stationary distribution."""
        rng = np.random.default_rng(seed)
        A, k, C = len(self.alphabet), self.order, self.num_contexts
        c = int(rng.choice(C, p=self.stationary()))
        start = [(c // A ** (k - 1 - j)) % A for j in range(k)]
        cum_rows = cumulative_rows(self.probs).tolist()
        out = start[:length]
        draws = rng.random(max(length - k, 0)).tolist()
        append, search = out.append, bisect.bisect_right
        for u in draws:  # sequential by nature: each symbol picks the next row
            x = search(cum_rows[c], u)
            append(x)
            c = (c * A + x) % C
        return "".join([self.alphabet[x] for x in out])

    def _codes(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Context codes ``(N-k,)`` and next symbols ``(N-k,)`` of ``text``."""
        index = {ch: i for i, ch in enumerate(self.alphabet)}
        try:
            s = np.fromiter((index[ch] for ch in text), dtype=np.int64, count=len(text))
        except KeyError as exc:
            raise ValueError(
                f"text holds {exc.args[0]!r}, which is not in the alphabet {self.alphabet!r}"
            ) from None
        A, k = len(self.alphabet), self.order
        if len(s) <= k:
            raise ValueError(f"text has {len(s)} characters; needs more than order={k}")
        ctx = np.zeros(len(s) - k, dtype=np.int64)
        for j in range(k):
            ctx = ctx * A + s[j : len(s) - k + j]
        return ctx, s[k:]

    def cross_entropy(self, text: str) -> float:
        """Bits per symbol the true model spends on ``text``: ``-mean log2 P(x_t | context)``."""
        ctx, x = self._codes(text)
        return float(-np.log2(self.probs[ctx, x]).mean())

    def empirical_entropy(self, text: str) -> float:
        """Plug-in estimate of ``H(X_t | k previous symbols)`` from counts in ``text``, in bits."""
        ctx, x = self._codes(text)
        A = len(self.alphabet)
        joint = np.bincount(ctx * A + x, minlength=self.num_contexts * A).reshape(-1, A)
        n_ctx = joint.sum(axis=1, keepdims=True)
        nz = joint > 0
        ratio = np.divide(joint, n_ctx, out=np.ones(joint.shape), where=nz)
        return float(-(joint * np.log2(ratio)).sum() / joint.sum())

    @classmethod
    def random(
        cls,
        order: int = 2,
        alphabet: int | str = 16,
        branching: int = 3,
        epsilon: float = 0.01,
        seed: int = 0,
    ) -> MarkovSource:
        """A random sparse chain: each context favours ``branching`` successors.

        Each context draws ``branching`` distinct successors and Dirichlet(1) weights on them;
        the result is mixed with the uniform distribution, weight ``epsilon``. That floor makes
        every context reachable from every other in ``order`` steps, so the chain is
        irreducible and aperiodic and its entropy rate is well defined from any start.
        """
        alphabet = _markov_alphabet(alphabet)
        A = len(alphabet)
        if isinstance(order, bool) or not isinstance(order, int) or not 0 <= order <= 8:
            raise ValueError(f"order must be an int in 0..8, got {order!r}")
        if A**order > 2_000_000:
            raise ValueError(
                f"order={order} with {A} symbols gives {A**order} contexts; at most 2,000,000 "
                "are supported (lower the order or the alphabet size)"
            )
        if isinstance(branching, bool) or not isinstance(branching, int) or not 1 <= branching <= A:
            raise ValueError(
                f"branching must be an int in 1..{A} (the alphabet size), got {branching!r}"
            )
        if not 0 < epsilon <= 1:
            raise ValueError(
                f"epsilon must be in (0, 1], got {epsilon!r}; it must be positive so that the "
                "chain is irreducible and its entropy rate does not depend on the start"
            )
        rng = np.random.default_rng(seed)
        C = A**order
        # argsort of uniform noise picks `branching` distinct successors per row, vectorised.
        succ = np.argsort(rng.random((C, A)), axis=1)[:, :branching]  # (C, branching)
        weights = rng.dirichlet(np.ones(branching), size=C)  # (C, branching)
        sparse = np.zeros((C, A))
        np.put_along_axis(sparse, succ, weights, axis=1)
        probs = (1.0 - epsilon) * sparse + epsilon / A
        return cls(alphabet=alphabet, order=order, probs=probs)


def cumulative_rows(probs: np.ndarray) -> np.ndarray:
    """``(R, K)``: each row's running sum of ``probs`` ``(R, K)``, the last column set to 1 so
    that a uniform draw in [0, 1) never falls past the last entry."""
    cums = np.cumsum(probs, axis=1)
    cums[:, -1] = 1.0
    return cums


def draw_from_rows(cums: np.ndarray, rows: np.ndarray, rng) -> np.ndarray:
    """``(n,)``: one index drawn from each of the rows ``cums[rows]`` of ``cumulative_rows``,
    vectorised over ``rows`` ``(n,)`` (one uniform draw each)."""
    return (cums[rows] <= rng.random(len(rows))[:, None]).sum(axis=1)


def _markov_alphabet(alphabet: int | str) -> str:
    if isinstance(alphabet, str):
        if len(alphabet) < 2 or len(set(alphabet)) != len(alphabet):
            raise ValueError(f"alphabet must hold at least 2 distinct characters, got {alphabet!r}")
        return alphabet
    if isinstance(alphabet, bool) or not isinstance(alphabet, int):
        raise TypeError(f"alphabet must be a size (int) or a string, got {alphabet!r}")
    if not 2 <= alphabet <= len(MARKOV_SYMBOLS):
        raise ValueError(
            f"alphabet size must be in 2..{len(MARKOV_SYMBOLS)}, got {alphabet}; pass a string "
            "for other alphabets"
        )
    return MARKOV_SYMBOLS[:alphabet]


def markov_corpus(
    order: int = 2,
    alphabet: int | str = 16,
    branching: int = 3,
    epsilon: float = 0.01,
    length: int = 1_000_000,
    seed: int = 0,
) -> Corpus:
    """``length`` characters of ``MarkovSource.random(...)``, with its exact entropy rate."""
    positive_int("length", length, where="markov corpus")
    source = MarkovSource.random(order, alphabet, branching, epsilon, seed)
    meta = {
        "order": order,
        "alphabet": source.alphabet,
        "branching": branching,
        "epsilon": epsilon,
        "length": length,
        "seed": seed,
        "source": source,
    }
    return Corpus(
        name="markov",
        # A seed sequence distinct from the one that drew the chain keeps the two streams apart.
        text=source.sample(length, seed=[seed, 1]),
        entropy_rate_bits=source.entropy_rate(),
        metadata=meta,
    )


# ---------------------------------------------------------------------- english


@functools.lru_cache(maxsize=2)
def english_corpus(comments: bool = True, seed: int = 0) -> Corpus:
    """English from what ships with Python and tinyllm, deduplicated, about 3.9 MB on Python
    3.11: the help topics of ``pydoc``, every docstring of the standard library (modules,
    classes, functions; ``ast.get_docstring``; the codec tables of ``encodings`` left out),
    its comment blocks (``comments=True``: runs of ``#`` lines, kept when they read as prose:
    40 characters or more, mostly letters), and the ``shakespeare`` plays.

    Documents -- a help topic, one file's docstrings and comments, a stretch of about 20,000
    characters of a play -- are split into paragraphs at blank lines; a paragraph seen before
    (whitespace ignored) is dropped. The documents are then shuffled by ``seed``, so that the
    validation tail of a run holds all three sources as training does. The text depends on the
    Python version (its standard library), recorded in the metadata with the counts.
    """
    docs = [("pydoc", topic) for topic in _pydoc_topics()]
    for path in stdlib_files():
        if "encodings" in path.parts:
            continue          # codec tables: "0x0041 -> LATIN CAPITAL LETTER A", not prose
        text = _file_prose(path, comments)
        if text:
            docs.append(("stdlib", text))
    docs += [("shakespeare", part) for part in _chunks(shakespeare_corpus().text, 20_000)]
    seen: set[str] = set()
    kept, dropped, sizes = [], 0, dict.fromkeys(("pydoc", "stdlib", "shakespeare"), 0)
    for source, doc in docs:
        paragraphs = []
        for paragraph in doc.split("\n\n"):
            key = " ".join(paragraph.split())
            if not key:
                continue
            if key in seen:
                dropped += 1
                continue
            seen.add(key)
            paragraphs.append(paragraph.strip("\n"))
        if paragraphs:
            kept.append("\n\n".join(paragraphs))
            sizes[source] += len(kept[-1])
    order = np.random.default_rng(seed).permutation(len(kept))
    text = "\n\n".join(kept[i] for i in order) + "\n"
    meta = {"python": sys.version.split()[0], "documents": len(kept), "characters": sizes,
            "duplicate_paragraphs_dropped": dropped, "comments": comments, "seed": seed,
            "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}
    return Corpus(name="english", text=text, metadata=meta)


def _pydoc_topics() -> list[str]:
    try:
        from pydoc_data.topics import topics
    except ImportError:
        return []                 # a Python without pydoc_data: the other sources remain
    return [topics[k].strip("\n") for k in sorted(topics)]


def _file_prose(path: Path, comments: bool) -> str:
    """A standard-library file's docstrings (and prose comment blocks), paragraphs apart."""
    import ast
    import io
    import tokenize

    try:
        source = path.read_text("utf-8")
        tree = ast.parse(source)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return ""
    parts = [doc for node in ast.walk(tree)
             if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                  ast.AsyncFunctionDef))
             and (doc := ast.get_docstring(node, clean=True))]
    if comments:
        block: list[str] = []
        last_row = -2
        try:
            for tok in tokenize.generate_tokens(io.StringIO(source).readline):
                if tok.type != tokenize.COMMENT:
                    continue
                if tok.start[0] != last_row + 1 and block:
                    parts.append(" ".join(block))
                    block = []
                block.append(tok.string.lstrip("#").strip())
                last_row = tok.start[0]
        except (tokenize.TokenError, SyntaxError):
            pass
        if block:
            parts.append(" ".join(block))
        parts = [p for p in parts if not p.startswith(("!", "-*-")) and _reads_as_prose(p)]
    return "\n\n".join(parts)


def _reads_as_prose(text: str) -> bool:
    """40 characters or more, at least 70% of them letters or spaces."""
    text = text.strip()
    return len(text) >= 40 and sum(c.isalpha() or c == " " for c in text) >= 0.7 * len(text)


def _chunks(text: str, size: int) -> list[str]:
    """``text`` cut at blank lines into pieces of about ``size`` characters."""
    out, current, length = [], [], 0
    for paragraph in text.split("\n\n"):
        current.append(paragraph)
        length += len(paragraph) + 2
        if length >= size:
            out.append("\n\n".join(current))
            current, length = [], 0
    if current:
        out.append("\n\n".join(current))
    return out


def hmm_corpus(
    states: int = 1024,
    alphabet: int | str = 32,
    branching: int = 3,
    emit_branching: int = 3,
    epsilon: float = 0.01,
    zipf: float = 1.0,
    length: int = 8_000_000,
    seed: int = 0,
) -> Corpus:
    """``length`` characters of ``HiddenMarkovSource.random(...)`` (`tinyllm.data.hmm`), with
    its entropy rate estimated by the forward algorithm to about +-0.2% (95%); the estimate
    and its interval are in the metadata (``entropy_rate``, a ``RateEstimate``)."""
    positive_int("length", length, where="hmm corpus")
    source, rate = _hmm_source_and_rate(states, alphabet, branching, emit_branching, epsilon,
                                        zipf, seed)
    meta = {"states": states, "alphabet": source.alphabet, "branching": branching,
            "emit_branching": emit_branching, "epsilon": epsilon, "zipf": zipf,
            "length": length, "seed": seed, "source": source, "entropy_rate": rate}
    return Corpus(name="hmm", text=source.sample(length, seed=[seed, 1]),
                  entropy_rate_bits=rate.bits, metadata=meta)


@functools.lru_cache(maxsize=4)
def _hmm_source_and_rate(states, alphabet, branching, emit_branching, epsilon, zipf, seed):
    """The source and its entropy rate to about +-0.2% (512 strings of 2,048 characters).

    The estimate takes seconds to tens of seconds and a study loads the corpus in every run's
    process, so it is computed once per process and kept on disk, keyed by the settings and
    the code's version, in ``$TINYLLM_CACHE`` (default ``~/.cache/tinyllm``); a cache that
    cannot be read or written is only skipped."""
    import json

    from .. import __version__
    from .._io import atomic_write
    from .hmm import HiddenMarkovSource, RateEstimate

    source = HiddenMarkovSource.random(states, alphabet, branching, emit_branching, epsilon,
                                       zipf, seed)
    key = json.dumps([__version__, states, alphabet, branching, emit_branching, epsilon, zipf,
                      seed, hashlib.sha256(source.transitions.tobytes()).hexdigest()[:16]])
    cache = (Path(os.environ.get("TINYLLM_CACHE") or Path.home() / ".cache" / "tinyllm")
             / f"hmm-rate-{hashlib.sha256(key.encode()).hexdigest()[:20]}.json")
    try:
        return source, RateEstimate(**json.loads(cache.read_text())["estimate"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    rate = source.entropy_rate(chains=512, length=2048, burn_in=512)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(cache, json.dumps({"key": key, "estimate": vars(rate)}))
    except OSError:
        pass
    return source, rate


#: The built-in corpora: name -> the function that builds it (its keyword arguments are the
#: options `load_corpus` accepts). Adding a corpus is a function and a line here.
_BUILDERS = {
    "pydoc": pydoc_corpus,
    "stdlib": stdlib_corpus,
    "shakespeare": shakespeare_corpus,
    "markov": markov_corpus,
    "hmm": hmm_corpus,
    "english": english_corpus,
}
CORPORA: tuple[str, ...] = tuple(_BUILDERS)
