"""The operator console over real HTTP (uvicorn on a free port) in front of the real switchboard:
access control, CSRF, a live call pushed by server-sent events, the operator hanging it up, history
and the recording."""

from __future__ import annotations

import json
from contextlib import contextmanager
import re
import time

import httpx
import pytest
from pydantic import SecretStr

from sip_peers import WireCaller

PASSWORD = "correct horse battery staple"  # what conftest.console_site sets


@pytest.fixture(scope="module")
def console(console_site):
    return console_site[0]


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


@contextmanager
def logged_in(url: str):
    with httpx.Client(base_url=url, timeout=10) as client:
        token = csrf_of(client.get("/login").text)
        response = client.post("/login", data={"csrf": token, "password": PASSWORD})
        assert response.status_code == 303 and response.headers["location"] == "/"
        yield client


def test_nothing_but_the_login_page_without_a_session(console):
    with httpx.Client(base_url=console, timeout=10) as anonymous:
        for path in ("/", "/calls", "/calls/1", "/calls/1/recording.wav", "/events", "/messages", "/campaigns",
                     "/campaigns/x", "/campaigns/x/export.csv", "/callers", "/callers/sip:a@b", "/job"):
            response = anonymous.get(path)
            assert response.status_code == 303 and response.headers["location"] == "/login", path
        assert anonymous.get("/api/live").status_code == 401
        for path in ("/live/x/hangup", "/live/x/transfer", "/logout", "/messages/1/done", "/callers/sip:a@b/memory",
                     "/callers/sip:a@b/erase", "/job/documents"):
            assert anonymous.post(path, data={"csrf": "anything"}).status_code == 401, path
        page = anonymous.get("/login")
        assert page.status_code == 200 and 'type="password"' in page.text
        wrong = anonymous.post("/login", data={"csrf": csrf_of(page.text), "password": "guess"})
        assert wrong.status_code == 303 and "error" in wrong.headers["location"]
        assert anonymous.get("/").status_code == 303  # still out
        assert anonymous.post("/login", data={"password": PASSWORD}).status_code == 403  # no CSRF token


def test_without_a_configured_password_the_console_stays_locked(console, board):
    board.settings.console.password = None
    try:
        with httpx.Client(base_url=console, timeout=10) as client:
            page = client.get("/login").text
            assert "EMPLOYAI_CONSOLE__PASSWORD" in page
            assert client.post("/login", data={"csrf": csrf_of(page), "password": ""}).headers["location"] != "/"
            assert client.get("/").status_code == 303
    finally:
        board.settings.console.password = SecretStr(PASSWORD)


def test_actions_need_the_session_csrf_token(console):
    with logged_in(console) as client:
        assert client.post("/live/x/hangup").status_code == 403
        assert client.post("/live/x/hangup", data={"csrf": "forged"}).status_code == 403
        token = csrf_of(client.get("/").text)
        assert client.post("/live/x/hangup", data={"csrf": token}).status_code == 404  # no such call: past the checks


