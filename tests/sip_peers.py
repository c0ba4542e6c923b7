"""Real SIP peers for the tests: sipp scenarios, RTP captured on the wire, pcap audio for sipp to play.

sipp does the signalling and plays RTP from a pcap file; the SDP it sends names a port where an
:class:`RtpSink` (a plain UDP socket here) records what the agent sends, with arrival times, so the
tests judge the agent by what actually reached the wire.
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from speech.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

SIPP = shutil.which("sipp")
PT = {"PCMU": 0, "PCMA": 8}


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def encode(samples: np.ndarray, codec: str) -> bytes:
    return (ulaw_encode if codec == "PCMU" else alaw_encode)(samples)


def decode(payload: bytes, codec: str) -> np.ndarray:
    return (ulaw_decode if codec == "PCMU" else alaw_decode)(payload)


def write_rtp_pcap(path: Path, samples: np.ndarray, codec: str = "PCMU", port: int = 6000) -> Path:
    """8 kHz PCM as a pcap of 20 ms RTP packets (what sipp's play_pcap_audio replays, with timing)."""
    payload_type = PT[codec]
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # Ethernet link type
    frames = len(samples) // 160
    for i in range(frames):
        rtp = struct.pack("!BBHII", 0x80, payload_type, i & 0xFFFF, i * 160, 0x1234ABCD)
        rtp += encode(samples[i * 160 : (i + 1) * 160], codec)
        udp = struct.pack("!HHHH", port, port, 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                         socket.inet_aton("127.0.0.1"), socket.inet_aton("127.0.0.1")) + udp
        frame = b"\x00" * 12 + b"\x08\x00" + ip
        seconds, micros = divmod(i * 20_000, 1_000_000)
        out += struct.pack("<IIII", seconds, micros, len(frame), len(frame)) + frame
    path.write_bytes(bytes(out))
    return path


@dataclass
class RtpPacket:
    arrival: float  # time.monotonic()
    payload_type: int
    marker: bool
    sequence: int
    timestamp: int
    payload: bytes


@dataclass
class RtpSink:
    """Receives the agent's RTP on ``port`` and keeps every packet with its arrival time."""

    port: int = field(default_factory=free_port)
    packets: list[RtpPacket] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.settimeout(0.2)
        self._running = True
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while self._running:
            try:
                data, _ = self._sock.recvfrom(4096)
            except OSError:
                continue
            if len(data) < 12:
                continue
            b0, b1, seq, ts, _ssrc = struct.unpack("!BBHII", data[:12])
            self.packets.append(RtpPacket(time.monotonic(), b1 & 0x7F, bool(b1 & 0x80), seq, ts, data[12:]))

    def close(self) -> None:
        self._running = False
        self._thread.join(timeout=2)
        self._sock.close()

    def audio(self, codec: str = "PCMU") -> np.ndarray:
        pt = PT[codec]
        parts = [decode(p.payload, codec) for p in self.packets if p.payload_type == pt]
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)

    def events(self) -> list[tuple[int, bool]]:
        """RFC 2833 telephone-events received: (event code, end bit) per packet."""
        return [(p.payload[0], bool(p.payload[1] & 0x80)) for p in self.packets
                if p.payload_type not in PT.values() and len(p.payload) >= 4]

    def first_voiced(self, codec: str = "PCMU", after: float = 0.0, threshold: int = 300) -> float | None:
        """Arrival time of the first packet with audible audio after ``after`` (monotonic seconds)."""
        pt = PT[codec]
        for packet in self.packets:
            if packet.payload_type == pt and packet.arrival >= after:
                if np.abs(decode(packet.payload, codec).astype(np.int32)).max() > threshold:
                    return packet.arrival
        return None


