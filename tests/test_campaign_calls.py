"""Campaigns over real SIP: baresip callees that answer as a person or as a voicemail (greeting + beep),
sipp callees that are busy, reject or never answer; concurrency, retries, calling hours on a
controllable clock, and ``kill -9`` then ``employai campaign resume`` with no double dial."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import wave
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from sip_peers import ANSWER, FINAL, NO_ANSWER, Baresip, free_port, sipp_callee, sipp_invites
from speech.answering_machine import BeepDetector
from speech.audio import STT_RATE
from speech.resample import resample
from telephony.campaign.contacts import Contact
from telephony.campaign.hours import CallingHours
from telephony.campaign.runner import CampaignOptions, CampaignRunner
from telephony.campaign.store import CampaignStore

RATE = 8000
GOAL = "confirm your appointment tomorrow at {time}"
REPO = Path(__file__).resolve().parent.parent


def synth(voice, text: str) -> np.ndarray:
    return np.concatenate([chunk.samples for chunk in voice.stream(text, rate=RATE)])


def at(seconds: float, *parts: tuple[float, np.ndarray]) -> np.ndarray:
    """Audio of ``seconds`` with each (start_s, samples) placed at its time."""
    out = np.zeros(int(seconds * RATE), np.int16)
    for start, samples in parts:
        i = int(start * RATE)
        out[i:i + len(samples)] = samples[: len(out) - i]
    return out


def beep(hz: float = 1000, seconds: float = 0.6) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (9000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def all_day() -> str:
    """Calling hours that are open now and for the next hours, whatever the time of the run."""
    now = datetime.now(ZoneInfo("UTC"))
    return f"{(now - timedelta(hours=1)):%H:00}-{(now + timedelta(hours=3)):%H:00}"


def new_campaign(tmp_path, contacts: list[Contact], name: str = "test") -> CampaignStore:
    store = CampaignStore(tmp_path / f"{name}.sqlite3")
    store.create(name, GOAL, "test.csv", {}, contacts)
    return store


def test_a_campaign_reaches_a_person_a_voicemail_and_every_kind_of_failure(board, voice, stt, tmp_path):
    human = Baresip(tmp_path, at(40, (0.3, synth(voice, "Hello?")),
                                 (12.0, synth(voice, "Yes, that's right, I'll be there."))), seconds=40, user="alice")
    greeting = synth(voice, "Hi, you've reached Bob Smith. I can't take your call right now. "
                            "Please leave a message after the tone.")
    beep_at = 0.3 + len(greeting) / RATE + 0.4
    machine = Baresip(tmp_path, at(45, (0.3, greeting), (beep_at, beep())), seconds=45, user="bob")
    busy, busy_uri = sipp_callee(tmp_path, FINAL.format(code=486, phrase="Busy Here"), calls=2)
    reject, reject_uri = sipp_callee(tmp_path, FINAL.format(code=603, phrase="Decline"))
    silent, silent_uri = sipp_callee(tmp_path, NO_ANSWER, calls=2)
    uris = [human.uri, machine.uri, busy_uri, reject_uri, silent_uri]
    names = ["Alice", "Bob", "Carol", "Dan", "Erin"]
    contacts = [Contact(i + 2, uri, {"name": n, "time": f"{9 + i}:15", "uri": uri})
                for i, (uri, n) in enumerate(zip(uris, names))]
    store = new_campaign(tmp_path, contacts)
    options = CampaignOptions(3, CallingHours.parse(all_day(), "UTC"), retries=1, retry_after_s=1.0)
    board.settings.sip.ring_timeout_s = 3.0
    try:
        runner = CampaignRunner(store, "test", options, board.dial)
        counts = runner.run()
    finally:
        board.settings.sip.ring_timeout_s = 30.0
        human.stop()
        machine.stop()
    for proc in (busy, reject, silent):
        assert proc.wait(timeout=20) == 0, proc.stdout.read()
    rows = {r["uri"]: r for r in store.contacts("test")}
    assert {uri: (rows[uri]["outcome"], rows[uri]["attempts"]) for uri in uris} == {
        human.uri: ("answered-human", 1), machine.uri: ("voicemail", 1), busy_uri: ("busy", 2),
        reject_uri: ("rejected", 1), silent_uri: ("no-answer", 2)}
    assert counts["goal_achieved"] == 1 and runner.progress.max_in_flight == 3

    person = rows[human.uri]
    assert person["goal_achieved"] == 1 and "that's right" in person["summary"].lower()
    transcript = " ".join(m.content for m in board.brain.memory.store.messages(person["conversation_id"]))
    assert "I'm calling to confirm your appointment tomorrow at 9:15" in transcript

    left = rows[machine.uri]
    assert left["summary"].startswith("Left a voicemail") and left["goal_achieved"] is None
    with wave.open(left["recording"], "rb") as wav:  # stereo: callee left, agent right
        stereo = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)
    callee, agent = stereo[:, 0].copy(), stereo[:, 1].copy()
    detector = BeepDetector()
    for i in range(0, len(callee) - 159, 160):
        detector.feed(callee[i:i + 160])
    assert detector.tones, "the beep is in the recording"
    beep_end_s = detector.tones[0][1] / 1000
    loud = np.flatnonzero(np.abs(agent) > 1000)
    assert loud.size and loud[0] / RATE >= beep_end_s - 0.05, "the agent spoke over the greeting"
    message = stt.transcribe(resample(agent[int(beep_end_s * RATE):], RATE, STT_RATE)).text.lower()
    assert "appointment" in message and "call us back" in message


class FakeClock:
    """Campaign time that runs with real time but jumps over every wait (hours pass in milliseconds).

    A sleeper wakes at the time it read last plus its wait, as with a real clock; time never goes back,
    so two workers waiting for the same opening wake together instead of adding their waits up.
    """

    def __init__(self, start: datetime) -> None:
        self.start, self.t0, self.skipped = start, time.monotonic(), 0.0
        self.lock = threading.Lock()
        self.read = threading.local()

    def _now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.t0 + self.skipped)

    def now(self) -> datetime:
        with self.lock:
            self.read.at = self._now()
            return self.read.at

    def sleep(self, seconds: float, wake=None) -> None:
        with self.lock:
            now = self._now()
            target = getattr(self.read, "at", now) + timedelta(seconds=max(0.0, seconds))
            if target > now:
                self.skipped += (target - now).total_seconds()
        time.sleep(0.005)


def test_no_call_starts_outside_the_calling_hours(board, tmp_path):
    london = ZoneInfo("Europe/London")
    clock = FakeClock(datetime(2026, 11, 25, 8, 59, 0, tzinfo=london))
    callees = [sipp_callee(tmp_path, FINAL.format(code=486, phrase="Busy Here"), calls=2) for _ in range(2)]
    store = new_campaign(tmp_path, [Contact(i + 2, uri, {"time": "noon"}) for i, (_, uri) in enumerate(callees)])
    dialled: list[tuple[str, datetime]] = []

    def dial(uri, task, started):
        dialled.append((uri, clock.now().astimezone(london)))
        return board.dial(uri, task, started)

    hours = CallingHours.parse("09:00-09:05", "Europe/London")
    runner = CampaignRunner(store, "test", CampaignOptions(2, hours, retries=1, retry_after_s=600), dial, clock)
    counts = runner.run()
    for proc, _ in callees:
        assert proc.wait(timeout=20) == 0, proc.stdout.read()
    assert counts["busy"] == 2 and counts["attempts"] == 4
    firsts = sorted(t for _, t in dialled)[:2]
    retries = sorted(t for _, t in dialled)[2:]
    assert all(t.date().day == 25 and datetime(2026, 11, 25, 9, 0, tzinfo=london) <= t
               < datetime(2026, 11, 25, 9, 5, tzinfo=london) for t in firsts), dialled
    # due at ~09:10, after the hours: the retries wait for the next morning's opening
    assert all(t.date().day == 26 and datetime(2026, 11, 26, 9, 0, tzinfo=london) <= t
               < datetime(2026, 11, 26, 9, 5, tzinfo=london) for t in retries), dialled


def _cli(args: list[str], config: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "EMPLOYAI_CONFIG": str(config), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "telephony.cli", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def test_a_killed_campaign_resumes_without_calling_anyone_twice(tmp_path):
    callee, callee_uri = sipp_callee(tmp_path, ANSWER, calls=100, timeout_s=600)
    port = callee_uri.rsplit(":", 1)[1]
    people = ["ann", "ben", "cat", "dov", "eli"]
    csv_path = tmp_path / "people.csv"
    csv_path.write_text("name,uri,time\n" + "".join(f"{p},sip:{p}@127.0.0.1:{port},10:{i}0\n"
                                                     for i, p in enumerate(people)))
    data = tmp_path / "data"
    config = tmp_path / "employai.toml"
    config.write_text(f"""[service]
