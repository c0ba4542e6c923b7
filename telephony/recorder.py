"""Call recording: both directions into one stereo WAV (left: caller, right: agent), written as the
call goes by a writer thread, so the audio thread never touches the disk and a crash keeps
everything up to the last flush (the WAV header is patched at every write)."""

from __future__ import annotations

import queue
import threading
import wave
from pathlib import Path

import numpy as np

from speech.audio import PCM

FLUSH_FRAMES = 25  # write every 0.5 s of 20 ms frames


class CallRecorder:
    def __init__(self, path: Path, rate: int = 8000) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._wav = wave.open(str(path), "wb")
        self._wav.setnchannels(2)
        self._wav.setsampwidth(2)
        self._wav.setframerate(rate)
        self._queue: queue.SimpleQueue[tuple[PCM, PCM] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._write, name="recorder", daemon=True)
        self._thread.start()

    def add(self, caller: PCM, agent: PCM) -> None:
        """One 20 ms frame of each direction (cheap: a queue put)."""
        self._queue.put((caller, agent))

    def _write(self) -> None:
        pending: list[tuple[PCM, PCM]] = []
        while True:
            item = self._queue.get()
            if item is not None:
                pending.append(item)
            if pending and (item is None or len(pending) >= FLUSH_FRAMES):
                caller = np.concatenate([c for c, _ in pending])
                agent = np.concatenate([a for _, a in pending])
                self._wav.writeframes(np.column_stack([caller, agent]).astype("<i2").tobytes())
                pending.clear()
            if item is None:
                self._wav.close()
                return

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)
