"""rfcvoip's SIP client with the project's corrections, each in one method here.

What changes, and why (the pyVoIP defects are listed in ../shared/SIP-NOTES.md):

- in-dialog requests (BYE, REFER, the ACK of a 2xx) come from :class:`Dialog`: Route set from
  Record-Route, the peer's Contact as target, a CSeq per dialog;
- 18x/2xx answers to an INVITE mirror its Record-Route, so a PBX stays in the path;
- Call-IDs and tags are random (the library's are sha256 of a counter: equal across runs);
- no input can kill the receive thread: a message without mandatory headers gets 400, an exception
  while handling one gets 500, and the endpoint carries on;
- a new call beyond the configured cap gets 486 Busy Here;
- REFER responses and their NOTIFYs reach the transfer in progress;
- registration runs in the background, is refreshed before expiry and retried with backoff while the
  registrar is down (the library gives up after three failures and stops the phone).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from typing import Callable

from telephony.sip.dialog import Dialog, DialogError
from telephony.sip.headers import RawHeaders, host_port, tag_of
from telephony.sip.library import PhoneStatus, SIPClient, SIPMessage, SIPMessageType, SIPStatus

log = logging.getLogger(__name__)

T1, T2 = 0.5, 4.0  # RFC 3261 timers (s): round-trip estimate, maximum retransmit interval
MANDATORY = {"via": "Via", "from": "From", "to": "To", "call-id": "Call-ID", "cseq": "CSeq"}  # RFC 3261 8.1.1


def offer_problem(invite: SIPMessage) -> str | None:
    """Why an initial INVITE's SDP cannot be answered, or None.

    The library answers a missing offer with 486 Busy and an SRTP-only offer as if it were plain RTP;
    both deserve 488 Not Acceptable Here (delayed offer and SRTP are not supported).
    """
    body = invite.body_text or ""
    media = [line for line in body.splitlines() if line.startswith("m=audio")]
    if not media:
        return "no SDP audio offer (delayed offer is not supported)"
    if not any(len(line.split()) > 2 and line.split()[2] in ("RTP/AVP", "RTP/AVPF") for line in media):
        return "only secure or unknown RTP profiles offered (SRTP is not supported)"
    return None


class EmployaiSIPClient(SIPClient):
    def __init__(self, *args, max_calls: int = 4, register_enabled: bool = False, register_expires: int = 300,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.max_calls = max_calls
        self.register_enabled = register_enabled
        self.default_expires = register_expires
        self.register_timeout = 5
        self.dialogs: dict[str, Dialog] = {}
        self.final_status: dict[str, int] = {}  # outbound Call-ID -> final INVITE response code
        self.in_dialog_handlers: dict[str, Callable[[SIPMessage], bool]] = {}  # Call-ID -> transfer etc.
        self.registered = threading.Event()
        self.registration_error: str | None = None
        self._stop_registration = threading.Event()
        self._invite_target = threading.local()  # direct mode: where the INVITE being sent goes
        self._outbound_targets: dict[str, tuple[str, int]] = {}  # Call-ID -> callee (direct mode)
        self._unacked: dict[str, list] = {}  # Call-ID -> [request, 200 text, first sent, next resend, interval]

    # -- identifiers -----------------------------------------------------------------------------
    def gen_call_id(self) -> str:
        return f"{uuid.uuid4().hex}@{self.myIP}"

    def gen_tag(self) -> str:
        return secrets.token_hex(6)

    # -- responses ---------------------------------------------------------------------------------
    def _build_response(self, request: SIPMessage, status, **kwargs) -> str:
        code = int(status)
        raw = RawHeaders(request.raw)
        method = raw.first("cseq").split()[-1:] or [""]
        if method[0].upper() == "INVITE" and 100 < code < 300:
            routes = [f"Record-Route: {value}" for value in raw.all("record-route")]
            if routes:
                kwargs["extra_headers"] = list(kwargs.get("extra_headers") or []) + routes
        return super()._build_response(request, status, **kwargs)

    def gen_ringing(self, request: SIPMessage) -> str:
        response = super().gen_ringing(request)
        call_id = request.headers["Call-ID"]
        self.dialogs[call_id] = Dialog.as_uas(request.raw, self.tagLibrary[call_id])
        return response

    def gen_answer(self, request: SIPMessage, sess_id, ms, sendtype) -> str:
        response = super().gen_answer(request, sess_id, ms, sendtype)
        now = time.monotonic()
        self._unacked[request.headers["Call-ID"]] = [request, response, now, now + T1, T1]
        return response

    def answer_acknowledged(self, call_id: str) -> bool | None:
        """Resend an unacknowledged 200 OK on UDP's schedule (RFC 3261 13.3.1.4).

        True once the ACK came, None while waiting, False when 64*T1 passed without it.
        """
        entry = self._unacked.get(call_id)
        if entry is None:
            return True
        request, response, first, due, interval = entry
        now = time.monotonic()
        if now - first > 64 * T1:
            self._unacked.pop(call_id, None)
            return False
        if now >= due:
            self.send_response(request, response)
            interval = min(interval * 2, T2)
            entry[3], entry[4] = now + interval, interval
        return None

    # -- in-dialog requests ------------------------------------------------------------------------
    def dialog_for(self, call_id: str) -> Dialog | None:
        return self.dialogs.get(call_id)

    def _render(self, dialog: Dialog, method: str, **kwargs) -> str:
        """An in-dialog request with this endpoint's Via (new branch) and Contact."""
        return dialog.request(method, via=self._via_header(rport=True), contact=self._contact_header(), **kwargs)

    def send_in_dialog(self, call_id: str, method: str, *, headers: list[str] | tuple[str, ...] = (),
                       body: str = "", content_type: str | None = None, cseq: int | None = None) -> str:
        dialog = self.dialogs[call_id]
        message = self._render(dialog, method, headers=headers, body=body, content_type=content_type, cseq=cseq)
        self.send_raw(message.encode(), dialog.next_hop())
        return message

    def bye(self, request: SIPMessage) -> None:
        call_id = request.headers["Call-ID"]
        if call_id in self.dialogs:
            self.send_in_dialog(call_id, "BYE")
        else:
            super().bye(request)

    def _our_dialog_for_2xx(self, response: SIPMessage) -> Dialog | None:
        """The dialog a 2xx to our own INVITE established (its ACK is an in-dialog request), else None."""
        if response.type != SIPMessageType.RESPONSE or not 200 <= int(response.status) < 300:
            return None
        dialog = self.dialogs.get(response.headers.get("Call-ID"))
        return dialog if dialog is not None and not dialog.is_uas else None

    def gen_ack(self, request: SIPMessage, request_uri: str | None = None) -> str:
        dialog = self._our_dialog_for_2xx(request)
        if dialog is None:
            return super().gen_ack(request, request_uri)
        return self._render(dialog, "ACK", cseq=dialog.invite_cseq)

    def ack_target(self, request: SIPMessage) -> tuple[str, int]:
        dialog = self._our_dialog_for_2xx(request)
        if dialog is not None:
            return dialog.next_hop()
        target = self._outbound_targets.get(request.headers.get("Call-ID"))
        is_2xx = request.type == SIPMessageType.RESPONSE and 200 <= int(request.status) < 300
        if target is not None and not is_2xx:
            return target
        return super().ack_target(request)

    # -- outbound without a registrar ---------------------------------------------------------------
    def signal_target(self) -> tuple[str, int]:
        # The library sends every request that is not in a dialog to the registrar; with none, an
        # outbound INVITE must go to the host in its Request-URI.
        target = getattr(self._invite_target, "value", None)
        return target or super().signal_target()

    def invite(self, number: str, ms, sendtype):
        if self.register_enabled:
            return super().invite(number, ms, sendtype)
        target = host_port(self._normalize_request_target(number))
        self._invite_target.value = target
        try:
            request, call_id, sess_id = super().invite(number, ms, sendtype)
        finally:
            self._invite_target.value = None
        self._outbound_targets[call_id] = target
        return request, call_id, sess_id

    def cancel(self, request: SIPMessage) -> None:
        target = self._outbound_targets.get(request.headers.get("Call-ID"))
        if target is None:
            return super().cancel(request)
        self.send_raw(self.gen_cancel(request).encode(), target)

    def forget(self, call_id: str) -> None:
        self._outbound_targets.pop(call_id, None)
        self._unacked.pop(call_id, None)
        self.dialogs.pop(call_id, None)
        self.in_dialog_handlers.pop(call_id, None)

    # -- incoming messages ----------------------------------------------------------------------------
    def parse_message(self, message: SIPMessage) -> None:
        raw = RawHeaders(message.raw)
        missing = [label for name, label in MANDATORY.items() if name not in raw]
        if message.type == SIPMessageType.MESSAGE and missing:
            log.warning("rejected %s without %s", raw.start_line[:60], ", ".join(missing))
            self._send_minimal_response(message, raw, 400, "Bad Request", f"Missing {', '.join(missing)}")
            return
        try:
            self._dispatch(message, raw)
        except Exception as exc:  # noqa: BLE001 - one bad message must not stop the receive thread
            log.exception("error while handling %s", raw.start_line[:80])
            if message.type == SIPMessageType.MESSAGE and message.method != "ACK":
                self._send_minimal_response(message, raw, 500, "Server Internal Error", type(exc).__name__)

    def _dispatch(self, message: SIPMessage, raw: RawHeaders) -> None:
        call_id = message.headers.get("Call-ID")
        handler = self.in_dialog_handlers.get(call_id)
        if handler is not None and handler(message):
            return
        if message.type == SIPMessageType.MESSAGE and message.method == "ACK":
            self._unacked.pop(call_id, None)
        if message.type == SIPMessageType.RESPONSE:
            cseq = message.headers.get("CSeq") or {}
            if isinstance(cseq, dict) and cseq.get("method") == "INVITE":
                self._on_invite_response(message)
            super().parse_message(message)
            return
        if message.method == "INVITE" and not tag_of(raw.first("to")) and not self.phone.has_call_id(call_id):
            if self.phone.active_call_count() >= self.max_calls:
                log.info("busy: %d calls in progress, 486 for %s", self.max_calls, call_id)
                self._send_request_response(message, self.gen_busy(message))
                return
            problem = offer_problem(message)
            if problem:
                log.info("488 for %s: %s", call_id, problem)
                self._send_request_response(message, self._build_response(
                    message, SIPStatus.NOT_ACCEPTABLE_HERE, warning=f'399 employai "{problem}"'))
                return
        if message.method == "INFO":
            self._send_request_response(message, self.gen_ok(message))
            return
        super().parse_message(message)

    def _on_invite_response(self, message: SIPMessage) -> None:
        code = int(message.status)
        call_id = message.headers.get("Call-ID")
        if code >= 200:
            self.final_status.setdefault(call_id, code)
        if 200 <= code < 300 and call_id not in self.dialogs:
            call = self.phone._get_call(call_id)
            if call is not None:
                try:
                    self.dialogs[call_id] = Dialog.as_uac(call.request.raw, message.raw)
                except DialogError as exc:
                    log.warning("2xx for %s cannot form a dialog: %s", call_id, exc)

    def _send_minimal_response(self, message: SIPMessage, raw: RawHeaders, code: int, phrase: str,
                               warning: str) -> None:
        """A response built from whatever headers the request has (the library's needs them all)."""
        vias = raw.all("via")
        if not vias or message.type != SIPMessageType.MESSAGE or getattr(message, "method", "") == "ACK":
            return  # nowhere to send it, or a request that takes no response
        lines = [f"SIP/2.0 {code} {phrase}"] + [f"Via: {v}" for v in vias]
        for name, label in (("from", "From"), ("to", "To"), ("call-id", "Call-ID"), ("cseq", "CSeq")):
            value = raw.first(name)
            if name == "to" and value and not tag_of(value):
                value += f";tag={self.gen_tag()}"
            if value:
                lines.append(f"{label}: {value}")
        lines += [f'Warning: 399 employai "{warning}"', "Content-Length: 0"]
        try:
            self._send_request_response(message, "\r\n".join(lines) + "\r\n\r\n")
        except Exception:  # noqa: BLE001
            log.exception("could not answer a malformed request")

    # -- registration ----------------------------------------------------------------------------------
    def register(self) -> bool:
        """Called by start(): registration runs in the background so calls are served meanwhile."""
        if not self.register_enabled:
            self.phone._status = PhoneStatus.REGISTERED
            return True
        self._stop_registration.clear()
        threading.Thread(target=self._registration_loop, name="sip-register", daemon=True).start()
        return True

    def _registration_loop(self) -> None:
        backoff = 2.0
        while self.NSD and not self._stop_registration.is_set():
            try:
                with self.recvLock:
                    ok = self._SIPClient__register()  # the library's REGISTER + digest (incl. qop) exchange
                error = None if ok else "registrar refused"
            except Exception as exc:  # noqa: BLE001 - registrar down, timeout, bad credentials
                ok, error = False, f"{type(exc).__name__}: {exc}"
            self.registration_error = error
            if ok:
                if not self.registered.is_set():
                    log.info("registered at %s:%s for %ss", self.server, self.port, self.default_expires)
                self.registered.set()
                self.phone._status = PhoneStatus.REGISTERED
                wait, backoff = max(5.0, self.default_expires * 0.8), 2.0
            else:
                self.registered.clear()
                self.phone._status = PhoneStatus.REGISTERING
                log.warning("registration failed (%s); retrying in %.0f s, direct calls still served", error, backoff)
                wait, backoff = backoff, min(backoff * 2, 60.0)
            self._stop_registration.wait(wait)

    def stop(self) -> None:
        self._stop_registration.set()
        if self.register_enabled and self.registered.is_set() and self.NSD:
            try:
                with self.recvLock:
                    self._SIPClient__deregister()
            except Exception as exc:  # noqa: BLE001
                log.warning("deregistration failed: %s", exc)
        self.registered.clear()
        self.registerThread = None
        super().stop()
