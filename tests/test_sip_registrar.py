"""The SIP endpoint in registered mode, against a real Kamailio registrar/proxy started by the tests.

Direct mode (tests/test_sip_calls.py) proves the endpoint talks SIP; a real deployment registers
with a PBX and every call arrives through a proxy. What only a registrar can show:

- registration: REGISTER is challenged (401 with qop=auth) and the digest answer is accepted; a
  wrong password is reported in ``registration_error`` and the endpoint keeps serving direct calls;
- routing: a call to ``sip:<user>@<kamailio>`` reaches the endpoint through its registered Contact,
  the proxy Record-Routes, and both the caller's BYE and the agent's BYE travel through the proxy
  (the agent's in-dialog requests follow the route set instead of bypassing the PBX);
- resilience: a registrar that is down at start-up does not stop the endpoint, and registration
  succeeds once the registrar comes up (the background loop retries with backoff).

Kamailio (Debian's package) runs in the foreground on 127.0.0.1 with its own config, run_dir and
port under tmp_path, and logs every request it receives and relays (xlog, to a file the tests
read). The caller is sipp; the agent's audio is captured by an :class:`RtpSink`.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from config import Settings
from config.settings import SIPSettings
from speech.audio import rms_dbfs
from sip_peers import (Kamailio, RtpSink, SipSocket, free_port, options, run_sipp, uac_scenario, wait_finished,
                       write_rtp_pcap)
from telephony.sip.phone import EmployaiPhone

USER = "frontdesk"  # not the default user: the call reaches the endpoint only via its registration
PASSWORD = "s3cret-digest"  # Kamailio accepts this password for every user (pv_www_authenticate)
REALM = "127.0.0.1"
RATE = 8000

# A registrar + stateful proxy with digest auth (qop=auth), after /work/shared/sip/kamailio-loopback.cfg
# and scripts/dev/sip-probe/kam-auth.cfg. Every line it logs for the tests starts with "KAM ".
KAMAILIO_CFG = r"""#!KAMAILIO
debug=2
log_stderror=yes
fork=yes
children=2
run_dir="@RUN_DIR@"
listen=udp:127.0.0.1:@PORT@
auto_aliases=no

mpath="@MPATH@"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"

modparam("usrloc", "db_mode", 0)

request_route {
    xlog("L_NOTICE", "KAM REQ $rm $ru ci=$ci from=$si:$sp\n");
    if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }

    if (has_totag()) {
        if (loose_route()) {
            xlog("L_NOTICE", "KAM LOOSE-ROUTE $rm ci=$ci from=$si:$sp\n");
            route(RELAY);
        }
        if (is_method("ACK") && t_check_trans()) { route(RELAY); }
        if (uri == myself) {
            if (!lookup("location")) {
                if (is_method("ACK")) exit;
                sl_send_reply("404", "Not here"); exit;
            }
        }
        route(RELAY);
    }
    if (is_method("CANCEL")) { if (t_check_trans()) route(RELAY); exit; }
    t_check_trans();

    if (is_method("REGISTER")) {
        if (!pv_www_authenticate("@REALM@", "@PASSWORD@", "0")) {
            if (is_present_hf("Authorization")) {
                xlog("L_NOTICE", "KAM AUTH-FAILED REGISTER user=$fU\n");
            } else {
                xlog("L_NOTICE", "KAM CHALLENGE REGISTER user=$fU\n");
            }
            www_challenge("@REALM@", "1");  # flags 1: qop="auth" in the challenge
            exit;
        }
        xlog("L_NOTICE", "KAM AUTH-OK REGISTER user=$au authorization=[$hdr(Authorization)]\n");
        if (!save("location")) { sl_reply_error(); }
        exit;
    }
    if (is_method("OPTIONS") && uri == myself && $rU == $null) { sl_send_reply("200", "OK"); exit; }

    if (is_method("INVITE|REFER|SUBSCRIBE")) record_route();

    if (uri == myself) {
        if (!lookup("location")) {
            xlog("L_NOTICE", "KAM NOT-FOUND $rm $ru ci=$ci\n");
            sl_send_reply("404", "Not Found"); exit;
        }
    }
    route(RELAY);
}

