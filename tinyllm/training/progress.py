"""What a run shows and keeps: a progress bar, one-line messages, and a JSONL metrics log."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .._io import atomic_write


class Progress:
    """A tqdm bar (a widget in Jupyter, text in a terminal, hidden when not a TTY or quiet)."""

    def __init__(self, total: int, initial: int, quiet: bool, stream=None):
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.bar = None
        if not quiet:
            from tqdm.auto import tqdm

            # disable=None: tqdm hides itself when the stream is not a terminal.
            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True,
                            disable=None, file=self.stream, leave=False)

    def update(self, step_loss: float, tokens_per_s: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{step_loss:.4f}", tok_s=f"{tokens_per_s:,.0f}",
                                 refresh=False)
            self.bar.update(1)

    def write(self, message: str) -> None:
        """Print a message without breaking the bar (nothing when quiet)."""
        if self.quiet:
            return
        if self.bar is not None and not self.bar.disable:
            self.bar.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class MetricsLog:
    """Append-only JSONL: one record per step ("train") and per evaluation ("eval")."""

    def __init__(self, path: Path):
        self.path = path

    def truncate_after(self, step: int) -> None:
        """Drop records past `step` (written after the checkpoint a run resumes from)."""
        if not self.path.exists():
            return
        kept = [line for line, record in self._lines() if record.get("step", 0) <= step]
        atomic_write(self.path, "".join(k + "\n" for k in kept))  # a crash keeps the old log

    def _lines(self) -> list[tuple[str, dict]]:
        """(line, record) for every non-blank line, or a ValueError naming the damaged one."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{self.path} is damaged (not UTF-8 text at byte {exc.start}); "
                             "the checkpoint does not need this log: move it away and "
                             "resume again") from None
        out = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                record = exc
            if not isinstance(record, dict):
                raise ValueError(f"{self.path} line {number} is damaged (not a JSON object: "
                                 f"{line[:60]!r}); the checkpoint does not need this log: "
                                 "delete that line (or move the file away) and resume again")
            out.append((line, record))
        return out

    def append(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [record for _, record in self._lines()]
