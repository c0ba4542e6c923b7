"""One telephone call from answer to post-call work: the SIP call, its voice loop and its line.

The call's own thread is the audio thread: every 20 ms (absolute clock) it reads the caller's
frame, hands it to the voice loop, tops up the RTP output just in time, and looks after the call's
housekeeping (silence, length limit, pending transfer or hang-up). Inference never runs here.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from brain.outbound import OutboundTask, sounds_like_answering_machine
from speech.answering_machine import Answerer, AnsweringMachineDetector, BeepDetector, Verdict
from telephony.sip.headers import RawHeaders, uri_of
from telephony.sip.library import CallState, InvalidStateError, VoIPCall
from telephony.sip.media import CallAudio, FrameClock
from telephony.sip.transfer import BlindTransfer, TransferResult, target_uri
from telephony.voice_loop import VoiceLoop

if TYPE_CHECKING:
    from telephony.switchboard import Switchboard

log = logging.getLogger(__name__)


@dataclass
class CallOutcome:
    """How a call went, for the CLI, campaigns and the console."""

    call_id: str
    direction: str  # inbound | outbound
    remote: str
    status: str  # completed | voicemail | busy | no-answer | rejected | invalid | failed | cancelled
    sip_code: int | None = None
    ended_by: str = ""  # caller | agent | transfer | limit | silence | shutdown
    conversation_id: int | None = None
    duration_s: float = 0.0
    turns: int = 0
    transfer: str | None = None
    barge_ins: int = 0
    audio_late_ticks: int = 0
    voice_to_voice_ms: list[int] = field(default_factory=list)
    answered_by: str | None = None  # human | machine (campaign calls: answering-machine detection)
    amd_reason: str = ""
    goal_achieved: bool | None = None
    summary: str = ""
    recording: str | None = None


class SipLine:
    """The employee's line tools on a SIP call. Transfer and hang-up wait until the reply has been heard."""

    def __init__(self) -> None:
        self.call: VoIPCall | None = None
        self.pending_transfer: str | None = None
        self.hangup_requested = False
        self.dtmf_sent: list[str] = []

    def transfer(self, target: str) -> str:
        self.pending_transfer = target
        return f"transfer to {target} starts as soon as your reply has been spoken"

    def hang_up(self) -> None:
        self.hangup_requested = True

    def send_dtmf(self, digits: str) -> None:
        if self.call is not None and self.call.state == CallState.ANSWERED:
            self.call.send_dtmf(digits)
            self.dtmf_sent.append(digits)


def call_context(invite_raw: bytes) -> str:
    """Who sent this call here, from Diversion / History-Info / Referred-By, for the employee to know."""
    headers = RawHeaders(invite_raw)
    parts = []
    if headers.all("diversion"):
        parts.append("the call was diverted to you from " + ", ".join(uri_of(v) for v in headers.all("diversion")))
    history = [uri_of(v) for v in headers.all("history-info")]
    if len(history) > 1:
        parts.append("it was first placed to " + history[0] + " and reached you via " + " -> ".join(history[1:]))
    if headers.first("referred-by"):
        parts.append("it was transferred to you by " + uri_of(headers.first("referred-by")))
    return "; ".join(parts)


