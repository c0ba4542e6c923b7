"""Configuration: offline defaults, strict validation with file/key/reason, environment overrides."""

import pytest

from config import ConfigError, Settings, load_settings, render_toml


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for name in list(__import__("os").environ):
        if name.startswith("EMPLOYAI_") and name != "EMPLOYAI_TEST_AUDIO":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray ./employai.toml


def _write(tmp_path, text):
    path = tmp_path / "employai.toml"
    path.write_text(text)
    return path


def test_no_file_gives_offline_defaults():
    settings = load_settings()
    assert settings.stt.model == "whisper-base"
    assert settings.tts.voice == "joe"
    assert settings.llm.backend == "llama_cpp" and settings.llm.model == "smollm2-135m"
    assert settings.llm.base_url is None  # nothing points off the machine


def test_local_employai_toml_is_picked_up(tmp_path):
    _write(tmp_path, '[stt]\nmodel = "whisper-tiny.en"\n')
    assert load_settings().stt.model == "whisper-tiny.en"


def test_unknown_key_names_file_and_key(tmp_path):
    path = _write(tmp_path, "[vad]\nhangover = 300\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(path) in str(err.value) and "vad.hangover" in str(err.value) and "unknown key" in str(err.value)


def test_unknown_section_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="sttt"):
        load_settings(_write(tmp_path, "[sttt]\nmodel = 'x'\n"))


def test_bad_value_names_key_reason_and_value(tmp_path):
    path = _write(tmp_path, '[stt]\ndevice = "gpu"\n[vad]\naggressiveness = 7\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert "stt.device" in message and "'gpu'" in message
    assert "vad.aggressiveness" in message and "less than or equal to 3" in message


def test_cross_field_rule(tmp_path):
    with pytest.raises(ConfigError, match="confirm_ms"):
        load_settings(_write(tmp_path, "[vad]\nstart_ms = 500\nconfirm_ms = 100\n"))
    with pytest.raises(ConfigError, match="base_url"):
        load_settings(_write(tmp_path, '[llm]\nbackend = "openai"\n'))


def test_toml_syntax_error_is_reported_with_file(tmp_path):
    path = _write(tmp_path, "[stt\nmodel = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(path)


def test_missing_explicit_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml")


def test_environment_overrides_file_and_holds_secrets(tmp_path, monkeypatch):
    path = _write(tmp_path, '[stt]\ndevice = "cuda"\n[llm]\nbackend = "openai"\nbase_url = "http://127.0.0.1:8000/v1"\n')
    monkeypatch.setenv("EMPLOYAI_STT__DEVICE", "cpu")
    monkeypatch.setenv("EMPLOYAI_LLM__API_KEY", "s3cret-key")
    settings = load_settings(path)
    assert settings.stt.device == "cpu"
    assert settings.llm.api_key.get_secret_value() == "s3cret-key"
    shown = render_toml(settings)
    assert "s3cret-key" not in shown and "********" in shown


def test_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("EMPLOYAI_LLM__N_CTX", "lots")
    with pytest.raises(ConfigError, match="environment EMPLOYAI_LLM__N_CTX"):
        load_settings()


def test_config_env_var_selects_file(tmp_path, monkeypatch):
    other = tmp_path / "other.toml"
    other.write_text("[tts]\nlength_scale = 0.9\n")
    monkeypatch.setenv("EMPLOYAI_CONFIG", str(other))
    assert load_settings().tts.length_scale == 0.9


def test_rendered_config_loads_back_identically(tmp_path):
    settings = Settings()
    path = _write(tmp_path, render_toml(settings))
    assert load_settings(path) == settings
