"""The ``employai`` command as a user runs it (a real subprocess of the installed console script)."""

import json
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from speech.scoring import word_error_rate

EMPLOYAI = str(Path(sys.executable).with_name("employai"))


def run(*args, cwd=None, env_extra=None, timeout=180):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("EMPLOYAI_") or k == "EMPLOYAI_TEST_AUDIO"}
    env.update(env_extra or {})
    return subprocess.run([EMPLOYAI, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


@pytest.fixture()
def data_env(tmp_path, models_dir):
    # Reuse the session's joined model cache through the data dir (models/ under it).
    data = tmp_path / "data"
    data.mkdir()
    (data / "models").symlink_to(models_dir, target_is_directory=True)
    return {"EMPLOYAI_SERVICE__DATA_DIR": str(data), "EMPLOYAI_SERVICE__METRICS_ADDRESS": "127.0.0.1:0",
            "EMPLOYAI_CONSOLE__ADDRESS": "127.0.0.1:0"}


def test_transcribe_telephone_json(recordings, data_env, tmp_path):
    rec = next(r for r in recordings if r.path.name == "jfk_inaugural_1961.wav")
    out = run("transcribe", str(rec.path), "--telephone", "--json", cwd=tmp_path, env_extra=data_env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert set(result) == {"text", "seconds"} and result["seconds"] > 0
    assert word_error_rate([rec.transcript], [result["text"]]).wer <= 0.15


def test_say_writes_a_telephone_wav_that_transcribes_back(tmp_path, data_env):
    wav = tmp_path / "hello.wav"
    sentence = "Hello, you have reached the front desk. We open at 9 AM."
    # Piper's random variation off: the same audio on every run, so the check cannot flake.
    steady = {**data_env, "EMPLOYAI_TTS__NOISE_SCALE": "0", "EMPLOYAI_TTS__NOISE_W_SCALE": "0"}
    out = run("say", sentence, "-o", str(wav), cwd=tmp_path, env_extra=steady)
    assert out.returncode == 0, out.stderr
    with wave.open(str(wav)) as handle:
        assert handle.getframerate() == 8000 and handle.getnchannels() == 1 and handle.getsampwidth() == 2
        assert handle.getnframes() > 8000
    back = run("transcribe", str(wav), "--json", cwd=tmp_path, env_extra=data_env)
    assert back.returncode == 0, back.stderr
    heard = json.loads(back.stdout)["text"]
    assert word_error_rate(["Hello, you have reached the front desk. We open at nine a m."], [heard]).wer <= 0.25, heard


def test_say_at_other_rates(tmp_path, data_env):
    wav = tmp_path / "wide.wav"
    assert run("say", "Testing.", "-o", str(wav), "--rate", "16000", cwd=tmp_path, env_extra=data_env).returncode == 0
    with wave.open(str(wav)) as handle:
        assert handle.getframerate() == 16000


def test_config_show_prints_effective_toml(tmp_path):
    (tmp_path / "employai.toml").write_text('[stt]\nmodel = "whisper-tiny.en"\n')
    out = run("config", "show", cwd=tmp_path, env_extra={"EMPLOYAI_LLM__N_CTX": "2048"})
    assert out.returncode == 0, out.stderr
    assert 'model = "whisper-tiny.en"' in out.stdout and "n_ctx = 2048" in out.stdout


def test_bad_config_fails_at_start_with_file_key_reason(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[vad]\naggressiveness = 9\n")
    out = run("serve", "--config", str(bad), cwd=tmp_path)
    assert out.returncode == 2
    assert str(bad) in out.stderr and "vad.aggressiveness" in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_input_file_is_a_clear_error(tmp_path, data_env):
    out = run("transcribe", str(tmp_path / "missing.wav"), cwd=tmp_path, env_extra=data_env)
    assert out.returncode == 2 and "no such file" in out.stderr and "Traceback" not in out.stderr


def test_serve_check_loads_self_tests_and_opens_the_line(tmp_path, data_env):
    from sip_peers import free_port

    port = free_port()
    steady = {**data_env, "EMPLOYAI_TTS__NOISE_SCALE": "0", "EMPLOYAI_TTS__NOISE_W_SCALE": "0",
              "EMPLOYAI_SIP__PORT": str(port)}
    out = run("serve", "--check", cwd=tmp_path, env_extra=steady)  # self-test words: same audio every run
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Employai ready" in out.stdout and "employee (LLM + memory)" in out.stdout
    assert f"listening for calls on sip:employai@127.0.0.1:{port}" in out.stdout
    assert "softphone" in out.stdout


def test_serve_fails_clearly_when_the_sip_port_is_taken(tmp_path, data_env):
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        out = run("serve", "--check", cwd=tmp_path, env_extra={**data_env, "EMPLOYAI_SIP__PORT": str(port)})
    assert out.returncode == 2 and f"127.0.0.1:{port}" in out.stderr and "Traceback" not in out.stderr


def test_memory_ingest_search_show(tmp_path, data_env):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "hours.md").write_text("# Hours\n\nWe are open Monday to Friday from 8 to 5.")
    (docs / "prices.txt").write_text("A cleaning costs 95 dollars.")
    (docs / "logo.png").write_bytes(b"\x89PNG\r\n")
    out = run("memory", "ingest", str(docs), cwd=tmp_path, env_extra=data_env)
    assert out.returncode == 0, out.stderr
    assert "  hours.md: 1 facts, 1 chunks" in out.stdout and "  prices.txt: 1 facts, 1 chunks" in out.stdout
    assert "not read: logo.png: unknown type .png" in out.stdout  # said, and the rest still taken
    assert "ingested 2 files: 2 facts, 2 chunks; 1 not read" in out.stdout
    found = run("memory", "search", "how much is a cleaning", "--limit", "1", cwd=tmp_path, env_extra=data_env)
    assert found.returncode == 0 and "95 dollars" in found.stdout and "[prices.txt]" in found.stdout
    shown = run("memory", "show", "sip:+15550100142@pbx", cwd=tmp_path, env_extra=data_env)
    assert shown.returncode == 0 and "caller: +15550100142" in shown.stdout and "(nothing yet)" in shown.stdout
    missing = run("memory", "ingest", str(tmp_path / "nope"), cwd=tmp_path, env_extra=data_env)
    assert missing.returncode == 2 and "not a folder" in missing.stderr


def test_serve_answers_a_call_logs_its_id_and_stops_cleanly(tmp_path, data_env):
    """The README's run command, as a user runs it: a real call to it, then Ctrl-C (SIGTERM)."""
    import os
    import signal
    import socket
    import time
    import urllib.request

    from sip_peers import WireCaller, free_port

    port, metrics = free_port(), free_port(socket.SOCK_STREAM)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMPLOYAI_") or k == "EMPLOYAI_TEST_AUDIO"}
    env.update({**data_env, "EMPLOYAI_SIP__PORT": str(port), "EMPLOYAI_SERVICE__METRICS_ADDRESS": f"127.0.0.1:{metrics}"})
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen([EMPLOYAI, "serve"], stdout=subprocess.PIPE, stderr=log, text=True, cwd=tmp_path, env=env)
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Serving" in line or not line:
                break
        assert any(f"sip:employai@127.0.0.1:{port}" in line for line in lines), lines
        caller = WireCaller(("127.0.0.1", port))
        caller.dial()
        assert caller.wait_quiet(after=0.0, timeout=20) is not None  # the greeting reached the caller
        caller.hang_up()
        caller.close()
        time.sleep(1.0)
        scraped = urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5).read().decode()
        assert 'employai_calls_total{direction="inbound",outcome="completed"} 1.0' in scraped
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    logged = (tmp_path / "serve.log").read_text()
    assert f"[{caller.call_id}]" in logged  # per-call log lines carry the call id
    assert "Traceback" not in logged
