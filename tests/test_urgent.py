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
