"""One SIP dialog's state, and every in-dialog request built from it (RFC 3261 section 12).

This is the one place where the project corrects the SIP library: rfcvoip builds BYE from the
INVITE it received, ignores Record-Route (so a PBX that asked to stay in the path is bypassed),
shares one CSeq counter between all calls and never sends REFER. Here a dialog keeps its own
tags, remote target, route set and local CSeq, and BYE / REFER / ACK are all rendered from it.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

from telephony.sip.headers import RawHeaders, host_port, tag_of, uri_of, without_tag


class DialogError(ValueError):
    """The message cannot establish a dialog (a mandatory header is missing)."""


@dataclass
class Dialog:
    call_id: str
    local_party: str  # name-addr without tag, as in our From/To
    local_tag: str
    remote_party: str
    remote_tag: str
    remote_target: str  # URI from the peer's Contact: where in-dialog requests go
    route_set: list[str] = field(default_factory=list)  # Route header values, in order
    local_cseq: int = 1
    invite_cseq: int = 1  # the INVITE's CSeq (ACK reuses it)
    is_uas: bool = True
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def as_uas(cls, invite_raw: bytes | str, local_tag: str) -> "Dialog":
        """We answer: the route set is the INVITE's Record-Route in order (RFC 3261 12.1.1)."""
        h = RawHeaders(invite_raw)
        for name in ("call-id", "from", "to", "cseq", "contact"):
            if name not in h:
                raise DialogError(f"INVITE without {name.title()}")
        remote = h.first("from")
        cseq = int(h.first("cseq").split()[0])
        return cls(
            call_id=h.first("call-id"), local_party=without_tag(h.first("to")), local_tag=local_tag,
            remote_party=without_tag(remote), remote_tag=tag_of(remote), remote_target=uri_of(h.first("contact")),
            route_set=h.all("record-route"), local_cseq=random.randint(1, 10_000), invite_cseq=cseq, is_uas=True,
        )

    @classmethod
    def as_uac(cls, invite_raw: bytes | str, response_raw: bytes | str) -> "Dialog":
        """We called and got a 2xx: the route set is the response's Record-Route, reversed (12.1.2)."""
        req, resp = RawHeaders(invite_raw), RawHeaders(response_raw)
        if "contact" not in resp or "to" not in resp:
            raise DialogError("2xx without Contact or To")
        local = req.first("from")
        remote = resp.first("to")
        cseq = int(req.first("cseq").split()[0])
        return cls(
            call_id=req.first("call-id"), local_party=without_tag(local), local_tag=tag_of(local),
            remote_party=without_tag(remote), remote_tag=tag_of(remote), remote_target=uri_of(resp.first("contact")),
            route_set=list(reversed(resp.all("record-route"))), local_cseq=cseq, invite_cseq=cseq, is_uas=False,
        )

    def next_cseq(self) -> int:
        with self._lock:
            self.local_cseq += 1
            return self.local_cseq

    def next_hop(self) -> tuple[str, int]:
        """The first loose route if there is one, else the remote target (strict routing is obsolete)."""
        uri = uri_of(self.route_set[0]) if self.route_set else self.remote_target
        return host_port(uri)

    def request(
        self,
        method: str,
        *,
        via: str,
        contact: str,
        headers: list[str] | tuple[str, ...] = (),
        body: str = "",
        content_type: str | None = None,
        cseq: int | None = None,
        user_agent: str = "Employai",
    ) -> str:
        """Render an in-dialog request; ``via`` and ``contact`` are complete header lines."""
        number = cseq if cseq is not None else self.next_cseq()
        lines = [f"{method} {self.remote_target} SIP/2.0", via.rstrip("\r\n")]
        lines += [f"Route: {route}" for route in self.route_set]
        lines += [
            "Max-Forwards: 70",
            f"From: {self.local_party};tag={self.local_tag}",
            f"To: {self.remote_party}" + (f";tag={self.remote_tag}" if self.remote_tag else ""),
            f"Call-ID: {self.call_id}",
            f"CSeq: {number} {method}",
            contact.rstrip("\r\n"),
            f"User-Agent: {user_agent}",
        ]
        lines += [h.rstrip("\r\n") for h in headers]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body.encode())}")
        return "\r\n".join(lines) + "\r\n\r\n" + body


