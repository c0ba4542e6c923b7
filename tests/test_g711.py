"""G.711 codecs: bit-exact against audioop (CPython's C reference), and within G.711's error bounds."""

import warnings

import numpy as np
import pytest

from speech import g711

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # the reference implementation; deprecated, still shipped with 3.11/3.12

ALL_PCM = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))


@pytest.mark.parametrize(
    "encode, reference", [(g711.ulaw_encode, audioop.lin2ulaw), (g711.alaw_encode, audioop.lin2alaw)]
)
def test_encode_matches_audioop_for_every_sample(encode, reference):
    assert encode(ALL_PCM) == reference(ALL_PCM.tobytes(), 2)


@pytest.mark.parametrize(
    "decode, reference", [(g711.ulaw_decode, audioop.ulaw2lin), (g711.alaw_decode, audioop.alaw2lin)]
)
def test_decode_matches_audioop_for_every_code(decode, reference):
    np.testing.assert_array_equal(decode(ALL_CODES), np.frombuffer(reference(ALL_CODES, 2), dtype="<i2"))


@pytest.mark.parametrize("law", ["PCMU", "PCMA"])
def test_round_trip_error_is_within_half_a_quantisation_step(law):
    encode, decode = g711.CODECS[law]
    decoded = decode(encode(ALL_PCM)).astype(np.int32)
    error = np.abs(decoded - ALL_PCM.astype(np.int32))
    # The largest G.711 step is 1024 (µ-law) / 1024 (A-law) at full scale: error <= half a step + clip.
    assert error[np.abs(ALL_PCM.astype(np.int32)) < 32000].max() <= 512 + 4
    # Small signals are coded finely: error below 2% of the magnitude above -40 dBFS.
    mid = (np.abs(ALL_PCM.astype(np.int32)) > 328) & (np.abs(ALL_PCM.astype(np.int32)) < 32000)
    assert (error[mid] / np.abs(ALL_PCM[mid].astype(np.int32))).max() < 0.07


@pytest.mark.parametrize("law", ["PCMU", "PCMA"])
def test_speech_like_signal_snr(law):
    encode, decode = g711.CODECS[law]
    t = np.arange(8000) / 8000
    signal = (8000 * np.sin(2 * np.pi * 440 * t) + 3000 * np.sin(2 * np.pi * 1250 * t)).astype(np.int16)
    decoded = decode(encode(signal)).astype(np.float64)
    noise = decoded - signal
    snr = 10 * np.log10(np.sum(signal.astype(np.float64) ** 2) / np.sum(noise**2))
    assert snr > 33  # G.711's ~38 dB SQNR for well-levelled signals


def test_bytes_and_arrays_are_both_accepted():
    frame = (np.sin(np.arange(160) / 5) * 10000).astype(np.int16)
    assert g711.ulaw_encode(frame) == g711.ulaw_encode(frame.tobytes())
    assert len(g711.alaw_encode(frame)) == 160
    assert g711.ulaw_decode(np.frombuffer(g711.ulaw_encode(frame), np.uint8)).dtype == np.int16


def test_float_input_is_refused_rather_than_wrapped():
    with pytest.raises(TypeError, match="int16"):
        g711.ulaw_encode(np.zeros(160, dtype=np.float32))