data_dir = "{data}"
metrics_address = "127.0.0.1:0"

[llm]
n_ctx = 2048

[sip]
port = {free_port()}
rtp_port_low = 33000
rtp_port_high = 33999

[call]
silence_reprompt_s = 2
silence_hangup_s = 2
""")
    run = _cli(["campaign", "run", str(csv_path), "--goal", GOAL, "--name", "remind", "--concurrency", "2",
                "--hours", all_day(), "--timezone", "UTC", "--retries", "0"], config, start_new_session=True)
    store: CampaignStore | None = None
    deadline = time.monotonic() + 240
    answered = []
    while time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.5)
        if (data / "campaigns.sqlite3").exists():
            store = store or CampaignStore(data / "campaigns.sqlite3")
            attempts = store.attempts("remind") if store.campaigns() else []
            answered = [a for a in attempts if a["answered_at"] and a["outcome"] is None]
            if any(a["outcome"] for a in attempts) and answered:
                break  # one call finished, one is in progress: the worst moment to die
    assert run.poll() is None, run.stdout.read()
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=10)
    before = {a["id"]: a for a in store.attempts("remind")}
    assert answered and any(a["outcome"] is None for a in before.values())

    resume = _cli(["campaign", "resume", "remind"], config)
    out, _ = resume.communicate(timeout=300)
    assert resume.returncode == 0, out
    assert "cut off by the interruption" in out and "campaign remind finished" in out
    callee.send_signal(signal.SIGINT)
    callee.wait(timeout=10)
    dials = sipp_invites((tmp_path / f"uas-{port}.log").read_text(errors="replace"))
    attempts = store.attempts("remind")
    rows = {r["uri"].split(":")[1].split("@")[0]: r for r in store.contacts("remind")}
    cut = {a["id"]: a for a in attempts if a["id"] in before and before[a["id"]]["outcome"] is None}
    assert cut and all(a["outcome"] == "interrupted" for a in cut.values())
    for person in people:
        made = [a for a in attempts if a["uri"].startswith(f"sip:{person}@")]
        assert len({a["number"] for a in made}) == len(made), made  # one row per attempt number
        # never more dials than attempts (no attempt dialled twice); an attempt claimed just before the kill
        # may not have reached the callee; the rest were all dialled
        assert len(made) - 1 <= len(dials.get(person, ())) <= len(made), (person, dials, made)
        if any(a["id"] in cut and a["answered_at"] for a in made):
            assert len(made) == 1, made  # they were spoken to when it died: not called again
        elif not any(a["id"] in cut for a in made):
            assert len(made) == len(dials.get(person, ())) == 1, made  # retries 0: one call
        assert rows[person]["state"] == "done", rows[person]
    assert {rows[p]["outcome"] for p in people} <= {"answered-human", "interrupted"}, (out, rows)
    total = len(attempts)

    status = subprocess.run([sys.executable, "-m", "telephony.cli", "campaign", "status", "remind", "--json"],
                            cwd=REPO, env={**os.environ, "EMPLOYAI_CONFIG": str(config)}, capture_output=True,
                            text=True, timeout=60)
    import json

    counts = json.loads(status.stdout)["counts"]
    assert counts["attempts"] == total and counts.get("answered-human", 0) + counts.get("interrupted", 0) == 5
    export = tmp_path / "results.csv"
    subprocess.run([sys.executable, "-m", "telephony.cli", "campaign", "export", "remind", "-o", str(export)],
                   cwd=REPO, env={**os.environ, "EMPLOYAI_CONFIG": str(config)}, check=True, timeout=60)
    lines = export.read_text().splitlines()
    assert lines[0].startswith("line,uri,name,time,outcome,attempts,goal_achieved,summary") and len(lines) == 6
