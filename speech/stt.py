"""Speech-to-text with faster-whisper (CTranslate2), tuned for short telephone utterances.

Whisper's encoder always works on a 30 s window, so a 2 s utterance pays for 30 s of encoder time
(~0.6 s with whisper base on two CPU cores). CTranslate2 accepts shorter feature windows, so the
``adaptive`` mode encodes only the utterance plus a margin (~0.1 s for the same 2 s). That path is
used for utterances up to ~25 s; a result that looks unreliable (repetitive text, low confidence)
is redone with the reference full-window decoder, as is long audio.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import ctranslate2
import numpy as np
import numpy.typing as npt
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_suppressed_tokens

from config.models import resolve_whisper_model
from config.settings import STTSettings
from speech.audio import PCM, STT_RATE, to_float

log = logging.getLogger(__name__)

_HOP = 160  # feature frames are 10 ms at 16 kHz
_FULL_WINDOW_FRAMES = 3000
_WINDOW_STEP_FRAMES = 100  # encoder windows rounded up to whole seconds
# At least 4 s of silence after the speech. Measured on the shared recordings through G.711 (base,
# greedy): 1 s margin -> WER 18.7% (Whisper loops, repeating the sentence), 2 s -> 11%, 4 s -> 3.9%,
# full 30 s window -> 3.7%; median time 0.23 s against 0.78 s for the full window.
_MARGIN_FRAMES = 400
# A short utterance (under 2 s) gets an 11 s window: a one-word answer ("Yes.", "Two.") in a 5 s window
# looped ("Yes. Yes.", "2 2 2 2") or scored too low, and its fallback to the full window took 700-800 ms
# instead of ~180 ms. Measured on 11 one-word answers (recorded digits, Piper words) through G.711: 11 s
# got 10 right in the window (10 and 12 s: 8 or 9). Longer utterances keep their window: a 10 s minimum
# for all cost ~40 ms of the endpoint on 3-5 s turns, for the same WER on the shared recordings.
_SHORT_FRAMES = 200
_SHORT_WINDOW_FRAMES = 1100
_ADAPTIVE_MAX_SECONDS = 25.0
_MAX_COMPRESSION_RATIO = 2.4
_MIN_AVG_LOGPROB = -1.0


@dataclass(frozen=True)
class Transcript:
    """A transcription and what it cost."""

    text: str
    audio_seconds: float
    compute_seconds: float
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    window: str = "adaptive"
    encoder_frames: int = 3000  # 10 ms feature frames the encoder ran on (3000 = Whisper's 30 s)
    reliable: bool = True  # False: the adaptive window's result looked wrong and was not redone (fallback=False)

    @property
    def real_time_factor(self) -> float:
        return self.compute_seconds / self.audio_seconds if self.audio_seconds else 0.0


def pick_device(device: str, compute_type: str) -> tuple[str, str]:
    """``auto`` -> CUDA with float16 when a GPU is visible to CTranslate2, else CPU with int8."""
    if device == "auto":
        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type


def _compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / max(1, len(zlib.compress(data)))


def has_repetition_loop(text: str, min_words: int = 2, repeats: int = 3, long_run: int = 4) -> bool:
    """Whisper looping: a run of ``min_words``+ words repeated ``repeats`` times in a row, or a run of
    ``long_run``+ words said twice in a row (people repeat a word or two, not whole clauses)."""
    words = [w.strip(".,!?;:").lower() for w in text.split()]

    def repeated(size: int, times: int) -> bool:
        for start in range(0, len(words) - size * times + 1):
            chunk = words[start : start + size]
            if all(words[start + k * size : start + (k + 1) * size] == chunk for k in range(1, times)):
                return True
        return False

    if any(repeated(size, repeats) for size in range(min_words, len(words) // repeats + 1)):
        return True
    return any(repeated(size, 2) for size in range(long_run, len(words) // 2 + 1))


class WhisperSTT:
    """A loaded Whisper model. Thread-safe: up to ``workers`` calls run at once, more wait; loaded once."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str = "auto",
        compute_type: str = "auto",
        cpu_threads: int = 2,
        workers: int = 1,
        language: str = "en",
        beam_size: int = 1,
        encoder_window: str = "adaptive",
    ) -> None:
        self.device, self.compute_type = pick_device(device, compute_type)
        started = time.perf_counter()
        self.model = WhisperModel(
            str(model_dir),
            device=self.device,
            compute_type=self.compute_type,
            cpu_threads=cpu_threads,
            num_workers=workers,
            local_files_only=True,
        )
        self.load_seconds = time.perf_counter() - started
        self.language = language if self.model.model.is_multilingual else "en"
        self.beam_size = beam_size
        self.encoder_window = encoder_window
        self._tokenizer = Tokenizer(
            self.model.hf_tokenizer, self.model.model.is_multilingual, task="transcribe", language=self.language
        )
        self._prompt = [*self._tokenizer.sot_sequence, self._tokenizer.no_timestamps]
        self._suppress = list(get_suppressed_tokens(self._tokenizer, [-1]))
        self.workers = workers
        self._slots = threading.Semaphore(workers)  # CTranslate2 runs one transcription per model replica
        log.info("whisper %s loaded on %s/%s in %.2fs (%d worker(s))", model_dir, self.device, self.compute_type,
                 self.load_seconds, workers)

    @classmethod
    def from_settings(cls, settings: STTSettings, cache_dir: Path) -> "WhisperSTT":
        return cls(
            resolve_whisper_model(settings.model, cache_dir),
            device=settings.device,
            compute_type=settings.compute_type,
            cpu_threads=settings.cpu_threads,
            workers=settings.workers,
            language=settings.language,
            beam_size=settings.beam_size,
            encoder_window=settings.encoder_window,
        )

    def transcribe(self, audio: PCM | npt.NDArray[np.float32], *, fallback: bool = True) -> Transcript:
        """Transcribe one utterance of 16 kHz mono audio (PCM16 or float32).

        ``fallback=False``: an unreliable adaptive result is returned as it is (``reliable=False``) instead of
        being redone with the full 30 s window (~0.8 s here): for a preview (a partial, a speculative transcript
        of what may not be the end of the turn), which is redone only if it becomes the final text."""
        samples = to_float(audio) if audio.dtype == np.int16 else audio.astype(np.float32, copy=False)
        seconds = len(samples) / STT_RATE
        if seconds < 0.1:
            return Transcript("", seconds, 0.0)
        started = time.perf_counter()
        with self._slots:
            result = None
            if self.encoder_window == "adaptive" and seconds <= _ADAPTIVE_MAX_SECONDS:
                result = self._transcribe_adaptive(samples)
                if result is not None and not self._reliable(*result):
                    if not fallback:
                        text, avg_logprob, no_speech, frames = result
                        return Transcript(text, seconds, time.perf_counter() - started, avg_logprob, no_speech,
                                          "adaptive", frames, reliable=False)
                    log.debug("adaptive result unreliable (%r); redoing with the full window", result[0])
                    result = None
            window = "adaptive" if result is not None else "full"
            if result is None:
                result = (*self._transcribe_full(samples), _FULL_WINDOW_FRAMES)
        text, avg_logprob, no_speech, frames = result
        return Transcript(text, seconds, time.perf_counter() - started, avg_logprob, no_speech, window, frames)

    @staticmethod
    def _reliable(text: str, avg_logprob: float, no_speech: float, frames: int) -> bool:
        if not text:
            return True
        return (
            _compression_ratio(text) <= _MAX_COMPRESSION_RATIO
            and avg_logprob >= _MIN_AVG_LOGPROB
            and not has_repetition_loop(text)
        )

    def _transcribe_adaptive(self, samples: npt.NDArray[np.float32]) -> tuple[str, float, float, int] | None:
        frames = len(samples) // _HOP
        window = math.ceil((frames + _MARGIN_FRAMES) / _WINDOW_STEP_FRAMES) * _WINDOW_STEP_FRAMES
        if frames < _SHORT_FRAMES:
            window = max(window, _SHORT_WINDOW_FRAMES)
        window = min(window, _FULL_WINDOW_FRAMES)
        # Pad the *audio* with silence, as Whisper's own 30 s padding does: padding the features
        # with zeros instead is not silence to the model and makes it loop ("O O O O ...").
        waveform = np.zeros(window * _HOP, dtype=np.float32)
        waveform[: len(samples)] = samples[: len(waveform)]
        padded = self.model.feature_extractor(waveform, padding=0)[:, :window]
        encoded = self.model.encode(padded)
        # Whisper emits ~3 tokens a second of speech; a cap well above that stops runaway loops.
        max_length = min(self.model.max_length, len(self._prompt) + 24 + int(8 * frames / 100))
        result = self.model.model.generate(
            encoded,
            [self._prompt],
            beam_size=self.beam_size,
            max_length=max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppress,
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < self._tokenizer.eot]
        text = self._tokenizer.decode(tokens).strip()
        # CTranslate2's score is the sum of log-probabilities divided by the length (length_penalty 1).
        avg_logprob = result.scores[0] if result.scores else 0.0
        return text, float(avg_logprob), float(result.no_speech_prob), window

    def _transcribe_full(self, samples: npt.NDArray[np.float32]) -> tuple[str, float, float]:
        segments, _info = self.model.transcribe(
            samples,
            language=self.language if self.model.model.is_multilingual else None,
            beam_size=self.beam_size,
            without_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        parts = list(segments)
        text = " ".join(s.text.strip() for s in parts).strip()
        avg = float(np.mean([s.avg_logprob for s in parts])) if parts else 0.0
        no_speech = float(max((s.no_speech_prob for s in parts), default=0.0))
        return text, avg, no_speech
