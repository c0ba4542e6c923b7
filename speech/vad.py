"""Streaming endpointing with webrtcvad: when does the caller start, really speak, pause and stop.

Events, in stream time (milliseconds of audio fed so far):

- :class:`SpeechStarted`   ``start_ms`` of voiced audio seen: something is being said (tentative).
- :class:`SpeechConfirmed` ``confirm_ms`` of voiced audio in this utterance: real speech, not a
  cough or a click; this is the event a barge-in should act on.
- :class:`SpeechPaused`    the caller went quiet for ``pause_ms``: a good moment to start the final
  transcription speculatively, before the hang-over decides the turn is over.
- :class:`SpeechEnded`     ``hangover_ms`` of silence: the utterance, its audio and whether it was
  ever confirmed (unconfirmed ones are blips: coughs, "mhm", line noise).

The voiced/unvoiced decision per frame is webrtcvad's, gated by a minimum loudness so that
low-level line noise never counts as speech whatever webrtcvad thinks.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import webrtcvad

from config.settings import VADSettings
from speech.audio import PCM, frame_samples, rms_dbfs

VAD_RATES = (8000, 16000, 32000, 48000)


@dataclass(frozen=True)
class SpeechStarted:
    at_ms: int
    start_ms: int  # where the utterance's audio begins (first voiced frame)


@dataclass(frozen=True)
class SpeechConfirmed:
    at_ms: int
    voiced_ms: int


@dataclass(frozen=True)
class SpeechPaused:
    at_ms: int
    audio: PCM  # the utterance so far, pre-roll included, trailing silence trimmed


@dataclass(frozen=True)
class SpeechEnded:
    at_ms: int  # when the end was decided (last voiced frame + hang-over)
    start_ms: int
    end_ms: int  # end of the last voiced frame
    voiced_ms: int
    confirmed: bool
    audio: PCM = field(repr=False)
    reason: str = "silence"  # or "max_length"

    @property
    def is_blip(self) -> bool:
        return not self.confirmed


VADEvent = SpeechStarted | SpeechConfirmed | SpeechPaused | SpeechEnded


class Endpointer:
    """Feed fixed-size PCM16 frames with :meth:`process`; get endpointing events back.

    Not thread-safe: one instance per audio stream, fed from that stream's thread.
    """

    def __init__(self, settings: VADSettings | None = None, *, rate: int = 8000) -> None:
        self.settings = settings or VADSettings()
        if rate not in VAD_RATES:
            raise ValueError(f"webrtcvad needs one of {VAD_RATES} Hz, got {rate}")
        self.rate = rate
        self.frame_ms = self.settings.frame_ms
        self.frame_len = frame_samples(rate, self.frame_ms)
        self.pause_ms = min(self.settings.pause_ms, self.settings.hangover_ms)
        self._vad = webrtcvad.Vad(self.settings.aggressiveness)
        self._preroll: deque[PCM] = deque(maxlen=max(1, self.settings.preroll_ms // self.frame_ms))
        self._window: deque[bool] = deque(maxlen=max(1, (self.settings.start_ms * 2) // self.frame_ms))
        self.now_ms = 0
        self._reset_utterance()

    def _reset_utterance(self) -> None:
        self.in_speech = False
        self._frames: list[PCM] = []
        self._voiced_ms = 0
        self._silence_ms = 0
        self._start_ms = 0
        self._last_voiced_end = 0
        self._confirmed = False
        self._paused_sent = False
        self.hangover_ms = self.settings.hangover_ms  # this utterance's; the listener may lengthen it

    def is_voiced(self, frame: PCM) -> bool:
        """webrtcvad's decision, unless the frame is too quiet to be speech on a phone line."""
        if rms_dbfs(frame) < self.settings.min_energy_dbfs:
            return False
        return self._vad.is_speech(frame.tobytes(), self.rate)

    def process(self, frame: PCM) -> list[VADEvent]:
        if len(frame) != self.frame_len:
            raise ValueError(f"expected {self.frame_len} samples ({self.frame_ms} ms at {self.rate} Hz), got {len(frame)}")
        frame = np.asarray(frame, dtype=np.int16)
        voiced = self.is_voiced(frame)
        self.now_ms += self.frame_ms
        return self._in_speech(frame, voiced) if self.in_speech else self._in_silence(frame, voiced)

    def _in_silence(self, frame: PCM, voiced: bool) -> list[VADEvent]:
        self._preroll.append(frame)
        self._window.append(voiced)
        voiced_in_window = sum(self._window) * self.frame_ms
        if not voiced or voiced_in_window < self.settings.start_ms:
            return []
        # Speech starts at the first voiced frame of the window; keep the pre-roll before it.
        frames = list(self._preroll)
        self._reset_utterance()
        self.in_speech = True
        self._frames = frames
        self._voiced_ms = voiced_in_window
        self._start_ms = self.now_ms - len(self._window) * self.frame_ms
        first_voiced = next(i for i, v in enumerate(self._window) if v)
        self._start_ms += first_voiced * self.frame_ms
        self._last_voiced_end = self.now_ms
        self._window.clear()
        self._preroll.clear()
        events: list[VADEvent] = [SpeechStarted(self.now_ms, self._start_ms)]
        events += self._maybe_confirm()
        return events

    def _maybe_confirm(self) -> list[VADEvent]:
        if not self._confirmed and self._voiced_ms >= self.settings.confirm_ms:
            self._confirmed = True
            return [SpeechConfirmed(self.now_ms, self._voiced_ms)]
        return []

    def _in_speech(self, frame: PCM, voiced: bool) -> list[VADEvent]:
        self._frames.append(frame)
        events: list[VADEvent] = []
        if voiced:
            self._voiced_ms += self.frame_ms
            self._silence_ms = 0
            self._paused_sent = False
            self._last_voiced_end = self.now_ms
            events += self._maybe_confirm()
        else:
            self._silence_ms += self.frame_ms
            if not self._paused_sent and self._silence_ms >= self.pause_ms:
                self._paused_sent = True
                events.append(SpeechPaused(self.now_ms, self.utterance_audio()))
        if self._silence_ms >= self.hangover_ms:
            events.append(self._end("silence"))
        elif (self.now_ms - self._start_ms) >= self.settings.max_utterance_s * 1000:
            events.append(self._end("max_length"))
        return events

    @property
    def voiced_ms(self) -> int:
        """Voiced time of the current utterance."""
        return self._voiced_ms if self.in_speech else 0

    @property
    def silence_ms(self) -> int:
        """Trailing silence of the current utterance."""
        return self._silence_ms if self.in_speech else 0

    @property
    def utterance_samples(self) -> int:
        """Samples of :meth:`utterance_audio` (without building it)."""
        if not self._frames:
            return 0
        return max(1, len(self._frames) - self._silence_ms // self.frame_ms) * self.frame_len

    def end_now(self, reason: str) -> SpeechEnded | None:
        """End the utterance in progress now (a caller who knows the turn is over, e.g. early endpointing)."""
        return self._end(reason) if self.in_speech else None

    def utterance_audio(self) -> PCM:
        """Audio of the current utterance: pre-roll + speech, without the trailing silence."""
        if not self._frames:
            return np.zeros(0, dtype=np.int16)
        trailing = self._silence_ms // self.frame_ms
        keep = len(self._frames) - trailing
        return np.concatenate(self._frames[: max(1, keep)])

    def _end(self, reason: str) -> SpeechEnded:
        event = SpeechEnded(
            at_ms=self.now_ms,
            start_ms=self._start_ms,
            end_ms=self._last_voiced_end,
            voiced_ms=self._voiced_ms,
            confirmed=self._confirmed,
            audio=self.utterance_audio(),
            reason=reason,
        )
        self._reset_utterance()
        return event

    def flush(self) -> list[VADEvent]:
        """End of stream: close an utterance in progress."""
        return [self._end("end_of_stream")] if self.in_speech else []
