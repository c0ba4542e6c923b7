"""The phone line as the employee's tools see it.

The agent's telephony tools (transfer, hang up, DTMF) act through this small interface; telephony/
implements it on a real SIP call, and :class:`ConsoleLine` implements it for ``employai chat``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class LineControl(Protocol):
    def transfer(self, target: str) -> str:
        """Blind-transfer the caller to ``target``; return a short result for the agent."""

    def hang_up(self) -> None:
        """End the call once the current reply has been spoken."""

    def send_dtmf(self, digits: str) -> None:
        """Send RFC 2833 digits (e.g. to navigate an IVR)."""


@dataclass
class ConsoleLine:
    """A text console standing in for the phone line: actions are recorded and reported."""

    actions: list[tuple[str, str]] = field(default_factory=list)
    hung_up: bool = False
    echo: bool = True

    def _say(self, text: str) -> None:
        if self.echo:
            print(f"[line] {text}", flush=True)

    def transfer(self, target: str) -> str:
        self.actions.append(("transfer", target))
        self._say(f"transferring the caller to {target}")
        return f"transfer to {target} started"

    def hang_up(self) -> None:
        self.actions.append(("hang_up", ""))
        self.hung_up = True
        self._say("call ended")

    def send_dtmf(self, digits: str) -> None:
        self.actions.append(("dtmf", digits))
        self._say(f"DTMF {digits}")
