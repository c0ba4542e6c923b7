"""Runs the console's ASGI app with uvicorn on its own thread, beside the phone line."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import uvicorn

from telephony.console.app import create_app

if TYPE_CHECKING:
    from telephony.switchboard import Switchboard


class ConsoleServer:
    def __init__(self, board: "Switchboard") -> None:
        address = board.settings.console.address
        host, _, port = address.rpartition(":")
        self.app = create_app(board)
        self._server = uvicorn.Server(uvicorn.Config(self.app, host=host.strip("[]") or "127.0.0.1", port=int(port),
                                                     log_level="warning", lifespan="off", access_log=False))
        self._thread = threading.Thread(target=self._server.run, name="console", daemon=True)
        self.address: tuple[str, int] | None = None

    def start(self, timeout: float = 10.0) -> "ConsoleServer":
        """Bind now: a taken port is an error at start, like the SIP and metrics ports."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"the console could not listen on {self._server.config.host}:{self._server.config.port}")
            time.sleep(0.02)
        sockets = [s for server in self._server.servers for s in server.sockets]
        self.address = sockets[0].getsockname()[:2]
        return self

    @property
    def url(self) -> str:
        assert self.address is not None
        return f"http://{self.address[0]}:{self.address[1]}/"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
