"""Blind transfer (RFC 3515 REFER + RFC 3420 sipfrag NOTIFYs), which rfcvoip does not have.

REFER goes in the dialog; the peer answers 202 and reports the new call's progress in NOTIFYs whose
bodies are status lines ("SIP/2.0 100 Trying", then "SIP/2.0 200 OK"). Success is a 2xx sipfrag;
a REFER refused, a sipfrag >= 300 or no final word before the timeout is a failure, and then the
caller stays with the agent.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass

from telephony.sip.client import EmployaiSIPClient
from telephony.sip.library import SIPMessage, SIPMessageType

log = logging.getLogger(__name__)

_SIPFRAG = re.compile(r"SIP/2\.0\s+(\d{3})\s*(.*)")


@dataclass
class TransferResult:
    ok: bool
    status: int | None  # last status reported for the new call (or the REFER's own refusal)
    detail: str


def target_uri(target: str, registrar: str | None, fallback_host: str) -> str:
    """A configured target (``3000``, ``sip:3000@pbx``) as a SIP URI: extensions live on the PBX."""
    if target.startswith(("sip:", "sips:", "tel:")):
        return target
    if "@" in target:
        return f"sip:{target}"
    return f"sip:{target}@{registrar or fallback_host}"


class BlindTransfer:
    def __init__(self, client: EmployaiSIPClient, call_id: str, uri: str, referred_by: str, timeout_s: float) -> None:
        self.client = client
        self.call_id = call_id
        self.uri = uri
        self.referred_by = referred_by
        self.timeout_s = timeout_s
        self.progress: list[int] = []
        self._done = threading.Event()
        self._result: TransferResult | None = None

    def _finish(self, result: TransferResult) -> None:
        if self._result is None:
            self._result = result
        self._done.set()

    def _on_message(self, message: SIPMessage) -> bool:
        """In-dialog hook: take the REFER's response and the NOTIFYs; leave everything else alone."""
        if message.type == SIPMessageType.RESPONSE:
            cseq = message.headers.get("CSeq") or {}
            if not (isinstance(cseq, dict) and cseq.get("method") == "REFER"):
                return False
            code = int(message.status)
            if code >= 300:
                self._finish(TransferResult(False, code, f"REFER refused: {code} {message.status.phrase}"))
            return True
        if message.method != "NOTIFY":
            return False
        self.client._send_request_response(message, self.client.gen_ok(message))
        match = _SIPFRAG.search(message.body_text or "")
        if match:
            code = int(match.group(1))
            self.progress.append(code)
            if code >= 200:
                ok = code < 300
                self._finish(TransferResult(ok, code, f"{code} {match.group(2).strip()}"))
        return True

    def run(self) -> TransferResult:
        self.client.in_dialog_handlers[self.call_id] = self._on_message
        try:
            self.client.send_in_dialog(self.call_id, "REFER", headers=[
                f"Refer-To: <{self.uri}>", f"Referred-By: <{self.referred_by}>"])
            if not self._done.wait(self.timeout_s):
                self._finish(TransferResult(False, self.progress[-1] if self.progress else None,
                                            f"no result within {self.timeout_s:.0f} s"))
        finally:
            self.client.in_dialog_handlers.pop(self.call_id, None)
        assert self._result is not None
        log.info("transfer of %s to %s: %s", self.call_id, self.uri, self._result.detail)
        return self._result
