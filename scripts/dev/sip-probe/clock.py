import socket, uuid, time, struct
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("127.0.0.1",5087)); s.settimeout(3)
r=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); r.bind(("127.0.0.1",7100)); r.settimeout(3)
cid=uuid.uuid4().hex
sdp="v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7100 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
inv=(f"INVITE sip:agent@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5087;branch=z9hG4bK{cid[:12]}\r\nFrom: <sip:c@127.0.0.1:5087>;tag=ab\r\nTo: <sip:agent@127.0.0.1:5070>\r\nCall-ID: {cid}\r\nCSeq: 1 INVITE\r\nContact: <sip:c@127.0.0.1:5087>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}").encode()
s.sendto(inv,("127.0.0.1",5070))
D=20; first=None; n=0; ts0=None; arr=[]
while True:
    d,_=r.recvfrom(2000); now=time.monotonic()
    if d[1]&127!=0: continue
    ts=struct.unpack('!I',d[4:8])[0]
    if first is None: first=now; ts0=ts
    n+=1; arr.append(now)
    if now-first>D: break
el=arr[-1]-arr[0]; gaps=[b-a for a,b in zip(arr,arr[1:])]
print(f"packets {n} over {el:.3f}s -> {(n-1)*0.02/el*100:.3f}% of nominal rate; rtp ts advance {(ts-ts0)/8000:.3f}s; max gap {max(gaps)*1000:.1f}ms; gaps>30ms {sum(g>0.03 for g in gaps)}")
