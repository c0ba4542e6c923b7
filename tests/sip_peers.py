"""Real SIP peers for the tests: sipp scenarios, RTP captured on the wire, pcap audio for sipp to play.

sipp does the signalling and plays RTP from a pcap file; the SDP it sends names a port where an
:class:`RtpSink` (a plain UDP socket here) records what the agent sends, with arrival times, so the
tests judge the agent by what actually reached the wire.
"""

from __future__ import annotations

import re
import shutil
import socket
import struct
import subprocess
import threading
import time
import uuid
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


# sipp: 200 OK to the request just received (a BYE), headers copied from it.
OK_TO_LAST = """<send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>"""


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
[routes]
{dialog_headers}
CSeq: 2 BYE
Content-Length: 0

]]></send>
<recv response="200" crlf="true"/>"""
    else:
        ending = f"""<recv request="BYE" timeout="{wait_bye_ms}"/>
{OK_TO_LAST}"""
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
[routes]
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


class WireCaller:
    """A scripted SIP caller with its own RTP clock: knows when each of its frames hit the wire.

    sipp plays a pcap but cannot say when a given sample was sent; latency measurements (voice to
    voice, barge-in) need both sides' wire times on one clock, so this caller sends RTP itself on an
    absolute 20 ms schedule and records the agent's packets as they arrive.
    """

    def __init__(self, target: tuple[str, int], codec: str = "PCMU", user: str = "wirecaller") -> None:
        self.target = target
        self.codec = codec
        self.user = user
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sip.bind(("127.0.0.1", 0))
        self.sip.settimeout(0.1)
        self.sip_port = self.sip.getsockname()[1]
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind(("127.0.0.1", 0))
        self.rtp.settimeout(0.1)
        self.rtp_port = self.rtp.getsockname()[1]
        self.call_id = f"{time.monotonic_ns()}@wirecaller"
        self.tag = f"w{time.monotonic_ns() % 10**8}"
        self.messages: list[str] = []
        self.remote_rtp: tuple[str, int] | None = None
        self.remote_tag = ""
        self.remote_target = f"sip:employai@{target[0]}:{target[1]}"
        self.route_set: list[str] = []
        self.ended = threading.Event()  # the agent hung up (BYE received)
        self.received: list[RtpPacket] = []
        self._voiced: dict[int, list] = {}  # threshold -> [packets scanned, voiced arrival times]
        self.sent: list[tuple[float, bool]] = []  # per frame: wire time, voiced
        self._queue: list[np.ndarray] = []
        self._lock = threading.Lock()
        self._running = True
        self._threads = [threading.Thread(target=f, daemon=True) for f in (self._sip_loop, self._rtp_in, self._rtp_out)]
        self._threads[0].start()

    # -- signalling ------------------------------------------------------------------------------
    def _headers(self, method: str, cseq: int, to_tag: str = "") -> str:
        return (f"Via: SIP/2.0/UDP 127.0.0.1:{self.sip_port};branch=z9hG4bK{time.monotonic_ns()}\r\n"
                f"From: <sip:{self.user}@127.0.0.1:{self.sip_port}>;tag={self.tag}\r\n"
                f"To: <sip:employai@{self.target[0]}:{self.target[1]}>{';tag=' + to_tag if to_tag else ''}\r\n"
                f"Call-ID: {self.call_id}\r\nCSeq: {cseq} {method}\r\n"
                f"Contact: <sip:{self.user}@127.0.0.1:{self.sip_port}>\r\nMax-Forwards: 70\r\n")

    def _route_headers(self) -> str:
        return "".join(f"Route: {route}\r\n" for route in self.route_set)

    def _sip_loop(self) -> None:
        while self._running:
            try:
                data, source = self.sip.recvfrom(65535)
            except OSError:
                continue
            text = data.decode(errors="replace")
            self.messages.append(text)
            if text.startswith("BYE "):
                reply = "SIP/2.0 200 OK\r\n" + "".join(
                    line + "\r\n" for line in text.split("\r\n\r\n")[0].split("\r\n")[1:]
                    if line.split(":")[0].lower() in ("via", "from", "to", "call-id", "cseq")) + "Content-Length: 0\r\n\r\n"
                self.sip.sendto(reply.encode(), source)
                self.ended.set()

    def _wait(self, predicate, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for text in list(self.messages):
                if predicate(text):
                    return text
            time.sleep(0.005)
        return None

    def dial(self, timeout: float = 10.0, extra_headers: str = "") -> None:
        pt = PT[self.codec]
        body = (f"v=0\r\no=w 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                f"m=audio {self.rtp_port} RTP/AVP {pt} 101\r\na=rtpmap:{pt} {self.codec}/8000\r\n"
                f"a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n")
        extra = "".join(line.strip() + "\r\n" for line in extra_headers.strip().splitlines() if line.strip())
        invite = (f"INVITE sip:employai@{self.target[0]}:{self.target[1]} SIP/2.0\r\n" + self._headers("INVITE", 1)
                  + extra + f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}")
        self.sip.sendto(invite.encode(), self.target)
        ok = self._wait(lambda t: t.startswith("SIP/2.0 200") and "INVITE" in t.split("CSeq:")[1][:20], timeout)
        if ok is None:
            raise TimeoutError("no 200 OK to the INVITE")
        to_line = next(l for l in ok.split("\r\n") if l.lower().startswith("to:"))
        self.remote_tag = to_line.split("tag=")[1].split(";")[0].strip()
        sdp_text = ok.split("\r\n\r\n", 1)[1]
        host = next(l.split()[-1] for l in sdp_text.split("\r\n") if l.startswith("c="))
        port = int(next(l.split()[1] for l in sdp_text.split("\r\n") if l.startswith("m=audio")))
        self.remote_rtp = (host, port)
        # The dialog as RFC 3261 has it: requests go to the callee's Contact, through the proxies that
        # Record-Routed (a PBX in between); without a proxy that is simply the endpoint itself.
        headers = ok.split("\r\n\r\n", 1)[0].split("\r\n")
        contact = next((l.split(":", 1)[1] for l in headers if l.lower().startswith(("contact:", "m:"))), "")
        self.remote_target = contact.strip().strip("<>").split(">")[0] or f"sip:employai@{self.target[0]}:{self.target[1]}"
        routes = [r.strip() for l in headers if l.lower().startswith("record-route:")
                  for r in l.split(":", 1)[1].split(",")]
        self.route_set = list(reversed(routes))
        ack = (f"ACK {self.remote_target} SIP/2.0\r\n" + self._route_headers()
               + self._headers("ACK", 1, self.remote_tag) + "Content-Length: 0\r\n\r\n")
        self.sip.sendto(ack.encode(), self.target)
        for thread in self._threads[1:]:
            thread.start()

    def hang_up(self) -> None:
        if self.ended.is_set():
            return
        bye = (f"BYE {self.remote_target} SIP/2.0\r\n" + self._route_headers()
               + self._headers("BYE", 2, self.remote_tag) + "Content-Length: 0\r\n\r\n")
        self.sip.sendto(bye.encode(), self.target)
        self._wait(lambda t: t.startswith("SIP/2.0 200") and "BYE" in t, 5)

    def close(self) -> None:
        self._running = False
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=2)
        self.sip.close()
        self.rtp.close()

    # -- media -------------------------------------------------------------------------------------
    def say(self, samples: np.ndarray) -> int:
        """Queue caller audio; returns the index (in :attr:`sent`) its first frame will have."""
        samples = np.concatenate([samples, np.zeros((-len(samples)) % 160, np.int16)])
        with self._lock:
            start = len(self.sent) + len(self._queue)
            self._queue.extend(samples[i : i + 160] for i in range(0, len(samples), 160))
        return start

    def wait_sent(self, index: int, timeout: float = 60.0) -> float:
        """Wire time of frame ``index`` once it has been sent."""
        deadline = time.monotonic() + timeout
        while len(self.sent) <= index and time.monotonic() < deadline and not self.ended.is_set():
            time.sleep(0.01)
        if len(self.sent) <= index:
            raise AssertionError(f"frame {index} was never sent (the agent hung up: {self.ended.is_set()})")
        return self.sent[index][0]

    def _rtp_out(self) -> None:
        sequence, timestamp = 0, 0
        next_due = time.monotonic()
        pt = PT[self.codec]
        while self._running and not self.ended.is_set():
            with self._lock:
                frame = self._queue.pop(0) if self._queue else np.zeros(160, np.int16)
            header = struct.pack("!BBHII", 0x80, pt, sequence & 0xFFFF, timestamp & 0xFFFFFFFF, 0x5EED)
            try:
                self.rtp.sendto(header + encode(frame, self.codec), self.remote_rtp)
            except OSError:
                break
            self.sent.append((time.monotonic(), bool(np.abs(frame.astype(np.int32)).max() > 300)))
            sequence, timestamp = sequence + 1, timestamp + 160
            next_due += 0.020
            time.sleep(max(0.0, next_due - time.monotonic()))

    def _rtp_in(self) -> None:
        while self._running:
            try:
                data, _ = self.rtp.recvfrom(4096)
            except OSError:
                continue
            if len(data) >= 12:
                _, b1, seq, ts, _ = struct.unpack("!BBHII", data[:12])
                self.received.append(RtpPacket(time.monotonic(), b1 & 0x7F, bool(b1 & 0x80), seq, ts, data[12:]))

    def voiced_arrivals(self, threshold: int = 300) -> list[float]:
        """Arrival times of the packets carrying sound. Each packet is decoded once (the benchmark polls this
        while it runs: decoding the whole call on every poll stole a core from the server under test)."""
        pt = PT[self.codec]
        known = self._voiced.setdefault(threshold, [0, []])
        received = self.received[known[0]:]
        known[1] += [p.arrival for p in received
                     if p.payload_type == pt and np.abs(decode(p.payload, self.codec).astype(np.int32)).max() > threshold]
        known[0] += len(received)
        return list(known[1])

    def agent_audio(self) -> np.ndarray:
        pt = PT[self.codec]
        parts = [decode(p.payload, self.codec) for p in self.received if p.payload_type == pt]
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)

    def wait_quiet(self, after: float, quiet_s: float = 1.5, timeout: float = 30.0) -> float | None:
        """Wait until the agent has been silent for ``quiet_s`` after speaking; returns its last voiced time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            voiced = [t for t in self.voiced_arrivals() if t >= after]
            if voiced and time.monotonic() - voiced[-1] >= quiet_s:
                return voiced[-1]
            time.sleep(0.05)
        return None


