"""A whole call from an audio file, through the real voice loop (no SIP): caller audio in, agent
audio out, transcript and per-turn timings. The frames are paced at real time, so timings are real.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from brain.employee import Brain
from brain.line import ConsoleLine
from config import Settings
from speech.audio import LINE_RATE, read_audio, write_wav
from speech.listener import TranscriptionWorker
from speech.resample import resample
from speech.stt import WhisperSTT
from speech.tts import PiperTTS
from telephony.voice_loop import FRAME_MS, VoiceLoop

TAIL_LIMIT_S = 20.0  # after the caller's audio ends, wait at most this long for the agent to finish


def simulate_call(
    settings: Settings,
    audio_in: Path,
    audio_out: Path,
    *,
    caller: str = "sip:simulator@127.0.0.1",
    stt: WhisperSTT | None = None,
    tts: PiperTTS | None = None,
    brain: Brain | None = None,
) -> dict:
    clip = read_audio(audio_in)
    caller_audio = resample(clip.samples, clip.rate, LINE_RATE)
    stt = stt or WhisperSTT.from_settings(settings.stt, settings.service.data_dir / "models")
    tts = tts or PiperTTS.from_settings(settings.tts)
    own_brain = brain is None
    brain = brain or Brain(settings)
    worker = TranscriptionWorker(stt)
    line = ConsoleLine(echo=False)
    loop = VoiceLoop(brain.conversation(caller, line), worker, tts, settings.vad, rate=LINE_RATE,
                     recordings_dir=settings.service.data_dir / "recordings")
    frame_len = loop.frame_len
    frame_s = FRAME_MS / 1000
    padded = np.concatenate([caller_audio, np.zeros((-len(caller_audio)) % frame_len, dtype=np.int16)])
    agent: list[np.ndarray] = []
    loop.start()
    started = time.perf_counter()
    index = 0
    work_ms: list[float] = []  # time the audio thread spends per 20 ms frame: it must stay tiny

    def tick(frame: np.ndarray) -> None:
        nonlocal index
        delay = started + index * frame_s - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        begin = time.perf_counter()
        loop.caller_frame(frame)
        agent.append(loop.agent_frame())
        work_ms.append((time.perf_counter() - begin) * 1000)
        index += 1

    for offset in range(0, len(padded), frame_len):
        tick(padded[offset : offset + frame_len])
        if line.hung_up and not loop.speaking:
            break
    silence = np.zeros(frame_len, dtype=np.int16)
    tail_end = time.perf_counter() + TAIL_LIMIT_S
    # Let the last turn be answered and played out.
    quiet_frames = 0
    while time.perf_counter() < tail_end and quiet_frames < 100:
        tick(silence)
        busy = loop.busy or loop.listener.endpointer.in_speech
        quiet_frames = 0 if busy else quiet_frames + 1
    loop.finish()
    worker.close()
    write_wav(audio_out, np.concatenate(agent) if agent else np.zeros(0, np.int16), LINE_RATE)
    if own_brain:
        brain.close()
    turns = []
    for record in loop.turns:
        item = asdict(record)
        item["voice_to_voice_ms"] = record.voice_to_voice_ms
        turns.append(item)
    return {
        "input": str(audio_in),
        "output": str(audio_out),
        "caller_seconds": round(len(caller_audio) / LINE_RATE, 2),
        "call_seconds": round(len(agent) * frame_s, 2),
        "turns": turns,
        "blips": loop.blips,
        "audio_thread_ms_per_frame": {
            "p50": round(float(np.percentile(work_ms, 50)), 3),
            "p99": round(float(np.percentile(work_ms, 99)), 3),
            "max": round(max(work_ms), 3),
        },
        "line_actions": line.actions,
        "conversation_id": loop._conversation_id,
        "recording": str(loop.recorder.path) if loop.recorder else None,
    }
