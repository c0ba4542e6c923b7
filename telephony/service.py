"""Starting the service: load every model once, check the speech path end to end, open the phone line.

The report says what was loaded, how long it took, where the line listens and how to call it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from brain.employee import Brain
from config import Settings
from config.models import resolve_llm_model
from speech.audio import STT_RATE
from speech.resample import resample, telephone_path
from speech.stt import WhisperSTT
from speech.tts import PiperTTS
from telephony.garbage import settle as settle_garbage
from telephony.switchboard import Switchboard

SELF_TEST_SENTENCE = "Thank you for calling, how can I help you today?"


@dataclass
class StartupReport:
    """What was loaded, how long it took, and whether the self-test passed."""

    steps: list[tuple[str, float, str]] = field(default_factory=list)
    ok: bool = True
    notes: list[str] = field(default_factory=list)
    service: "Service | None" = None

    def add(self, name: str, seconds: float, detail: str) -> None:
        self.steps.append((name, seconds, detail))

    def lines(self) -> list[str]:
        out = [f"  {name:<22} {seconds:6.2f} s  {detail}" for name, seconds, detail in self.steps]
        out += [f"  note: {note}" for note in self.notes]
        out.append("Employai ready." if self.ok else "Employai self-test FAILED.")
        return out


@dataclass
class Service:
    settings: Settings
    stt: WhisperSTT
    tts: PiperTTS
    brain: Brain
    board: Switchboard | None = None
    console: "object | None" = None  # telephony.console.server.ConsoleServer, when serving

    def stop(self) -> None:
        if self.console is not None:
            self.console.stop()
        if self.board is not None:
            self.board.stop()
        self.brain.close()

    def start_console(self) -> str:
        """Open the operator console (``employai serve`` only); returns what to tell the operator."""
        from telephony.console.server import ConsoleServer

        assert self.board is not None
        self.console = ConsoleServer(self.board).start()
        url = self.console.url
        if self.settings.console.password is None:
            return (f"operator console: {url} (locked: set EMPLOYAI_CONSOLE__PASSWORD or [console] password "
                    "to log in)")
        return f"operator console: {url}"


def how_to_call(settings: Settings) -> list[str]:
    sip = settings.sip
    address = sip.address
    lines = [f"listening for calls on {address} (UDP; RTP ports {sip.rtp_port_low}-{sip.rtp_port_high})"]
    if sip.registrar:
        lines.append(f"registering as {sip.user} at {sip.registrar} (calls to extension {sip.user} reach the employee)")
    lines.append(f"to call it from a softphone (Linphone, baresip, MicroSIP, Zoiper): dial {address}")
    if sip.host.startswith("127."):
        lines.append("only this machine can reach that address; for phones on your network set [sip] host "
                     "to this machine's LAN address (or EMPLOYAI_SIP__HOST=...)")
    return lines


def start_service(settings: Settings) -> StartupReport:
    report = StartupReport()
    models_dir = settings.service.data_dir / "models"

    started = time.perf_counter()
    stt = WhisperSTT.from_settings(settings.stt, models_dir)
    report.add("speech-to-text", time.perf_counter() - started, f"{settings.stt.model} on {stt.device}/{stt.compute_type}")

    started = time.perf_counter()
    tts = PiperTTS.from_settings(settings.tts)
    tts.warm_up()
    report.add("text-to-speech", time.perf_counter() - started, f"voice {settings.tts.voice} ({tts.native_rate} Hz)")

    started = time.perf_counter()
    brain = Brain(settings)
    where = settings.llm.base_url if settings.llm.backend == "openai" else resolve_llm_model(settings.llm.model).name
    memory = "PostgreSQL + pgvector" if settings.memory.store == "postgresql" else str(settings.memory_path)
    report.add("employee (LLM + memory)", time.perf_counter() - started,
               f"{settings.llm.backend}: {where}; memory {memory}")

    started = time.perf_counter()
    line_audio = tts.synthesize(SELF_TEST_SENTENCE, settings.tts.line_rate)
    heard = stt.transcribe(telephone_path(resample(line_audio, settings.tts.line_rate, STT_RATE), STT_RATE))
    expected = set(SELF_TEST_SENTENCE.lower().replace(",", "").replace("?", "").split())
    got = set(heard.text.lower().replace(",", "").replace("?", "").replace(".", "").split())
    overlap = len(expected & got) / len(expected)
    report.ok = overlap >= 0.8
    report.add("self-test TTS->G.711->STT", time.perf_counter() - started, f"heard {heard.text!r} ({overlap:.0%} of words)")
    service = Service(settings, stt, tts, brain)  # held for as long as the process serves
    started = time.perf_counter()
    board = Switchboard(settings, stt, tts, brain)
    board.start()  # binds the SIP port now: a port in use is an error at start, not at the first call
    service.board = board
    report.add("phone line (SIP)", time.perf_counter() - started, f"{settings.sip.host}:{settings.sip.port}")
    report.notes.extend(how_to_call(settings))
    report.service = service
    settle_garbage()  # the models and libraries loaded: their objects out of every later collection's way
    return report
