"""Typed settings loaded from one TOML file, and the offline provisioning of packaged models."""

from config.loader import ConfigError, find_config_file, load_settings, render_toml
from config.settings import (
    CallSettings, LLMSettings, ServiceSettings, Settings, SIPSettings, STTSettings, TTSSettings, VADSettings,
)

__all__ = [
    "CallSettings",
    "SIPSettings",
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
