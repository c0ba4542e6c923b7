"""The voice loop over audio (no SIP): real VAD, Whisper, employee, Piper, paced at real time."""

import json

import numpy as np
import pytest

from brain.employee import Brain
from config import Settings
from speech.audio import read_audio, rms_dbfs, write_wav
from telephony.simulate import simulate_call

RATE = 8000


def _silence(seconds):
    return np.zeros(int(RATE * seconds), np.int16)


@pytest.fixture(scope="module")
def brain(tmp_path_factory):
    data = tmp_path_factory.mktemp("voice")
    settings = Settings(service={"data_dir": str(data)}, llm={"n_ctx": 2048})
    instance = Brain(settings)
    yield settings, instance
    instance.close()


def read_audio_stereo(path):
    import wave

    with wave.open(path) as handle:
        assert handle.getnchannels() == 2 and handle.getframerate() == RATE
        return np.frombuffer(handle.readframes(handle.getnframes()), "<i2").reshape(-1, 2)


@pytest.fixture(scope="module")
def caller_voice(settings):
    """The simulated caller speaks with a noise-free Piper voice: the same audio on every run."""
    from speech.tts import PiperTTS

    return PiperTTS.from_settings(settings.tts.model_copy(update={"noise_scale": 0.0, "noise_w_scale": 0.0}))


def _agent_db(samples, start_s, end_s):
    return rms_dbfs(samples[int(start_s * RATE) : int(end_s * RATE)])


def test_a_simulated_call_answers_each_question_in_time_order(brain, tts, stt, caller_voice, tmp_path):
    settings, employee = brain
    question = caller_voice.synthesize("Hi, when are you open on Friday?", RATE)
    caller = np.concatenate([_silence(5.0), question, _silence(6.0)])
    write_wav(tmp_path / "caller.wav", caller, RATE)
    result = simulate_call(settings, tmp_path / "caller.wav", tmp_path / "agent.wav", stt=stt, tts=tts, brain=employee)
    json.dumps(result)  # the CLI's --json output is serialisable
    assert set(result["audio_thread_ms_per_frame"]) == {"p50", "p99", "max"}  # measured (figures: README)
    [turn] = result["turns"]
    assert "friday" in turn["caller_text"].lower()
    assert turn["agent_text"] == "On Friday we're open from 8 AM to 5 PM."  # that day, not the week
    assert turn["speech_end_ms"] < turn["endpoint_ms"] < turn["first_frame_ms"]
    assert turn["voice_to_voice_ms"] == turn["first_frame_ms"] - turn["speech_end_ms"]
    agent = read_audio(tmp_path / "agent.wav").samples
    greeting_end = 4.0
    assert _agent_db(agent, 0.0, greeting_end) > -40  # the greeting was played
    reply_at = turn["first_frame_ms"] / 1000
    assert _agent_db(agent, reply_at, reply_at + 2.0) > -40  # the answer was played
    assert _agent_db(agent, reply_at - 0.6, reply_at - 0.1) < -60  # and not before it was ready
    store = employee.memory.store
    call_id = result["conversation_id"]
    stored = [m.content for m in store.messages(call_id)]
    assert turn["agent_text"] in stored
    [kept] = store.turns(call_id)  # written turn by turn, with its timings
    assert kept.caller_text == turn["caller_text"] and kept.timings["voice_to_voice_ms"] == turn["voice_to_voice_ms"]
    recording = read_audio_stereo(result["recording"])
    assert recording.shape[1] == 2 and abs(len(recording) - len(agent)) <= RATE  # both directions, whole call
    assert rms_dbfs(recording[int(5.2 * RATE) : int(6.0 * RATE), 0].copy()) > -45  # the caller's question, left
    assert rms_dbfs(recording[int(reply_at * RATE) : int((reply_at + 1) * RATE), 1].copy()) > -40  # the answer, right


def test_barge_in_stops_playback_and_keeps_only_what_was_heard(brain, tts, stt, caller_voice, tmp_path):
    settings, employee = brain
    question = caller_voice.synthesize("What are your opening hours?", RATE)
    interruption = caller_voice.synthesize("Sorry, actually I need to leave a message.", RATE)
    # The caller interrupts 1.2 s after the end of the question (the agent is mid-answer by then).
    lead = 5.0
    barge_at = lead + len(question) / RATE + settings.vad.hangover_ms / 1000 + 1.2
    caller = np.concatenate([_silence(lead), question, _silence(barge_at - lead - len(question) / RATE),
                             interruption, _silence(6.0)])
    write_wav(tmp_path / "caller.wav", caller, RATE)
    result = simulate_call(settings, tmp_path / "caller.wav", tmp_path / "agent.wav", caller="+15550100777",
                           stt=stt, tts=tts, brain=employee)
    first = result["turns"][0]
    assert first["interrupted"]
    full = "Our hours are Monday to Friday, 8 AM to 5 PM; closed Saturday and Sunday."
    assert len(first["agent_text"]) < len(full)  # only what was played is recorded
    agent = read_audio(tmp_path / "agent.wav").samples
    confirmed_at = barge_at + settings.vad.confirm_ms / 1000
    assert _agent_db(agent, barge_at - 0.5, barge_at) > -45  # the agent was talking...
    assert _agent_db(agent, barge_at + 0.2, confirmed_at) < -60  # ...fell silent as the caller began...
    assert _agent_db(agent, confirmed_at + 0.1, confirmed_at + 0.8) < -60  # ...and stayed so: the reply is over
    assert len(result["turns"]) == 2 and "message" in result["turns"][1]["caller_text"].lower()


