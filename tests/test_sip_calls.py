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
from sip_peers import RtpSink, finished_calls, run_sipp, uac_scenario, wait_finished, write_rtp_pcap

RATE = 8000
DTMF_PCAP = "/usr/share/sip-tester/dtmf_2833_{}.pcap"


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(RATE * seconds), np.int16)


def target(board) -> str:
    return f"127.0.0.1:{board.settings.sip.port}"


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


def wire_caller(board):
    from sip_peers import WireCaller

    caller = WireCaller(("127.0.0.1", board.settings.sip.port))
    return caller


def ask(caller, voice, text: str) -> tuple[float, float]:
    """The caller says ``text``; returns (wire time of its last voiced frame, of the agent's first reply audio)."""
    audio = voice.synthesize(text, RATE)
    start = caller.say(audio)
    voiced = [i for i in range(len(audio) // 160) if np.abs(audio[i * 160 : (i + 1) * 160].astype(np.int32)).max() > 300]
    last_voiced = caller.wait_sent(start + voiced[-1])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        after = [t for t in caller.voiced_arrivals() if t > last_voiced]
        if after:
            return last_voiced, after[0]
        time.sleep(0.02)
    raise AssertionError(f"no reply to {text!r}")


def test_barge_in_stops_the_agent_on_the_wire_and_keeps_only_what_was_heard(board, voice):
    done = len(board.finished)
    caller = wire_caller(board)
    caller.dial()
    assert caller.wait_quiet(after=0.0) is not None  # the greeting was played
    spoke, replied = ask(caller, voice, "Hi, when are you open on Friday?")
    time.sleep(1.0)  # one second into the reply, the caller talks over it
    interruption = voice.synthesize("I also have another question about parking near the office.", RATE)
    start = caller.say(interruption)
    first_voiced = next(i for i in range(len(interruption) // 160)
                        if np.abs(interruption[i * 160 : (i + 1) * 160].astype(np.int32)).max() > 300)
    onset = caller.wait_sent(start + first_voiced)
    time.sleep(3.0)
    voiced = [t for t in caller.voiced_arrivals() if t > onset]
    gaps = [(a, b) for a, b in zip(voiced, voiced[1:]) if b - a > 0.3]
    stop = gaps[0][0] if gaps else (voiced[-1] if voiced else onset)
    caller.wait_quiet(after=onset + 0.5, timeout=20)
    caller.hang_up()
    outcome = wait_finished(board, done + 1)
    caller.close()
    barge_in_ms = (stop - onset) * 1000
    # Confirmation takes confirm_ms (300 ms) of real speech; then the audio stops within a frame or two.
    assert barge_in_ms < 300 + 400, barge_in_ms
    first, *_ = board.brain.memory.store.turns(outcome.conversation_id)
    assert first.interrupted and "Sunday" not in first.agent_text
    assert outcome.barge_ins >= 1


def test_the_caller_hangs_up_mid_reply_and_nothing_is_lost(board, voice):
    done = len(board.finished)
    caller = wire_caller(board)
    caller.dial()
    caller.wait_quiet(after=0.0)
    ask(caller, voice, "Hi, when are you open on Friday?")
    time.sleep(0.5)
    caller.hang_up()
    outcome = wait_finished(board, done + 1)
    caller.close()
    assert outcome.ended_by == "caller"
    [turn] = board.brain.memory.store.turns(outcome.conversation_id)
    assert "friday" in turn.caller_text.lower() and "Sunday" not in turn.agent_text
    lines = transcript(board, outcome.conversation_id)
    assert any(r == "user" and "Friday" in c for r, c in lines)
    assert board.brain.memory.store.conversation(outcome.conversation_id).summary  # post-call work ran


def test_the_agent_says_goodbye_and_hangs_up(board, voice):
    done = len(board.finished)
    caller = wire_caller(board)
    caller.dial()
    caller.wait_quiet(after=0.0)
    ask(caller, voice, "Thank you, goodbye!")
    assert caller.ended.wait(20), "the agent did not hang up"
    outcome = wait_finished(board, done + 1)
    caller.close()
    assert outcome.ended_by == "agent"


def test_silence_gets_a_reprompt_then_a_polite_hang_up(board, stt):
    call = board.settings.call
    saved = (call.silence_reprompt_s, call.silence_hangup_s)
    call.silence_reprompt_s, call.silence_hangup_s = 3.0, 3.0
    try:
        caller = wire_caller(board)
        caller.dial()
        assert caller.ended.wait(40), "no hang-up after the silence"
    finally:
        call.silence_reprompt_s, call.silence_hangup_s = saved
    [outcome] = finished_calls(board, [caller.call_id])
    words = heard(stt, caller.agent_audio())
    caller.close()
    assert outcome.ended_by == "silence"
    # What was said, exactly and in order (the transcript), and that it reached the wire as speech.
    said = [c for r, c in transcript(board, outcome.conversation_id) if r == "assistant"]
    assert said[1:] == [call.reprompt, call.silence_goodbye], said
    assert "still there" in words and "call back" in words, words


def test_a_transferred_call_tells_the_employee_who_sent_it(board):
    done = len(board.finished)
    caller = wire_caller(board)
    caller.dial(extra_headers="Diversion: <sip:reception@pbx.example.com>;reason=unconditional\n"
                              "Referred-By: <sip:alice@pbx.example.com>")
    caller.wait_quiet(after=0.0)
    caller.hang_up()
    outcome = wait_finished(board, done + 1)
    caller.close()
    lines = transcript(board, outcome.conversation_id)
    context = [c for r, c in lines if r == "system" and c.startswith("call context")]
    assert context and "sip:reception@pbx.example.com" in context[0] and "sip:alice@pbx.example.com" in context[0]


def test_calls_show_has_the_line_details_and_dtmf_goes_out(board, voice, tmp_path):
    """The agent's send_dtmf acts on the real line (RFC 2833 on the wire); `calls show` has the call."""
    import json
    import subprocess
    import sys

    done = len(board.finished)
    caller = wire_caller(board)
    caller.dial()
    caller.wait_quiet(after=0.0)
    [live] = [c for c in board.active.values() if c.remote.startswith("sip:wirecaller@")]
    live.line.send_dtmf("19#")
    time.sleep(2.0)
    caller.hang_up()
    outcome = wait_finished(board, done + 1)
    caller.close()
    events = [p for p in caller.received if p.payload_type == 101]
    assert [code for code in dict.fromkeys(p.payload[0] for p in events)] == [1, 9, 11]  # '#' is event 11
    employai = str(Path(sys.executable).with_name("employai"))
    env = {"EMPLOYAI_SERVICE__DATA_DIR": str(board.settings.service.data_dir), "PATH": "/usr/bin:/bin"}
    shown = subprocess.run([employai, "calls", "show", str(outcome.conversation_id), "--json"],
                           capture_output=True, text=True, env=env, timeout=60)
    assert shown.returncode == 0, shown.stderr
    details = json.loads(shown.stdout)
    assert details["call"]["direction"] == "inbound" and details["call"]["status"] == "completed"
    assert details["call"]["ended_by"] == "caller" and details["call"]["codec"]
    assert details["transcript"][0]["role"] == "assistant"  # the greeting


def test_a_returning_caller_is_greeted_by_name(board, voice):
    from sip_peers import WireCaller

    first = WireCaller(("127.0.0.1", board.settings.sip.port), user="returning")
    first.dial()
    first.wait_quiet(after=0.0)
    ask(first, voice, "Hi, my name is Carol Jensen.")
    first.wait_quiet(after=time.monotonic() - 0.5, timeout=15)
    first.hang_up()
    first.close()
    [ended] = finished_calls(board, [first.call_id], timeout=60)  # post-call work (memory) runs after BYE
    known = board.brain.memory.for_caller(f"sip:returning@127.0.0.1").human().lower()
    heard = transcript(board, ended.conversation_id)
    assert "carol" in known or "jensen" in known, (known, heard)  # what the employee learnt (as Whisper heard it)
    second = WireCaller(("127.0.0.1", board.settings.sip.port), user="returning")
    second.dial()
    second.wait_quiet(after=0.0)
    second.hang_up()
    second.close()
    [outcome] = finished_calls(board, [second.call_id])
    greeting = transcript(board, outcome.conversation_id)[0][1].lower()
    assert any(name in greeting for name in ("carol", "jensen")), greeting


def test_prometheus_endpoint_has_stage_histograms_and_call_counts(board):
    import urllib.request

    host, port = board.metrics_address
    text = urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5).read().decode()
    count = {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line and not line.startswith("#")}
    assert count['employai_turn_stage_seconds_count{stage="voice_to_voice"}'] >= 1
    assert count['employai_turn_stage_seconds_count{stage="stt_final"}'] >= 1
    assert count['employai_calls_total{direction="inbound",outcome="completed"}'] >= 1
    assert "employai_active_calls" in count


def test_simultaneous_calls_with_garbage_on_the_line_and_a_steady_rtp_clock(board, voice):
    """Three callers at once (the fixture's cap): all greeted and answered; malformed SIP arriving
    meanwhile drops nobody; each agent stream runs at exactly 50 packets/s with +160 timestamps."""
    import socket as sock

    from sip_peers import WireCaller

    callers = [WireCaller(("127.0.0.1", board.settings.sip.port), user=f"multi{i}") for i in range(3)]
    for caller in callers:
        caller.dial()
    junk = sock.socket(sock.AF_INET, sock.SOCK_DGRAM)
    for payload in (b"\x00" * 50, b"INVITE sip:x SIP/2.0\r\n\r\n", b"SIP/2.0 200 OK\r\nCall-ID: nothing\r\n\r\n"):
        junk.sendto(payload, ("127.0.0.1", board.settings.sip.port))
    junk.close()
    for caller in callers:
        assert caller.wait_quiet(after=0.0, timeout=30) is not None  # every caller heard the greeting
    replies = []
    for caller in callers:
        caller.say(voice.synthesize("When are you open on Friday?", RATE))
    time.sleep(8.0)
    for caller in callers:
        pt = [p for p in caller.received if p.payload_type == 0]
        span = pt[-1].arrival - pt[0].arrival
        rate = (len(pt) - 1) / span
        assert abs(rate - 50.0) < 0.5, rate  # 20 ms packets, no drift (within 1 %)
        steps = {b.timestamp - a.timestamp for a, b in zip(pt, pt[1:])}
        assert steps <= {160, 320}, steps  # contiguous timestamps (320: a packet lost on the loopback, rare)
        replies.append(caller.voiced_arrivals())
        caller.hang_up()
        caller.close()
    outcomes = finished_calls(board, [c.call_id for c in callers])
    assert len(outcomes) == 3 and all(o.status == "completed" and o.turns >= 1 for o in outcomes)
    assert all(o.audio_late_ticks <= 2 for o in outcomes), [o.audio_late_ticks for o in outcomes]


def test_the_maximum_call_length_is_enforced_politely(board, stt):
    board.settings.call.max_call_s = 8.0
    try:
        caller = wire_caller(board)
        caller.dial()
        assert caller.ended.wait(30), "the call outlived max_call_s"
    finally:
        board.settings.call.max_call_s = 1800.0
    words = heard(stt, caller.agent_audio())
    caller.close()
    assert "time limit" in words, words
