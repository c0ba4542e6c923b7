"""rfcvoip's phone (calls, RTP ports, codecs) with the project's SIP client and call policy."""

from __future__ import annotations

import logging
from typing import Callable

import rfcvoip

from config.settings import SIPSettings
from telephony.sip.client import EmployaiSIPClient
from telephony.sip.library import CallState, PayloadType, SIPMessage, VoIPCall, VoIPPhone

log = logging.getLogger(__name__)

CODECS = {"PCMU": PayloadType.PCMU, "PCMA": PayloadType.PCMA}


class EmployaiPhone(VoIPPhone):
    def __init__(self, settings: SIPSettings, on_call: Callable[[VoIPCall], None]) -> None:
        server, _, port = (settings.registrar or "").partition(":")
        password = settings.password.get_secret_value() if settings.password else ""
        super().__init__(
            server or settings.host, int(port or 5060), settings.user, password, myIP=settings.host,
            callCallback=on_call, sipPort=settings.port, rtpPortLow=settings.rtp_port_low,
            rtpPortHigh=settings.rtp_port_high, auth_username=settings.auth_user,
            audio_sample_rate=8000, audio_bit_depth=16,
        )
        self.settings = settings
        # Only G.711 (the voice pipeline runs at 8 kHz) and RFC 2833 events, in the configured order.
        rfcvoip.RTPCompatibleCodecs = [CODECS[name] for name in settings.codecs] + [PayloadType.EVENT]
        for rank, name in enumerate(settings.codecs):
            self.codec_priorities[CODECS[name]] = 1000 - rank
        self.sip = EmployaiSIPClient(
            server or settings.host, int(port or 5060), settings.user, password, phone=self, myIP=settings.host,
            myPort=settings.port, callCallback=self.callback, fatalCallback=self.fatal,
            auth_username=self.auth_username, max_calls=settings.max_calls,
            register_enabled=bool(settings.registrar), register_expires=settings.register_expires,
        )

    @staticmethod
    def _run_call_callback(callback, call, delay: float = 0.0) -> None:
        # The library waits 1 s before handing a new call over; the caller would hear that second.
        VoIPPhone._run_call_callback(callback, call, delay=0.0)

    def _invite_targets_local_account(self, request: SIPMessage) -> bool:
        # A PBX may deliver a call for a DID, a queue or a transferred number: answer whatever reaches us.
        return True

    def active_call_count(self) -> int:
        with self._call_state_lock:
            return sum(1 for call in self.calls.values() if call.state != CallState.ENDED)

    def _callback_MSG_Bye(self, request: SIPMessage) -> None:
        super()._callback_MSG_Bye(request)
        self.sip.forget(request.headers["Call-ID"])
