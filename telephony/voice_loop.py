"""The real-time voice loop of one call: caller frames in, agent frames out, never blocking.

Three kinds of threads meet here, and none waits for another:

- the **audio thread** (RTP, or the simulator's 20 ms clock) calls :meth:`VoiceLoop.caller_frame`
  and :meth:`VoiceLoop.agent_frame` every 20 ms: webrtcvad on the way in, a slice of the playback
  buffer on the way out (written just in time, so playback stops the moment the buffer is cleared);
- the **STT worker** (shared by all calls) transcribes speculatively and delivers final texts;
- the **brain thread** (an asyncio loop per call) runs the employee's turn and Piper, sentence by
  sentence, appending audio to the playback buffer as each sentence is ready.

Barge-in: when the caller starts speaking while the agent speaks, the agent falls silent at once
(the next frame is silence); when that speech is *confirmed* (not a cough or a "mhm") the playback
buffer is cleared, the turn is cancelled, and only what was actually played is recorded as the
agent's reply; a blip lets the reply go on from where it paused.
"""

from __future__ import annotations

import asyncio
from contextlib import ExitStack, nullcontext
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from autogen_core import CancellationToken

from brain.employee import Conversation, SpeechDelta, ToolUsed, first_piece_chunker
from config.settings import VADSettings
from memory.records import TurnRecord as StoredTurn
from speech.audio import PCM, trim_leading_silence
from speech.listener import Blip, FinalText, Listener, PartialText, TranscriptionWorker
from speech.sentences import SentenceChunker
from speech.tts import PiperTTS
from speech.vad import SpeechConfirmed, SpeechStarted
from telephony.logcontext import CALL_ID
from telephony.recorder import CallRecorder
from telephony.urgent import FIRST_AUDIO, REPLY_SLACK

log = logging.getLogger(__name__)

FRAME_MS = 20
SPEAK_AHEAD_WAIT_FRAMES = 50  # a first piece is spoken ahead only if no caller waits within the next second


@dataclass
class TurnRecord:
    """One exchange with its timings (seconds; stream times in ms of call audio)."""

    caller_text: str
    agent_text: str = ""
    speech_end_ms: int = 0  # last voiced caller audio
    endpoint_ms: int = 0  # end of turn decided
    stt_wait_s: float = 0.0  # endpoint -> final text
    first_token_s: float | None = None  # final text -> first reply text
    first_audio_s: float | None = None  # final text -> first synthesised audio
    first_frame_ms: int | None = None  # stream time the first agent frame went out
    tools: list[str] = field(default_factory=list)
    interrupted: bool = False
    spoken_ahead: bool = False  # its first piece was written and synthesised before the turn ended

    @property
    def voice_to_voice_ms(self) -> int | None:
        return None if self.first_frame_ms is None else self.first_frame_ms - self.speech_end_ms


