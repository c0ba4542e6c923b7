"""Outbound calls and blind transfer with real peers: baresip (a softphone) and sipp callees.

The employee dials (``Switchboard.dial``, what ``employai call`` runs); each kind of answer must end
in a clear outcome without hanging, and an answered call must stay up as long as it lasts (pyVoIP's
wrong ACK had callees drop every outbound call 32 s after answer).
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from sip_peers import FINAL, NO_ANSWER, Baresip, free_port, sipp_callee

@pytest.mark.parametrize("code,phrase,expected", [
    (486, "Busy Here", "busy"), (480, "Temporarily Unavailable", "no-answer"), (603, "Decline", "rejected")])
def test_an_outbound_call_that_is_refused_has_a_clear_outcome(board, tmp_path, code, phrase, expected):
    proc, uri = sipp_callee(tmp_path, FINAL.format(code=code, phrase=phrase))
    started = time.monotonic()
    outcome = board.dial(uri)
    assert time.monotonic() - started < 10
    assert outcome.status == expected and outcome.sip_code == code
    assert proc.wait(timeout=10) == 0, proc.stdout.read()  # our ACK for the failure response arrived


def test_an_unanswered_outbound_call_is_cancelled_after_the_ring_timeout(board, tmp_path):
    proc, uri = sipp_callee(tmp_path, NO_ANSWER)
    board.settings.sip.ring_timeout_s = 3.0
    try:
        started = time.monotonic()
        outcome = board.dial(uri)
        elapsed = time.monotonic() - started
    finally:
        board.settings.sip.ring_timeout_s = 30.0
    assert outcome.status == "no-answer" and 2.5 < elapsed < 8
    assert proc.wait(timeout=10) == 0, proc.stdout.read()  # CANCEL sent, 487 ACKed


def test_an_unreachable_callee_fails_cleanly(board):
    board.phone.sip.invite_timeout = 2  # nobody listens on that port: no response at all
    outcome = board.dial(f"sip:nobody@127.0.0.1:{free_port()}")
    assert outcome.status == "failed"


def test_an_outbound_call_to_a_softphone_stays_up_past_40_seconds(board, voice, tmp_path, stt):
    call = board.settings.call
    saved = (call.silence_reprompt_s, call.silence_hangup_s)
    call.silence_reprompt_s = call.silence_hangup_s = 120.0
    phone = Baresip(tmp_path, seconds=90)
    result = {}
    try:
        dialer = threading.Thread(target=lambda: result.setdefault("outcome", board.dial(phone.uri)), daemon=True)
        dialer.start()
        deadline = time.monotonic() + 10
        while not board.active and time.monotonic() < deadline:
            time.sleep(0.05)
        [live] = list(board.active.values())
        time.sleep(42)
        assert live.call_id in board.active, "the call dropped before 42 s"
        assert "terminated" not in phone.log.lower() and "closed" not in phone.log.lower()
        live.line.hang_up()
        dialer.join(timeout=20)
    finally:
        call.silence_reprompt_s, call.silence_hangup_s = saved
        phone.stop()
    outcome = result["outcome"]
    assert outcome.status == "completed" and outcome.ended_by == "agent" and outcome.duration_s > 40
    heard_by_phone = [p for p in phone.recordings() if "dec" in p.name or "play" in p.name]
    from speech.audio import read_audio
    from speech.resample import resample

    clip = read_audio(heard_by_phone[0])
    text = stt.transcribe(resample(clip.samples, clip.rate, 16000)).text.lower()
    assert "thank you for calling" in text  # the softphone heard the employee


def _speech(voice, parts):
    return np.concatenate([voice.synthesize(p, 8000) if isinstance(p, str) else np.zeros(int(8000 * p), np.int16)
                           for p in parts])


def _heard(stt, recordings) -> str:
    from speech.audio import read_audio
    from speech.resample import resample

    texts = []
    for path in recordings:
        if path.suffix != ".wav":  # baresip's sndfile sometimes leaves the extension off
            path = path.rename(path.with_name(path.name + ".wav"))
        clip = read_audio(path)
        if len(clip.samples) > clip.rate // 2:
            texts.append(stt.transcribe(resample(clip.samples, clip.rate, 16000)).text.lower())
    return " ".join(texts)


def test_a_blind_transfer_puts_the_caller_through_to_a_person(board, voice, stt, tmp_path):
    """A softphone caller asks for the front desk; the employee REFERs them to the 'human' softphone, reads the
    result from the NOTIFYs and leaves; caller and human then hear each other."""
    from config.settings import TransferTarget

    human = Baresip(tmp_path, _speech(voice, [1.0, "Billing department, Sam speaking."]), seconds=40, user="sam")
    # baresip restarts its audio file on each call: after the transfer, Sam hears Carol's question again.
    caller = Baresip(tmp_path, _speech(voice, [6.0, "Could you put me through to the front desk, please?"]),
                     seconds=45, user="carol")
    job = board.settings.job
    saved = dict(job.transfers)
    job.transfers = {**saved, "front desk": TransferTarget(target=human.uri, description="appointments")}
    done = len(board.finished)
    try:
        caller.command("dial", f"sip:employai@127.0.0.1:{board.settings.sip.port}")
        outcome = None
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and len(board.finished) <= done:
            time.sleep(0.1)
        assert len(board.finished) > done, "the employee's leg did not end"
        outcome = board.finished[done]
        time.sleep(12)  # caller and human talk
    finally:
        job.transfers = saved
        caller.stop()
        human.stop()
    assert outcome.ended_by == "transfer" and outcome.transfer == human.uri
    sam_heard = _heard(stt, [p for p in human.recordings() if "dec" in p.name])
    carol_heard = _heard(stt, [p for p in caller.recordings() if "dec" in p.name])
    assert "front desk" in sam_heard, sam_heard
    assert "billing department" in carol_heard and "putting you through" in carol_heard, carol_heard
    messages = [m.content for m in board.brain.memory.store.messages(outcome.conversation_id) if m.role == "system"]
    assert any("transferred to" in m for m in messages)


def test_a_failed_transfer_keeps_the_caller_with_the_employee(board, voice, stt, tmp_path):
    """The target is busy: the NOTIFY says 486, the caller stays on the line and is told so."""
    from config.settings import TransferTarget

    busy, busy_uri = sipp_callee(tmp_path, FINAL.format(code=486, phrase="Busy Here"))
    caller = Baresip(tmp_path, _speech(voice, [6.0, "Could you put me through to the front desk, please?"]),
                     seconds=30, user="dave")
    job = board.settings.job
    saved = dict(job.transfers)
    job.transfers = {**saved, "front desk": TransferTarget(target=busy_uri, description="appointments")}
    try:
        caller.command("dial", f"sip:employai@127.0.0.1:{board.settings.sip.port}")
        deadline = time.monotonic() + 10
        while not board.active and time.monotonic() < deadline:
            time.sleep(0.05)
        [live] = list(board.active.values())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and live.outcome.transfer is None:
            time.sleep(0.1)
        assert live.outcome.transfer == busy_uri  # the REFER went out
        while time.monotonic() < deadline and live.outcome.transfer is not None:
            time.sleep(0.1)  # ... and failed
        time.sleep(6.0)  # the employee tells the caller
        assert live.call_id in board.active, "the caller was dropped after a failed transfer"
        live.line.hang_up()
        time.sleep(3.0)
    finally:
        job.transfers = saved
        caller.stop()
        busy.kill()
    notes = [m.content for m in board.brain.memory.store.messages(live.outcome.conversation_id) if m.role == "system"]
    assert any("failed" in n and "486" in n for n in notes), notes
    assert "couldn't put you through" in _heard(stt, [p for p in caller.recordings() if "dec" in p.name])


def test_employai_call_places_a_call_from_the_command_line(voice, tmp_path, models_dir):
    """`employai call URI --json`: a softphone answers, says a sentence and hangs up when its file ends."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    phone = Baresip(tmp_path, _speech(voice, [4.0, "Hello, who is this?", 3.0]), seconds=12, user="callee")
    data = tmp_path / "data"
    data.mkdir()
    (data / "models").symlink_to(models_dir, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMPLOYAI_")}
    env.update({"EMPLOYAI_SERVICE__DATA_DIR": str(data), "EMPLOYAI_SIP__PORT": str(free_port()),
                "EMPLOYAI_SERVICE__METRICS_ADDRESS": "127.0.0.1:0", "EMPLOYAI_SIP__RTP_PORT_LOW": "35000",
                "EMPLOYAI_SIP__RTP_PORT_HIGH": "35100"})
    employai = str(Path(sys.executable).with_name("employai"))
    try:
        out = subprocess.run([employai, "call", phone.uri, "--json"], capture_output=True, text=True, env=env,
                             timeout=120)
    finally:
        phone.stop()
    assert out.returncode == 0, out.stdout + out.stderr
    outcome = json.loads(out.stdout)
    assert outcome["status"] == "completed" and outcome["direction"] == "outbound"
    assert outcome["ended_by"] == "caller" and outcome["turns"] >= 1  # the callee's question was heard
