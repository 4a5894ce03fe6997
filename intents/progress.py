"""A dependency-free progress bar for training on large data (``deskbot test-nlu``, bench)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """A :data:`intents.classifier.TrainingProgress` callback that draws on a stream.

    On a terminal it redraws one line per stage (``\\r``); in a log or pipe it writes one
    line when a stage starts and one when it ends, so CI logs stay short.
    """

    def __init__(self, stream: TextIO | None = None, *, width: int = 30) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self._interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self._stage: str | None = None
        self._started = time.perf_counter()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self._stage:
            if self._stage is not None and self._interactive:
                self.stream.write("\n")
            self._stage = stage
            self._started = time.perf_counter()
            if not self._interactive:
                self.stream.write(f"{stage} …\n")
        elapsed = time.perf_counter() - self._started
        finished = total > 0 and done >= total
        if self._interactive:
            share = done / total if total else 1.0
            filled = int(self.width * share)
            bar = "█" * filled + "·" * (self.width - filled)
            self.stream.write(f"\r{stage:<22} {bar} {done}/{total} {elapsed:6.1f} s")
            if finished:
                self.stream.write("\n")
                self._stage = None
        elif finished:
            self.stream.write(f"{stage} done in {elapsed:.1f} s\n")
            self._stage = None
        self.stream.flush()
