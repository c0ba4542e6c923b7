"""Sample-rate conversion with libsoxr: 8 kHz line <-> 16 kHz STT <-> 22.05 kHz Piper.

One-shot for whole clips, and a stream class for 20 ms frames that keeps the filter state between
frames (resampling frames one by one as independent clips would click at every frame boundary).
"""

from __future__ import annotations

import numpy as np
import soxr

from speech import g711
from speech.audio import LINE_RATE, PCM

_QUALITY = "HQ"


def resample(samples: PCM, in_rate: int, out_rate: int, quality: str = _QUALITY) -> PCM:
    """Resample a whole PCM16 clip."""
    if in_rate == out_rate or len(samples) == 0:
        return samples.astype(np.int16, copy=False)
    return soxr.resample(samples.astype(np.int16, copy=False), in_rate, out_rate, quality=quality)


class StreamResampler:
    """Resample a stream of PCM16 frames; ``flush`` returns the filter's tail at the end of the stream."""

    def __init__(self, in_rate: int, out_rate: int, quality: str = _QUALITY) -> None:
        self.in_rate, self.out_rate = in_rate, out_rate
        self._stream = None if in_rate == out_rate else soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality=quality)

    def process(self, frame: PCM) -> PCM:
        if self._stream is None:
            return frame
        return self._stream.resample_chunk(frame.astype(np.int16, copy=False))

    def flush(self) -> PCM:
        if self._stream is None:
            return np.zeros(0, dtype=np.int16)
        return self._stream.resample_chunk(np.zeros(0, dtype=np.int16), last=True)


def telephone_path(samples: PCM, rate: int, codec: str = "PCMU") -> PCM:
    """What a caller's voice becomes after the phone line: 8 kHz, G.711, back at ``rate``.

    Used to test and benchmark speech recognition on the audio it will really get.
    """
    encode, decode = g711.CODECS[codec]
    narrow = resample(samples, rate, LINE_RATE)
    return resample(decode(encode(narrow)), LINE_RATE, rate)
