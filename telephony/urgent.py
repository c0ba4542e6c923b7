"""Work a caller is waiting to hear goes first; a reply already playing has time to spare.

On a few cores the model, Whisper and Piper compete for the same CPUs. Measured on 2 cores: the first
piece of a reply took 350 ms to synthesise while the model went on writing the rest of the reply,
against 160 ms alone, and that time sits in every turn's voice-to-voice delay, whereas the rest of the
reply has the whole first piece's playback (a second or more) to be written. Two rules, applied by the
model between tokens (:meth:`UrgentWork.wait`):

- while any call's first audio is being made (:meth:`UrgentWork.running`), every reply's model pauses;
- while any call's caller waits for an answer (:meth:`UrgentWork.waiting`: the final transcription,
  then the reply until its first audio), a reply whose call has at least ``min_slack_s`` of audio queued
  on its line pauses too: its caller is listening to that audio, the other caller hears nothing yet.
  (Measured with 2 and 4 calls on 2 cores: within the runs' noise so far; see the README.)

Each wait is bounded, so a stuck synthesis can only slow the model down, never stop it.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator

# Seconds of the current call's reply audio queued ahead of its line (0 before the reply's first audio):
# set by the voice loop for its turn, read by the model's thread (the context travels with it).
REPLY_SLACK: ContextVar[Callable[[], float] | None] = ContextVar("reply_slack", default=None)


class UrgentWork:
    def __init__(self, max_wait_s: float = 0.5, min_slack_s: float = 1.0) -> None:
        self.max_wait_s = max_wait_s
        self.min_slack_s = min_slack_s
        self._running = 0
        self._waiting = 0
        self._cond = threading.Condition()
        self.waits = 0  # times a model waited for a first audio (for tests and metrics)
        self.yields = 0  # times a playing reply's model gave way to a waiting caller

    @contextmanager
    def running(self) -> Iterator[None]:
        """A reply's first audio is being synthesised."""
        with self._counted("_running"):
            yield

    @contextmanager
    def waiting(self) -> Iterator[None]:
        """A caller waits for this work (their final transcript, their reply's first words)."""
        with self._counted("_waiting"):
            yield

    @contextmanager
    def _counted(self, name: str) -> Iterator[None]:
        with self._cond:
            setattr(self, name, getattr(self, name) + 1)
        try:
            yield
        finally:
            with self._cond:
                setattr(self, name, getattr(self, name) - 1)
                self._cond.notify_all()

    @property
    def pending(self) -> bool:
        """Some caller waits, or some first audio is being made: optional work (a read-ahead) keeps off the cores."""
        with self._cond:
            return bool(self._running or self._waiting)

    def wait(self) -> None:
        """Called by the model between tokens: return at once, or when the urgent work is done (bounded)."""
        with self._cond:
            if self._running:
                self.waits += 1
                self._cond.wait_for(lambda: self._running == 0, timeout=self.max_wait_s)
                return
            if not self._waiting:
                return
        slack = REPLY_SLACK.get()
        if slack is None or slack() < self.min_slack_s:
            return
        with self._cond:
            self.yields += 1
            self._cond.wait_for(lambda: self._waiting == 0, timeout=self.max_wait_s)


FIRST_AUDIO = UrgentWork()  # one per process: the cores it protects are the process's