route[RELAY] {
    xlog("L_NOTICE", "KAM RELAY $rm $ru ci=$ci from=$si:$sp route=[$hdr(Route)]\n");
    if (!t_relay()) { sl_reply_error(); }
    exit;
}

onreply_route {
    xlog("L_NOTICE", "KAM REPLY $rs $rm ci=$ci from=$si:$sp\n");
}
"""


def registrar(workdir: Path, port: int | None = None) -> Kamailio:
    return Kamailio(workdir, KAMAILIO_CFG.replace("@REALM@", REALM).replace("@PASSWORD@", PASSWORD), port)


def answers_options(sip_port: int) -> bool:
    """The endpoint on ``sip_port`` answers a direct OPTIONS with 200 (it still serves direct traffic)."""
    peer = SipSocket()
    call_id = uuid.uuid4().hex
    peer.send(options(f"sip:{USER}@127.0.0.1:{sip_port}", peer.port, call_id), ("127.0.0.1", sip_port))
    ok = peer.status(call_id, 200, 5) is not None
    peer.close()
    return ok


def wait_until(predicate, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def bare_endpoint(registrar_port: int, *, user: str = USER, password: str = PASSWORD,
                  rtp: int = 34000, expires: int = 60) -> EmployaiPhone:
    """The SIP endpoint without the employee behind it (no calls are placed to it): registration only."""
    settings = SIPSettings(port=free_port(), user=user, password=password, registrar=f"127.0.0.1:{registrar_port}",
                           register_expires=expires, rtp_port_low=rtp, rtp_port_high=rtp + 99)
    phone = EmployaiPhone(settings, lambda call: None)
    phone.start()
    return phone


def routed_uac(**kwargs) -> str:
    """sipp's caller whose ACK and BYE carry the route set learnt from the 200 (rrs="true" + [routes]).

    Without Route headers a proxy would only relay them by luck (Request-URI not its own), not because
    they follow the route set; uac_scenario puts [routes] in both.
    """
    scenario = uac_scenario(**kwargs)
    assert scenario.count("[routes]") == (2 if kwargs.get("hangup", "caller") == "caller" else 1)
    return scenario


# -- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kamailio(tmp_path_factory):
    kam = registrar(tmp_path_factory.mktemp("kamailio")).start()
    yield kam
    kam.stop()


@pytest.fixture(scope="module")
def reg_board(tmp_path_factory, kamailio, stt, tts):
    """The switchboard with the real models, registered at the module's Kamailio as ``USER``."""
    from brain.employee import Brain
    from telephony.switchboard import Switchboard

    data = tmp_path_factory.mktemp("sip-registered")
    settings = Settings(service={"data_dir": str(data), "metrics_address": "127.0.0.1:0"}, llm={"n_ctx": 2048},
                        sip={"port": free_port(), "rtp_port_low": 33000, "rtp_port_high": 33999, "max_calls": 3,
                             "user": USER, "password": PASSWORD, "registrar": f"127.0.0.1:{kamailio.port}",
                             "register_expires": 60})
    brain = Brain(settings)
    switchboard = Switchboard(settings, stt, tts, brain)
    switchboard.start()
    yield switchboard
    switchboard.stop()  # deregisters while Kamailio still runs (the kamailio fixture ends after this one)
    brain.close()


def registered(board) -> bool:
    return board.phone.sip.registered.wait(10)


# -- 1. registration ----------------------------------------------------------------------------------
def test_registers_with_digest_auth_and_qop(reg_board, kamailio):
    assert registered(reg_board), f"not registered: {reg_board.phone.sip.registration_error}"
    assert reg_board.phone.sip.registration_error is None
    challenged = kamailio.events(f"^CHALLENGE REGISTER user={USER}$")
    accepted = kamailio.events(f"^AUTH-OK REGISTER user={USER} ")
    assert challenged and accepted, kamailio.events("REGISTER")
    register_lines = kamailio.events(f"(CHALLENGE|AUTH-OK|AUTH-FAILED) REGISTER user={USER}")
    assert register_lines[0].startswith("CHALLENGE") and register_lines[1].startswith("AUTH-OK"), register_lines
    authorization = accepted[0]
    for field in ("Digest", f'username="{USER}"', f'realm="{REALM}"', "qop=auth", "nc=", "cnonce=", "response="):
        assert field in authorization, authorization  # the digest answer used qop=auth (RFC 2617 3.2.2)
    assert not kamailio.events(f"AUTH-FAILED REGISTER user={USER}")


