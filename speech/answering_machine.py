"""Who picked up an outbound call: a person or an answering machine; and the machine's beep.

A person says something short ("Hello?", "Bob speaking") and waits; a machine plays a long,
uninterrupted greeting and then a beep. :class:`AnsweringMachineDetector` applies those two rules
to the first seconds after answer (the approach of Asterisk's AMD, with the speech decision from
webrtcvad); the telephony layer adds transcript cues ("leave a message after the tone").
:class:`BeepDetector` finds the beep: a single steady tone, measured with a bank of Goertzel
filters (one DFT bin per candidate frequency, 20 Hz apart over 400-2100 Hz, Hann window), which is
cheap enough for the audio thread (one 86 x 160 product per 20 ms frame).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
import webrtcvad

from speech.audio import PCM, rms_dbfs


class Answerer(str, Enum):
    HUMAN = "human"
    MACHINE = "machine"


@dataclass(frozen=True)
class Verdict:
    answerer: Answerer
    reason: str
    at_ms: int  # call audio time of the decision
    greeting_ms: int  # how long the callee had been speaking by then


class AnsweringMachineDetector:
    """Feed the callee's 20 ms frames from answer on; :meth:`feed` returns a :class:`Verdict` once."""

    def __init__(self, *, rate: int = 8000, greeting_ms: int = 2500, after_greeting_silence_ms: int = 800,
                 initial_silence_ms: int = 3000, min_energy_dbfs: float = -45.0, frame_ms: int = 20) -> None:
        self.rate = rate
        self.frame_ms = frame_ms
        self.greeting_limit_ms = greeting_ms
        self.after_greeting_silence_ms = after_greeting_silence_ms
        self.initial_silence_ms = initial_silence_ms
        self.min_energy_dbfs = min_energy_dbfs
        self._vad = webrtcvad.Vad(2)
        self.now_ms = 0
        self._recent: list[bool] = []
        self.speech_start_ms: int | None = None
        self.last_voiced_ms = 0
        self.verdict: Verdict | None = None

    def is_voiced(self, frame: PCM) -> bool:
        if rms_dbfs(frame) < self.min_energy_dbfs:
            return False
        return self._vad.is_speech(np.asarray(frame, np.int16).tobytes(), self.rate)

    def feed(self, frame: PCM) -> Verdict | None:
        if self.verdict is not None:
            return None
        self.now_ms += self.frame_ms
        voiced = self.is_voiced(frame)
        self._recent = (self._recent + [voiced])[-5:]
        if self.speech_start_ms is None:
            if sum(self._recent) >= 3:  # 60 of the last 100 ms voiced: speech, not a click
                self.speech_start_ms = self.now_ms - len(self._recent) * self.frame_ms
                self.last_voiced_ms = self.now_ms
            elif self.now_ms >= self.initial_silence_ms:
                return self._decide(Answerer.HUMAN, "silence after answer", 0)
            return None
        if voiced:
            self.last_voiced_ms = self.now_ms
        greeting = self.last_voiced_ms - self.speech_start_ms
        if greeting >= self.greeting_limit_ms:
            return self._decide(Answerer.MACHINE, f"greeting longer than {self.greeting_limit_ms} ms", greeting)
        if self.now_ms - self.last_voiced_ms >= self.after_greeting_silence_ms:
            return self._decide(Answerer.HUMAN, "short greeting, then waiting", greeting)
        return None

    def machine_by_words(self, reason: str) -> Verdict:
        """The transcript gave it away (``you've reached ... leave a message``)."""
        greeting = max(0, self.last_voiced_ms - (self.speech_start_ms or self.last_voiced_ms))
        self.verdict = Verdict(Answerer.MACHINE, reason, self.now_ms, greeting)
        return self.verdict

    def _decide(self, answerer: Answerer, reason: str, greeting_ms: int) -> Verdict:
        self.verdict = Verdict(answerer, reason, self.now_ms, greeting_ms)
        return self.verdict


class BeepDetector:
    """Finds a steady tone (the answering machine's beep); :meth:`feed` is True on the frame it ends."""

    FREQUENCIES = np.arange(400.0, 2101.0, 20.0)

    def __init__(self, *, rate: int = 8000, frame_len: int = 160, min_ms: int = 200, purity: float = 0.8,
                 min_dbfs: float = -40.0, frame_ms: int = 20) -> None:
        self.frame_ms = frame_ms
        self.min_frames = max(1, min_ms // frame_ms)
        self.purity = purity
        self.min_dbfs = min_dbfs
        window = np.hanning(frame_len + 2)[1:-1]
        n = np.arange(frame_len)
        # Row k evaluates the windowed DFT at FREQUENCIES[k] (what a Goertzel filter computes).
        self._bank = window * np.exp(-2j * np.pi * np.outer(self.FREQUENCIES / rate, n))
        self._window = window
        # |X|^2 of a pure tone relative to its windowed energy, so that a pure tone scores 1.0.
        self._scale = 2 * np.sum(window**2) / np.sum(window) ** 2
        self._run = 0
        self._run_hz: float | None = None
        self.tones: list[tuple[int, int, float]] = []  # (start_ms, end_ms, Hz) of beeps found
        self.now_ms = 0

    def tone(self, frame: PCM) -> float | None:
        """The frequency of the single tone filling this frame, else None."""
        x = np.asarray(frame, np.float64)
        if rms_dbfs(np.asarray(frame, np.int16)) < self.min_dbfs:
            return None
        energy = float(np.sum((x * self._window) ** 2))
        if energy <= 0:
            return None
        power = np.abs(self._bank @ x) ** 2
        k = int(np.argmax(power))
        if power[k] * self._scale / energy < self.purity:
            return None
        return float(self.FREQUENCIES[k])

    def feed(self, frame: PCM) -> bool:
        self.now_ms += self.frame_ms
        hz = self.tone(frame)
        if hz is not None and (self._run_hz is None or abs(hz - self._run_hz) <= 20):
            self._run_hz = hz if self._run_hz is None else self._run_hz
            self._run += 1
            return False
        ended = self._run >= self.min_frames
        if ended:
            self.tones.append((self.now_ms - (self._run + 1) * self.frame_ms, self.now_ms - self.frame_ms,
                               self._run_hz or 0.0))
        self._run, self._run_hz = (1, hz) if hz is not None else (0, None)
        return ended