class VoiceLoop:
    def __init__(
        self,
        conversation: Conversation,
        worker: TranscriptionWorker,
        tts: PiperTTS,
        vad: VADSettings | None = None,
        *,
        rate: int = 8000,
        barge_in: bool = True,
        recordings_dir: Path | None = None,
        on_barge_in: "Callable[[], None] | None" = None,
        on_pause: "Callable[[], int] | None" = None,
        on_turn: "Callable[[dict], None] | None" = None,
    ) -> None:
        self.conversation = conversation
        self.tts = tts
        backend = conversation.brain.backend
        if backend.yield_to is None:
            backend.yield_to = FIRST_AUDIO.wait
        self.rate = rate
        self.barge_in = barge_in
        self.on_barge_in = on_barge_in  # the line drops audio it has already queued
        self.on_pause = on_pause  # the line gives back audio it has queued, unsent (returns its samples)
        self.on_turn = on_turn  # receives each finished turn's timings (metrics)
        self.last_activity_ms = 0  # last caller speech or agent audio: silence handling counts from here
        self.barge_ins = 0
        self.frame_len = rate * FRAME_MS // 1000
        self.listener = Listener(worker, vad, rate=rate, on_event=self._on_listener_event)
        self.turns: list[TurnRecord] = []
        self.blips = 0
        self.now_ms = 0
        self._playback: deque[tuple[PCM, str, TurnRecord | None]] = deque()
        self._play_lock = threading.Lock()
        self._current_offset = 0
        self._played_text: list[str] = []
        self._active: tuple[TurnRecord, CancellationToken] | None = None
        self._caller_waiting = ExitStack()  # held from a turn's start to its first audio (urgent work)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="brain", daemon=True)
        self._thread.start()
        self._pending: list[asyncio.Future] = []  # brain work not finished yet (pruned as it completes)
        self._pending_lock = threading.Lock()
        self._turn_lock: asyncio.Lock | None = None  # created on the brain loop; one turn at a time
        self.ended = False
        self._call_id = CALL_ID.get()
        self.hung_up = False  # the line is gone: what the caller still said is kept, not answered
        self._store = conversation.brain.memory.store
        self._conversation_id = conversation.memory.conversation_id
        self.recorder: CallRecorder | None = None
        if recordings_dir is not None and self._conversation_id is not None:
            path = Path(recordings_dir) / f"call-{self._conversation_id}.wav"
            self.recorder = CallRecorder(path, rate)
            self._store.set_recording(self._conversation_id, str(path))
        self._last_caller = np.zeros(self.frame_len, dtype=np.int16)
        # What happens to the caller's finished utterances: "live" answers them; "hold" keeps them until
        # the call knows who answered (a campaign call's answering-machine check); "ignore" only records
        # them (a voicemail greeting is not talked to).
        self.answering = "live"
        self._held: list[TurnRecord] = []
        self._held_lock = threading.Lock()
        self._paused_for_caller = False  # the caller started speaking over the agent, not yet confirmed
        # The first piece of the reply to a pause's transcript, written and synthesised before the turn is sure
        # to end there: (piece, its synthesis). A turn whose first piece is that very text takes the audio.
        self._spoken_ahead: tuple[str, asyncio.Future] | None = None
        self._finals = 0  # the caller's finished utterances so far: a read-ahead of an earlier pause is too late

    # -- audio thread -----------------------------------------------------------------------------
    def start(self) -> None:
        """Greet the caller; while the greeting plays, prepare the model's prompt prefix for the first question."""
        greeting = self.conversation.greeting()
        if greeting:
            self._submit(self._speak_text(greeting, None))
        self._submit(asyncio.to_thread(self.conversation.warm_up))

    def say(self, text: str, *, recorded: bool = False) -> None:
        """Speak a line that is not an answer to the caller (re-prompt, goodbye), and keep it in the transcript
        (``recorded``: the conversation has already recorded it)."""
        if not recorded:
            self.conversation.memory.record("assistant", text)
        self._submit(self._speak_text(text, None))

    def held_texts(self) -> list[str]:
        with self._held_lock:
            return [r.caller_text for r in self._held]

    def release_held(self) -> None:
        """A person answered: what they said so far ("Hello?") becomes one turn, answered now."""
        with self._held_lock:
            held, self._held = self._held, []
            self.answering = "live"
        if held:
            record = TurnRecord(" ".join(r.caller_text for r in held), speech_end_ms=held[-1].speech_end_ms,
                                endpoint_ms=held[-1].endpoint_ms, stt_wait_s=held[-1].stt_wait_s)
            self.turns.append(record)
            self._submit(self._turn(record))

    def ignore_caller(self) -> None:
        """An answering machine: keep what it says in the transcript, never answer it."""
        with self._held_lock:
            held, self._held = self._held, []
            self.answering = "ignore"
        for record in held:
            self.conversation.note_caller(record.caller_text)

    def caller_frame(self, frame: PCM) -> None:
        self.now_ms += FRAME_MS
        self._last_caller = frame
        self.listener.feed(frame)
        if self.listener.endpointer.in_speech:
            self.last_activity_ms = self.now_ms

    def dtmf(self, digits: str) -> None:
        """Keypad digits from the caller (RFC 2833) are a turn of their own, e.g. a number asked for."""
        if digits and not self.ended:
            record = TurnRecord(f"(keypad) {' '.join(digits)}", speech_end_ms=self.now_ms, endpoint_ms=self.now_ms)
            self.turns.append(record)
            self.last_activity_ms = self.now_ms
            self._submit(self._turn(record))

    @property
    def thinking(self) -> bool:
        """Brain work (a reply, a synthesis, the warm-up) is still running."""
        with self._pending_lock:
            self._pending = [f for f in self._pending if not f.done()]
            return bool(self._pending)

    @property
    def busy(self) -> bool:
        """The agent is speaking or still working on a reply."""
        return self.speaking or self.thinking

    @property
    def silent_ms(self) -> int:
        """How long neither side has said anything (0 while the agent speaks or thinks)."""
        if self.busy or self.listener.endpointer.in_speech:
            self.last_activity_ms = self.now_ms
            return 0
        return self.now_ms - self.last_activity_ms

    def agent_frame(self) -> PCM:
        """The next 20 ms of agent audio (silence when there is nothing to say, or while the caller may be
        taking the floor)."""
        with self._play_lock:
            if not self._playback or self._paused_for_caller:
                silence = np.zeros(self.frame_len, dtype=np.int16)
                if self.recorder is not None:
                    self.recorder.add(self._last_caller, silence)
                return silence
            samples, text, record = self._playback[0]
            if self._current_offset == 0:
                if record is not None and record.first_frame_ms is None:
                    record.first_frame_ms = self.now_ms
            frame = samples[self._current_offset : self._current_offset + self.frame_len]
            self._current_offset += self.frame_len
            if self._current_offset >= len(samples):
                self._playback.popleft()
                self._current_offset = 0
                self._played_text.append(text)
        if len(frame) < self.frame_len:
            frame = np.concatenate([frame, np.zeros(self.frame_len - len(frame), dtype=np.int16)])
        if self.recorder is not None:
            self.recorder.add(self._last_caller, frame)
        self.last_activity_ms = self.now_ms
        return frame

    @property
    def speaking(self) -> bool:
        with self._play_lock:
            return bool(self._playback)

    def finish(self, timeout: float = 60.0) -> None:
        """The line is gone: stop any reply (nobody can hear it), keep the caller's last words, post-call work."""
        self.hung_up = True
        if self._active is not None or self.speaking:
            self._interrupt(barge_in=False)
        self.listener.flush()
        self.listener.wait_finals(timeout)
        self.ignore_caller()  # words held for the answering-machine check are kept, unanswered
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.thinking:
            time.sleep(0.02)
        self._submit(self.conversation.end()).result(timeout)
        self.close()

    def close(self) -> None:
        """Stop the brain thread (finish() does this after the post-call work)."""
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if self.recorder is not None:
            self.recorder.close()

    # -- events from the listener (STT worker thread or audio thread) -------------------------------
    def _on_listener_event(self, event: object) -> None:
        if isinstance(event, SpeechStarted) and self.barge_in and self.speaking:
            # The caller may be taking the floor: the agent falls silent at once (the line gives back the <= 40 ms
            # it holds, unsent) and waits to know. Confirmed speech cancels the reply; a cough or an "mhm" (a blip)
            # lets it go on from where it paused, nothing lost.
            self._paused_for_caller = True
            if self.on_pause is not None:
                self._rewind(self.on_pause())
        elif isinstance(event, SpeechConfirmed) and self.barge_in and self.speaking:
            self._paused_for_caller = False
            self._interrupt()
        elif isinstance(event, PartialText):
            # While the caller speaks, the model reads their words so far (a turn in progress is left alone).
            # The transcript of a pause (``whole``) may be their final words: the model reads the whole turn's
            # prompt, so if the pause ends the turn its reply starts at once.
            if event.text.strip() and self._active is None and self.answering == "live" and not (self.ended or self.hung_up):
                if event.whole:
                    self._submit(self._read_turn_ahead(event.text, self.listener.endpointer.utterance_samples,
                                                       self._finals))
                else:
                    self._submit(asyncio.to_thread(self.conversation.prefill, event.text))
        elif isinstance(event, Blip):
            self._paused_for_caller = False
            self.blips += 1
        elif isinstance(event, FinalText) and event.text.strip():
            self._finals += 1
            record = TurnRecord(event.text.strip(), speech_end_ms=event.end_ms, endpoint_ms=event.endpoint_ms,
                                stt_wait_s=event.final_wait_s)
            with self._held_lock:
                if self.answering != "live" and not self.hung_up:
                    if self.answering == "hold":
                        self._held.append(record)
                    else:
                        self.conversation.note_caller(record.caller_text)
                    return
            self.turns.append(record)
            if self.hung_up or self.ended:  # nobody will hear an answer: keep the words, do not reply
                self.conversation.note_caller(record.caller_text)
                self._store_turn(record)
            else:
                self._submit(self._turn(record))

    async def _read_turn_ahead(self, text: str, samples: int, finals: int) -> None:
        """The caller paused, and the pause may end their turn: the model reads the whole turn and writes its
        reply's start (:meth:`Conversation.prefill`), and that start's first piece is synthesised now. If the
        turn does end here, its reply's first audio is ready (or under way) when the turn begins; if the caller
        goes on (``samples``, the utterance's voiced length at the pause, grows), the work is dropped. The turn
        itself (a final text after ``finals``) stops the writing: it may not need the model (a flow answers it).

        Why: at the end of a turn ended by the 500 ms or 1000 ms hang-over, the choice, ~10 tokens and Piper
        (~350 ms here) were still to come after the endpoint; most of that fits in the hang-over."""
        self._spoken_ahead = None
        if self._finals != finals:
            return
        endpointer = self.listener.endpointer

        def dropped() -> bool:  # the turn came (it does its own work), or the caller went on
            return self._finals != finals or (endpointer.in_speech and endpointer.utterance_samples != samples)

        # Optional work: it pauses while any caller waits for their answer (theirs comes first).
        await asyncio.to_thread(self.conversation.prefill, text, whole=True, until=dropped,
                                defer=lambda: FIRST_AUDIO.pending)
        if dropped() or self._active is not None:
            return
        said = await asyncio.to_thread(self.conversation.first_words_ahead, text)
        waited = 0
        while FIRST_AUDIO.pending and not dropped() and waited < SPEAK_AHEAD_WAIT_FRAMES:
            await asyncio.sleep(FRAME_MS / 1000)  # (a pause that ended in a cough brings no turn: bounded)
            waited += 1
        if not said or dropped() or self._active is not None or FIRST_AUDIO.pending:
            return
        pieces = self._pieces(said + " ", first=True)  # as _answer will cut the turn's first delta
        if pieces:
            synthesis = asyncio.ensure_future(asyncio.to_thread(self.tts.synthesize_piece, pieces[0], self.rate))
            self._spoken_ahead = (pieces[0], synthesis)
            log.debug("first piece spoken ahead: %r", pieces[0])

    def _rewind(self, samples: int) -> None:
        """Audio the line gave back unsent is played again from where it was (only within the piece playing:
        the end of a piece already done, at most 40 ms, is not repeated)."""
        with self._play_lock:
            if self._playback and samples > 0:
                self._current_offset = max(0, self._current_offset - samples)

    def _interrupt(self, barge_in: bool = True) -> None:
        """Barge-in: stop playback now, cancel the reply, keep only what was heard."""
        self._paused_for_caller = False
        with self._play_lock:
            unplayed = list(self._playback)
            self._playback.clear()
            self._current_offset = 0
        if barge_in:
            self.barge_ins += 1
            if self.on_barge_in is not None:
                self.on_barge_in()
        if self._active is not None:
            record, token = self._active
            record.interrupted = True
            token.cancel()
        log.info("barge-in: dropped %d unplayed piece(s)", len(unplayed))

    # -- brain thread -----------------------------------------------------------------------------
    def _submit(self, coroutine) -> "asyncio.Future":
        future = asyncio.run_coroutine_threadsafe(self._in_call_context(coroutine), self._loop)
        with self._pending_lock:
            self._pending.append(future)
        return future

    async def _in_call_context(self, coroutine):
        CALL_ID.set(self._call_id)  # log lines of this call's brain work carry its id, whoever submitted it
        return await coroutine

    async def _speak_text(self, text: str, record: TurnRecord | None) -> None:
        for chunk in self.tts.stream(text, rate=self.rate):
            with self._play_lock:
                self._playback.append((chunk.samples, chunk.text, record))

    async def _turn(self, record: TurnRecord) -> None:
        if self._turn_lock is None:
            self._turn_lock = asyncio.Lock()
        async with self._turn_lock:  # the agent is not re-entrant: utterances are answered in order
            await self._answer(record)

    @staticmethod
    def _pieces(text: str, *, first: bool) -> list[str]:
        """A reply's delta cut into Piper's pieces; the turn's first may begin with a short clause or phrase."""
        chunker = first_piece_chunker() if first else SentenceChunker()
        return chunker.push(text) + chunker.flush()

    def _queued_s(self) -> float:
        """Seconds of reply audio queued ahead of the line."""
        with self._play_lock:
            samples = sum(len(chunk) for chunk, _, _ in self._playback) - self._current_offset
        return samples / self.rate

    async def _answer(self, record: TurnRecord) -> None:
        token = CancellationToken()
        self._active = (record, token)
        self._played_text = []
        started = time.perf_counter()
        # Until its first audio this caller waits (other calls' playing replies give way); after it, this
        # reply's model may give way to others while its audio queued ahead lasts (this task's context).
        self._caller_waiting.enter_context(FIRST_AUDIO.waiting())
        REPLY_SLACK.set(self._queued_s)
        log.debug("answering %r", record.caller_text[:60])
        said: list[str] = []
        try:
            async for event in self.conversation.turn(record.caller_text, token, record_reply=False):
                if token.is_cancelled():
                    break
                if isinstance(event, SpeechDelta):
                    # Each delta is whole (a vetted clause or sentence, or a flow's reply): it is split into
                    # sentences for Piper, and the turn's first one may begin with a short clause or phrase.
                    first = record.first_token_s is None
                    if first:
                        record.first_token_s = time.perf_counter() - started
                        log.debug("first text: %r", event.text[:40])
                    for piece in self._pieces(event.text, first=first):
                        await self._synth(piece, record, started, said)
                elif isinstance(event, ToolUsed):
                    record.tools.append(event.name)
            # The reply stays interruptible until it has been played out.
            while self.speaking and not token.is_cancelled():
                await asyncio.sleep(0.02)
        finally:
            self._active = None
            self._caller_waiting.close()
        heard = " ".join(self._played_text) if record.interrupted else " ".join(said)
        record.agent_text = heard
        self.conversation.record_reply(heard)
        self._store_turn(record)
        if not (self.hung_up or self.conversation.ended):
            await asyncio.to_thread(self.conversation.prefill)  # the next turn starts from here
        if self.conversation.ended:
            self.ended = True

    def _store_turn(self, record: TurnRecord) -> None:
        """Written as soon as the turn is over: a crash later in the call keeps it."""
        if self._conversation_id is None:
            return
        ms = lambda s: None if s is None else round(s * 1000, 1)  # noqa: E731
        timings = {
            "speech_end_ms": record.speech_end_ms, "endpoint_ms": record.endpoint_ms,
            "stt_final_ms": ms(record.stt_wait_s), "first_token_ms": ms(record.first_token_s),
            "first_audio_ms": ms(record.first_audio_s), "first_frame_ms": record.first_frame_ms,
            "voice_to_voice_ms": record.voice_to_voice_ms,
        }
        log.info("turn: endpoint %s ms, stt final %s ms, first text %s ms, first audio %s ms, voice to voice %s ms%s%s",
                 record.endpoint_ms - record.speech_end_ms, timings["stt_final_ms"], timings["first_token_ms"],
                 timings["first_audio_ms"], timings["voice_to_voice_ms"], " (interrupted)" if record.interrupted else "",
                 " (first piece spoken ahead)" if record.spoken_ahead else "")
        self._store.add_turn(StoredTurn(self._conversation_id, record.caller_text, record.agent_text,
                                        list(record.tools), timings, record.interrupted))
        if self.on_turn is not None:
            self.on_turn(timings)

    async def _synth(self, piece: str, record: TurnRecord, started: float, said: list[str]) -> None:
        if record.interrupted:
            return
        ahead, self._spoken_ahead = self._spoken_ahead, None
        # The caller is waiting for the first piece: the model pauses while it is made.
        with FIRST_AUDIO.running() if record.first_audio_s is None else nullcontext():
            if ahead is not None and ahead[0] == piece and record.first_audio_s is None:
                chunk = await ahead[1]  # synthesised while the caller's pause went on (see _read_turn_ahead)
                record.spoken_ahead = True
            else:
                chunk = await asyncio.to_thread(self.tts.synthesize_piece, piece, self.rate)
        if chunk is None or record.interrupted:
            return
        samples = chunk.samples
        if record.first_audio_s is None:
            record.first_audio_s = time.perf_counter() - started
            self._caller_waiting.close()  # queued below: the caller hears it within a frame
            samples = trim_leading_silence(samples, self.rate)
            log.debug("first audio ready (%d ms of speech)", len(samples) * 1000 // self.rate)
        said.append(piece)
        with self._play_lock:
            self._playback.append((samples, chunk.text, record))