BARESIP = shutil.which("baresip")


class Baresip:
    """A real softphone (Debian's baresip-core): auto-answers, speaks a WAV, records what it hears.

    ``audio`` is what it says (8 kHz 16-bit mono; baresip hangs up when the file ends, so it is padded
    to ``seconds``). The sndfile module writes both directions as WAV files under ``snd/``.
    """

    def __init__(self, workdir: Path, audio: np.ndarray | None = None, seconds: float = 60.0, user: str = "human",
                 answer: bool = True) -> None:
        from speech.audio import write_wav

        self.dir = workdir / f"baresip-{user}-{time.monotonic_ns()}"
        (self.dir / "snd").mkdir(parents=True)
        self.port = free_port()
        self.ctrl_port = free_port(socket.SOCK_STREAM)
        audio = np.zeros(0, np.int16) if audio is None else audio
        padded = np.concatenate([audio, np.zeros(max(0, int(seconds * 8000) - len(audio)), np.int16)])
        write_wav(self.dir / "say.wav", padded, 8000)
        rtp_low = free_port()
        (self.dir / "config").write_text(f"""poll_method epoll
sip_listen 127.0.0.1:{self.port}
net_interface 127.0.0.1
audio_player aubridge,nullsink
audio_source aufile,{self.dir / 'say.wav'}
audio_alert aubridge,nullsink
audio_srate 8000
audio_channels 1
rtp_ports {rtp_low}-{rtp_low + 20}
module_path /usr/lib/baresip/modules
module g711.so
module aufile.so
module aubridge.so
module sndfile.so
module_app account.so
module_app menu.so
module_app ctrl_tcp.so
snd_path {self.dir / 'snd'}
ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}
""")
        answermode = "auto" if answer else "manual"
        (self.dir / "accounts").write_text(
            f"<sip:{user}@127.0.0.1:{self.port}>;regint=0;answermode={answermode};audio_codecs=PCMU,PCMA\n")
        self.uri = f"sip:{user}@127.0.0.1:{self.port}"
        self.log_path = self.dir / "baresip.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([BARESIP, "-f", str(self.dir)], stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, cwd=self.dir)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)

    def command(self, command: str, params: str = "") -> str:
        import json

        payload = json.dumps({"command": command, "params": params, "token": "t"}).encode()
        with socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=5) as conn:
            conn.sendall(str(len(payload)).encode() + b":" + payload + b",")
            try:
                return conn.recv(65535).decode(errors="replace")
            except OSError:
                return ""

    @property
    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def recordings(self) -> list[Path]:
        return sorted((self.dir / "snd").glob("dump-*"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.command("quit")
            except OSError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def wait_finished(board, count: int, timeout: float = 30.0):
    """The ``count``-th call the switchboard finished (waits for it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(board.finished) < count:
        time.sleep(0.05)
    assert len(board.finished) >= count, "the call did not end"
    return board.finished[count - 1]


def finished_calls(board, call_ids, timeout: float = 30.0) -> list:
    """The outcomes of these calls once all are finished (waits for them), in finishing order."""
    wanted = set(call_ids)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not wanted <= {o.call_id for o in board.finished}:
        time.sleep(0.05)
    return [o for o in board.finished if o.call_id in wanted]


def reply(status: str, *, cseq: str = "[last_CSeq:]", extra: str = "") -> str:
    """A sipp <send> of a response to the last request, with the callee's To-tag."""
    extra = f"{extra}\n" if extra else ""
    return f"""<send><![CDATA[
SIP/2.0 {status}
[last_Via:]
[last_From:]
[last_To:];tag=[pid]callee[call_number]
[last_Call-ID:]
{cseq}
{extra}Content-Length: 0

]]></send>"""


UAS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="callee">
<recv request="INVITE"/>
""" + reply("180 Ringing", extra="Contact: <sip:callee@[local_ip]:[local_port]>") + """
{final}
</scenario>
"""

FINAL = """<pause milliseconds="300"/>
""" + reply("{code} {phrase}") + """
<recv request="ACK"/>"""

NO_ANSWER = """<recv request="CANCEL">
<action><ereg regexp="CSeq: ([0-9]+) CANCEL" search_in="msg" check_it="true" assign_to="whole,cseq"/></action>
</recv>
<Reference variables="whole"/>
""" + reply("200 OK") + "\n" + reply("487 Request Terminated", cseq="CSeq: [$cseq] INVITE") + """
<recv request="ACK"/>"""


ANSWER = """<pause milliseconds="200"/>
<send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]callee[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:callee@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=callee 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [local_ip]
t=0 0
m=audio [media_port] RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
]]></send>
<recv request="ACK"/>
<recv request="BYE"/>
""" + OK_TO_LAST


def sipp_invites(log_text: str) -> dict[str, set[str]]:
    """User part of the Request-URI -> the Call-IDs of the INVITEs sipp received (retransmissions count once)."""
    calls: dict[str, set[str]] = {}
    for message in log_text.split("\n\n"):
        match = re.search(r"^INVITE sip:([^@\s]+)@", message, re.M)
        call_id = re.search(r"^Call-ID:\s*(\S+)", message, re.M | re.I)
        if match and call_id:
            calls.setdefault(match.group(1), set()).add(call_id.group(1))
    return calls


def sipp_callee(tmp_path, final: str, calls: int = 1, timeout_s: int = 30):
    """A sipp callee answering ``calls`` INVITEs with ``final`` (FINAL / NO_ANSWER / ANSWER); returns (process, URI)."""
    port = free_port()
    scenario = tmp_path / f"uas-{port}.xml"
    scenario.write_text(UAS.format(final=final))
    proc = subprocess.Popen([SIPP, "-sf", str(scenario), "-m", str(calls), "-nostdin", "-i", "127.0.0.1", "-p", str(port),
                             "-timeout", f"{timeout_s}s", "-timeout_error", "-trace_msg",
                             "-message_file", str(tmp_path / f"uas-{port}.log")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    time.sleep(0.3)
    return proc, f"sip:callee@127.0.0.1:{port}"


KAMAILIO = shutil.which("kamailio") or "/usr/sbin/kamailio"
MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")


def options(uri: str, port: int, call_id: str) -> str:
    return f"""OPTIONS {uri} SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{call_id[:10]}
