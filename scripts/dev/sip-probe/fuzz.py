import socket, uuid, time
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("127.0.0.1",5085)); s.settimeout(1.5)
sdp_ok="v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
sdp_two_c="v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7002 RTP/AVP 0 8\r\nc=IN IP4 127.0.0.1\r\na=rtpmap:0 PCMU/8000\r\n"
def inv(body=sdp_ok, extra="", method="INVITE", cl=None, via=True, frm=True, cseq="1 INVITE"):
    cid=uuid.uuid4().hex
    h=f"{method} sip:agent@127.0.0.1:5070 SIP/2.0\r\n"
    if via: h+=f"Via: SIP/2.0/UDP 127.0.0.1:5085;branch=z9hG4bK{cid[:10]}\r\n"
    if frm: h+=f"From: <sip:fz@127.0.0.1:5085>;tag={cid[:6]}\r\n"
    h+=f"To: <sip:agent@127.0.0.1:5070>\r\nCall-ID: {cid}\r\nCSeq: {cseq}\r\nContact: <sip:fz@127.0.0.1:5085>\r\nMax-Forwards: 70\r\n"+extra
    if body: h+="Content-Type: application/sdp\r\n"
    h+=f"Content-Length: {len(body) if cl is None else cl}\r\n\r\n"+body
    return h.encode()
cases={
 "garbage": b"\x00\xff\xfe garbage \r\n\r\n",
 "empty": b"",
 "crlf-keepalive": b"\r\n\r\n",
 "no-sdp INVITE": inv(body=""),
 "session+media c=": inv(body=sdp_two_c),
 "CL too big": inv(cl=9999),
 "bad CSeq": inv(cseq="x"),
 "no Via": inv(via=False),
 "no From": inv(frm=False),
 "non-utf8 header": inv(extra="Subject: \xff\xfe\r\n").replace(b"\xc3\xbf",b"\xff"),
 "lowercase hdrs": inv().replace(b"Call-ID",b"call-id").replace(b"CSeq",b"cseq"),
 "dup To": inv(extra="To: <sip:other@x>\r\n"),
 "INFO": inv(method="INFO", body="", cseq="1 INFO"),
 "SIP/3.0": b"INVITE sip:a@b SIP/3.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5085\r\n\r\n",
 "response garbage": b"SIP/2.0 abc\r\n\r\n",
 "sdp m= bad port": inv(body=sdp_ok.replace("7000","notaport")),
}
for name,pkt in cases.items():
    s.sendto(pkt,("127.0.0.1",5070)); got=[]
    t=time.time()
    while time.time()-t<1.2:
        try: d,_=s.recvfrom(65535); got.append(d.split(b"\r\n")[0].decode(errors="replace"))
        except socket.timeout: break
    print(f"{name:22s} -> {got}", flush=True)
# RTP fuzz against the most recent call's RTP port range
r=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
for port in range(30000,30101):
    for pkt in [b"\x80", b"\x80\x65"+b"\x00"*10+bytes([200,0x80,0,160]), b"\x80\x65"+b"\x00"*10+bytes([20,0x80,0,160]), b"\xff"*40, b"\x80\x7f"+b"\x00"*200, b"\xa0\x00"+b"\x00"*10+b"\x00"*5+b"\xff"]:
        r.sendto(pkt,("127.0.0.1",port))
print("rtp fuzz sent")
