"""SCAN: simple navigation commands translated into action sequences, generated from its grammar.

SCAN (Lake and Baroni 2018, "Generalization without systematicity: on the compositional skills
of sequence-to-sequence recurrent networks", ICML) is a tiny language whose meaning is fixed
by a few rules, so that a split can ask whether a model *composes* what it learned:

    C -> S and S | S after S | S              U -> walk | look | run | jump
    S -> V twice | V thrice | V               D -> U left | U right | turn left | turn right
    V -> X opposite W | X around W | D | U    X -> U | turn,  W -> left | right

The interpretation, with ``L`` = I_TURN_LEFT (``R`` for right) and ``[[walk]]`` = I_WALK:

    [[u left]] = L [[u]]                      [[turn left]] = L
    [[u opposite left]] = L L [[u]]           [[turn opposite left]] = L L
    [[u around left]] = (L [[u]]) x4          [[turn around left]] = L L L L
    [[x twice]] = [[x]] x2                    [[x thrice]] = [[x]] x3
    [[x and y]] = [[x]] [[y]]                 [[x after y]] = [[y]] [[x]]

so "jump around right" is ``I_TURN_RIGHT I_JUMP`` four times, and "walk after run left" is
``I_TURN_LEFT I_RUN I_WALK``. The grammar gives 34 verb phrases, 102 simple commands and
20,910 commands in all; the longest action sequence has 48 actions ("look around left thrice
and walk around right thrice").

The splits are the paper's, with its sizes (training / test commands):

==============  ===============  ==============================================================
split           sizes            what is held out
==============  ===============  ==============================================================
simple          16,728 / 4,182   a random 20% of the commands (by ``SEED``)
length          16,990 / 3,920   every command whose action sequence is longer than 22 actions
                                 (24 to 48): train on short, test on long
addprim-jump    14,670 / 7,706   every composed command with "jump"; training holds every
                                 command without it, plus "jump" -> I_JUMP alone, repeated
==============  ===============  ==============================================================

The paper's released addprim-jump training file repeats the primitive "jump" so that it makes
a tenth of the file: 13,203 commands lack "jump", and 13,203 / 9 = 1,467 copies of "jump" make
14,670 lines, 1,467 of them "jump". ``scan_split`` builds it the same way.

Validation is 5% (rounded half up) of the paper's training set, cut from a seeded shuffle of
it, so that train + validation is the paper's training set: 15,892 + 836, 16,140 + 850 and
13,936 + 734. In addprim-jump the validation commands are drawn among those without "jump"
(all 1,467 copies stay in training, so validation holds no "jump" at all). Every split is in
a seeded random order; no command is in two of the splits.

>>> interpret("jump around left twice after walk opposite right")
'I_TURN_RIGHT I_TURN_RIGHT I_WALK I_TURN_LEFT I_JUMP I_TURN_LEFT I_JUMP I_TURN_LEFT I_JUMP \
I_TURN_LEFT I_JUMP I_TURN_LEFT I_JUMP I_TURN_LEFT I_JUMP I_TURN_LEFT I_JUMP I_TURN_LEFT I_JUMP'
>>> len(scan_commands())
20910
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .base import TaskError

#: The primitive verbs, their actions, and the directions.
PRIMITIVES = {"walk": "I_WALK", "look": "I_LOOK", "run": "I_RUN", "jump": "I_JUMP"}
TURNS = {"left": "I_TURN_LEFT", "right": "I_TURN_RIGHT"}
#: The splits of Lake and Baroni (2018) and their (training, test) sizes.
SCAN_SPLITS = {"simple": (16_728, 4_182), "length": (16_990, 3_920),
               "addprim-jump": (14_670, 7_706)}
#: The longest action sequence of the length split's training set.
LENGTH_CUTOFF = 22
#: The share of the paper's training set kept for validation, in percent.
VALIDATION_PERCENT = 5
#: The seed of every shuffle in this module.
SEED = 0


def _verb_phrases() -> list[str]:
    """The 34 verb phrases V, in grammar order."""
    phrases = list(PRIMITIVES)
    for verb in (*PRIMITIVES, "turn"):
        phrases += [f"{verb} {way}" for way in TURNS]
    for adverb in ("opposite", "around"):
        phrases += [f"{verb} {adverb} {way}" for verb in (*PRIMITIVES, "turn") for way in TURNS]
    return phrases


@lru_cache(maxsize=1)
def scan_commands() -> tuple[str, ...]:
    """Every command of the grammar (20,910), in grammar order: the 102 simple commands, then
    ``s1 and s2``, then ``s1 after s2`` for every pair."""
    simple = [f"{v}{times}" for v in _verb_phrases() for times in ("", " twice", " thrice")]
    joined = [f"{a} {conj} {b}" for conj in ("and", "after") for a in simple for b in simple]
    return tuple(simple + joined)


def interpret(command: str) -> str:
    """The action sequence of a SCAN ``command``, space-separated; a command outside the
    grammar raises TaskError."""
    words = command.split()
    for conj in ("and", "after"):
        if conj in words:
            i = words.index(conj)
            first, second = _simple(words[:i], command), _simple(words[i + 1:], command)
            return " ".join(first + second if conj == "and" else second + first)
    return " ".join(_simple(words, command))


def _simple(words: list[str], command: str) -> list[str]:
    """S -> V [twice | thrice]."""
    repeat = {"twice": 2, "thrice": 3}.get(words[-1] if words else "", 1)
    return _verb(words[:-1] if repeat > 1 else words, command) * repeat


def _verb(words: list[str], command: str) -> list[str]:
    """V: ``u``, ``x w``, ``x opposite w`` or ``x around w`` (x a primitive or turn)."""
    verb, way = words[0] if words else None, words[-1] if len(words) > 1 else None
    actions = [PRIMITIVES[verb]] if verb in PRIMITIVES else []
    if len(words) == 1 and actions:
        return actions
    if verb in (*PRIMITIVES, "turn") and way in TURNS:
        turn = [TURNS[way]]
        if len(words) == 2:
            return turn + actions
        if len(words) == 3 and words[1] == "opposite":
            return turn * 2 + actions
        if len(words) == 3 and words[1] == "around":
            return (turn + actions) * 4
    raise TaskError(f"not a SCAN command: {command!r} (at {' '.join(words)!r}); accepted: "
                    "V [twice|thrice] [and|after V [twice|thrice]], V one of u, x left, x right, "
                    f"x opposite left/right, x around left/right with u in "
                    f"{', '.join(PRIMITIVES)} and x a u or turn")


@lru_cache(maxsize=1)
def scan_pairs() -> tuple[tuple[str, str], ...]:
    """(command, actions) for every command of the grammar, in grammar order."""
    return tuple((c, interpret(c)) for c in scan_commands())


def _validation_count(paper_train: int) -> int:
    """``VALIDATION_PERCENT`` of the paper's training set, rounded half up."""
    return (paper_train * VALIDATION_PERCENT + 50) // 100


