"""Streaming speech recognition for one audio stream: VAD endpointing + Whisper, never blocking.

The audio thread calls :meth:`Listener.feed` with each line frame; that only runs webrtcvad (tens
of microseconds). Transcriptions run on a :class:`TranscriptionWorker` thread shared by all
streams, and their results come back as events on the listener's queue:

- while the caller speaks, a :class:`PartialText` every ``partial_interval_ms`` (if the worker is free);
- when the caller pauses, the final transcription starts *speculatively*; if the pause turns into
  the end of the turn (after the hang-over) its result is used as is, so the text is usually ready
  at the moment the endpoint is decided; if the caller goes on, it is discarded;
- at the endpoint, a :class:`FinalText` with its timings, or a :class:`Blip` for a cough/"mhm".

Early endpoint: when the speculative transcript is a complete sentence (three words or more, final
punctuation, no dangling "and"/"the", not a number being read out), the turn ends after ``early_hangover_ms`` of
silence instead of the full hang-over — people pause inside phone numbers, not after "Thank you."
And when it ends with a number ("... is 555", "One."), the turn waits ``number_hangover_ms`` of silence:
someone reading digits out pauses between them for longer than the hang-over.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import re
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, ContextManager

import numpy as np

from config.settings import VADSettings
from speech.audio import PCM, STT_RATE
from speech.resample import resample
from speech.stt import Transcript, WhisperSTT
from speech.vad import Endpointer, SpeechConfirmed, SpeechEnded, SpeechPaused, SpeechStarted

log = logging.getLogger(__name__)

_DANGLING = re.compile(r"\b(and|or|but|so|because|the|a|an|to|my|is|at|for|of|with|um|uh|er)[.?!]*$", re.I)
_ENDS_WITH_NUMBER = re.compile(r"(\d[\d\s,.-]*|\b(zero|oh|one|two|three|four|five|six|seven|eight|nine|ten))[.?!]*$", re.I)


def is_complete_sentence(text: str) -> bool:
    """Does this transcript sound finished? (Ends a sentence, no dangling word, not reading digits.)"""
    text = text.strip()
    if not text or text[-1] not in ".?!" or text.endswith("..."):
        return False
    if len(text.split()) < 3:  # "Sorry." / "Well." / "Yes." are as often openers as whole turns
        return False
    return not _DANGLING.search(text) and not ends_with_number(text)


def ends_with_number(text: str) -> bool:
    """Does this transcript end with a number ("... is 555", "One.")? The caller may be reading digits out."""
    return bool(_ENDS_WITH_NUMBER.search(text.strip()))


# A pause's transcript is offered as ``PartialText(whole=True)`` (the model reads the whole turn ahead and writes
# its reply's start) only when the turn would end this much later at the soonest: reading ~20 tokens ahead takes
# ~70-120 ms here. (Offered on every pause, the read-ahead of a turn about to end replaced the turn's own reading
# at one call, but under 4 calls it took contexts the turns needed: p50 / p95 ~1.4 / ~2.9 s against ~1.2 / ~2.2.)
_WHOLE_LEAD_MS = 100

_SHORT_UTTERANCE_MS = 1500  # an utterance this short may be a number read out ("One.", "Five five five.")

PRIORITY_FINAL = 0
PRIORITY_SPECULATIVE = 1
PRIORITY_PARTIAL = 2


@dataclass(order=True)
class _Job:
    priority: int
    seq: int
    audio: PCM = field(compare=False)
    future: Future = field(compare=False)
    key: object = field(compare=False, default=None)


class TranscriptionWorker:
    """Threads running Whisper jobs by priority: finals before speculative before partials.

    As many threads as the model has workers (``WhisperSTT.workers``): a running job cannot be pre-empted,
    so with one thread a caller's speculative transcript waited behind another caller's, or behind a
    partial that started just before the pause (up to ~300 ms). A new partial for the same ``key``
    (stream) replaces a queued one: only the freshest partial is worth computing.
    """

    def __init__(self, stt: WhisperSTT, urgent: Callable[[], ContextManager[None]] | None = None) -> None:
        self.stt = stt
        # Entered while a final or speculative job is queued or running: a caller waits for it (the
        # voice loop's model gives way then; a partial is nobody's wait).
        self.urgent = urgent
        self._heap: list[_Job] = []
        self._pending_by_key: dict[object, _Job] = {}
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self._running = 0
        self._threads = [threading.Thread(target=self._run, name=f"stt-worker-{n}", daemon=True)
                         for n in range(stt.workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, audio16k: PCM, priority: int, key: object = None) -> Future:
        future: Future = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("transcription worker is closed")
            if key is not None:
                old = self._pending_by_key.pop(key, None)
                if old is not None:
                    old.future.cancel()
            job = _Job(priority, next(self._seq), audio16k, future, key)
            if self.urgent is not None and priority < PRIORITY_PARTIAL:
                held = self.urgent()
                held.__enter__()
                future.add_done_callback(lambda _: held.__exit__(None, None, None))
            if key is not None:
                self._pending_by_key[key] = job
            heapq.heappush(self._heap, job)
            self._cond.notify()
        return future

    def busy(self) -> bool:
        """No thread to spare for a partial: one is kept free for the speculative and final transcripts (a caller
        waits for those, and they cannot pre-empt a running job), unless there is only one."""
        with self._cond:
            return bool(self._heap) or self._running >= max(1, len(self._threads) - 1)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap and not self._closed:
                    self._cond.wait()
                if self._closed and not self._heap:
                    return
                job = heapq.heappop(self._heap)
                if job.key is not None and self._pending_by_key.get(job.key) is job:
                    del self._pending_by_key[job.key]
                if not job.future.set_running_or_notify_cancel():
                    continue
                self._running += 1
            try:
                # Only a final is worth the full-window redo of an unreliable result (~0.8 s of a thread).
                job.future.set_result(self.stt.transcribe(job.audio, fallback=job.priority == PRIORITY_FINAL))
            except BaseException as exc:  # delivered to whoever waits on the future
                job.future.set_exception(exc)
            finally:
                with self._cond:
                    self._running -= 1

    def close(self) -> None:
        with self._cond:
            self._closed = True
            for job in self._heap:
                job.future.cancel()
            self._heap.clear()
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)


@dataclass(frozen=True)
class PartialText:
    """The caller's words so far. ``whole``: the transcript of a pause, all the utterance so far; the final text
    if the caller says no more (a partial taken while they speak may end mid-word)."""

    utterance: int
    at_ms: int
    text: str
    whole: bool = False


@dataclass(frozen=True)
class FinalText:
    """The caller's finished utterance."""

    utterance: int
    text: str
    start_ms: int  # stream time of the first voiced audio
    end_ms: int  # stream time of the last voiced audio
    endpoint_ms: int  # stream time the end was decided (end_ms + hang-over)
    final_wait_s: float  # wall time from the endpoint decision to the text being ready
    speculative: bool  # True when the speculative transcription was used
    transcript: Transcript = field(repr=False)