def test_a_wrong_password_never_registers_and_the_endpoint_keeps_running(kamailio):
    phone = bare_endpoint(kamailio.port, user="intruder", password="not-the-password")
    try:
        assert wait_until(lambda: phone.sip.registration_error is not None, 10), "no registration error reported"
        assert not phone.sip.registered.is_set()
        assert "InvalidAccountInfo" in phone.sip.registration_error, phone.sip.registration_error
        assert kamailio.events("^CHALLENGE REGISTER user=intruder$")
        assert kamailio.events("^AUTH-FAILED REGISTER user=intruder$")  # the digest answer was refused
        assert answers_options(phone.settings.port)  # direct traffic is still served
        # The library alone stops the phone after three failed registrations; here the loop keeps trying
        # (after 2 s, then 4 s) and the endpoint keeps serving.
        assert wait_until(lambda: len(kamailio.events("^AUTH-FAILED REGISTER user=intruder$")) >= 3, 15), \
            "\n".join(kamailio.events("REGISTER user=intruder"))
        assert answers_options(phone.settings.port)
        assert not phone.sip.registered.is_set() and phone.sip.registration_error
        assert not kamailio.events("AUTH-OK REGISTER user=intruder")
    finally:
        phone.stop()


# -- 2. calls through the proxy ----------------------------------------------------------------------
def test_inbound_call_through_kamailio_caller_hangs_up(reg_board, kamailio, tmp_path):
    assert registered(reg_board), reg_board.phone.sip.registration_error
    done = len(reg_board.finished)
    sink = RtpSink()
    pcap = write_rtp_pcap(tmp_path / "quiet.pcap", np.zeros(RATE * 6, np.int16))
    scenario = routed_uac(rtp_port=sink.port, pcaps=[(str(pcap), 6000)])
    proc = run_sipp(scenario, f"127.0.0.1:{kamailio.port}", tmp_path, service=USER, timeout=30)
    sink.close()
    assert proc.returncode == 0, proc.out + proc.log[-3000:]
    outcome = wait_finished(reg_board, done + 1)
    assert outcome.ended_by == "caller" and outcome.status == "completed", outcome

    # Kamailio found the registered Contact and relayed the INVITE there.
    call_id = outcome.call_id
    board_port = reg_board.settings.sip.port
    cid = re.escape(call_id)
    assert kamailio.events(rf"^RELAY INVITE sip:{USER}@127\.0\.0\.1:{board_port}\S* ci={cid} "), kamailio.trace(call_id)
    # It Record-Routed, and the agent's 200 OK carried that Record-Route back to sipp ...
    ok = next(m for m in proc.log.split("\n\n") if m.startswith("SIP/2.0 200") and "INVITE" in m)
    record_routes = [line.split(":", 1)[1].strip() for line in ok.splitlines()
                     if line.lower().startswith("record-route:")]
    assert len(record_routes) == 1 and record_routes[0].startswith(f"<sip:127.0.0.1:{kamailio.port};lr"), ok
    # ... so sipp's ACK and BYE followed that route set through the proxy to the agent, which answered the BYE.
    for method in ("ACK", "BYE"):
        assert kamailio.events(rf"^LOOSE-ROUTE {method} ci={cid} "), kamailio.trace(call_id)
    assert kamailio.events(rf"^REPLY 200 BYE ci={cid} from=127\.0\.0\.1:{board_port}$"), kamailio.trace(call_id)

    # The agent answered: its greeting reached the caller's RTP port.
    wire = sink.audio("PCMU")
    assert len(wire) / RATE > 3 and rms_dbfs(wire) > -40, (len(wire), rms_dbfs(wire) if len(wire) else None)
    assert sink.first_voiced() is not None