class PhoneCall:
    def __init__(self, board: "Switchboard", call: VoIPCall, direction: str, task: OutboundTask | None = None) -> None:
        self.board = board
        self.call = call
        self.direction = direction
        self.call_id = call.call_id
        raw = RawHeaders(call.request.raw)
        self.remote = uri_of(raw.first("from") if direction == "inbound" else raw.first("to"))
        self.context = call_context(call.request.raw) if direction == "inbound" else ""
        self.line = SipLine()
        self.line.call = call
        self.audio = CallAudio(call)
        self.loop: VoiceLoop | None = None
        self.started = time.monotonic()
        self.outcome = CallOutcome(self.call_id, direction, self.remote, "in-progress")
        self.stop_requested: str | None = None  # set by the switchboard (shutdown) or an operator
        self._transfer_thread: threading.Thread | None = None
        self._transfer_result: TransferResult | None = None
        self.task = task  # a campaign call: the goal, the callee's details
        self.on_started: "Callable[[PhoneCall], None] | None" = None  # the conversation is on disk
        campaign = board.settings.campaign
        self.amd: AnsweringMachineDetector | None = None
        if task is not None:
            self.amd = AnsweringMachineDetector(
                greeting_ms=campaign.amd_greeting_ms if campaign.answering_machine_detection else 10**9,
                after_greeting_silence_ms=campaign.amd_after_greeting_silence_ms,
                initial_silence_ms=campaign.amd_initial_silence_ms)
        self._human_at_ms: int | None = None  # person judged; waiting for their words' transcript
        self._voicemail: str | None = None  # None | "waiting" (for the beep) | "leaving"
        self._beep: BeepDetector | None = None  # made when a machine answers
        self._vm_since_ms = 0
        self._vm_voiced_ms = 0

    # -- answer ------------------------------------------------------------------------------------
    def answer(self) -> bool:
        delay = self.board.settings.sip.answer_delay_ms / 1000
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline:
            if self.call.state != CallState.RINGING:
                self.outcome.status, self.outcome.sip_code = "cancelled", 487
                return False
            time.sleep(0.02)
        try:
            self.call.answer()
        except InvalidStateError:
            self.outcome.status, self.outcome.sip_code = "cancelled", 487
            return False
        self.outcome.sip_code = 200
        return True

    # -- the call ----------------------------------------------------------------------------------
    def run(self) -> CallOutcome:
        settings = self.board.settings
        # Who is calling, without the port of their phone's socket (memory and callback numbers key on it).
        caller = re.sub(r"^(sips?:[^@;>]+@[^:;>]+):\d+", r"\1", self.remote)
        try:
            conversation = self.board.brain.conversation(caller, self.line, "phone", self.context, self.task)
            self.loop = VoiceLoop(
                conversation, self.board.worker, self.board.tts, settings.vad, rate=8000,
                barge_in=settings.call.barge_in, on_barge_in=self.audio.flush, on_pause=self.audio.take_back,
                on_turn=self.board.metrics.observe_turn,
                recordings_dir=settings.service.data_dir / "recordings" if settings.call.recordings else None,
            )
        except Exception:  # noqa: BLE001 - e.g. the memory store is unusable: release the caller, say why in the log
            log.exception("call %s could not be set up; hanging up", self.call_id)
            self.outcome.status, self.outcome.ended_by = "failed", "error"
            self._hang_up()
            self.board.phone.sip.forget(self.call_id)
            return self.outcome
        self.outcome.conversation_id = self.loop._conversation_id
        if self.task is not None:
            self.loop.answering = "hold"  # who answered? (person or machine) before replying to anything
        self._save_call_info()  # on disk from the start: a crash mid-call still shows who and when
        if self.on_started is not None:
            self.on_started(self)
        log.info("call %s %s %s answered (codec %s)", self.call_id, self.direction, self.remote, self.audio.codec)
        try:
            self._converse()
        except Exception:  # noqa: BLE001 - whatever broke, the caller is released and the transcript kept
            log.exception("call %s failed; hanging up", self.call_id)
            self.outcome.status, self.outcome.ended_by = "failed", "error"
            self._hang_up()
        finally:
            if self.outcome.status == "in-progress":
                self.outcome.status = "completed"
            self._wrap_up()
        return self.outcome

    def _converse(self) -> None:
        loop, line, settings = self.loop, self.line, self.board.settings.call
        assert loop is not None
        loop.start()
        clock = FrameClock()
        reprompted_at_turns: int | None = None
        closing: str | None = None
        closing_since_ms = 0  # never hang up on a caller mid-sentence (but do not wait more than 5 s)
        max_ms = settings.max_call_s * 1000
        while True:
            if self.call.state != CallState.ANSWERED:
                self.outcome.ended_by = self.outcome.ended_by or ("transfer" if self._transferred() else "caller")
                return
            acked = self.board.phone.sip.answer_acknowledged(self.call_id)
            if acked is False:
                log.warning("call %s: no ACK for our 200 OK within 32 s; ending it", self.call_id)
                self.outcome.status, self.outcome.ended_by = "failed", "no-ack"
                self._hang_up()
                return
            if self.audio.media_silent_s() > settings.media_timeout_s:
                log.warning("call %s: no RTP for %.0f s; ending it", self.call_id, settings.media_timeout_s)
                self.outcome.ended_by = "media-timeout"
                self._hang_up()
                return
            frame = self.audio.read_frame()
            loop.caller_frame(frame)
            if self.amd is not None and closing is None and self._answerer_frame(frame) == "voicemail":
                closing = "voicemail"
            while self.audio.wants_frame():
                self.audio.write_frame(loop.agent_frame())
            digits = self.audio.dtmf()
            if digits:
                loop.dtmf(digits)

            if self.stop_requested and not closing:
                closing = self.stop_requested
                if closing == "shutdown":
                    loop.say("I'm sorry, I have to end the call now. Please call back in a moment. Goodbye.")
            if line.pending_transfer and not loop.busy and self._transfer_thread is None:
                self._start_transfer(line.pending_transfer)
                line.pending_transfer = None
            if self._transfer_thread is not None and not self._transfer_thread.is_alive():
                self._after_transfer()
            if closing is None:
                if line.hangup_requested or loop.ended:
                    closing = "agent"
                elif loop.now_ms >= max_ms:
                    loop.say(settings.max_call_goodbye)
                    closing = "limit"
                elif reprompted_at_turns is not None and len(loop.turns) > reprompted_at_turns:
                    reprompted_at_turns = None  # the caller answered the re-prompt
                elif reprompted_at_turns is None and loop.silent_ms >= settings.silence_reprompt_s * 1000:
                    loop.say(settings.reprompt)
                    reprompted_at_turns = len(loop.turns)
                elif reprompted_at_turns is not None and loop.silent_ms >= settings.silence_hangup_s * 1000:
                    loop.say(settings.silence_goodbye)
                    closing = "silence"
            caller_talking = loop.listener.endpointer.in_speech and loop.now_ms - closing_since_ms < 5000
            if closing is None:
                closing_since_ms = loop.now_ms
            if closing is not None and not loop.busy and not caller_talking and self._transfer_thread is None:
                self.outcome.ended_by = closing
                self._hang_up()
                return
            clock.wait()
            self.outcome.audio_late_ticks = clock.late_ticks

    # -- campaign calls: person or answering machine ----------------------------------------------------
    def _answerer_frame(self, frame) -> str | None:
        """One frame of the callee's audio for answering-machine detection and the beep; "voicemail" once
        the message has been queued (the call then ends when it has been spoken)."""
        loop, amd = self.loop, self.amd
        assert loop is not None and amd is not None
        if amd.verdict is None:
            verdict = amd.feed(frame)
            if verdict is None and any(sounds_like_answering_machine(t) for t in loop.held_texts()):
                verdict = amd.machine_by_words("its greeting says so")
            if verdict is not None:
                self._on_verdict(verdict)
            return None
        if self._human_at_ms is not None:
            # A person, by timing: wait (up to 1.5 s) for their words, which may still say "leave a message".
            held = loop.held_texts()
            if any(sounds_like_answering_machine(t) for t in held):
                self._human_at_ms = None
                self._on_verdict(amd.machine_by_words("its greeting says so"))
            else:
                silent_pickup = amd.verdict.reason == "silence after answer" and not loop.listener.endpointer.in_speech
                if held or silent_pickup or loop.now_ms - self._human_at_ms >= 1500:
                    self._human_at_ms = None
                    loop.release_held()  # their "Hello?" is answered with the opening
                    if not held:
                        loop.say(loop.conversation.opening(), recorded=True)
            return None
        if self._voicemail == "waiting" and self._beep is not None:
            beeped = self._beep.feed(frame)
            if amd.is_voiced(frame):
                self._vm_voiced_ms = loop.now_ms
            quiet = loop.now_ms - self._vm_voiced_ms >= self.board.settings.campaign.voicemail_silence_ms
            waited = loop.now_ms - self._vm_since_ms >= self.board.settings.campaign.beep_wait_s * 1000
            if beeped or quiet or waited:
                why = "after the beep" if beeped else ("after the greeting" if quiet else "beep wait over")
                log.info("call %s: leaving the voicemail message (%s)", self.call_id, why)
                loop.say(loop.conversation.voicemail_message(), recorded=True)
                self._voicemail = "leaving"
                self.outcome.status = "voicemail"
                return "voicemail"
        return None

    def _on_verdict(self, verdict: Verdict) -> None:
        loop = self.loop
        assert loop is not None
        self.outcome.answered_by = verdict.answerer.value
        self.outcome.amd_reason = verdict.reason
        log.info("call %s answered by a %s (%s, greeting %d ms)", self.call_id, verdict.answerer.value,
                 verdict.reason, verdict.greeting_ms)
        if verdict.answerer == Answerer.HUMAN:
            self._human_at_ms = loop.now_ms
            return
        loop.ignore_caller()
        if loop.speaking:
            loop._interrupt(barge_in=False)  # never talk over the greeting
        self._voicemail = "waiting"
        self._vm_since_ms = self._vm_voiced_ms = loop.now_ms
        self._beep = BeepDetector()

    # -- transfer ------------------------------------------------------------------------------------
    def _start_transfer(self, target: str) -> None:
        sip = self.board.settings.sip
        dialog = self.board.phone.sip.dialog_for(self.call_id)
        fallback = dialog.next_hop()[0] if dialog else sip.host
        uri = target_uri(target, sip.registrar, fallback)
        referred_by = sip.address
        transfer = BlindTransfer(self.board.phone.sip, self.call_id, uri, referred_by, sip.transfer_timeout_s)

        def run() -> None:
            self._transfer_result = transfer.run()

        self.outcome.transfer = uri
        self._transfer_thread = threading.Thread(target=run, name=f"transfer-{self.call_id[:8]}", daemon=True)
        self._transfer_thread.start()

    def _after_transfer(self) -> None:
        result = self._transfer_result
        self._transfer_thread = None
        assert self.loop is not None
        memory = self.loop.conversation.memory
        if result is not None and result.ok:
            memory.record("system", f"call transferred to {self.outcome.transfer}")
            self.stop_requested = "transfer"  # our leg ends once the new call is up (RFC 5589)
            return
        detail = result.detail if result else "unknown"
        memory.record("system", f"transfer to {self.outcome.transfer} failed: {detail}")
        self.loop.conversation.session.transferred_to = None
        self.outcome.transfer = None
        self.loop.say("I'm sorry, I couldn't put you through just now. I can take a message instead, "
                      "or is there anything else I can help with?")

    def _transferred(self) -> bool:
        return bool(self._transfer_result and self._transfer_result.ok)

    # -- ending --------------------------------------------------------------------------------------
    def _hang_up(self) -> None:
        if self.call.state == CallState.ANSWERED:
            try:
                self.call.hangup()
            except Exception:  # noqa: BLE001 - the peer may be gone already
                log.exception("BYE for %s failed", self.call_id)

    def _save_call_info(self) -> None:
        if self.outcome.conversation_id is None:
            return
        info = {key: getattr(self.outcome, key) for key in (
            "call_id", "direction", "remote", "status", "sip_code", "ended_by", "duration_s", "transfer", "barge_ins",
            "answered_by", "goal_achieved", "summary")}
        if self.task is not None:
            info["campaign"] = self.task.campaign
            info["goal"] = self.task.purpose
        info["codec"] = self.audio.codec
        try:
            self.board.brain.memory.store.set_call_info(self.outcome.conversation_id, info)
        except Exception:  # noqa: BLE001 - bookkeeping must never end a call
            log.exception("could not store call info for %s", self.call_id)

    def _wrap_up(self) -> None:
        loop = self.loop
        self.outcome.duration_s = round(time.monotonic() - self.started, 2)
        if loop is not None:
            try:
                loop.finish()  # post-call work (summary, memory) runs after BYE
            except Exception:  # noqa: BLE001
                log.exception("post-call work for %s failed", self.call_id)
                loop.close()
            self.outcome.turns = len(loop.turns)
            self.outcome.barge_ins = loop.barge_ins
            self.outcome.voice_to_voice_ms = [t.voice_to_voice_ms for t in loop.turns
                                              if t.voice_to_voice_ms is not None]
            goal = loop.conversation.goal
            if goal is not None:
                self.outcome.goal_achieved = goal.result.achieved
                self.outcome.summary = goal.result.summary
            if loop.recorder is not None:
                self.outcome.recording = str(loop.recorder.path)
        self._save_call_info()
        self.board.phone.sip.forget(self.call_id)
        log.info("call %s ended by %s after %.1f s, %d turn(s)", self.call_id, self.outcome.ended_by or "?",
                 self.outcome.duration_s, self.outcome.turns)
