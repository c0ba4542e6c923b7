"""Probe: project-owned REFER/NOTIFY on top of rfcvoip (blind transfer)."""
import os, time
from rfcvoip.VoIP import VoIPPhone, CallState
from rfcvoip.SIP import SIPMessageType
TARGET = os.environ.get("TARGET", "sip:3000@127.0.0.1:5095")
notify_frags = {}
def on_call(call):
    call.answer(); time.sleep(2)
    sip = call.sip; req = call.request
    local_tag = sip.tagLibrary[call.call_id]
    remote_target = sip._extract_uri(str(req.headers["Contact"]))
    to_hdr = req.headers["From"]["raw"] + ";tag=" + req.headers["From"]["tag"]
    from_hdr = req.headers["To"]["raw"] + ";tag=" + local_tag
    refer = (f"REFER {remote_target} SIP/2.0\r\n" + sip._via_header(rport=True) +
             f"Max-Forwards: 70\r\nFrom: {from_hdr}\r\nTo: {to_hdr}\r\nCall-ID: {call.call_id}\r\nCSeq: 2 REFER\r\n"
             f"Contact: <{sip._contact_uri()}>\r\nRefer-To: <{TARGET}>\r\nReferred-By: <sip:agent@127.0.0.1:5070>\r\nContent-Length: 0\r\n\r\n")
    notify_frags[call.call_id] = []
    sip.send_raw(refer.encode(), sip._sip_target_from_uri(remote_target))
    print("[refer] sent REFER", flush=True)
    t0 = time.time()
    while time.time()-t0 < 10:
        if any(f.startswith("SIP/2.0 2") for f in notify_frags[call.call_id]): break
        time.sleep(0.05)
    print("[refer] sipfrags:", notify_frags[call.call_id], flush=True)
    if call.state == CallState.ANSWERED: call.hangup(); print("[refer] BYE our leg", flush=True)

phone = VoIPPhone("127.0.0.1", 5999, "agent", "", myIP="127.0.0.1", sipPort=5070, callCallback=on_call,
                  rtpPortLow=30000, rtpPortHigh=30100, audio_sample_rate=8000, audio_bit_depth=16)
phone.sip.register = lambda: True
orig = phone.sip.parse_message
def hook(msg):
    if msg.type == SIPMessageType.MESSAGE and msg.method == "NOTIFY" and phone.has_call_id(msg.headers.get("Call-ID")):
        notify_frags.setdefault(msg.headers["Call-ID"], []).append(msg.body_text.strip())
        phone.sip._send_request_response(msg, phone.sip.gen_ok(msg)); return
    if msg.type == SIPMessageType.RESPONSE and msg.headers.get("CSeq", {}).get("method") == "REFER":
        print("[refer] REFER response", int(msg.status), flush=True); return
    orig(msg)
phone.sip.parse_message = hook
phone.start(); time.sleep(float(os.environ.get("LIFETIME", "20"))); phone.stop()
