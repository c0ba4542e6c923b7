"""20 ms of audio at a time between an answered rfcvoip call and the voice loop.

The library's RTP thread sends on an absolute clock; this side feeds it *just in time*: a frame is
written only while less than :data:`QUEUE_FRAMES` frames wait in its output buffer, so what the
agent says can be stopped at once (barge-in) instead of draining a long queue.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from telephony.sip.library import VoIPCall

log = logging.getLogger(__name__)

FRAME_SAMPLES = 160  # 20 ms at 8 kHz
FRAME_BYTES = FRAME_SAMPLES * 2  # 16-bit linear, as the phone is configured
QUEUE_FRAMES = 2  # frames allowed to wait in the RTP output buffer (absorbs clock jitter)


class CallAudio:
    """Frame-level access to one call's media (16-bit, 8 kHz, mono)."""

    def __init__(self, call: VoIPCall) -> None:
        self.call = call
        self.last_packet = time.monotonic()  # arrival of the caller's latest RTP packet
        self._watched: set[int] = set()

    def _watch_arrivals(self, client) -> None:
        """Note each incoming RTP packet's arrival (the library keeps no such time) for the media timeout."""
        if client is None or id(client) in self._watched:
            return
        self._watched.add(id(client))
        parse = client.parse_packet

        def parse_and_note(packet: bytes) -> None:
            self.last_packet = time.monotonic()
            parse(packet)

        client.parse_packet = parse_and_note

    def media_silent_s(self) -> float:
        """Seconds since the caller's last RTP packet (a vanished peer sends no BYE)."""
        self._client()
        return time.monotonic() - self.last_packet

    def _client(self):
        """The call's RTP client (a re-INVITE may replace it: each new one gets its arrivals watched)."""
        clients = self.call._rtp_clients_snapshot()
        client = clients[0] if clients else None
        self._watch_arrivals(client)
        return client

    @property
    def codec(self) -> str:
        client = self._client()
        return str(getattr(client, "preference", "")) if client else ""

    def read_frame(self) -> np.ndarray:
        data = self.call.read_audio(FRAME_BYTES, blocking=False)
        frame = np.frombuffer(data[:FRAME_BYTES], dtype=np.int16)
        if len(frame) < FRAME_SAMPLES:
            frame = np.concatenate([frame, np.zeros(FRAME_SAMPLES - len(frame), dtype=np.int16)])
        return frame

    def wants_frame(self) -> bool:
        client = self._client()
        return client is not None and client.pmout.available() < QUEUE_FRAMES * FRAME_BYTES

    def write_frame(self, frame: np.ndarray) -> None:
        self.call.write_audio(np.asarray(frame, dtype=np.int16).tobytes())

    def flush(self) -> None:
        """Drop what waits in the output buffer (barge-in). Best effort on the library's buffer."""
        self.take_back()

    def take_back(self) -> int:
        """Take what waits in the output buffer back, unsent, and say how many samples that was (the caller may
        be taking the floor: the agent falls silent now rather than after the queued 20-40 ms, and the voice
        loop plays them again if it was only a cough). Best effort on the library's buffer."""
        client = self._client()
        output = getattr(client, "pmout", None)
        take = getattr(output, "_take_locked", None)
        lock = getattr(output, "bufferLock", None)
        if take is None or lock is None:
            return 0
        with lock:
            size = getattr(output, "_size", 0)
            return len(take(size - size % 2)) // 2 if size else 0

    def dtmf(self) -> str:
        return self.call.get_dtmf(length=16) or ""


class FrameClock:
    """Absolute 20 ms deadlines: sleeping never accumulates drift; a stall starts a new epoch."""

    def __init__(self, period_s: float = 0.020) -> None:
        self.period = period_s
        self.next_due = time.perf_counter()
        self.late_ticks = 0

    def wait(self) -> None:
        self.next_due += self.period
        delay = self.next_due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        elif delay < -self.period:
            self.late_ticks += 1
            self.next_due = time.perf_counter()