@dataclass(frozen=True)
class Blip:
    """Something too short to be speech (cough, click, "mhm"): never a turn, never a barge-in."""

    utterance: int
    at_ms: int
    voiced_ms: int


@dataclass(frozen=True)
class STTFailed:
    utterance: int
    error: str


ListenerEvent = SpeechStarted | SpeechConfirmed | PartialText | FinalText | Blip | STTFailed


class Listener:
    """VAD + streaming STT for one caller. Feed line frames from one thread; read :attr:`events`."""

    def __init__(
        self,
        worker: TranscriptionWorker,
        vad: VADSettings | None = None,
        *,
        rate: int = 8000,
        partial_interval_ms: int = 700,
        on_event: Callable[[ListenerEvent], None] | None = None,
    ) -> None:
        self.worker = worker
        self.rate = rate
        self.endpointer = Endpointer(vad, rate=rate)
        self.partial_interval_ms = partial_interval_ms
        self.events: queue.Queue[ListenerEvent] = queue.Queue()
        self._on_event = on_event
        self._utterance = 0
        self._last_partial_ms = 0
        self._speculative: tuple[int, int, Future] | None = None  # utterance, samples, job
        self._finals_pending = 0
        self._idle = threading.Condition()
        # Finals are handed out in the order the utterances ended: with several transcription threads a short
        # utterance's text can be ready before the one before it.
        self._final_seq = itertools.count()
        self._next_final = 0
        self._ready_finals: dict[int, Callable[[], None]] = {}
        self._order_lock = threading.Lock()
        self.early_hangover_ms = self.endpointer.settings.early_hangover_ms
        self.number_hangover_ms = self.endpointer.settings.number_hangover_ms
        self._early: tuple[int, int] | None = None  # (utterance, samples) whose speculative text is complete
        self._number: tuple[int, int] | None = None  # (utterance, samples) whose speculative text ends with a number
        self._preview: tuple[int, str] | None = None  # (utterance, text) of the last reliable partial transcript

    @property
    def frame_len(self) -> int:
        return self.endpointer.frame_len

    def _emit(self, event: ListenerEvent) -> None:
        self.events.put(event)
        if self._on_event is not None:
            self._on_event(event)

    def _to_stt(self, audio: PCM) -> PCM:
        return resample(audio, self.rate, STT_RATE)

    def feed(self, frame: PCM) -> None:
        """One line frame. Cheap and non-blocking: safe to call from a real-time audio thread."""
        self._lengthen_for_number()  # before the frame: its silence may reach the plain hang-over
        self._hold_for_speculative()
        for event in self.endpointer.process(frame):
            self._handle(event)
        if self.endpointer.in_speech:
            self._lengthen_for_number()
            early = self._early
            if (
                early is not None
                and self.early_hangover_ms
                and self.endpointer.silence_ms >= self.early_hangover_ms
                and early == (self._utterance, self.endpointer.utterance_samples)
            ):
                ended = self.endpointer.end_now("early")
                if ended is not None:
                    self._handle(ended)
                return
            if self.endpointer.silence_ms == 0:
                self._maybe_partial()

    def _lengthen_for_number(self) -> None:
        if self.endpointer.in_speech and self._number == (self._utterance, self.endpointer.utterance_samples):
            # A number being read out: the next digits may follow a longer pause (for the rest of this utterance).
            self.endpointer.hangover_ms = max(self.endpointer.hangover_ms, self.number_hangover_ms)

    def _hold_for_speculative(self) -> None:
        """The pause's speculative transcript is what may lengthen the hang-over (a number being read out):
        while it is still being computed, the turn does not end at the plain hang-over, for at most
        ``number_hangover_ms`` of silence. On a fast CPU it is done long before (~150 ms into the pause);
        on a slow one (Whisper ~500 ms for a word here, AVX2 only) the turn otherwise ended before "One."
        was known to be a number, and "One. Two. Three." became three turns. Only a short utterance, or one
        whose last preview ended with a number, is held: a sentence is never ended late for it."""
        speculative = self._speculative
        if speculative is None or not self.endpointer.in_speech or not self.number_hangover_ms:
            return
        if self.endpointer.voiced_ms > _SHORT_UTTERANCE_MS and not (
                self._preview is not None and self._preview[0] == self._utterance and ends_with_number(self._preview[1])):
            return
        utterance, samples, future = speculative
        if future.done() or (utterance, samples) != (self._utterance, self.endpointer.utterance_samples):
            return
        frame_ms = self.endpointer.frame_ms
        if self.endpointer.silence_ms + frame_ms >= self.endpointer.hangover_ms:
            self.endpointer.hangover_ms = min(self.number_hangover_ms, self.endpointer.silence_ms + 2 * frame_ms)

    def flush(self) -> None:
        """End of the stream (hang-up): finish the utterance in progress."""
        for event in self.endpointer.flush():
            self._handle(event)

    def _maybe_partial(self) -> None:
        now = self.endpointer.now_ms
        if now - self._last_partial_ms < self.partial_interval_ms or self.worker.busy():
            return
        self._last_partial_ms = now
        utterance = self._utterance
        future = self.worker.submit(self._to_stt(self.endpointer.utterance_audio()), PRIORITY_PARTIAL, key=id(self))

        def done(f: Future) -> None:
            if f.cancelled() or f.exception() is not None or utterance != self._utterance:
                return
            if f.result().reliable:  # a doubtful preview is not worth the model reading ahead
                self._preview = (utterance, f.result().text)
                self._emit(PartialText(utterance, now, f.result().text))

        future.add_done_callback(done)

    def _handle(self, event: object) -> None:
        if isinstance(event, SpeechStarted):
            self._utterance += 1
            self._early = self._number = None
            self._last_partial_ms = event.at_ms
            self._speculative = None
            self._emit(event)
        elif isinstance(event, SpeechConfirmed):
            self._emit(event)
        elif isinstance(event, SpeechPaused):
            if self.endpointer._confirmed:  # only real speech is worth a speculative final
                if self._speculative is not None:
                    self._speculative[2].cancel()  # an earlier pause's guess is stale: do not compute it
                future = self.worker.submit(self._to_stt(event.audio), PRIORITY_SPECULATIVE)
                key = (self._utterance, len(event.audio))
                self._speculative = (*key, future)

                def complete(f: Future, key: tuple[int, int] = key) -> None:
                    if f.cancelled() or f.exception() is not None:
                        return
                    result: Transcript = f.result()
                    text = result.text
                    log.debug("speculative transcript %d ms into the pause (%.0f ms of Whisper%s): %r",
                              self.endpointer.silence_ms, result.compute_seconds * 1000,
                              "" if result.reliable else ", unreliable", text[-40:])
                    if not result.reliable:
                        return  # no early end on a doubtful text: the full hang-over, then a final redo
                    current = key == (self._utterance, self.endpointer.utterance_samples) and self.endpointer.in_speech
                    if current and text.strip() and self._endpoint_in_ms(text) >= _WHOLE_LEAD_MS:
                        self._emit(PartialText(key[0], self.endpointer.now_ms, text, whole=True))
                    if is_complete_sentence(text):
                        self._early = key
                    elif ends_with_number(text):
                        self._number = key

                future.add_done_callback(complete)
        elif isinstance(event, SpeechEnded):
            self._end(event)

    def _end(self, event: SpeechEnded) -> None:
        utterance = self._utterance
        speculative, self._speculative = self._speculative, None
        if event.is_blip:
            if speculative:
                speculative[2].cancel()
            self._emit(Blip(utterance, event.at_ms, event.voiced_ms))
            return
        decided = time.perf_counter()
        reuse = speculative is not None and speculative[0] == utterance and speculative[1] == len(event.audio)
        if reuse and not speculative[2].running() and not speculative[2].done():
            # Still queued behind other calls' work: it is a final now, so it goes ahead at final priority.
            if speculative[2].cancel():
                reuse = False
                speculative = None
        if reuse:
            future = self._final_from(speculative[2], event.audio)
        else:
            if speculative:
                speculative[2].cancel()
            future = self.worker.submit(self._to_stt(event.audio), PRIORITY_FINAL)

        with self._idle:
            self._finals_pending += 1
        seq = next(self._final_seq)

        def done(f: Future) -> None:
            try:
                self._in_order(seq, lambda: deliver(f))
            finally:
                with self._idle:
                    self._finals_pending -= 1
                    self._idle.notify_all()

        def deliver(f: Future) -> None:
            if f.cancelled():
                return
            if f.exception() is not None:
                log.error("transcription failed: %s", f.exception())
                self._emit(STTFailed(utterance, str(f.exception())))
                return
            wait = max(0.0, time.perf_counter() - decided)
            transcript: Transcript = f.result()
            self._emit(
                FinalText(utterance, transcript.text, event.start_ms, event.end_ms, event.at_ms, wait, reuse, transcript)
            )

        future.add_done_callback(done)

    def _endpoint_in_ms(self, text: str) -> int:
        """How much more silence would end the turn if ``text`` is what the caller said."""
        settings = self.endpointer.settings
        if is_complete_sentence(text) and self.early_hangover_ms:
            wait = self.early_hangover_ms
        elif ends_with_number(text) and self.number_hangover_ms:
            wait = max(settings.hangover_ms, self.number_hangover_ms)
        else:
            wait = settings.hangover_ms
        return wait - self.endpointer.silence_ms

    def _final_from(self, speculative: Future, audio: PCM) -> Future:
        """The speculative transcript as the final one, or, when it came back unreliable (not redone, see
        ``TranscriptionWorker``), a final transcription of the same audio with the full-window fallback."""
        final: Future = Future()

        def settle(f: Future) -> None:
            if f.cancelled():
                final.cancel()
            elif f.exception() is not None:
                final.set_exception(f.exception())
            else:
                final.set_result(f.result())

        def use(f: Future) -> None:
            if not f.cancelled() and f.exception() is None and not f.result().reliable:
                self.worker.submit(self._to_stt(audio), PRIORITY_FINAL).add_done_callback(settle)
            else:
                settle(f)

        speculative.add_done_callback(use)
        return final

    def _in_order(self, seq: int, deliver: Callable[[], None]) -> None:
        """Run ``deliver`` for final number ``seq`` once those before it have been delivered."""
        with self._order_lock:
            self._ready_finals[seq] = deliver
            while self._next_final in self._ready_finals:
                ready = self._ready_finals.pop(self._next_final)
                self._next_final += 1
                ready()

    def wait_finals(self, timeout: float = 120.0) -> bool:
        """Block until every ended utterance has its FinalText (or STTFailed) on the queue."""
        with self._idle:
            return self._idle.wait_for(lambda: self._finals_pending == 0, timeout)


def transcribe_stream(
    worker: TranscriptionWorker,
    samples: PCM,
    rate: int,
    vad: VADSettings | None = None,
    *,
    realtime: bool = False,
    partial_interval_ms: int = 700,
) -> list[ListenerEvent]:
    """Run a whole clip through a :class:`Listener` as a line would deliver it; return all events.

    ``realtime`` paces the frames at 1x (for latency measurements); otherwise as fast as possible.
    """
    listener = Listener(worker, vad, rate=rate, partial_interval_ms=partial_interval_ms)
    frame_len = listener.frame_len
    frame_s = frame_len / rate
    start = time.perf_counter()
    padded = np.concatenate([samples, np.zeros((-len(samples)) % frame_len, dtype=np.int16)])
    for index, offset in enumerate(range(0, len(padded), frame_len)):
        if realtime:
            delay = start + index * frame_s - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        listener.feed(padded[offset : offset + frame_len])
    listener.flush()
    listener.wait_finals()
    events: list[ListenerEvent] = []
    while not listener.events.empty():
        events.append(listener.events.get_nowait())
    return events
