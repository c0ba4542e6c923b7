"""What every ``employai`` command shares: the --config option, loading settings, starting the service."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from config import ConfigError, Settings, load_settings

ConfigOption = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="employai.toml to use (default: $EMPLOYAI_CONFIG, then ./employai.toml)."),
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"employai: {message}", err=True)
    return typer.Exit(code)


def _settings(path: Path | None) -> Settings:
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        raise _fail(str(exc)) from exc
    from telephony.logcontext import install

    logging.basicConfig(level=settings.service.log_level, stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        install(handler)  # every line: time, level, [call id], logger, message
    logging.captureWarnings(True)  # the SIP library reports failed calls as RuntimeWarnings
    return settings


def _models_dir(settings: Settings) -> Path:
    return settings.service.data_dir / "models"


def _start(settings: Settings):
    """Load the models and open the line, or exit with the reason (a bad config, a port in use)."""
    from telephony.service import start_service

    try:
        return start_service(settings)
    except ConfigError as exc:
        raise _fail(str(exc)) from exc
    except OSError as exc:  # a port is taken, or the host is not an address of this machine
        raise _fail(f"cannot start the line on {settings.sip.host}:{settings.sip.port}: {exc}") from exc
