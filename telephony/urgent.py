"""Work a caller is waiting to hear goes first: the model pauses while a reply's first piece is synthesised.

On a few cores the model and Piper compete for the same CPUs. Measured on 2 cores: the first piece of
a reply took 350 ms to synthesise while the model went on writing the rest of the reply, against 160 ms
alone, and that time sits in every turn's voice-to-voice delay, whereas the rest of the reply has the
whole first piece's playback (a second or more) to be written. So the model's token loop waits (between
tokens, :meth:`UrgentWork.wait`) while any call's first audio is being made (:meth:`UrgentWork.running`).
The wait is bounded, so a stuck synthesis can only slow the model down, never stop it.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator


class UrgentWork:
    def __init__(self, max_wait_s: float = 0.5) -> None:
        self.max_wait_s = max_wait_s
        self._running = 0
        self._cond = threading.Condition()
        self.waits = 0  # times the model waited (for tests and metrics)

    @contextmanager
    def running(self) -> Iterator[None]:
        with self._cond:
            self._running += 1
        try:
            yield
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()

    def wait(self) -> None:
        """Called by the model between tokens: return at once, or when no urgent work runs (bounded)."""
        with self._cond:
            if self._running:
                self.waits += 1
                self._cond.wait_for(lambda: self._running == 0, timeout=self.max_wait_s)


FIRST_AUDIO = UrgentWork()  # one per process: the cores it protects are the process's