def test_a_live_call_is_pushed_to_the_page_and_the_operator_hangs_it_up(console, board, voice):
    caller = WireCaller(("127.0.0.1", board.settings.sip.port), user="console-caller")
    caller.dial()
    try:
        with logged_in(console) as client:
            seen = None
            with client.stream("GET", "/events", timeout=20) as events:
                for line in events.iter_lines():
                    if line.startswith("data: "):
                        calls = json.loads(line[6:])["calls"]
                        seen = next((c for c in calls if c["call_id"] == caller.call_id and c["transcript"]), None)
                        if seen:
                            break
            assert seen and seen["direction"] == "inbound" and "console-caller" in seen["remote"]
            assert seen["transcript"][0]["role"] == "assistant"  # the greeting, as it is said
            token = csrf_of(client.get("/").text)
            hung = client.post(f"/live/{caller.call_id}/hangup", data={"csrf": token},
                               headers={"accept": "application/json"})
            assert hung.status_code == 200 and hung.json()["ok"]
            assert caller.ended.wait(15), "the agent never sent BYE"
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and any(c["call_id"] == caller.call_id
                                                      for c in client.get("/api/live").json()["calls"]):
                time.sleep(0.2)
            outcome = next(o for o in board.finished if o.call_id == caller.call_id)
            assert outcome.ended_by == "operator"

            listed = client.get("/calls", params={"q": "console-caller"}).text
            assert f'/calls/{outcome.conversation_id}"' in listed
            page = client.get(f"/calls/{outcome.conversation_id}").text
            assert "<audio" in page and "Thank you for calling" in page and "<svg" in page
            audio = client.get(f"/calls/{outcome.conversation_id}/recording.wav")
            assert audio.status_code == 200 and audio.content[:4] == b"RIFF" and len(audio.content) > 8000
            import io
            import wave

            import numpy as np

            sides = {}
            for side in ("caller", "agent"):
                part = client.get(f"/calls/{outcome.conversation_id}/recording.wav", params={"side": side})
                with wave.open(io.BytesIO(part.content)) as mono:
                    assert mono.getnchannels() == 1 and mono.getframerate() == 8000
                    sides[side] = np.frombuffer(mono.readframes(mono.getnframes()), "<i2")
            assert np.abs(sides["agent"]).max() > 1000  # the greeting is on the agent's side
            assert np.abs(sides["caller"]).max() < 1000  # the wire caller said nothing
    finally:
        caller.close()


def audit_entries(board) -> list[dict]:
    path = board.settings.service.data_dir / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_messages_for_staff_are_listed_and_marked_done(console, board):
    from memory.records import StaffMessage

    store = board.brain.memory.store
    message = store.add_staff_message(StaffMessage(caller="+15550100142", for_whom="Dr. Patel",
                                                   text="Crown came loose, please call back", callback_number="+15550100142"))
    with logged_in(console) as client:
        page = client.get("/messages").text
        assert "Crown came loose, please call back" in page and "Dr. Patel" in page
        done = client.post(f"/messages/{message.id}/done", data={"csrf": csrf_of(page)})
        assert done.status_code == 303
        assert "Crown came loose" not in client.get("/messages").text
        assert "Crown came loose" in client.get("/messages", params={"all": "1"}).text
    assert {"action": "message done", "message": message.id}.items() <= audit_entries(board)[-1].items()


def test_campaign_progress_results_and_export(console, board):
    from telephony.campaign.contacts import Contact
    from telephony.campaign.store import CampaignStore

    store = CampaignStore(board.settings.service.data_dir / "campaigns.sqlite3")
    store.create("reminders", "confirm your appointment at {time}", "people.csv", {},
                 [Contact(2, "sip:ann@127.0.0.1", {"time": "10:15"}), Contact(3, "sip:ben@127.0.0.1", {"time": "11:00"})])
    claim = store.claim("reminders", 1e12, "w1")
    store.finish(claim, "answered-human", retry_at=None, goal_achieved=True, summary="Goal achieved: yes")
    store.close()
    with logged_in(console) as client:
        assert "reminders" in client.get("/campaigns").text
        page = client.get("/campaigns/reminders").text
        assert "Goal achieved: yes" in page and "sip:ben@127.0.0.1" in page and "pending" in page
        assert "refreshes every 5 s" in page  # still running: the counts follow the campaign
        export = client.get("/campaigns/reminders/export.csv")
        assert export.headers["content-type"].startswith("text/csv")
        header, ann = export.text.splitlines()[:2]  # the same file as `employai campaign export`
        assert header == "line,uri,time,outcome,attempts,goal_achieved,summary,recording,conversation_id"
        assert ann == "2,sip:ann@127.0.0.1,10:15,answered-human,1,yes,Goal achieved: yes,,"
        assert client.get("/campaigns/nope").status_code == 404


