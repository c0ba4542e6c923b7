"""Endpointing on real recorded speech through the telephone path; blips are separable from speech."""

import numpy as np
import pytest

from config.settings import VADSettings
from speech import g711
from speech.audio import iter_frames, read_audio
from speech.resample import resample
from speech.vad import Endpointer, SpeechConfirmed, SpeechEnded, SpeechPaused, SpeechStarted

RATE = 8000
LEAD_S, TAIL_S = 1.0, 1.0


def _line_audio(path) -> np.ndarray:
    clip = read_audio(path)
    narrow = g711.ulaw_decode(g711.ulaw_encode(resample(clip.samples, clip.rate, RATE)))
    silence = np.zeros(int(RATE * LEAD_S), dtype=np.int16)
    return np.concatenate([silence, narrow, np.zeros(int(RATE * TAIL_S), dtype=np.int16)])


def _run(samples, settings=None, rate=RATE):
    endpointer = Endpointer(settings, rate=rate)
    events = []
    for frame in iter_frames(samples, rate, endpointer.frame_ms):
        events += endpointer.process(frame)
    return events + endpointer.flush()


def _energy_span_ms(samples) -> tuple[int, int]:
    """Where the clip is loud enough to be speech, by plain energy (an independent ground truth)."""
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160).astype(np.float64)
    db = 10 * np.log10(np.mean(frames**2, axis=1) / 32768**2 + 1e-12)
    loud = np.nonzero(db > db.max() - 20)[0]
    return int(loud[0] * 20), int((loud[-1] + 1) * 20)


def test_speech_is_found_in_every_recording(recordings):
    for rec in recordings:
        samples = _line_audio(rec.path)
        events = _run(samples)
        ends = [e for e in events if isinstance(e, SpeechEnded)]
        assert ends, f"no speech found in {rec.path.name}"
        assert all(e.reason == "silence" for e in ends), rec.path.name  # the clips end with a real endpoint
        confirmed = [e for e in ends if e.confirmed]
        assert confirmed, rec.path.name
        start, end = _energy_span_ms(samples)
        # Never triggered by the leading digital silence, never late on the loud part of the speech.
        assert LEAD_S * 1000 <= confirmed[0].start_ms <= start + 300, (rec.path.name, confirmed[0].start_ms, start)
        assert end - 400 <= confirmed[-1].end_ms <= (len(samples) / RATE - TAIL_S) * 1000 + 100, rec.path.name
        voiced = sum(e.voiced_ms for e in confirmed)
        assert voiced >= 0.5 * (end - start), rec.path.name


def test_event_order_and_timing(recordings):
    settings = VADSettings(hangover_ms=500)
    events = _run(_line_audio(recordings[0].path), settings)
    kinds = [type(e) for e in events]
    assert kinds[0] is SpeechStarted and kinds[1] is SpeechConfirmed
    end = next(e for e in events if isinstance(e, SpeechEnded))
    assert end.at_ms - end.end_ms == 500  # decided exactly one hang-over after the last voiced frame
    pause = [e for e in events if isinstance(e, SpeechPaused)][-1]
    assert pause.at_ms < end.at_ms and len(pause.audio) == len(end.audio)  # same audio: speculation valid
    assert len(end.audio) >= (end.end_ms - end.start_ms) * RATE // 1000


def test_the_speculative_pause_comes_after_the_configured_silence(recordings):
    samples = _line_audio(recordings[0].path)
    for pause_ms in (60, 120):
        events = _run(samples, VADSettings(hangover_ms=500, pause_ms=pause_ms))
        end = next(e for e in events if isinstance(e, SpeechEnded))
        pause = [e for e in events if isinstance(e, SpeechPaused) and e.at_ms < end.at_ms][-1]
        assert pause.at_ms - end.end_ms == pause_ms


def test_silence_and_low_line_noise_are_not_speech():
    rng = np.random.default_rng(1)
    silence = np.zeros(RATE * 3, dtype=np.int16)
    hiss = (rng.normal(0, 60, RATE * 3)).astype(np.int16)  # about -55 dBFS line noise
    assert _run(silence) == []
    assert _run(hiss) == []


def test_a_short_burst_is_a_blip_not_speech(recordings):
    """A 160 ms burst of real speech (cough/click-like) starts but never confirms: separable."""
    speech = _line_audio(recordings[0].path)
    start, _ = _energy_span_ms(speech)
    burst = speech[start * 8 : start * 8 + int(0.16 * RATE)]
    clip = np.concatenate([np.zeros(RATE, np.int16), burst, np.zeros(RATE, np.int16)])
    events = _run(clip)
    ends = [e for e in events if isinstance(e, SpeechEnded)]
    assert len(ends) == 1 and ends[0].is_blip
    assert not any(isinstance(e, SpeechConfirmed) for e in events)


def test_confirmation_threshold_is_configurable(recordings):
    speech = _line_audio(recordings[0].path)
    start, _ = _energy_span_ms(speech)
    burst = np.concatenate([np.zeros(RATE, np.int16), speech[start * 8 : start * 8 + int(0.5 * RATE)], np.zeros(RATE, np.int16)])
    assert any(isinstance(e, SpeechConfirmed) for e in _run(burst, VADSettings(confirm_ms=200)))
    assert not any(isinstance(e, SpeechConfirmed) for e in _run(burst, VADSettings(confirm_ms=1000)))


def test_hangover_decides_whether_a_pause_splits_the_turn(recordings):
    digits = next(r for r in recordings if r.path.name == "vosk_digits.wav")
    samples = _line_audio(digits.path)
    short = [e for e in _run(samples, VADSettings(hangover_ms=300)) if isinstance(e, SpeechEnded)]
    long = [e for e in _run(samples, VADSettings(hangover_ms=2000)) if isinstance(e, SpeechEnded)]
    assert len(long) == 1 and len(short) > 1


def test_max_utterance_length_forces_an_end(recordings):
    samples = _line_audio(next(r for r in recordings if r.seconds > 10).path)
    ends = [e for e in _run(samples, VADSettings(max_utterance_s=2.0, hangover_ms=2000)) if isinstance(e, SpeechEnded)]
    assert any(e.reason == "max_length" for e in ends)


def test_16k_streams_work_too(recordings):
    clip = read_audio(recordings[0].path)
    padded = np.concatenate([np.zeros(16000, np.int16), clip.samples, np.zeros(16000, np.int16)])
    assert any(isinstance(e, SpeechEnded) and e.confirmed for e in _run(padded, rate=16000))


def test_wrong_frame_size_and_rate_are_refused():
    with pytest.raises(ValueError, match="44100"):
        Endpointer(rate=44100)
    with pytest.raises(ValueError, match="expected 160 samples"):
        Endpointer(rate=8000).process(np.zeros(100, np.int16))