def run_sipp(scenario: str, target: str, workdir: Path, *, service: str = "employai", timeout: float = 60,
             extra: list[str] | None = None, background: bool = False):
    """Run one sipp call from ``scenario`` (XML text) to ``target`` (host:port); returns the process."""
    path = workdir / f"scenario-{time.monotonic_ns()}.xml"
    path.write_text(scenario)
    command = [SIPP, "-sf", str(path), "-m", "1", "-l", "1", "-nostdin", "-i", "127.0.0.1", "-p", str(free_port()),
               "-s", service, "-recv_timeout", str(int(timeout * 1000)), "-timeout", f"{int(timeout)}s",
               "-timeout_error", "-trace_msg", "-message_file", str(workdir / f"{path.stem}.log"),
               *(extra or []), target]
    proc = subprocess.Popen(command, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if background:
        return proc
    out, _ = proc.communicate(timeout=timeout + 30)
    proc.log = (workdir / f"{path.stem}.log").read_text(errors="replace") if (workdir / f"{path.stem}.log").exists() else ""
    proc.out = out
    return proc


def sipp_log(proc, workdir: Path) -> str:
    logs = sorted(workdir.glob("scenario-*.log"))
    return "\n".join(p.read_text(errors="replace") for p in logs)


SDP = """v=0
o=caller 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio {rtp_port} RTP/AVP {pt} 101
a=rtpmap:{pt} {codec}/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
"""

HEADERS = """Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Test Caller" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>{to_tag}
Call-ID: [call_id]
Contact: <sip:{caller}@[local_ip]:[local_port]>
Max-Forwards: 70"""


def uac_scenario(*, codec: str = "PCMU", rtp_port: int, pcaps: list[tuple[str, int]] = (), caller: str = "caller",
                 hangup: str = "caller", extra_headers: str = "", wait_bye_ms: int = 60000) -> str:
    """A caller: INVITE, ACK, then for each (pcap, pause_ms) play it and pause; then BYE (``hangup=caller``)
    or wait for the agent's BYE (``hangup=agent``)."""
    sdp = SDP.format(rtp_port=rtp_port, pt=PT[codec], codec=codec)
    invite_headers = HEADERS.format(caller=caller, to_tag="")
    dialog_headers = HEADERS.format(caller=caller, to_tag="[peer_tag_param]")
    extra = ("\n" + extra_headers.strip()) if extra_headers.strip() else ""
    media = "".join(
        f'<nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n<pause milliseconds="{pause}"/>\n'
        for pcap, pause in pcaps)
    if hangup == "caller":
        ending = f"""<send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
{dialog_headers}
CSeq: 2 BYE
Content-Length: 0

]]></send>
<recv response="200" crlf="true"/>"""
    else:
        ending = f"""<recv request="BYE" timeout="{wait_bye_ms}"/>
<send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>"""
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="caller">
<send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
{invite_headers}
CSeq: 1 INVITE{extra}
Content-Type: application/sdp
Content-Length: [len]

{sdp}
]]></send>
<recv response="100" optional="true"/>
<recv response="180" optional="true"/>
<recv response="200" rrs="true"/>
<send><![CDATA[
ACK [next_url] SIP/2.0
{dialog_headers}
CSeq: 1 ACK
Content-Length: 0

]]></send>
{media}
{ending}
</scenario>
"""


class SipSocket:
    """A bare UDP SIP peer for messages no well-behaved client sends (malformed, odd SDP, routes)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received: list[str] = []

    def send(self, text: str, target: tuple[str, int]) -> None:
        text = text.replace("\r\n", "\n").replace("\n", "\r\n")
        if "\r\n\r\n" not in text:
            text += "\r\n"
        self.sock.sendto(text.encode(), target)

    def wait_for(self, predicate, timeout: float = 5.0) -> str | None:
        """The first message (already received or arriving) for which ``predicate(text)`` is true."""
        for text in self.received:
            if predicate(text):
                return text
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data, _ = self.sock.recvfrom(65535)
            except OSError:
                break
            text = data.decode(errors="replace")
            self.received.append(text)
            if predicate(text):
                return text
        return None

    def status(self, call_id: str, code: int, timeout: float = 5.0) -> str | None:
        return self.wait_for(lambda t: t.startswith(f"SIP/2.0 {code}") and call_id in t, timeout)

    def close(self) -> None:
        self.sock.close()


def header(message: str, name: str) -> list[str]:
    values = []
    for line in message.split("\r\n\r\n", 1)[0].split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            values.append(value.strip())
    return values
