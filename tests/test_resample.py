"""Resampling with soxr: whole clips and 20 ms streams, frequencies and levels preserved."""

import numpy as np
import pytest

from speech.audio import iter_frames, read_audio
from speech.resample import StreamResampler, resample, telephone_path


def _tone(freq: float, rate: int, seconds: float = 1.0, amp: float = 10000) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def _peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


@pytest.mark.parametrize("src, dst", [(8000, 16000), (16000, 8000), (22050, 8000), (8000, 22050), (22050, 16000)])
def test_tone_keeps_its_pitch_length_and_level(src, dst):
    out = resample(_tone(1000, src), src, dst)
    assert abs(len(out) - dst) <= 1
    assert abs(_peak_hz(out, dst) - 1000) < 5
    middle = out[dst // 10 : -dst // 10].astype(np.float64)
    assert abs(np.sqrt(np.mean(middle**2)) - 10000 / np.sqrt(2)) < 200


def test_downsampling_removes_what_8k_cannot_carry():
    out = resample(_tone(5000, 22050), 22050, 8000)  # above the 4 kHz Nyquist limit
    assert np.sqrt(np.mean(out.astype(np.float64) ** 2)) < 100


def test_stream_of_20ms_frames_equals_one_shot(recordings):
    clip = read_audio(recordings[0].path)
    line = resample(clip.samples, clip.rate, 8000)
    stream = StreamResampler(8000, 16000)
    pieces = [stream.process(frame) for frame in iter_frames(line, 8000, 20, pad=False)] + [stream.flush()]
    streamed = np.concatenate(pieces)
    whole = resample(line[: len(line) // 160 * 160], 8000, 16000)
    assert abs(len(streamed) - len(whole)) <= 2
    n = min(len(streamed), len(whole))
    assert np.abs(streamed[:n].astype(np.int32) - whole[:n].astype(np.int32)).max() <= 2


def test_telephone_path_is_band_limited_but_close(recordings):
    clip = read_audio(recordings[0].path)
    phoned = telephone_path(clip.samples, clip.rate)
    assert len(phoned) == pytest.approx(len(clip.samples), abs=2)
    # Compare within the telephone band: the 8 kHz round trip plus G.711 keeps >20 dB SNR there.
    reference = resample(resample(clip.samples, clip.rate, 8000), 8000, clip.rate).astype(np.float64)
    n = min(len(reference), len(phoned))
    noise = phoned[:n].astype(np.float64) - reference[:n]
    assert 10 * np.log10(np.sum(reference[:n] ** 2) / np.sum(noise**2)) > 20


def test_same_rate_is_a_no_op():
    tone = _tone(440, 8000)
    assert resample(tone, 8000, 8000) is tone or np.array_equal(resample(tone, 8000, 8000), tone)
    assert np.array_equal(StreamResampler(8000, 8000).process(tone), tone)