def test_inbound_call_through_kamailio_agent_hangs_up(reg_board, kamailio, tmp_path):
    assert registered(reg_board), reg_board.phone.sip.registration_error
    done = len(reg_board.finished)
    before = set(reg_board.active)
    sink = RtpSink()
    scenario = routed_uac(rtp_port=sink.port, hangup="agent", wait_bye_ms=20000)
    proc = run_sipp(scenario, f"127.0.0.1:{kamailio.port}", tmp_path, service=USER, timeout=30, background=True)
    try:
        assert wait_until(lambda: set(reg_board.active) - before, 10), "the call never reached the agent"
        [call_id] = set(reg_board.active) - before
        assert wait_until(lambda: sink.first_voiced() is not None, 10), "no greeting audio"
        reg_board.active[call_id].line.hang_up()  # takes effect once the greeting has been spoken
        out, _ = proc.communicate(timeout=45)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        sink.close()
    assert proc.returncode == 0, out  # sipp received the agent's BYE (hangup="agent") and answered it
    outcome = wait_finished(reg_board, done + 1)
    assert outcome.call_id == call_id and outcome.ended_by == "agent", outcome

    board_port = reg_board.settings.sip.port
    cid = re.escape(call_id)
    # The agent's BYE went to the proxy (first Route) from the agent's port, Route stripped by loose_route ...
    assert kamailio.events(rf"^LOOSE-ROUTE BYE ci={cid} from=127\.0\.0\.1:{board_port}$"), kamailio.trace(call_id)
    [bye] = kamailio.events(rf"^RELAY BYE \S+ ci={cid} from=127\.0\.0\.1:{board_port} ")
    assert f"127.0.0.1:{kamailio.port};lr" in bye.split("route=", 1)[1], bye
    # ... addressed to the caller's Contact, and sipp's 200 came back through the proxy.
    assert re.match(r"RELAY BYE sip:caller@127\.0\.0\.1:\d+ ", bye), bye
    assert kamailio.events(rf"^REPLY 200 BYE ci={cid} "), kamailio.trace(call_id)


# -- 3. registrar down, then up -------------------------------------------------------------------------
def test_registration_recovers_when_the_registrar_comes_up(tmp_path):
    kam = registrar(tmp_path)  # configured on its port, not started yet
    phone = bare_endpoint(kam.port, rtp=34100)
    try:
        assert answers_options(phone.settings.port)  # served while the first REGISTER waits for an answer
        # The first attempt times out (register_timeout, 5 s): reported, not fatal, still serving.
        assert wait_until(lambda: phone.sip.registration_error is not None, 10), "registrar down was not noticed"
        assert "Timeout" in phone.sip.registration_error, phone.sip.registration_error
        assert not phone.sip.registered.is_set()
        assert answers_options(phone.settings.port)

        kam.start()
        started = time.monotonic()
        # The next attempt comes 2 s after the failed one (backoff 2, 4, 8 ... s), plus up to 5 s to time out.
        assert phone.sip.registered.wait(20), f"not registered 20 s after the registrar came up: " \
                                              f"{phone.sip.registration_error}\n" + "\n".join(kam.events())
        assert time.monotonic() - started < 20
        assert phone.sip.registration_error is None
        assert kam.events(f"^CHALLENGE REGISTER user={USER}$") and kam.events(f"^AUTH-OK REGISTER user={USER} ")
        assert answers_options(phone.settings.port)
    finally:
        phone.stop()
        kam.stop()


def test_registration_is_refreshed_before_it_expires(kamailio):
    """With a 30 s registration the endpoint registers again about 24 s later, before the binding lapses."""
    phone = bare_endpoint(kamailio.port, user="refresher", expires=30, rtp=34200)
    try:
        assert wait_until(lambda: phone.sip.registered.is_set(), 10)
        first = len(kamailio.events("^AUTH-OK REGISTER user=refresher "))
        assert wait_until(lambda: len(kamailio.events("^AUTH-OK REGISTER user=refresher ")) > first, 30)
    finally:
        phone.stop()
