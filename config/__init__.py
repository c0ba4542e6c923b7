"""Typed settings loaded from one TOML file, and the offline provisioning of packaged models."""

from config.loader import ConfigError, find_config_file, load_settings, render_toml
from config.settings import LLMSettings, ServiceSettings, Settings, STTSettings, TTSSettings, VADSettings

__all__ = [
    "ConfigError",
    "LLMSettings",
    "STTSettings",
    "ServiceSettings",
    "Settings",
    "TTSSettings",
    "VADSettings",
    "find_config_file",
    "load_settings",
    "render_toml",
]
