"""Piper TTS: streamed pieces at line rate, numbers read like a person, and Piper -> G.711 -> Whisper."""

import numpy as np
import pytest

from speech.audio import STT_RATE, rms_dbfs
from speech.resample import resample, telephone_path
from speech.scoring import word_error_rate


def test_stream_yields_line_rate_pieces_first_one_early(tts):
    text = "Thanks for calling Northwind Dental, this is Ava speaking. How can I help you today? We are open until six."
    stream = tts.stream(text, rate=8000)
    first = next(stream)  # handed out before the rest of the reply is synthesised
    assert first.text.endswith(",")  # the first piece is a clause: speech starts sooner
    assert first.spoken.startswith("Thanks for calling")
    chunks = [first, *stream]
    assert len(chunks) >= 3
    assert all(c.rate == 8000 and c.samples.dtype == np.int16 for c in chunks)
    for chunk in chunks:
        assert 0.3 < chunk.seconds < 8
        assert -30 < rms_dbfs(chunk.samples) < -3  # audible, not clipped to a square wave
        assert np.abs(chunk.samples.astype(np.int32)).max() < 32767


def test_fragments_as_an_llm_streams_them(tts):
    fragments = ["Sure", ", I can", " help with that", ". Your appointment", " is at 9:30", " tomorrow."]
    pieces = [c.text for c in tts.stream_fragments(fragments, rate=8000)]
    assert pieces[-1].strip() == "Your appointment is at 9:30 tomorrow."
    assert "".join(pieces).replace(" ", "") == "".join(fragments).replace(" ", "")


def test_numbers_are_spoken_as_words(tts):
    chunk = tts.synthesize_piece("It costs $12.50 and we open at 9:30 AM.", 8000)
    assert "twelve dollars and fifty cents" in chunk.spoken
    assert "nine thirty a m" in chunk.spoken


def test_nothing_to_say(tts):
    assert tts.synthesize_piece("  ", 8000) is None
    assert len(tts.synthesize("", 8000)) == 0


SENTENCES = [
    "Please hold while I transfer you to the billing department.",
    "Our office is open from nine to five on weekdays.",
    "Can I take a message for Doctor Smith?",
    "Your order number is 4 7 1 1 9.",
    "The appointment costs $40.",
]


@pytest.fixture(scope="module")
def steady_tts(settings):
    """Piper without its random variation: the same audio on every run, so the test cannot flake."""
    from speech.tts import PiperTTS

    return PiperTTS.from_settings(settings.tts.model_copy(update={"noise_scale": 0.0, "noise_w_scale": 0.0}))


def test_steady_voice_is_repeatable(steady_tts):
    import numpy as np

    assert np.array_equal(steady_tts.synthesize("Same words.", 8000), steady_tts.synthesize("Same words.", 8000))


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_piper_to_g711_to_whisper_round_trip(steady_tts, stt, codec):
    heard = []
    for sentence in SENTENCES:
        line = steady_tts.synthesize(sentence, 8000)
        heard.append(stt.transcribe(telephone_path(resample(line, 8000, STT_RATE), STT_RATE, codec)).text)
    result = word_error_rate(SENTENCES, heard)
    assert result.wer <= 0.10, list(zip(SENTENCES, heard))


def test_the_silence_piper_starts_a_piece_with_can_be_trimmed(steady_tts):
    from speech.audio import trim_leading_silence

    chunk = steady_tts.synthesize_piece("Good morning.", 8000)
    loud = np.flatnonzero(np.abs(chunk.samples.astype(np.int32)) > 300)
    assert loud[0] >= 8000 * 20 // 1000  # Piper begins with tens of milliseconds of silence
    trimmed = trim_leading_silence(chunk.samples, 8000)
    assert len(chunk.samples) - len(trimmed) == loud[0] - 80  # cut to 10 ms before the sound, the rest kept
    assert np.array_equal(trimmed, chunk.samples[loud[0] - 80 :])
    silence = np.zeros(800, np.int16)
    assert trim_leading_silence(silence, 8000) is silence  # nothing audible: nothing to trim
