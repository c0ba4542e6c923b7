"""Text-to-speech with Piper, streamed sentence by sentence at the line's sample rate.

The first sentence (or first clause of a long one) is synthesised and handed out before the next
is started, so a caller hears the reply ~0.1-0.3 s after it begins, not after the whole paragraph.
Numbers, money, times and phone numbers are spelled out first, the way a person reads them.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import onnxruntime
from piper import PiperVoice, SynthesisConfig
from piper.config import PiperConfig
from piper.voice import ESPEAK_DATA_DIR

from config.models import VoiceFiles, resolve_voice
from config.settings import TTSSettings
from speech.audio import PCM, to_pcm16
from speech.resample import resample
from speech.sentences import SentenceChunker, split_sentences
from speech.text_normalize import normalize_for_speech

log = logging.getLogger(__name__)

# The first piece may stop at a clause once it has this many characters: earlier first audio.
FIRST_CLAUSE_MIN_CHARS = 24


@dataclass(frozen=True)
class SpeechChunk:
    """One synthesised sentence or clause, ready for the line."""

    text: str  # as written (what the history records when it is played)
    spoken: str  # after normalisation (what the voice said)
    samples: PCM = field(repr=False)
    rate: int
    synth_seconds: float

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate


class PiperTTS:
    """A loaded Piper voice. Thread-safe (ONNX Runtime sessions may be run concurrently)."""

    def __init__(
        self,
        voice: VoiceFiles,
        *,
        length_scale: float = 1.0,
        speaker_id: int | None = None,
        volume: float = 0.6,
        use_cuda: bool = False,
        noise_scale: float | None = None,
        noise_w_scale: float | None = None,
        cpu_threads: int = 2,
    ) -> None:
        started = time.perf_counter()
        self.voice = self._load(voice, use_cuda, cpu_threads)
        self.load_seconds = time.perf_counter() - started
        self.native_rate = self.voice.config.sample_rate
        self._config = SynthesisConfig(
            speaker_id=speaker_id, length_scale=length_scale, volume=volume,
            noise_scale=noise_scale, noise_w_scale=noise_w_scale,
        )
        self._warm = threading.Event()
        log.info("piper voice %s loaded in %.2fs (%d Hz)", voice.model.name, self.load_seconds, self.native_rate)

    @staticmethod
    def _load(voice: VoiceFiles, use_cuda: bool, cpu_threads: int) -> PiperVoice:
        """``PiperVoice.load`` with our session options (it takes none): a set thread count, and no spin-waiting."""
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = cpu_threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = [("CUDAExecutionProvider", {"cudnn_conv_algo_search": "HEURISTIC"})] if use_cuda else ["CPUExecutionProvider"]
        return PiperVoice(
            config=PiperConfig.from_dict(json.loads(Path(voice.config).read_text(encoding="utf-8"))),
            session=onnxruntime.InferenceSession(str(voice.model), sess_options=options, providers=providers),
            espeak_data_dir=Path(ESPEAK_DATA_DIR),
            download_dir=Path.cwd(),
        )

    @classmethod
    def from_settings(cls, settings: TTSSettings) -> "PiperTTS":
        return cls(
            resolve_voice(settings.voice),
            length_scale=settings.length_scale,
            speaker_id=settings.speaker_id,
            volume=settings.volume,
            use_cuda=settings.use_cuda,
            noise_scale=settings.noise_scale,
            noise_w_scale=settings.noise_w_scale,
            cpu_threads=settings.cpu_threads,
        )

    def warm_up(self) -> None:
        """One throwaway synthesis: ONNX Runtime's first run is several times slower than the next."""
        if not self._warm.is_set():
            self.synthesize_piece("Hello.", self.native_rate)
            self._warm.set()

    def synthesize_piece(self, text: str, rate: int) -> SpeechChunk | None:
        """One sentence or clause -> audio at ``rate`` (None if there is nothing to say)."""
        spoken = normalize_for_speech(text)
        if not spoken.strip():
            return None
        started = time.perf_counter()
        parts = [c.audio_float_array for c in self.voice.synthesize(spoken, syn_config=self._config)]
        if not parts:
            return None
        audio = resample(to_pcm16(np.concatenate(parts)), self.native_rate, rate)
        return SpeechChunk(text, spoken, audio, rate, time.perf_counter() - started)

    def stream(self, text: str, rate: int = 8000) -> Iterator[SpeechChunk]:
        """Synthesise a whole reply piece by piece (first piece possibly a clause)."""
        chunker = SentenceChunker(first_clause_min_chars=FIRST_CLAUSE_MIN_CHARS)
        yield from self.stream_fragments([text], rate, chunker)

    def stream_fragments(
        self, fragments: Iterable[str], rate: int = 8000, chunker: SentenceChunker | None = None
    ) -> Iterator[SpeechChunk]:
        """Synthesise text that arrives in fragments (LLM tokens): each sentence as soon as it is complete."""
        chunker = chunker or SentenceChunker(first_clause_min_chars=FIRST_CLAUSE_MIN_CHARS)
        for fragment in fragments:
            for piece in chunker.push(fragment):
                chunk = self.synthesize_piece(piece, rate)
                if chunk is not None:
                    yield chunk
        for piece in chunker.flush():
            chunk = self.synthesize_piece(piece, rate)
            if chunk is not None:
                yield chunk

    def synthesize(self, text: str, rate: int = 8000, pause_ms: int = 120) -> PCM:
        """A whole text as one clip, with a short pause between sentences."""
        gap = np.zeros(rate * pause_ms // 1000, dtype=np.int16)
        pieces: list[PCM] = []
        for sentence in split_sentences(text):
            chunk = self.synthesize_piece(sentence, rate)
            if chunk is not None:
                pieces += [chunk.samples, gap]
        return np.concatenate(pieces[:-1]) if pieces else np.zeros(0, dtype=np.int16)
