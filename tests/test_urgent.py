"""The model's token loop waits while a caller's first audio is being made (bounded)."""

import threading
import time

from telephony.urgent import UrgentWork


def test_wait_returns_at_once_when_nothing_urgent_runs():
    urgent = UrgentWork()
    started = time.perf_counter()
    urgent.wait()
    assert time.perf_counter() - started < 0.01 and urgent.waits == 0


def test_wait_lasts_until_the_urgent_work_is_done():
    urgent = UrgentWork(max_wait_s=5)
    entered = threading.Event()

    def synthesise():
        with urgent.running():
            entered.set()
            time.sleep(0.2)

    worker = threading.Thread(target=synthesise)
    worker.start()
    entered.wait()
    started = time.perf_counter()
    urgent.wait()
    waited = time.perf_counter() - started
    worker.join()
    assert 0.1 < waited < 1.0 and urgent.waits == 1


def test_a_stuck_synthesis_only_slows_the_model_down():
    urgent = UrgentWork(max_wait_s=0.05)
    with urgent.running():
        started = time.perf_counter()
        urgent.wait()
        assert time.perf_counter() - started < 0.5


def test_a_playing_reply_gives_way_while_another_caller_waits():
    import contextvars

    from telephony.urgent import REPLY_SLACK

    urgent = UrgentWork(max_wait_s=5, min_slack_s=1.0)
    queued = {"s": 3.0}

    def model_of_the_playing_call() -> float:  # what a call's model thread does between two tokens
        REPLY_SLACK.set(lambda: queued["s"])
        started = time.perf_counter()
        urgent.wait()
        return time.perf_counter() - started

    assert contextvars.copy_context().run(model_of_the_playing_call) < 0.01  # nobody waits: no pause
    result: list[float] = []
    thread = threading.Thread(target=lambda: result.append(contextvars.copy_context().run(model_of_the_playing_call)))
    with urgent.waiting():  # another caller's turn: the playing reply's model pauses until it has its audio
        thread.start()
        time.sleep(0.2)
    thread.join()
    assert 0.1 < result[0] < 1.0 and urgent.yields == 1
    queued["s"] = 0.4  # too little audio left to cover a pause: its caller would hear a gap
    with urgent.waiting():
        assert contextvars.copy_context().run(model_of_the_playing_call) < 0.01
    with urgent.waiting():  # the waiting caller's own model (no reply audio yet) never pauses
        started = time.perf_counter()
        urgent.wait()
        assert time.perf_counter() - started < 0.01


def test_final_transcriptions_count_as_a_caller_waiting(stt):
    import numpy as np

    from speech.listener import PRIORITY_FINAL, PRIORITY_PARTIAL, TranscriptionWorker

    urgent = UrgentWork()
    seen: list[int] = []
    worker = TranscriptionWorker(stt, urgent=urgent.waiting)
    original = stt.transcribe
    try:
        audio = np.zeros(16000, np.int16)
        stt.transcribe = lambda a, **kw: (seen.append(urgent._waiting), original(a, **kw))[1]
        worker.submit(audio, PRIORITY_PARTIAL).result(30)
        worker.submit(audio, PRIORITY_FINAL).result(30)
    finally:
        stt.transcribe = original
        worker.close()
    deadline = time.monotonic() + 2
    while urgent._waiting and time.monotonic() < deadline:  # released by the future's done callback
        time.sleep(0.01)
    assert seen == [0, 1] and urgent._waiting == 0
