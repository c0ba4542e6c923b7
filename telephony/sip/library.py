"""The SIP library as the project uses it: rfcvoip, with its console output sent to logging.

rfcvoip (a maintained, GPLv3 fork of pyVoIP with the same API) prints its diagnostics with
``print``; a service must log them instead, with levels, so they are routed here once.
"""

from __future__ import annotations

import logging

import rfcvoip
import rfcvoip.RTP
import rfcvoip.SIP
import rfcvoip.VoIP.VoIP

log = logging.getLogger("rfcvoip")


def _debug(verbose: object, summary: object = None) -> None:
    # The library passes (full dump, one-line summary); the summary is the useful line.
    if summary is not None:
        log.debug("%s", summary)
    elif log.isEnabledFor(logging.DEBUG - 1):
        log.log(logging.DEBUG - 1, "%s", verbose)


for _module in (rfcvoip, rfcvoip.SIP, rfcvoip.RTP, rfcvoip.VoIP.VoIP):
    _module.debug = _debug

SIPClient = rfcvoip.SIP.SIPClient
SIPMessage = rfcvoip.SIP.SIPMessage
SIPMessageType = rfcvoip.SIP.SIPMessageType
SIPStatus = rfcvoip.SIP.SIPStatus
VoIPPhone = rfcvoip.VoIP.VoIP.VoIPPhone
VoIPCall = rfcvoip.VoIP.VoIP.VoIPCall
CallState = rfcvoip.VoIP.VoIP.CallState
InvalidStateError = rfcvoip.VoIP.VoIP.InvalidStateError
PhoneStatus = rfcvoip.VoIP.PhoneStatus
PayloadType = rfcvoip.RTP.PayloadType