From: <sip:probe@127.0.0.1:{port}>;tag=p{call_id[:6]}
To: <{uri}>
Call-ID: {call_id}
CSeq: 1 OPTIONS
Max-Forwards: 70
Content-Length: 0
"""


class Kamailio:
    """One Kamailio in the foreground (``-DD -E``) on 127.0.0.1:``port``, its log in ``workdir``.

    ``cfg`` is its configuration with @RUN_DIR@, @PORT@ and @MPATH@ left for this class to fill.
    """

    def __init__(self, workdir: Path, cfg: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = workdir / f"kamailio-{self.port}"
        (self.dir / "run").mkdir(parents=True, exist_ok=True)
        assert MODULES.is_dir(), f"Kamailio modules not found at {MODULES}"
        self.cfg = self.dir / "kamailio.cfg"
        self.cfg.write_text(cfg.replace("@RUN_DIR@", str(self.dir / "run")).replace("@PORT@", str(self.port))
                            .replace("@MPATH@", f"{MODULES}/"))
        self.log_path = self.dir / "kamailio.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Kamailio:
        check = subprocess.run([KAMAILIO, "-c", "-f", str(self.cfg)], capture_output=True, text=True, timeout=30,
                               check=False)
        assert check.returncode == 0, f"kamailio -c rejected {self.cfg}:\n{check.stdout}{check.stderr}"
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen([KAMAILIO, "-DD", "-E", "-f", str(self.cfg)], stdout=self._log,
                                     stderr=subprocess.STDOUT, cwd=self.dir)
        probe = SipSocket()  # ready once it answers OPTIONS (the config answers those for itself)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, f"kamailio exited:\n{self.log_text()[-3000:]}"
                call_id = uuid.uuid4().hex
                probe.send(options(f"sip:127.0.0.1:{self.port}", probe.port, call_id), ("127.0.0.1", self.port))
                if probe.status(call_id, 200, 0.3):
                    return self
            raise AssertionError(f"kamailio never answered OPTIONS:\n{self.log_text()[-3000:]}")
        except BaseException:
            self.stop()
            raise
        finally:
            probe.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc is not None:
            self._log.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self, pattern: str = "") -> list[str]:
        """The lines the config logs for the tests ("KAM ..." with the prefix dropped) matching ``pattern``."""
        lines = [line.split("KAM ", 1)[1] for line in self.log_text().splitlines() if "KAM " in line]
        return [line for line in lines if re.search(pattern, line)]

    def trace(self, call_id: str) -> str:
        """What Kamailio logged for one Call-ID, for assertion messages."""
        return "\n".join(self.events(re.escape(call_id)))
