"""G.711 µ-law and A-law <-> 16-bit linear PCM, vectorised with NumPy.

Why by hand: ``audioop`` is deprecated and gone in Python 3.13, and the few PyPI codecs are
unmaintained C extensions. G.711 is a fixed 256-entry mapping, so the whole codec is two lookup
tables built once from the ITU-T G.711 segment rules; encoding and decoding a 20 ms frame is one
NumPy fancy-index. Bit-exact with ``audioop`` (pinned by tests).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_ULAW_BIAS = 0x84
_ULAW_CLIP_14BIT = 8159
# Segment end points of the ITU-T G.711 reference code: µ-law on 14-bit, A-law on 13-bit magnitudes.
_ULAW_SEG_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_ALAW_SEG_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)

PCM = npt.NDArray[np.int16]


def _segment(values: npt.NDArray[np.int32], ends: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
    """Index of the first segment whose end is >= value (8 where none is)."""
    return np.searchsorted(ends, values, side="left").astype(np.int32)


def _build_ulaw_encode() -> npt.NDArray[np.uint8]:
    pcm = np.arange(-32768, 32768, dtype=np.int32)
    # audioop (like the ITU reference code) works on 14-bit magnitudes: drop the two low bits.
    pcm = pcm >> 2
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(pcm), _ULAW_CLIP_14BIT) + (_ULAW_BIAS >> 2)
    seg = _segment(magnitude, _ULAW_SEG_END)
    mantissa = (magnitude >> (seg + 1)) & 0xF
    code = np.where(seg >= 8, 0x7F, (seg << 4) | mantissa)
    return (code ^ mask).astype(np.uint8)


def _build_ulaw_decode() -> npt.NDArray[np.int16]:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((code & 0x0F) << 3) + _ULAW_BIAS) << ((code & 0x70) >> 4)
    return np.where(code & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS).astype(np.int16)


def _build_alaw_encode() -> npt.NDArray[np.uint8]:
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 3  # A-law works on 13-bit values
    negative = pcm < 0
    mask = np.where(negative, 0x55, 0xD5)
    magnitude = np.where(negative, -pcm - 1, pcm)
    seg = _segment(magnitude, _ALAW_SEG_END)
    low = np.where(seg < 2, (magnitude >> 1) & 0xF, (magnitude >> seg) & 0xF)
    code = np.where(seg >= 8, 0x7F, (seg << 4) | low)
    return (code ^ mask).astype(np.uint8)


def _build_alaw_decode() -> npt.NDArray[np.int16]:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    t = (code & 0x0F) << 4
    seg = (code & 0x70) >> 4
    t = np.where(seg == 0, t + 8, np.where(seg == 1, t + 0x108, (t + 0x108) << np.maximum(seg - 1, 0)))
    return np.where(code & 0x80, t, -t).astype(np.int16)


_ULAW_ENC = _build_ulaw_encode()
_ULAW_DEC = _build_ulaw_decode()
_ALAW_ENC = _build_alaw_encode()
_ALAW_DEC = _build_alaw_decode()


def _as_pcm(samples: PCM | bytes) -> PCM:
    if isinstance(samples, (bytes, bytearray, memoryview)):
        return np.frombuffer(samples, dtype="<i2")
    if samples.dtype != np.int16:
        raise TypeError(f"G.711 encodes int16 PCM, got {samples.dtype}")
    return samples


def _as_codes(payload: bytes | npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return np.frombuffer(payload, dtype=np.uint8)
    return payload


def ulaw_encode(samples: PCM | bytes) -> bytes:
    """PCM16 (array or little-endian bytes) -> µ-law bytes, one byte a sample."""
    return _ULAW_ENC[_as_pcm(samples).astype(np.int32) + 32768].tobytes()


def ulaw_decode(payload: bytes | npt.NDArray[np.uint8]) -> PCM:
    """µ-law bytes -> PCM16 samples."""
    return _ULAW_DEC[_as_codes(payload)]


def alaw_encode(samples: PCM | bytes) -> bytes:
    """PCM16 (array or little-endian bytes) -> A-law bytes, one byte a sample."""
    return _ALAW_ENC[_as_pcm(samples).astype(np.int32) + 32768].tobytes()


def alaw_decode(payload: bytes | npt.NDArray[np.uint8]) -> PCM:
    """A-law bytes -> PCM16 samples."""
    return _ALAW_DEC[_as_codes(payload)]


CODECS = {
    "PCMU": (ulaw_encode, ulaw_decode),
    "PCMA": (alaw_encode, alaw_decode),
}
