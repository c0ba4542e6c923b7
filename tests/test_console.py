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

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def console(board):
    from telephony.console.server import ConsoleServer

    board.settings.console.address = "127.0.0.1:0"
    board.settings.console.password = SecretStr(PASSWORD)
    server = ConsoleServer(board).start()
    yield server.url.rstrip("/")
    server.stop()
    board.settings.console.password = None


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
        for path in ("/", "/calls", "/calls/1", "/calls/1/recording.wav", "/events"):
            response = anonymous.get(path)
            assert response.status_code == 303 and response.headers["location"] == "/login", path
        assert anonymous.get("/api/live").status_code == 401
        for path in ("/live/x/hangup", "/live/x/transfer", "/logout"):
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
    finally:
        caller.close()