def _shuffled(items: list, stream: int) -> list:
    rng = np.random.default_rng([SEED, stream])
    return [items[i] for i in rng.permutation(len(items))]


@lru_cache(maxsize=len(SCAN_SPLITS))
def scan_split(split: str) -> tuple[tuple, tuple, tuple]:
    """The (train, validation, test) lists of (command, actions) of a SCAN ``split``."""
    if split not in SCAN_SPLITS:
        raise TaskError(f"unknown SCAN split {split!r}; accepted: {', '.join(SCAN_SPLITS)}")
    pairs = list(scan_pairs())
    extra: list = []
    if split == "simple":
        shuffled = _shuffled(pairs, 0)
        n_train = SCAN_SPLITS["simple"][0]
        pool, test = shuffled[:n_train], shuffled[n_train:]
    elif split == "length":
        pool = _shuffled([p for p in pairs if len(p[1].split()) <= LENGTH_CUTOFF], 1)
        test = _shuffled([p for p in pairs if len(p[1].split()) > LENGTH_CUTOFF], 2)
    else:
        pool = _shuffled([p for p in pairs if "jump" not in p[0].split()], 3)
        test = _shuffled([p for p in pairs if "jump" in p[0].split() and p[0] != "jump"], 4)
        # The primitive alone, repeated to a tenth of the training file (the released file's).
        extra = [("jump", PRIMITIVES["jump"])] * (len(pool) // 9)
    n_validation = _validation_count(len(pool) + len(extra))
    validation = pool[:n_validation]
    train = pool[n_validation:] + extra
    if extra:
        train = _shuffled(train, 5)
    return tuple(train), tuple(validation), tuple(test)
