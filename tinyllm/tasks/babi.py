"""``babi``: a generator of bAbI-style stories and questions (Weston et al. 2015).

Four people move between six places and pick up and drop three objects; a question asks what
the story implies. Five of the paper's twenty tasks are generated, by its rules:

====  ========================  =============================================  ==============
task  name                      question                                       answer
====  ========================  =============================================  ==============
1     single supporting fact    Where is Mary?                                 a location
2     two supporting facts      Where is the football?                         a location
3     three supporting facts    Where was the football before the kitchen?     a location
6     yes/no questions          Is Mary in the office?                         yes, no
7     counting                  How many objects is Mary carrying?             none .. three
====  ========================  =============================================  ==============

Vocabulary: people ``ACTORS`` (Mary, John, Daniel, Sandra), places ``LOCATIONS`` (bathroom,
bedroom, garden, hallway, kitchen, office), objects ``OBJECTS`` (football, apple, milk), and
the verbs ``MOVE_VERBS`` ("moved to", "went to", "journeyed to", "travelled to", "went back
to"), ``GRAB_VERBS`` ("got", "grabbed", "picked up", "took") and ``DROP_VERBS`` ("dropped",
"discarded", "put down", "left"). Sentences read "Mary went to the kitchen.", "Mary took the
milk.", "Mary dropped the milk.".

The rules. A person's first sentence is a move; a person picks up an object that nobody holds
and that is where they are (or whose place the story has not said), and drops only what they
hold; a held object moves with its holder. Each question comes with its own story of
``STORY_LENGTHS[task]`` sentences (the paper groups up to five questions per story; here each
is independent, so no story is shared between splits), and asks only what the story answers:
task 1 and 6 about a person who has moved (task 6 asks the true place half of the time),
task 2 about an object whose place is known, task 3 about a place the object has been in only
once (the answer is the place it was in just before), task 7 about a person who has moved,
drawn by first drawing one of the counts the story's people hold (so that "none" does not
dominate the answers).

Each example is a ``QAExample`` in two forms. Extractive (for BERT): the context is the story,
one sentence per line, and ``answer_starts`` points at the answer inside the sentence that
settles it (for task 1, the person's last move). Yes/no and counting answers are not words of
the story, so for tasks 6 and 7 the context ends with one more line, ``ANSWER_VOCABULARY`` =
"yes no none one two three", and the answer points there. Generative (for GPT):
``task.generative()`` gives ``(prompt, answer)`` with the prompt ending in ``"\\nA: "``; for
tasks 1-3 ``task.generative(form="statement")`` asks instead in the words of the narrator of
`narrated_stories`, the statement that answers the question cut before the answer (the story,
then "Mary is in the", "The milk is in the", "Before the garden, the milk was in the").

Sizes are the paper's: 1,000 training questions ("1k") or 10,000 ("10k"), and 1,000 test
questions; validation is 10% of the training size, generated on top (the paper's released
"en-valid" set instead takes it out of the training questions). The test set depends only on
the task and seed, so "1k" and "10k" share it, as in the paper; no (context, question) pair
occurs twice in a task. Everything is drawn from ``random.Random`` seeded by a string of the
task, split and seed, using only ``random()`` (whose sequence Python keeps stable).

>>> task = babi_task(1, size="1k", seed=0)
>>> task.sizes
{'train': 1000, 'validation': 100, 'test': 1000}
>>> ex = task.test[0]
>>> ex.context[ex.answer_start:ex.answer_start + len(ex.answer)] == ex.answer
True
"""

from __future__ import annotations

import functools
import random

from .._checks import choice, non_negative_int
from .base import QAExample, QATask

ACTORS = ("Mary", "John", "Daniel", "Sandra")
LOCATIONS = ("bathroom", "bedroom", "garden", "hallway", "kitchen", "office")
OBJECTS = ("football", "apple", "milk")
MOVE_VERBS = ("moved to", "went to", "journeyed to", "travelled to", "went back to")
GRAB_VERBS = ("got", "grabbed", "picked up", "took")
DROP_VERBS = ("dropped", "discarded", "put down", "left")
#: The last line of every task 6 and 7 context: the answers that are not words of the story.
ANSWER_VOCABULARY = "yes no none one two three"
COUNT_WORDS = ("none", "one", "two", "three")

#: The generated tasks: number -> name in the paper.
BABI_TASKS = {
    1: "single supporting fact",
    2: "two supporting facts",
    3: "three supporting facts",
    6: "yes/no questions",
    7: "counting",
}
#: Training questions per size; validation is a tenth of it, test is always ``TEST_SIZE``.
SIZES = {"1k": 1000, "10k": 10000}
TEST_SIZE = 1000
#: Sentences per story (inclusive range), by task; task 3 needs longer stories to carry an
#: object through several places.
STORY_LENGTHS = {1: (2, 10), 2: (4, 16), 3: (6, 24), 6: (2, 10), 7: (4, 16)}
#: Chance of picking up / dropping when a person who has moved acts (else they move).
_GRAB_DROP = {2: (0.3, 0.2), 3: (0.35, 0.1), 7: (0.5, 0.15)}


