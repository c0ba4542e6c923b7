"""Reading ``employai.toml`` (plus the environment) into :class:`Settings`, with errors people can act on."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import SecretStr, ValidationError

from config.settings import ENV_NESTED_DELIMITER, ENV_PREFIX, Settings

CONFIG_ENV_VAR = "EMPLOYAI_CONFIG"
DEFAULT_CONFIG_NAME = "employai.toml"


class ConfigError(Exception):
    """A configuration problem, already phrased for the operator: where, which key, why."""


def find_config_file(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The config file to use: ``--config``, then ``$EMPLOYAI_CONFIG``, then ``./employai.toml`` if present.

    An explicitly named file that does not exist is an error; the implicit one is optional, since
    every key has an offline default.
    """
    named = explicit or os.environ.get(CONFIG_ENV_VAR)
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        return path
    local = Path.cwd() / DEFAULT_CONFIG_NAME
    return local if local.is_file() else None


def _env_name(loc: tuple[Any, ...]) -> str:
    return ENV_PREFIX + ENV_NESTED_DELIMITER.join(str(part) for part in loc).upper()


def _describe(error: dict[str, Any], source: str, file_data: dict[str, Any]) -> str:
    loc = tuple(error.get("loc", ()))
    key = ".".join(str(part) for part in loc) or "(top level)"
    for depth in range(len(loc), 0, -1):
        env = _env_name(loc[:depth])
        if env in os.environ:
            return f"environment {env}: key {key}: {error['msg']} (got {os.environ[env]!r})"
    reason = error["msg"]
    if error.get("type") == "extra_forbidden":
        reason = "unknown key (typo? see `employai config show` for the valid keys)"
    elif "input" in error and not isinstance(error["input"], dict):
        reason = f"{reason} (got {error['input']!r})"
    return f"{source}: key {key}: {reason}"


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Load and validate the effective settings; raise :class:`ConfigError` naming file, key and reason."""
    config_path = find_config_file(path)
    file_data: dict[str, Any] = {}
    source = "embedded defaults"
    if config_path is not None:
        source = str(config_path)
        try:
            with config_path.open("rb") as handle:
                file_data = tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_path}: not valid TOML: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"{config_path}: cannot read: {exc.strerror}") from exc
    try:
        return Settings(**file_data)
    except ValidationError as exc:
        lines = [_describe(err, source, file_data) for err in exc.errors()]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from exc


def render_toml(settings: Settings, *, reveal_secrets: bool = False) -> str:
    """The effective settings as TOML, fit to paste into ``employai.toml``; secrets masked."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if v is not None}
        if isinstance(value, SecretStr):
            return value.get_secret_value() if reveal_secrets else "********"
        if isinstance(value, Path):
            return str(value)
        return value

    return tomli_w.dumps(clean(settings.model_dump(mode="python")))
