"""The SIP endpoint's protocol behaviour: every answer checked on the wire, and no input can crash it.

sipp sends the well-formed traffic (OPTIONS, CANCEL); a bare UDP socket sends what no decent client
would (missing headers, odd SDP, garbage) and plays a proxy to check Record-Route handling.
"""

from __future__ import annotations

import time
import uuid

import pytest

from sip_peers import RtpSink, SipSocket, finished_calls, free_port, header, run_sipp, uac_scenario

OPTIONS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="options">
<send><![CDATA[
OPTIONS sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:monitor@[local_ip]:[local_port]>;tag=[pid]opt[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 OPTIONS
Max-Forwards: 70
Accept: application/sdp
Content-Length: 0

]]></send>
<recv response="200"/>
</scenario>
"""

CANCEL = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="cancel">
<send><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-1]
From: <sip:sipp@[local_ip]:[local_port]>;tag=[pid]cancel[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:sipp@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [local_ip]
t=0 0
m=audio [auto_media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
]]></send>
<recv response="100" optional="true"/>
<recv response="180"/>
<pause milliseconds="300"/>
<send><![CDATA[
CANCEL sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-1]
From: <sip:sipp@[local_ip]:[local_port]>;tag=[pid]cancel[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 CANCEL
Max-Forwards: 70
Content-Length: 0

]]></send>
<recv response="200"/>
<recv response="487"/>
<send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-1]
From: <sip:sipp@[local_ip]:[local_port]>;tag=[pid]cancel[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
</scenario>
"""


def addr(board) -> tuple[str, int]:
    return ("127.0.0.1", board.settings.sip.port)


def sdp(port: int, media: str = "m=audio {port} RTP/AVP 0 101", extra: str = "c=IN IP4 127.0.0.1") -> str:
    body = (f"v=0\no=t 1 1 IN IP4 127.0.0.1\ns=-\n{extra}\nt=0 0\n" + media.format(port=port)
            + "\na=rtpmap:0 PCMU/8000\na=rtpmap:101 telephone-event/8000\n")
    return body.replace("\n", "\r\n")


def invite(peer: SipSocket, board, call_id: str, body: str | None, *, headers: str = "", compact: bool = False,
           send: bool = True) -> str:
    h = {"via": "Via", "from": "From", "to": "To", "call-id": "Call-ID", "contact": "Contact",
         "ctype": "Content-Type", "clen": "Content-Length"}
    if compact:
        h = {"via": "v", "from": "f", "to": "t", "call-id": "i", "contact": "m", "ctype": "c", "clen": "l"}
    body = body or ""
    lines = [
        f"INVITE sip:employai@127.0.0.1:{board.settings.sip.port} SIP/2.0",
        f"{h['via']}: SIP/2.0/UDP 127.0.0.1:{peer.port};branch=z9hG4bK{uuid.uuid4().hex[:10]}",
        f"{h['from']}: <sip:raw@127.0.0.1:{peer.port}>;tag=raw{uuid.uuid4().hex[:6]}",
        f"{h['to']}: <sip:employai@127.0.0.1>",
        f"{h['call-id']}: {call_id}",
        "CSeq: 1 INVITE",
        f"{h['contact']}: <sip:raw@127.0.0.1:{peer.port}>",
        "Max-Forwards: 70",
    ] + [line for line in headers.strip().split("\n") if line]
    if body:
        lines.append(f"{h['ctype']}: application/sdp")
    lines.append(f"{h['clen']}: {len(body.encode())}")
    message = "\r\n".join(lines) + "\r\n\r\n" + body
    if send:
        peer.sock.sendto(message.encode(), addr(board))
    return message


def alive(board) -> bool:
    """The endpoint still answers (an OPTIONS gets 200)."""
    peer = SipSocket()
    call_id = uuid.uuid4().hex
    peer.send(f"""OPTIONS sip:employai@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:{peer.port};branch=z9hG4bK{call_id[:8]}
From: <sip:probe@127.0.0.1:{peer.port}>;tag=p
To: <sip:employai@127.0.0.1>
Call-ID: {call_id}
CSeq: 1 OPTIONS
Content-Length: 0
""", addr(board))
    ok = peer.status(call_id, 200) is not None
    peer.close()
    return ok


def end_call(peer: SipSocket, board, call_id: str, ok: str) -> None:
    """ACK the 200 and BYE it, as the caller."""
    to = header(ok, "To")[0]
    frm = header(ok, "From")[0]
    for method, cseq in (("ACK", 1), ("BYE", 2)):
        peer.send(f"""{method} sip:employai@127.0.0.1:{board.settings.sip.port} SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:{peer.port};branch=z9hG4bK{uuid.uuid4().hex[:10]}
From: {frm}
To: {to}
Call-ID: {call_id}
CSeq: {cseq} {method}
Content-Length: 0
""", addr(board))
    assert peer.wait_for(lambda t: t.startswith("SIP/2.0 200") and "BYE" in header(t, "CSeq")[0], 5)


def test_options_is_answered(board, tmp_path):
    proc = run_sipp(OPTIONS, f"127.0.0.1:{board.settings.sip.port}", tmp_path, timeout=10)
    assert proc.returncode == 0, proc.out


def test_cancel_while_ringing_gets_487(board, tmp_path):
    board.settings.sip.answer_delay_ms = 3000
    try:
        proc = run_sipp(CANCEL, f"127.0.0.1:{board.settings.sip.port}", tmp_path, timeout=15)
    finally:
        board.settings.sip.answer_delay_ms = 0
    assert proc.returncode == 0, proc.out
    time.sleep(3.5)  # the cancelled call must not be answered after its answer delay
    assert not board.active


@pytest.mark.parametrize("missing", ["From", "Call-ID", "CSeq"])
def test_a_request_without_a_mandatory_header_gets_400_and_nothing_breaks(board, missing):
    peer = SipSocket()
    call_id = uuid.uuid4().hex
    text = invite(peer, board, call_id, sdp(free_port()), send=False)
    broken = "\r\n".join(line for line in text.split("\r\n") if not line.startswith(missing + ":"))
    peer.sock.sendto(broken.encode(), addr(board))
    reply = peer.wait_for(lambda t: t.startswith("SIP/2.0 400"), 5)
    peer.close()
    assert reply is not None and missing in reply
    assert alive(board)


def test_garbage_and_unknown_methods_do_not_break_the_endpoint(board):
    peer = SipSocket()
    peer.sock.sendto(b"\x00\xff garbage \r\n\r\n", addr(board))
    peer.sock.sendto(b"INVITE\r\n\r\n", addr(board))
    call_id = uuid.uuid4().hex
    peer.send(f"""FROB sip:employai@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:{peer.port};branch=z9hG4bK{call_id[:8]}
From: <sip:x@127.0.0.1>;tag=1
To: <sip:employai@127.0.0.1>
Call-ID: {call_id}
CSeq: 1 FROB
Content-Length: 0
""", addr(board))
    reply = peer.wait_for(lambda t: call_id in t, 5)
    peer.close()
    assert reply is not None and reply.startswith(("SIP/2.0 501", "SIP/2.0 405"))
    assert alive(board)


@pytest.mark.parametrize("case", ["no-sdp", "srtp-only"])
def test_offers_it_cannot_take_are_refused_with_488(board, case):
    peer = SipSocket()
    call_id = uuid.uuid4().hex
    body = None if case == "no-sdp" else sdp(free_port(), "m=audio {port} RTP/SAVP 0 101\na=crypto:1 "
                                              "AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz")
    invite(peer, board, call_id, body)
    final = peer.wait_for(lambda t: call_id in t and t.startswith("SIP/2.0") and not t.startswith(("SIP/2.0 1",)), 5)
    peer.close()
    assert final is not None and final.startswith("SIP/2.0 488"), final
    assert alive(board) and not board.active


@pytest.mark.parametrize("case", ["session-and-media-c", "compact-headers"])
def test_odd_but_valid_offers_are_answered_with_audio(board, case):
    peer = SipSocket()
    sink = RtpSink()
    call_id = uuid.uuid4().hex
    if case == "session-and-media-c":
        body = sdp(sink.port, "m=audio {port} RTP/AVP 0 101\nc=IN IP4 127.0.0.1", extra="c=IN IP4 192.0.2.1")
        invite(peer, board, call_id, body)
    else:
        invite(peer, board, call_id, sdp(sink.port), compact=True)
    ok = peer.status(call_id, 200, 10)
    assert ok is not None and "m=audio" in ok
    time.sleep(2.0)
    end_call(peer, board, call_id, ok)
    sink.close()
    peer.close()
    assert len(sink.packets) > 50  # RTP reached the media-level address (not the session-level one)


def test_call_ids_are_random_and_record_route_is_honoured(board):
    """The caller's proxy put itself in the path: 180/200 echo Record-Route, our BYE goes via the proxy."""
    proxy = SipSocket()  # plays the proxy: gets our BYE if Route is honoured
    peer = SipSocket()
    sink = RtpSink()
    call_id = uuid.uuid4().hex
    routes = f"Record-Route: <sip:127.0.0.1:{proxy.port};lr;ftag=x>\nRecord-Route: <sip:192.0.2.9;lr>"
    invite(peer, board, call_id, sdp(sink.port), headers=routes)
    ringing = peer.status(call_id, 180, 5)
    ok = peer.status(call_id, 200, 10)
    assert ringing and ok
    expected = [f"<sip:127.0.0.1:{proxy.port};lr;ftag=x>", "<sip:192.0.2.9;lr>"]
    assert header(ringing, "Record-Route") == expected and header(ok, "Record-Route") == expected
    to = header(ok, "To")[0]
    peer.send(f"""ACK sip:employai@127.0.0.1:{board.settings.sip.port} SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:{peer.port};branch=z9hG4bK{uuid.uuid4().hex[:10]}
From: {header(ok, "From")[0]}
To: {to}
Call-ID: {call_id}
CSeq: 1 ACK
Content-Length: 0
""", addr(board))
    time.sleep(1.0)
    board.active[call_id].line.hang_up()
    bye = proxy.wait_for(lambda t: t.startswith("BYE ") and call_id in t, 15)
    assert bye is not None, "the BYE did not go to the first Record-Route hop"
    assert bye.split()[1] == f"sip:raw@127.0.0.1:{peer.port}"  # Request-URI: the caller's Contact
    assert header(bye, "Route") == expected
    assert header(bye, "To")[0].endswith(header(ok, "From")[0].split(";tag=")[1])  # remote tag = caller's
    # Each call gets its own random Call-ID and tags (the library's were sha256 of a counter).
    assert len({board.phone.sip.gen_call_id() for _ in range(100)}) == 100
    for s in (proxy, peer):
        s.close()
    sink.close()


def test_a_call_beyond_the_cap_gets_486(board, tmp_path):
    board.phone.sip.max_calls = 1
    try:
        sink = RtpSink()
        from sip_peers import write_rtp_pcap
        import numpy as np

        pcap = write_rtp_pcap(tmp_path / "hold.pcap", np.zeros(8000 * 6, np.int16))
        first = run_sipp(uac_scenario(rtp_port=sink.port, pcaps=[(str(pcap), 6000)]),
                         f"127.0.0.1:{board.settings.sip.port}", tmp_path, background=True)
        deadline = time.monotonic() + 10
        while not board.active and time.monotonic() < deadline:
            time.sleep(0.05)
        assert board.active
        peer = SipSocket()
        call_id = uuid.uuid4().hex
        invite(peer, board, call_id, sdp(free_port()))
        busy = peer.status(call_id, 486, 5)
        peer.close()
        assert busy is not None
        assert first.wait(timeout=30) == 0
        sink.close()
    finally:
        board.phone.sip.max_calls = board.settings.sip.max_calls


def test_an_answer_never_acknowledged_is_retransmitted_then_the_call_ends(board):
    """RFC 3261 13.3.1.4: the 200 is resent (T1 doubling) until ACK; without ACK in 32 s, BYE."""
    peer = SipSocket()
    call_id = uuid.uuid4().hex
    invite(peer, board, call_id, sdp(free_port()))
    bye = peer.wait_for(lambda t: t.startswith("BYE ") and call_id in t, 40)
    oks = [t for t in peer.received if t.startswith("SIP/2.0 200") and call_id in t]
    peer.close()
    assert len(oks) >= 5  # 0, 0.5, 1.5, 3.5, 7.5, ... s
    assert bye is not None
    deadline = time.monotonic() + 5
    while call_id in board.active and time.monotonic() < deadline:
        time.sleep(0.05)
    assert call_id not in board.active


def test_a_caller_whose_media_stops_is_hung_up_after_the_media_timeout(board):
    """A peer that vanishes sends no BYE: after `media_timeout_s` without RTP the agent ends the call."""
    board.settings.call.media_timeout_s = 3.0
    peer = SipSocket()
    call_id = uuid.uuid4().hex
    try:
        invite(peer, board, call_id, sdp(free_port()))  # nobody will send RTP
        ok = peer.status(call_id, 200, 10)
        assert ok is not None
        peer.send(f"""ACK sip:employai@127.0.0.1:{board.settings.sip.port} SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:{peer.port};branch=z9hG4bK{uuid.uuid4().hex[:10]}
From: {header(ok, "From")[0]}
To: {header(ok, "To")[0]}
Call-ID: {call_id}
CSeq: 1 ACK
Content-Length: 0
""", addr(board))
        bye = peer.wait_for(lambda t: t.startswith("BYE ") and call_id in t, 10)
    finally:
        board.settings.call.media_timeout_s = 60.0
        peer.close()
    assert bye is not None
    assert [o.ended_by for o in finished_calls(board, [call_id], 10)] == ["media-timeout"]


def test_a_call_that_cannot_be_set_up_is_released_not_left_hanging(board, monkeypatch):
    """If the employee cannot take the call (here: its memory raises), the caller gets a BYE at once."""
    def broken(*args, **kwargs):
        raise RuntimeError("memory store unavailable")

    monkeypatch.setattr(board.brain, "conversation", broken)
    peer = SipSocket()
    call_id = uuid.uuid4().hex
    invite(peer, board, call_id, sdp(free_port()))
    ok = peer.status(call_id, 200, 10)
    assert ok is not None
    end = peer.wait_for(lambda t: t.startswith("BYE ") and call_id in t, 10)
    peer.close()
    assert end is not None
    assert [o.status for o in finished_calls(board, [call_id], 5)] == ["failed"]
    assert alive(board)
