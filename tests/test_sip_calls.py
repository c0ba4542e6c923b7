"""Calls over real SIP with sipp as the caller: the whole voice path judged by what reaches the wire.

The endpoint runs in this process with the real models; sipp (Debian's sip-tester) signals and
plays the caller's speech from a pcap; the agent's RTP is captured by a socket named in the SDP.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from speech.audio import STT_RATE, rms_dbfs
from speech.resample import resample
from sip_peers import RtpSink, run_sipp, uac_scenario, write_rtp_pcap

RATE = 8000
DTMF_PCAP = "/usr/share/sip-tester/dtmf_2833_{}.pcap"


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(RATE * seconds), np.int16)


def target(board) -> str:
    return f"127.0.0.1:{board.settings.sip.port}"


def wait_finished(board, count: int, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(board.finished) < count:
        time.sleep(0.05)
    assert len(board.finished) >= count, "the call did not end"
    return board.finished[count - 1]


def transcript(board, conversation_id: int) -> list[tuple[str, str]]:
    store = board.brain.memory.store
    return [(m.role, m.content) for m in store.messages(conversation_id)]


def heard(stt, samples: np.ndarray) -> str:
    return stt.transcribe(resample(samples.astype(np.int16), RATE, STT_RATE)).text.lower()


def caller_pcap(tmp_path: Path, voice, parts: list, codec: str = "PCMU") -> tuple[str, int]:
    """Caller audio from text and silences; returns (pcap path, length in ms)."""
    audio = np.concatenate([voice.synthesize(p, RATE) if isinstance(p, str) else silence(p) for p in parts])
    path = write_rtp_pcap(tmp_path / f"caller-{uuid.uuid4().hex[:6]}.pcap", audio, codec)
    return str(path), len(audio) * 1000 // RATE


def test_a_whole_conversation_over_sip(board, voice, stt, tmp_path):
    done = len(board.finished)
    pcap, ms = caller_pcap(tmp_path, voice, [5.0, "Hi, when are you open on Friday?", 7.0])
    sink = RtpSink()
    proc = run_sipp(uac_scenario(rtp_port=sink.port, pcaps=[(pcap, ms)]), target(board), tmp_path)
    sink.close()
    assert proc.returncode == 0, proc.out
    outcome = wait_finished(board, done + 1)
    assert outcome.ended_by == "caller" and outcome.status == "completed" and outcome.turns == 1

    wire = sink.audio("PCMU")
    assert len(wire) / RATE > 10  # RTP flowed for the whole call
    assert rms_dbfs(wire) > -40  # and it is not silence
    words = heard(stt, wire)
    assert "thank you for calling" in words and "friday" in words

    lines = transcript(board, outcome.conversation_id)
    assert ("user", "Hi, when are you open on Friday?") in [(r, c.strip()) for r, c in lines]
    [turn] = board.brain.memory.store.turns(outcome.conversation_id)
    assert turn.timings["voice_to_voice_ms"] and turn.timings["first_frame_ms"] > turn.timings["endpoint_ms"]
    recording = board.settings.service.data_dir / "recordings" / f"call-{outcome.conversation_id}.wav"
    assert recording.exists() and recording.stat().st_size > 2 * 2 * RATE * 10


def test_an_alaw_only_caller_hears_the_greeting(board, stt, tmp_path):
    done = len(board.finished)
    sink = RtpSink()
    pcap = write_rtp_pcap(tmp_path / "quiet.pcap", silence(6.0), "PCMA")
    proc = run_sipp(uac_scenario(codec="PCMA", rtp_port=sink.port, pcaps=[(str(pcap), 6000)]), target(board), tmp_path)
    sink.close()
    assert proc.returncode == 0, proc.out
    wait_finished(board, done + 1)
    assert {p.payload_type for p in sink.packets} <= {8, 101}
    assert "thank you for calling" in heard(stt, sink.audio("PCMA"))


def test_dtmf_from_the_caller_reaches_the_employee(board, voice, tmp_path):
    done = len(board.finished)
    sink = RtpSink()
    pcaps = [(str(write_rtp_pcap(tmp_path / "wait.pcap", silence(5.0))), 5000),
             (DTMF_PCAP.format(4), 500), (DTMF_PCAP.format(2), 4000)]
    proc = run_sipp(uac_scenario(rtp_port=sink.port, pcaps=pcaps), target(board), tmp_path)
    sink.close()
    assert proc.returncode == 0, proc.out
    outcome = wait_finished(board, done + 1)
    texts = [c for r, c in transcript(board, outcome.conversation_id) if r == "user"]
    assert any("4" in t and "keypad" in t for t in texts), texts
    assert any("2" in t and "keypad" in t for t in texts), texts
