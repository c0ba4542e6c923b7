"""Answering-machine detection and the beep, on recorded human speech and Piper greetings over G.711."""

from __future__ import annotations

import numpy as np
import pytest

from speech.answering_machine import Answerer, AnsweringMachineDetector, BeepDetector
from speech.audio import read_audio
from speech.resample import resample, telephone_path

RATE = 8000


def line_audio(samples: np.ndarray, rate: int) -> np.ndarray:
    return telephone_path(resample(samples, rate, RATE), RATE)


def frames(samples: np.ndarray):
    for start in range(0, len(samples) - 159, 160):
        yield samples[start:start + 160]


def beep(hz: float, seconds: float = 0.5, level: int = 8000) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (level * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(RATE * seconds), np.int16)


def verdict(samples: np.ndarray):
    detector = AnsweringMachineDetector()
    for frame in frames(np.concatenate([samples, silence(5)])):
        if detector.feed(frame):
            break
    return detector.verdict


def synth(voice, text: str) -> np.ndarray:
    return np.concatenate([chunk.samples for chunk in voice.stream(text, rate=RATE)])


@pytest.mark.parametrize("hz", [440, 850, 1000, 1050, 1400, 2000])
def test_a_beep_is_found_when_it_ends(hz):
    audio = telephone_path(np.concatenate([silence(0.3), beep(hz), silence(0.3)]), RATE)
    detector = BeepDetector()
    ended = [index for index, frame in enumerate(frames(audio)) if detector.feed(frame)]
    assert len(ended) == 1 and 39 <= ended[0] <= 42  # the tone ends at 800 ms (frame 40)
    [(start, end, found)] = detector.tones
    assert abs(found - hz) <= 20 and abs(start - 300) <= 40 and abs(end - 800) <= 40


def test_human_speech_is_never_taken_for_a_beep(recordings):
    detector = BeepDetector()
    for recording in recordings:
        clip = read_audio(recording.path)
        assert not any(detector.feed(f) for f in frames(line_audio(clip.samples, clip.rate))), recording.path.name


def test_a_short_hello_then_waiting_is_a_person(voice):
    found = verdict(np.concatenate([silence(0.4), synth(voice, "Hello?")]))
    assert found.answerer == Answerer.HUMAN and found.reason == "short greeting, then waiting"
    assert found.at_ms < 2500


def test_a_long_uninterrupted_greeting_is_a_machine(voice, recordings):
    greeting = synth(voice, "Hi, you've reached Bob Smith. I can't take your call right now. "
                            "Please leave a message after the tone.")
    found = verdict(np.concatenate([silence(0.4), greeting, silence(0.5), beep(1000)]))
    assert found.answerer == Answerer.MACHINE and found.at_ms < 3500
    reading = next(r for r in recordings if r.path.name == "ls_2412-153948-0000.wav")
    clip = read_audio(reading.path)  # a person reading a long sentence without a pause sounds like a machine too
    assert verdict(line_audio(clip.samples, clip.rate)).answerer == Answerer.MACHINE


def test_nobody_speaking_after_answer_counts_as_a_person_waiting_for_us():
    found = verdict(silence(4))
    assert found.answerer == Answerer.HUMAN and found.reason == "silence after answer" and found.at_ms == 3000
