"""Prometheus metrics of the phone line: per-stage turn latency, calls, errors (prometheus-client).

Each switchboard has its own registry (tests run several in one process); ``serve`` exposes it on
the address from ``[service] metrics_address`` as plain Prometheus text at ``/metrics``.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

# Seconds. Dense below 1.5 s, where the voice-to-voice target lives.
BUCKETS = (0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0, 10.0)

STAGES = ("endpoint", "stt_final", "first_token", "first_audio", "send", "voice_to_voice")


def stage_seconds(timings: dict) -> dict[str, float]:
    """The per-stage breakdown of one stored turn (ms values as written by the voice loop) in seconds.

    endpoint: caller's last voiced audio -> end of turn decided; stt_final: -> final transcript;
    first_token / first_audio: final transcript -> first reply text / first synthesised audio;
    send: first audio ready -> its first frame handed to RTP; voice_to_voice: the whole span.
    """
    out: dict[str, float] = {}
    end, endpoint, frame = timings.get("speech_end_ms"), timings.get("endpoint_ms"), timings.get("first_frame_ms")
    stt, token, audio = timings.get("stt_final_ms"), timings.get("first_token_ms"), timings.get("first_audio_ms")
    if end is not None and endpoint is not None:
        out["endpoint"] = max(0.0, (endpoint - end) / 1000)
    if stt is not None:
        out["stt_final"] = stt / 1000
    if token is not None:
        out["first_token"] = token / 1000
    if audio is not None:
        out["first_audio"] = audio / 1000
    if None not in (frame, endpoint, stt, audio):
        out["send"] = max(0.0, (frame - endpoint - stt - audio) / 1000)
    if timings.get("voice_to_voice_ms") is not None:
        out["voice_to_voice"] = timings["voice_to_voice_ms"] / 1000
    return out


class CallMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.stage = Histogram("employai_turn_stage_seconds", "Latency of each stage of a turn", ["stage"],
                               buckets=BUCKETS, registry=self.registry)
        self.active = Gauge("employai_active_calls", "Calls in progress", registry=self.registry)
        self.calls = Counter("employai_calls_total", "Finished calls by direction and outcome",
                             ["direction", "outcome"], registry=self.registry)
        self.errors = Counter("employai_errors_total", "Errors by kind", ["kind"], registry=self.registry)
        self.barge_ins = Counter("employai_barge_ins_total", "Replies interrupted by the caller", registry=self.registry)
        self.late_ticks = Counter("employai_audio_late_ticks_total",
                                  "20 ms audio ticks missed by more than a frame (the audio thread was starved)",
                                  registry=self.registry)
        self._server = None

    def observe_turn(self, timings: dict) -> None:
        for stage, seconds in stage_seconds(timings).items():
            self.stage.labels(stage).observe(seconds)

    def observe_call(self, direction: str, outcome: str, barge_ins: int, late_ticks: int, error: bool) -> None:
        self.calls.labels(direction, outcome).inc()
        self.barge_ins.inc(barge_ins)
        self.late_ticks.inc(late_ticks)
        if error:
            self.errors.labels("call").inc()

    def serve(self, address: str) -> tuple[str, int]:
        host, _, port = address.rpartition(":")
        server, _thread = start_http_server(int(port), addr=host or "127.0.0.1", registry=self.registry)
        self._server = server
        bound = server.server_address[:2]
        log.info("metrics on http://%s:%d/metrics", *bound)
        return bound

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