def test_a_callers_memory_is_edited_and_erased_with_an_audit_trail(console, board):
    store = board.brain.memory.store
    key = "sip:office-test@127.0.0.1"
    store.open_conversation(key)
    store.update_block(key, "human", 2000, lambda _: "Name: Dana.")
    with logged_in(console) as client:
        assert key in client.get("/callers", params={"q": "office-test"}).text
        page = client.get(f"/callers/{key}").text
        assert "Name: Dana." in page
        token = csrf_of(page)
        assert client.post(f"/callers/{key}/memory", data={"csrf": token, "memory": "Name: Dana Scully."}).status_code == 303
        assert store.get_block(key, "human").value == "Name: Dana Scully."
        assert client.post(f"/callers/{key}/memory", data={"csrf": token, "memory": "x" * 5000}).status_code == 400
        assert client.post(f"/callers/{key}/erase", data={"csrf": token}).status_code == 303
    assert store.get_block(key, "human") is None and store.conversations(key) == []
    edited, erased = audit_entries(board)[-2:]
    assert edited["action"] == "caller memory edited" and edited["before"] == "Name: Dana." and edited["caller"] == key
    assert erased["action"] == "caller erased" and erased["rows"] >= 2


def test_the_job_page_masks_secrets_and_ingests_an_uploaded_document(console, board):
    with logged_in(console) as client:
        page = client.get("/job").text
        assert "[console]" in page and PASSWORD not in page and "********" in page
        token = csrf_of(page)
        bad = client.post("/job/documents", data={"csrf": token}, files={"document": ("logo.png", b"\x89PNG")})
        assert bad.status_code == 400
        done = client.post("/job/documents", data={"csrf": token},
                           files={"document": ("parking.md", b"# Parking\n\nFree parking is behind the building on Harbour Street.")})
        assert done.status_code == 303 and "uploaded=parking.md" in done.headers["location"]
        assert "parking.md" in client.get("/job").text
    try:
        assert "Harbour" in board.brain.memory.search_knowledge("where can I park", 1)[0].text
        assert audit_entries(board)[-1]["action"] == "document ingested"
    finally:  # the switchboard is shared with the SIP tests: leave its knowledge as it was
        from memory.records import COMPANY_OWNER

        board.brain.memory.store.delete_passages(COMPANY_OWNER, "parking.md")


def test_the_latency_chart_stacks_the_stages_of_a_stored_turn():
    from telephony.console.app import _latency_chart, _stages

    timings = {"speech_end_ms": 1000, "endpoint_ms": 1440, "stt_final_ms": 35.0, "first_token_ms": 850.0,
               "first_audio_ms": 990.0, "first_frame_ms": 2480, "voice_to_voice_ms": 1480}
    assert [(label, round(ms)) for label, _, ms in _stages(timings)] == [
        ("endpoint", 440), ("STT final", 35), ("first text", 850), ("first audio", 140)]
    chart = _latency_chart([{"timings": timings}])
    assert chart.count("<rect") == 4 and "turn 1, first text: 850 ms" in chart and ">1480<" in chart


def test_the_operator_transfers_a_live_call_to_an_allowed_target_only(console, board):
    caller = WireCaller(("127.0.0.1", board.settings.sip.port), user="transfer-me")
    caller.dial()
    try:
        with logged_in(console) as client:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any(
                    c["call_id"] == caller.call_id for c in client.get("/api/live").json()["calls"]):
                time.sleep(0.1)
            token = csrf_of(client.get("/").text)
            path = f"/live/{caller.call_id}/transfer"
            refused = client.post(path, data={"csrf": token, "target": "the CEO's mobile"})
            assert refused.status_code == 400 and "not an allowed transfer target" in refused.json()["error"]
            sent = client.post(path, data={"csrf": token, "target": "front desk"}, headers={"accept": "application/json"})
            assert sent.status_code == 200 and sent.json()["action"] == "transfer to front desk"
            deadline = time.monotonic() + 20  # the REFER goes out once the greeting has been spoken
            while time.monotonic() < deadline and not any(m.startswith("REFER ") for m in caller.messages):
                time.sleep(0.1)
            refer = next(m for m in caller.messages if m.startswith("REFER "))
            assert "Refer-To:" in refer and "2001" in refer  # the job's "front desk" target
    finally:
        caller.hang_up()
        caller.close()