def babi_task(task: int = 1, size: str = "1k", seed: int = 0) -> QATask:
    """bAbI task ``task`` (1, 2, 3, 6 or 7) with ``size`` ("1k" or "10k") training questions."""
    choice("bAbI task", task, tuple(BABI_TASKS), where="babi")
    choice("size", size, tuple(SIZES), where="babi")
    return _babi_task(task, size, seed)


@functools.lru_cache(maxsize=8)
def _babi_task(task: int, size: str, seed: int) -> QATask:
    counts = {"test": TEST_SIZE, "validation": SIZES[size] // 10, "train": SIZES[size]}
    seen: set[tuple[str, str]] = set()
    splits = {split: _generate(task, split, n, seed, seen) for split, n in counts.items()}
    meta = {"task": task, "task_name": BABI_TASKS[task], "size": size, "seed": seed}
    return QATask(f"babi{task}-{size}", splits["train"], splits["validation"], splits["test"],
                  metadata=meta)


def _generate(task: int, split: str, n: int, seed: int, seen: set) -> list[QAExample]:
    """``n`` questions of ``split``, none whose (context, question) is already in ``seen``."""
    rng = random.Random(f"tinyllm-babi/task{task}/{split}/seed{seed}")
    examples: list[QAExample] = []
    tries = 0
    while len(examples) < n:
        tries += 1
        if tries > 100 * n + 1000:
            raise RuntimeError(f"babi task {task}: could not draw {n} distinct questions")
        made = _story_and_question(task, rng)
        if made is None or (made[0], made[1]) in seen:
            continue
        context, question, answer, start, statement = made
        seen.add((context, question))
        examples.append(QAExample(f"babi{task}-{split}-{len(examples)}", context, question,
                                  (answer,), (start,), statement))
    return examples


def _pick(rng: random.Random, items):
    """One of ``items``, uniformly, from ``rng.random()`` alone."""
    return items[int(rng.random() * len(items))]


class _World:
    """A story being told: its sentences, and where everyone and everything is.

    Each place is stored with its *evidence*: the character offset, in the story, of the
    place's name in the sentence that settles it.
    """

    def __init__(self):
        self.lines: list[str] = []
        self.length = 0                                   # characters so far, newlines included
        self.at: dict[str, tuple[str, int]] = {}          # person -> (place, evidence)
        self.holder: dict[str, str] = {}                  # object -> person holding it
        self.left_at: dict[str, tuple[str, int]] = {}     # object -> (place, evidence) if dropped
        self.trail: dict[str, list[tuple[str, int]]] = {o: [] for o in OBJECTS}

    def _say(self, sentence: str) -> int:
        """Append a sentence; return its start offset."""
        start = self.length + (1 if self.lines else 0)
        self.lines.append(sentence)
        self.length = start + len(sentence)
        return start

    def move(self, person: str, place: str, verb: str) -> None:
        head = f"{person} {verb} the "
        where = (place, self._say(f"{head}{place}.") + len(head))
        self.at[person] = where
        for obj, holder in self.holder.items():
            if holder == person:
                self._visit(obj, where)

    def grab(self, person: str, obj: str, verb: str) -> None:
        self._say(f"{person} {verb} the {obj}.")
        self.holder[obj] = person
        self.left_at.pop(obj, None)
        self._visit(obj, self.at[person])

    def drop(self, person: str, obj: str, verb: str) -> None:
        self._say(f"{person} {verb} the {obj}.")
        del self.holder[obj]
        self.left_at[obj] = self.at[person]

    def _visit(self, obj: str, where: tuple[str, int]) -> None:
        """Record that ``obj`` is now at ``where`` (a new place only if it changed)."""
        if not self.trail[obj] or self.trail[obj][-1][0] != where[0]:
            self.trail[obj].append(where)

    def place_of(self, obj: str) -> tuple[str, int] | None:
        """Where ``obj`` is, with its evidence, or None when the story has not said."""
        if obj in self.holder:
            return self.at[self.holder[obj]]
        return self.left_at.get(obj)

    def step(self, rng: random.Random, grab: float, drop: float) -> None:
        """One random sentence by the rules of the module docstring."""
        person = _pick(rng, ACTORS)
        if person in self.at:
            here = self.at[person][0]
            free = [o for o in OBJECTS if o not in self.holder
                    and (o not in self.left_at or self.left_at[o][0] == here)]
            held = [o for o in OBJECTS if self.holder.get(o) == person]
            r = rng.random()
            if r < grab and free:
                return self.grab(person, _pick(rng, free), _pick(rng, GRAB_VERBS))
            if grab <= r < grab + drop and held:
                return self.drop(person, _pick(rng, held), _pick(rng, DROP_VERBS))
        here = self.at.get(person, ("", 0))[0]
        place = _pick(rng, [p for p in LOCATIONS if p != here])
        self.move(person, place, _pick(rng, MOVE_VERBS))

    @property
    def story(self) -> str:
        return "\n".join(self.lines)


def _story_and_question(task: int, rng: random.Random) -> tuple | None:
    """``(context, question, answer, answer_start, statement)`` (``QAExample``'s fields;
    statement None for tasks 6 and 7), or None when the story cannot be asked."""
    world = _World()
    low, high = STORY_LENGTHS[task]
    grab, drop = _GRAB_DROP.get(task, (0.0, 0.0))
    for _ in range(low + int(rng.random() * (high - low + 1))):
        world.step(rng, grab, drop)
    story = world.story
    people = [p for p in ACTORS if p in world.at]
    if task == 1:
        person = _pick(rng, people)
        place, start = world.at[person]
        return story, f"Where is {person}?", place, start, _person_at(person)
    if task == 2:
        known = [o for o in OBJECTS if world.place_of(o) is not None]
        if not known:
            return None
        obj = _pick(rng, known)
        place, start = world.place_of(obj)
        return story, f"Where is the {obj}?", place, start, _object_at(obj)
    if task == 3:
        places = {o: [w[0] for w in world.trail[o]] for o in OBJECTS}
        asked = [(o, i) for o in OBJECTS for i in range(1, len(places[o]))
                 if places[o].count(places[o][i]) == 1]
        if not asked:
            return None
        obj, i = _pick(rng, asked)
        place, start = world.trail[obj][i - 1]
        return (story, f"Where was the {obj} before the {places[obj][i]}?", place, start,
                _object_before(obj, places[obj][i]))
    if task == 6:
        person = _pick(rng, people)
        truth = world.at[person][0]
        yes = rng.random() < 0.5
        place = truth if yes else _pick(rng, [p for p in LOCATIONS if p != truth])
        return _with_vocabulary(story, f"Is {person} in the {place}?", "yes" if yes else "no")
    held = {p: sum(1 for o in OBJECTS if world.holder.get(o) == p) for p in people}
    count = _pick(rng, sorted(set(held.values())))
    person = _pick(rng, [p for p in people if held[p] == count])
    return _with_vocabulary(story, f"How many objects is {person} carrying?", COUNT_WORDS[count])


def narrated_stories(n: int, seed: int = 0, narrate: float = 0.5, task: int = 3) -> str:
    """``n`` unlabelled stories of the bAbI world in which a narrator states where things are:
    plain text to pre-train a language model on, a blank line between stories.

    The stories are of task ``task``'s kind (1, 2 or 3: its ``STORY_LENGTHS``, and as much
    picking up and dropping as its questions' stories). After each event, with chance
    ``narrate``, the narrator adds one true statement, drawn uniformly among those the story
    allows: where a person is ("Mary is in the kitchen."), where an object is ("The milk is in
    the garden.") or where an object was before a place it has been in once ("Before the
    garden, the milk was in the office."). To predict the statement's last word a model must
    track the world -- the skill tasks 1-3 ask for in questions -- so the text teaches it
    without one labelled question. The stories draw from their own random stream
    (``tinyllm-babi/narrated/seed<seed>/task<task>/narrate<narrate>``), apart from every
    task's.

    >>> print(narrated_stories(1, seed=3, narrate=1.0)[:54])
    John journeyed to the kitchen.
    John is in the kitchen.
    """
    choice("bAbI task", task, (1, 2, 3), where="narrated stories")
    if isinstance(narrate, bool) or not isinstance(narrate, (int, float)) or not 0 <= narrate <= 1:
        raise ValueError(f"narrated stories: narrate must be a chance in [0, 1], got {narrate!r}")
    rng = random.Random(f"tinyllm-babi/narrated/seed{seed}/task{task}/narrate{narrate:g}")
    low, high = STORY_LENGTHS[task]
    stories = []
    for _ in range(n):
        world = _World()
        for _ in range(low + int(rng.random() * (high - low + 1))):
            world.step(rng, *_GRAB_DROP.get(task, (0.0, 0.0)))
            if rng.random() < narrate:
                world.lines.append(_pick(rng, _statements(world)))
        stories.append(world.story)
    return "\n\n".join(stories) + "\n"


#: The narrator's rates in `task_text`.
MIXED_RATES = tuple(i / 10 for i in range(1, 11))


def pretraining_text(stories: int = 4_000, questions: int = 1_000, seed: int = 0) -> str:
    """Unlabelled text of the bAbI world, to pre-train a language model on before the bAbI
    tasks (the fine-tuning study's "babi" corpus): ``stories`` stories narrated after every
    event (`narrated_stories`, ``narrate=1.0``: the most statements to learn tracking from --
    predicting a statement's place takes tracking the world, as the questions do), then
    `unlabelled_questions` (``questions`` of each of tasks 1-3: the questions' words for a
    word-level tokenizer).
    """
    non_negative_int("stories", stories, where="babi pre-training text")
    parts = [narrated_stories(stories, seed=seed, narrate=1.0)] if stories else []
    return "\n".join(parts + [unlabelled_questions(questions, seed)])


def task_text(mixed: int = 300, questions: int = 1_000, seed: int = 0) -> str:
    """Unlabelled text nearer the tasks, for ULMFiT's second stage (Howard & Ruder 2018,
    section 3.2: the language model trained on, on the target task's own text) -- the
    fine-tuning study's "babi-tasks" corpus: for each of tasks 1, 2 and 3 and each rate of
    ``MIXED_RATES`` (0.1 .. 1.0), ``mixed`` stories of the task's kind narrated at that rate
    (9,000 stories by default: the tasks' own story lengths and objects, and stories with few
    statements, nearer the questions' stories, which have none -- a model that has read only
    fully narrated stories leans on the narrator and is lost without it), then
    `unlabelled_questions`. The stories draw from the streams of seed ``seed + 1``
    (`pretraining_text`'s, ``seed``, would repeat its stories at rate 1.0).

    A GPT pre-trained on `pretraining_text`, then on this, answers task 1 asked in the
    narrator's words (the prompt form "statement": the story, then "Mary is in the") before
    it is fine-tuned: see the shipped ``babi`` study of ``tinyllm.finetuning``.
    """
    non_negative_int("mixed", mixed, where="babi task text")
    parts = [narrated_stories(mixed, seed=seed + 1, narrate=rate, task=task)
             for task in (1, 2, 3) for rate in MIXED_RATES if mixed]
    return "\n".join(parts + [unlabelled_questions(questions, seed)])


def unlabelled_questions(n: int = 1_000, seed: int = 0) -> str:
    """The first ``n`` training questions of tasks 1, 2 and 3 (their "10k" size) *without
    their answers*, each before its story, in turn as ``Q: question`` / ``A:`` lines (the
    words of a causal LM's prompt) and bare (as BERT reads it): after a story, ``A:`` would be
    the end of a text, and a model pre-trained so learns to write a newline there, not an
    answer. No answer, and no validation or test question, is in the text."""
    non_negative_int("questions", n, where="babi unlabelled questions")
    parts = []
    for task in (1, 2, 3):
        train = babi_task(task, "10k", seed).train[:n]
        parts += [f"Q: {ex.question}\nA:\n{ex.context}\n" if i % 2 == 0
                  else f"{ex.question}\n{ex.context}\n" for i, ex in enumerate(train)]
    return "\n".join(parts)


# The narrator's three kinds of statement, each cut before the place that ends it: the
# narrator says it whole ("Mary is in the kitchen."), and a question of tasks 1, 2 and 3 can be
# asked as its start (`QAExample.statement`, the prompt form "statement").
def _person_at(person: str) -> str:
    return f"{person} is in the"


def _object_at(obj: str) -> str:
    return f"The {obj} is in the"


def _object_before(obj: str, place: str) -> str:
    return f"Before the {place}, the {obj} was in the"


def _statements(world: _World) -> list[str]:
    """Every true statement of the three kinds `narrated_stories` draws from."""
    said = [f"{_person_at(p)} {world.at[p][0]}." for p in ACTORS if p in world.at]
    said += [f"{_object_at(o)} {world.place_of(o)[0]}." for o in OBJECTS
             if world.place_of(o) is not None]
    for o in OBJECTS:
        places = [w[0] for w in world.trail[o]]
        said += [f"{_object_before(o, places[i])} {places[i - 1]}."
                 for i in range(1, len(places)) if places.count(places[i]) == 1]
    return said


def _with_vocabulary(story: str, question: str, answer: str) -> tuple:
    """The story with ``ANSWER_VOCABULARY`` as its last line, the answer pointing there (and
    no statement form)."""
    words = ANSWER_VOCABULARY.split(" ")
    start = len(story) + 1 + sum(len(w) + 1 for w in words[: words.index(answer)])
    return f"{story}\n{ANSWER_VOCABULARY}", question, answer, start, None
