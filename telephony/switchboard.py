"""The SIP endpoint with the employee behind it: answers inbound calls, places outbound ones.

Models are loaded once (the service) and shared by every call: one STT worker thread, one Piper
voice, one LLM. Each call gets its own audio thread and voice loop (see :mod:`telephony.phone_call`).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from brain.employee import Brain
from brain.outbound import OutboundTask
from config import Settings
from speech.listener import TranscriptionWorker
from speech.stt import WhisperSTT
from speech.tts import PiperTTS
from telephony.garbage import settle as settle_garbage
from telephony.logcontext import CALL_ID
from telephony.metrics import CallMetrics
from telephony.phone_call import CallOutcome, PhoneCall
from telephony.sip.library import CallState, VoIPCall
from telephony.sip.phone import EmployaiPhone
from telephony.urgent import FIRST_AUDIO

log = logging.getLogger(__name__)

# Final INVITE responses to an outbound call -> the outcome a person would name.
_OUTCOMES = {486: "busy", 600: "busy", 480: "no-answer", 408: "no-answer", 487: "no-answer",
             603: "rejected", 403: "rejected", 404: "invalid", 484: "invalid", 410: "invalid", 416: "invalid"}


def outcome_for(code: int | None) -> str:
    if code is None:
        return "failed"
    if 200 <= code < 300:
        return "completed"
    return _OUTCOMES.get(code, "failed")


class Switchboard:
    def __init__(self, settings: Settings, stt: WhisperSTT, tts: PiperTTS, brain: Brain) -> None:
        self.settings = settings
        self.tts = tts
        self.brain = brain
        self.worker = TranscriptionWorker(stt, urgent=FIRST_AUDIO.waiting)
        self.phone = EmployaiPhone(settings.sip, self._on_inbound)
        self.metrics = CallMetrics()
        self.metrics_address: tuple[str, int] | None = None
        self.active: dict[str, PhoneCall] = {}
        self.finished: list[CallOutcome] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        self.phone.start()
        address = self.settings.service.metrics_address
        if address:
            try:
                self.metrics_address = self.metrics.serve(address)
            except OSError as exc:
                self.phone.stop()
                raise OSError(f"metrics endpoint {address}: {exc.strerror or exc}") from exc

    def stop(self, timeout: float = 10.0) -> None:
        """Say goodbye on every call, hang up, deregister, release the ports."""
        with self._lock:
            calls = list(self.active.values())
        for call in calls:
            call.stop_requested = "shutdown"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.active:
            time.sleep(0.05)
        self.phone.stop()
        self.worker.close()
        self.metrics.close()

    # -- inbound -------------------------------------------------------------------------------------
    def _on_inbound(self, call: VoIPCall) -> None:
        """Runs in the library's thread for this call: the call's audio thread from answer to BYE."""
        CALL_ID.set(call.call_id)
        phone_call = PhoneCall(self, call, "inbound")
        self._track(phone_call)
        try:
            if phone_call.answer():
                phone_call.run()
        finally:
            self._untrack(phone_call)

    def _track(self, call: PhoneCall) -> None:
        with self._lock:
            self.active[call.call_id] = call
            self.metrics.active.set(len(self.active))

    def _untrack(self, call: PhoneCall) -> None:
        with self._lock:
            self.active.pop(call.call_id, None)
            self.metrics.active.set(len(self.active))
            idle = not self.active
        self._record(call.outcome)
        if idle:  # no call to stall: the full collection happens now, not in the middle of someone's sentence
            log.debug("garbage collected and frozen in %.0f ms", settle_garbage() * 1000)

    # -- outbound ------------------------------------------------------------------------------------
    def dial(self, uri: str, task: OutboundTask | None = None,
             on_started: "Callable[[PhoneCall], None] | None" = None) -> CallOutcome:
        """Call ``uri`` and hold the conversation; returns when the call is over (blocking).

        ``task``: a campaign call's goal and contact (answering-machine detection, the goal flow);
        ``on_started`` runs once the answered call's conversation is on disk (campaigns note it there).
        """
        try:
            call = self.phone.call(uri)
        except Exception as exc:  # noqa: BLE001 - unreachable host, timeout, 4xx before any call state
            log.warning("call to %s failed: %s", uri, exc)
            return self._record(CallOutcome("", "outbound", uri, "failed", None, ended_by=str(exc)))
        call_id = call.call_id
        CALL_ID.set(call_id)
        deadline = time.monotonic() + self.settings.sip.ring_timeout_s
        while call.state in (CallState.DIALING, CallState.RINGING) and time.monotonic() < deadline:
            time.sleep(0.02)
        if call.state in (CallState.DIALING, CallState.RINGING):
            try:
                call.cancel()
            except Exception:  # noqa: BLE001
                log.exception("CANCEL of %s failed", call_id)
            threading.Timer(5.0, self.phone.sip.forget, args=(call_id,)).start()  # the 487 still needs its ACK
            return self._record(CallOutcome(call_id, "outbound", uri, "no-answer", 487, ended_by="timeout"))
        code = self.phone.sip.final_status.pop(call_id, None)
        if call.state != CallState.ANSWERED:
            self.phone.sip.forget(call_id)
            return self._record(CallOutcome(call_id, "outbound", uri, outcome_for(code), code, ended_by="callee"))
        phone_call = PhoneCall(self, call, "outbound", task)
        phone_call.on_started = on_started
        phone_call.outcome.sip_code = code
        self._track(phone_call)
        try:
            return phone_call.run()
        finally:
            self._untrack(phone_call)

    def _record(self, outcome: CallOutcome) -> CallOutcome:
        self.metrics.observe_call(outcome.direction, outcome.status, outcome.barge_ins, outcome.audio_late_ticks,
                                  outcome.status == "failed" and outcome.ended_by == "error")
        with self._lock:
            self.finished.append(outcome)
        return outcome
