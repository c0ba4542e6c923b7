"""Audio containers and conversions shared by the speech stack (PCM16 mono throughout)."""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import numpy.typing as npt

LINE_RATE = 8000  # G.711 narrowband telephone audio
STT_RATE = 16000  # what Whisper expects

PCM = npt.NDArray[np.int16]


class AudioFormatError(ValueError):
    """Audio that cannot be read as speech (wrong format, empty, unreadable)."""


@dataclass(frozen=True)
class Audio:
    """A mono PCM16 clip and its sample rate."""

    samples: PCM
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate


def to_float(samples: PCM) -> npt.NDArray[np.float32]:
    """PCM16 -> float32 in [-1, 1) (Whisper's input)."""
    return samples.astype(np.float32) / 32768.0


def to_pcm16(samples: npt.NDArray[np.floating]) -> PCM:
    """float in [-1, 1] -> PCM16, clipped rather than wrapped."""
    return np.clip(np.round(samples * 32767.0), -32768, 32767).astype(np.int16)


def rms_dbfs(samples: PCM) -> float:
    """Loudness of a frame in dB relative to full scale (-inf for digital silence, floored at -120)."""
    if len(samples) == 0:
        return -120.0
    power = float(np.mean(np.square(samples.astype(np.float64)))) / (32768.0**2)
    return max(-120.0, 10.0 * np.log10(power)) if power > 0 else -120.0


def trim_leading_silence(samples: PCM, rate: int, *, threshold: int = 300, keep_ms: int = 10) -> PCM:
    """Drop the silence a synthesised piece starts with (Piper: ~40 ms), keeping ``keep_ms`` before the sound.

    For the first piece of a reply only: the caller is waiting, and every silent frame sent first is
    delay. Later pieces keep theirs, as the pause between sentences."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > threshold)
    if not len(loud):
        return samples
    return samples[max(0, int(loud[0]) - rate * keep_ms // 1000) :]


def read_audio(path: str | Path) -> Audio:
    """Any audio file -> mono PCM16 at its own rate (WAV directly, other formats through PyAV)."""
    path = Path(path)
    if not path.is_file():
        raise AudioFormatError(f"{path}: no such file")
    try:
        with wave.open(str(path), "rb") as handle:
            if handle.getsampwidth() != 2:
                raise wave.Error("not 16-bit")
            channels, rate = handle.getnchannels(), handle.getframerate()
            data = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
    except (wave.Error, EOFError):
        return _read_with_av(path)
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return Audio(data.astype(np.int16, copy=False), rate)


def _read_with_av(path: Path) -> Audio:
    from faster_whisper.audio import decode_audio  # PyAV under the hood; decodes any container/codec

    try:
        samples = decode_audio(str(path), sampling_rate=STT_RATE)
    except Exception as exc:  # PyAV raises many types; the caller needs one clear message
        raise AudioFormatError(f"{path}: cannot decode audio ({exc})") from exc
    return Audio(to_pcm16(samples), STT_RATE)


def write_wav(path: str | Path, samples: PCM, rate: int) -> None:
    """Write mono PCM16 WAV."""
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(np.asarray(samples, dtype="<i2").tobytes())


def frame_samples(rate: int, frame_ms: int) -> int:
    return rate * frame_ms // 1000


def iter_frames(samples: PCM, rate: int, frame_ms: int = 20, *, pad: bool = True) -> Iterator[PCM]:
    """Cut a clip into fixed frames, as a line would deliver it; the last one zero-padded if ``pad``."""
    size = frame_samples(rate, frame_ms)
    for start in range(0, len(samples), size):
        frame = samples[start : start + size]
        if len(frame) < size:
            if not pad:
                return
            frame = np.concatenate([frame, np.zeros(size - len(frame), dtype=np.int16)])
        yield frame