def test_a_cough_over_the_reply_only_pauses_it(brain, tts, stt, caller_voice, tmp_path):
    settings, employee = brain
    question = caller_voice.synthesize("What are your opening hours?", RATE)
    voiced = caller_voice.synthesize("Hmm, hold on.", RATE)
    onset = int(np.flatnonzero(np.abs(voiced.astype(np.int32)) > 300)[0])
    cough = voiced[onset : onset + int(0.16 * RATE)]  # 160 ms of voice: speech starts, is never confirmed
    lead = 5.0
    cough_at = lead + len(question) / RATE + settings.vad.hangover_ms / 1000 + 1.2
    caller = np.concatenate([_silence(lead), question, _silence(cough_at - lead - len(question) / RATE), cough,
                             _silence(8.0)])
    write_wav(tmp_path / "caller.wav", caller, RATE)
    result = simulate_call(settings, tmp_path / "caller.wav", tmp_path / "agent.wav", caller="+15550100778",
                           stt=stt, tts=tts, brain=employee)
    [turn] = result["turns"]
    assert not turn["interrupted"] and result["blips"] == 1
    assert turn["agent_text"] == "Our hours are Monday to Friday, 8 AM to 5 PM; closed Saturday and Sunday."
    agent = read_audio(tmp_path / "agent.wav").samples
    assert _agent_db(agent, cough_at - 0.5, cough_at) > -45  # talking
    assert _agent_db(agent, cough_at + 0.15, cough_at + 0.3) < -60  # paused while it might be the caller
    blip_decided = cough_at + 0.16 + settings.vad.hangover_ms / 1000
    assert _agent_db(agent, blip_decided + 0.1, blip_decided + 0.6) > -45  # and went on where it stopped


def test_a_turn_ended_by_the_number_hang_over_has_its_first_piece_ready(brain, tts, stt, recordings, tmp_path):
    """A caller reading digits out ("One. Two. Three.", 600 ms pauses) is heard to the end: the turn ends after
    the number hang-over. While that silence lasts, the model reads the whole turn, writes its reply's start
    and Piper speaks the first piece, so the turn's first audio is that piece, made ahead.

    The hang-over is set to 4 s here, not the default 1 s: whether the work fits in 1 s is a matter of the
    machine's speed (scripts/bench_call.py measures it); that work done in the pause is what the turn uses,
    is this test's matter, and it must not fail because the machine is busy."""
    base, employee = brain
    settings = base.model_copy(update={"vad": base.vad.model_copy(update={"number_hangover_ms": 4000})})
    [digits] = [r for r in recordings if r.path.name == "sr_one_two_three.wav"]
    clip = read_audio(digits.path)
    from speech.resample import resample

    caller = np.concatenate([_silence(5.0), resample(clip.samples, clip.rate, RATE).astype(np.int16), _silence(9.0)])
    write_wav(tmp_path / "caller.wav", caller, RATE)
    result = simulate_call(settings, tmp_path / "caller.wav", tmp_path / "agent.wav", stt=stt, tts=tts, brain=employee)
    [turn] = result["turns"]
    assert [w.strip(".,") for w in turn["caller_text"].lower().split()] in (["one", "two", "three"], ["1", "2", "3"])
    assert turn["endpoint_ms"] - turn["speech_end_ms"] >= settings.vad.number_hangover_ms
    assert turn["spoken_ahead"] and turn["agent_text"]
    assert turn["first_frame_ms"] > turn["endpoint_ms"]  # never before the turn was over


def test_the_line_gives_back_its_queued_audio_while_the_caller_may_be_taking_the_floor(brain, tts, stt):
    """The caller starts to speak over the reply: the line's queued frames are taken back unsent (the agent is
    silent at once, not 40 ms later), and if it was only a cough the reply goes on from the first frame the
    caller did not hear: nothing is skipped."""
    from brain.line import ConsoleLine
    from speech.listener import Blip, TranscriptionWorker
    from speech.vad import SpeechStarted
    from telephony.voice_loop import VoiceLoop

    settings, employee = brain
    queued = []  # the frames the line holds, unsent

    def take_back() -> int:
        samples = sum(len(f) for f in queued)
        queued.clear()
        return samples

    worker = TranscriptionWorker(stt)
    loop = VoiceLoop(employee.conversation("sip:cougher@127.0.0.1", ConsoleLine(echo=False)), worker, tts,
                     settings.vad, rate=RATE, on_pause=take_back)
    try:
        piece = np.arange(1, 160 * 10 + 1, dtype=np.int16)  # ten frames, each sample numbered
        loop._playback.append((piece, "a reply", None))
        sent = [loop.agent_frame() for _ in range(5)]
        queued.extend(sent[-2:])  # the line still holds the last two
        loop._on_listener_event(SpeechStarted(at_ms=100, start_ms=40))
        assert not loop.agent_frame().any()  # silent while the caller may be taking the floor
        loop._on_listener_event(Blip(utterance=1, at_ms=200, voiced_ms=80))
        resumed = loop.agent_frame()
        assert resumed[0] == sent[3][0]  # the first frame taken back is played again
        heard = np.concatenate([*sent[:3], resumed, *(loop.agent_frame() for _ in range(6))])
        assert np.array_equal(heard, piece)  # nothing lost, nothing twice
    finally:
        loop.close()
        worker.close()
