"""rfcvoip probe: answer on 127.0.0.1:5070 without registrar, play 1 kHz, record."""
import sys, time, math, struct, wave, os
import rfcvoip
from rfcvoip.VoIP import VoIPPhone, CallState

OUT = sys.argv[1] if len(sys.argv) > 1 else "/tmp/siprs/out"
HANGUP_AFTER = float(os.environ.get("HANGUP_AFTER", "0"))   # 0 = wait for remote BYE
SEND_DTMF = os.environ.get("SEND_DTMF", "")
rfcvoip.DEBUG = bool(os.environ.get("RFCDEBUG"))
RATE, FRAME = 8000, 160
def tone_frames():
    n = 0
    while True:
        yield b"".join(struct.pack("<h", int(8000*math.sin(2*math.pi*1000*(n+i)/RATE))) for i in range(FRAME))
        n += FRAME
count = [0]
def on_call(call):
    idx = count[0]; count[0] += 1
    t0 = time.monotonic()
    print(f"[agent] call {call.call_id} state={call.state} fmt={call.audio_format()}", flush=True)
    try:
        call.answer()
    except Exception as e:
        print("[agent] answer failed", repr(e), flush=True); return
    rec = bytearray(); gen = tone_frames(); next_due = time.monotonic(); late = 0
    client = call.RTPClients[0]
    dtmf_sent = False
    while call.state == CallState.ANSWERED:
        frame = call.read_audio(2*FRAME, blocking=False)     # caller_frame
        rec += frame
        if client.pmout.available() < 2*2*FRAME:              # just-in-time: keep <=40 ms queued
            call.write_audio(next(gen))                         # agent_frame
        d = call.get_dtmf()
        if d: print(f"[agent] DTMF received {d!r} at {time.monotonic()-t0:.2f}s", flush=True)
        if SEND_DTMF and not dtmf_sent and time.monotonic()-t0 > 2:
            print("[agent] send_dtmf", call.send_dtmf(SEND_DTMF), flush=True); dtmf_sent = True
        if HANGUP_AFTER and time.monotonic()-t0 > HANGUP_AFTER:
            print("[agent] hanging up", flush=True); call.hangup(); break
        next_due += 0.020
        s = next_due - time.monotonic()
        if s > 0: time.sleep(s)
        else: late += 1
    with wave.open(f"{OUT}/agent_rx_{idx}.wav", "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(RATE); w.writeframes(bytes(rec))
    print(f"[agent] call ended after {time.monotonic()-t0:.2f}s, recorded {len(rec)/16000:.2f}s late_ticks={late} pmout={client.pmout.snapshot()}", flush=True)

REG = bool(os.environ.get("REG"))
phone = VoIPPhone("127.0.0.1", 5060 if REG else 5999, "agent", "secret" if REG else "", myIP="127.0.0.1", sipPort=5070,
                  callCallback=on_call, rtpPortLow=30000, rtpPortHigh=30100,
                  audio_sample_rate=8000, audio_bit_depth=16)
if not REG: phone.sip.register = lambda: True
if os.environ.get("GUARD"):
    _orig = phone.sip.parse_message
    def guarded(msg):
        try:
            h = msg.headers
            if msg.type == rfcvoip.SIP.SIPMessageType.MESSAGE and not all(k in h for k in ("From","To","Call-ID","CSeq")) or not h.get("Via"):
                print("[guard] dropping message missing mandatory headers", flush=True); return
            _orig(msg)
        except Exception as e:
            print("[guard] exception in parse_message:", repr(e), flush=True)
    phone.sip.parse_message = guarded          # no registrar: skip synchronous REGISTER
t = time.monotonic(); phone.start(); print(f"[agent] started in {time.monotonic()-t:.3f}s status={phone.get_status()}", flush=True)
try:
    time.sleep(float(os.environ.get("LIFETIME", "30")))
finally:
    phone.stop(); print("[agent] stopped", flush=True)
