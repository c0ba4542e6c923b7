#!/usr/bin/env python3
"""Voice-to-voice latency over real SIP calls, measured on the wire.

Starts ``employai serve`` (embedded defaults, its own data dir and ports), then calls it from an
independent caller with its own RTP clock (tests/sip_peers.WireCaller: plain sockets, no project
code on the caller's side) that speaks recorded human utterances from ../shared/audio as turns:

- voice to voice: the caller's last voiced sample sent -> the first non-silent agent RTP packet received;
- barge-in stop: the caller's speech onset over a reply -> the agent's last non-silent packet before it
  falls silent;
- the per-stage breakdown (endpoint delay, STT final, first token, first audio, send) from the turn
  timings the server stores with each call;
- the same for 1, 2, 4, 8 simultaneous calls, with the server's CPU use (cores busy, from /proc), and the
  worst call's own voice-to-voice p95 (the goal holds for every call).

    .venv/bin/python scripts/bench_call.py --json [--levels 1,2,4,8] [--turns 4]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from sip_peers import WireCaller, free_port  # noqa: E402
from speech.audio import read_audio  # noqa: E402
from speech.resample import resample  # noqa: E402
from telephony.metrics import STAGES, stage_seconds  # noqa: E402

AUDIO = Path(os.environ.get("EMPLOYAI_TEST_AUDIO", REPO.parent / "shared" / "audio"))
EMPLOYAI = str(Path(sys.executable).with_name("employai"))
VOICED = 300  # |sample| above this is speech, not line noise


def utterances(max_s: float = 6.0) -> list[np.ndarray]:
    out = []
    for path in sorted(AUDIO.glob("*.wav")):
        clip = read_audio(path)
        if len(clip.samples) / clip.rate <= max_s:
            out.append(resample(clip.samples, clip.rate, 8000).astype(np.int16))
    return out


def pct(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p95": None, "max": None, "n": 0}
    return {"p50": round(float(np.percentile(values, 50))), "p95": round(float(np.percentile(values, 95))),
            "max": round(max(values)), "n": len(values)}


def voiced_frames(samples: np.ndarray) -> list[int]:
    return [i for i in range(len(samples) // 160) if np.abs(samples[i * 160:(i + 1) * 160].astype(np.int32)).max() > VOICED]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    def __init__(self, data: Path, max_calls: int, extra_env: dict[str, str] | None = None) -> None:
        self.sip_port, self.metrics_port = free_port(), free_port(socket.SOCK_STREAM)
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMPLOYAI_") or k == "EMPLOYAI_TEST_AUDIO"}
        env.update({"EMPLOYAI_SERVICE__DATA_DIR": str(data), "EMPLOYAI_CONSOLE__ADDRESS": "127.0.0.1:0", "EMPLOYAI_SIP__PORT": str(self.sip_port),
                    "EMPLOYAI_SIP__MAX_CALLS": str(max_calls),
                    "EMPLOYAI_SERVICE__METRICS_ADDRESS": f"127.0.0.1:{self.metrics_port}"})
        env.update(extra_env or {})
        self.log = open(data / "serve.log", "w")
        self.proc = subprocess.Popen([EMPLOYAI, "serve"], stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"employai serve exited; see {data / 'serve.log'}")
            if "Serving" in line:
                return
        raise RuntimeError("employai serve did not become ready")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def one_call(port: int, clips: list[np.ndarray], turns: int, offset: int, barge_in: bool, result: dict) -> None:
    caller = WireCaller(("127.0.0.1", port), user=f"bench{offset}")
    v2v, stops = [], []
    try:
        caller.dial()
        caller.wait_quiet(after=0.0, quiet_s=1.0, timeout=20)  # the greeting
        for turn in range(turns):
            clip = clips[(offset + turn) % len(clips)]
            start = caller.say(clip)
            last = caller.wait_sent(start + voiced_frames(clip)[-1])
            deadline = time.monotonic() + 15
            reply = None
            while time.monotonic() < deadline and reply is None:
                after = [t for t in caller.voiced_arrivals(VOICED) if t > last]
                reply = after[0] if after else None
                time.sleep(0.01)
            if reply is None:
                continue
            v2v.append((reply - last) * 1000)
            if barge_in and turn == turns - 1:
                time.sleep(0.8)  # the caller talks over the reply
                cut = clips[(offset + turn + 1) % len(clips)]
                start = caller.say(cut)
                onset = caller.wait_sent(start + voiced_frames(cut)[0])
                time.sleep(2.5)
                voiced = [t for t in caller.voiced_arrivals(VOICED) if t > onset]
                # The first silence over 0.3 s, counted from the onset: an agent already silent then (between
                # two pieces) stopped at once, whatever it says later in answer to the interruption.
                gaps = [a for a, b in zip([onset, *voiced], voiced) if b - a > 0.3]
                stop = gaps[0] if gaps else (voiced[-1] if voiced else onset)
                stops.append((stop - onset) * 1000)
            caller.wait_quiet(after=reply, quiet_s=1.2, timeout=20)
        caller.hang_up()
    finally:
        caller.close()
    result.setdefault("v2v", []).extend(v2v)
    result.setdefault("stops", []).extend(stops)
    result.setdefault("per_call", []).append(v2v)


def stages(db: Path, since_id: int) -> tuple[dict, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT id, timings FROM call_turns WHERE id > ? ORDER BY id", (since_id,)).fetchall()
    per: dict[str, list[float]] = {s: [] for s in STAGES}
    for _, timings in rows:
        for stage, seconds in stage_seconds(json.loads(timings)).items():
            per[stage].append(seconds * 1000)
    return {s: pct(v) for s, v in per.items()}, (rows[-1][0] if rows else since_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--levels", default="1,2,4,8", help="simultaneous calls per round")
    parser.add_argument("--turns", type=int, default=4, help="caller turns per call")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION__KEY=VALUE",
                        help="a setting for the server, e.g. --set stt__model=tiny.en (repeatable)")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    clips = utterances()
    data = Path(tempfile.mkdtemp(prefix="bench-call-"))
    shared_models = Path.home() / ".local" / "share" / "employai" / "models"
    if shared_models.is_dir():
        (data / "models").symlink_to(shared_models, target_is_directory=True)  # reuse the joined Whisper model
    extra = {}
    for item in args.set:
        key, _, value = item.partition("=")
        extra["EMPLOYAI_" + key.upper()] = value
    server = Server(data, max(levels), extra)
    rounds, last_id = [], 0
    try:
        for level in levels:
            result: dict = {}
            cpu0, wall0 = cpu_seconds(server.proc.pid), time.monotonic()
            threads = [threading.Thread(target=one_call, args=(server.sip_port, clips, args.turns, i * args.turns + level,
                                                              True, result)) for i in range(level)]
            for t in threads:
                t.start()
                time.sleep(0.25)
            for t in threads:
                t.join(timeout=300)
            cores = (cpu_seconds(server.proc.pid) - cpu0) / (time.monotonic() - wall0)
            breakdown, last_id = stages(data / "memory.sqlite3", last_id)
            rounds.append({"calls": level, "turns": len(result.get("v2v", [])),
                           "voice_to_voice_ms": pct(result.get("v2v", [])),
                           # The goal holds for every call: each call's own p95, the worst of them.
                           "worst_call_p95_ms": max((pct(v)["p95"] for v in result.get("per_call", []) if v), default=None),
                           "barge_in_stop_ms": pct(result.get("stops", [])),
                           "stages_ms": breakdown, "cpu_cores_busy": round(cores, 2)})
    finally:
        server.stop()
    first = rounds[0]
    report = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version(),
                    "model": next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                                   if l.startswith("model name")), "")},
        "caller_clips": len(clips),
        "turns": first["turns"],
        "voice_to_voice_ms": first["voice_to_voice_ms"],
        "barge_in_stop_ms": first["barge_in_stop_ms"],
        "stages_ms": first["stages_ms"],
        "concurrency": rounds,
        "data_dir": str(data),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for r in rounds:
            v = r["voice_to_voice_ms"]
            print(f"{r['calls']} call(s): {r['turns']} turns, voice-to-voice p50 {v['p50']} p95 {v['p95']} max {v['max']} ms "
                  f"(worst call's p95 {r['worst_call_p95_ms']} ms), "
                  f"barge-in stop p50 {r['barge_in_stop_ms']['p50']} ms, CPU {r['cpu_cores_busy']} cores")


if __name__ == "__main__":
    main()
