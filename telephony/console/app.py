"""The operator console: live calls (pushed with server-sent events), call history with the recording,
actions on a live call (hang up, transfer to an allowed target), behind a password.

Why Starlette + Jinja2 pages and a few lines of plain JavaScript: it installs from PyPI with no build
step and no network at install time, and office staff get a page that works in any browser.
Security: nothing but the login page without a session; the session is a signed cookie
(SameSite=Strict, HttpOnly); every action is a POST carrying the session's CSRF token; the password
is compared in constant time, and there is no default password.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from telephony.console.pages import TEMPLATES

if TYPE_CHECKING:
    from telephony.switchboard import Switchboard

_PUBLIC = {"/login"}


def _jinja() -> Environment:
    from jinja2 import DictLoader

    return Environment(loader=DictLoader(TEMPLATES), autoescape=select_autoescape(default=True))


class Console:
    """The console's view of one running switchboard."""

    def __init__(self, board: "Switchboard") -> None:
        self.board = board
        self.settings = board.settings
        self.store = board.brain.memory.store
        self.env = _jinja()

    # -- data ----------------------------------------------------------------------------------------
    def live_calls(self) -> list[dict[str, Any]]:
        calls = []
        for call in list(self.board.active.values()):
            loop = call.loop
            conversation_id = call.outcome.conversation_id
            transcript = [{"role": m.role, "text": m.content} for m in self.store.messages(conversation_id)
                          if m.role in ("user", "assistant")] if conversation_id else []
            turns = [{"caller": t.caller_text, "voice_to_voice_ms": t.voice_to_voice_ms,
                      "stt_ms": round(t.stt_wait_s * 1000), "first_token_ms": _ms(t.first_token_s),
                      "first_audio_ms": _ms(t.first_audio_s)} for t in (loop.turns if loop else [])]
            state = "agent speaking" if loop and loop.speaking else (
                "caller speaking" if loop and loop.listener.endpointer.in_speech else "listening")
            calls.append({"call_id": call.call_id, "remote": call.remote, "direction": call.direction,
                          "duration_s": round(time.monotonic() - call.started), "state": state,
                          "conversation_id": conversation_id, "transcript": transcript, "turns": turns})
        return calls

    def history(self, query: str = "", outcome: str = "", day: str = "", limit: int = 200) -> list[dict[str, Any]]:
        rows = []
        for conversation in self.store.recent_conversations(1000):
            info = self.store.call_info(conversation.id) or {}
            started = time.strftime("%Y-%m-%d %H:%M", time.localtime(conversation.started_at))
            status = info.get("status", conversation.channel)
            if query and query.lower() not in f"{conversation.caller} {conversation.summary or ''}".lower():
                continue
            if outcome and status != outcome:
                continue
            if day and not started.startswith(day):
                continue
            rows.append({"id": conversation.id, "started": started, "caller": conversation.caller,
                         "direction": info.get("direction", ""), "status": status,
                         "duration_s": info.get("duration_s"), "summary": conversation.summary or ""})
            if len(rows) >= limit:
                break
        return rows

    def call(self, conversation_id: int) -> dict[str, Any] | None:
        conversation = self.store.conversation(conversation_id)
        if conversation is None:
            return None
        turns = self.store.turns(conversation_id)
        return {
            "id": conversation_id, "caller": conversation.caller, "summary": conversation.summary or "",
            "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(conversation.started_at)),
            "info": self.store.call_info(conversation_id) or {},
            "messages": [{"role": m.role, "text": m.content, "name": m.name} for m in self.store.messages(conversation_id)],
            "turns": [{"caller": t.caller_text, "agent": t.agent_text, "tools": t.tools, "timings": t.timings,
                       "interrupted": t.interrupted} for t in turns],
            "recording": bool(self.store.recording(conversation_id)),
        }

    # -- pages and endpoints -------------------------------------------------------------------------
    def render(self, request: Request, name: str, **context: Any) -> HTMLResponse:
        page = self.env.get_template(name).render(
            csrf=request.session.get("csrf", ""), logged_in=bool(request.session.get("operator")),
            company=self.settings.job.company, **context)
        return HTMLResponse(page)

    async def login_page(self, request: Request) -> Response:
        request.session.setdefault("csrf", secrets.token_urlsafe(24))
        locked = self.settings.console.password is None
        return self.render(request, "login.html", locked=locked, error=request.query_params.get("error"))

    async def login(self, request: Request) -> Response:
        form = await request.form()
        if not _same(str(form.get("csrf", "")), request.session.get("csrf", "")):
            return Response("bad or missing CSRF token", status_code=403)
        password = self.settings.console.password
        given = str(form.get("password", ""))
        if password is None or not _same(given, password.get_secret_value()):
            await asyncio.sleep(0.5)  # slows password guessing
            return RedirectResponse("/login?error=1", status_code=303)
        request.session.clear()
        request.session.update({"operator": True, "csrf": secrets.token_urlsafe(24),
                                "expires": time.time() + self.settings.console.session_hours * 3600})
        return RedirectResponse("/", status_code=303)

    async def logout(self, request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    async def live_page(self, request: Request) -> Response:
        targets = sorted(self.settings.job.transfers)
        return self.render(request, "live.html", calls=self.live_calls(), targets=targets)

    async def live_json(self, request: Request) -> Response:
        return JSONResponse({"calls": self.live_calls()})

    async def events(self, request: Request) -> Response:
        """Server-sent events: the live calls, once a second and whenever they change."""

        async def stream():
            last = None
            while not await request.is_disconnected():
                snapshot = json.dumps({"calls": self.live_calls()})
                if snapshot != last:
                    yield f"data: {snapshot}\n\n"
                    last = snapshot
                else:
                    yield ": keep-alive\n\n"
                await asyncio.sleep(1.0)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def hang_up(self, request: Request) -> Response:
        call = self.board.active.get(request.path_params["call_id"])
        if call is None:
            return JSONResponse({"error": "no such live call"}, status_code=404)
        call.stop_requested = "operator"
        return _done(request, {"ok": True, "action": "hang up"})

    async def transfer(self, request: Request) -> Response:
        call = self.board.active.get(request.path_params["call_id"])
        if call is None:
            return JSONResponse({"error": "no such live call"}, status_code=404)
        form = await request.form()
        name = str(form.get("target", ""))
        target = self.settings.job.transfers.get(name)
        if target is None:
            return JSONResponse({"error": f"{name!r} is not an allowed transfer target"}, status_code=400)
        call.line.transfer(target.target)
        return _done(request, {"ok": True, "action": f"transfer to {name}"})

    async def calls_page(self, request: Request) -> Response:
        params = request.query_params
        rows = self.history(params.get("q", ""), params.get("outcome", ""), params.get("date", ""))
        return self.render(request, "calls.html", rows=rows, q=params.get("q", ""), outcome=params.get("outcome", ""),
                           date=params.get("date", ""))

    async def call_page(self, request: Request) -> Response:
        details = self.call(int(request.path_params["conversation_id"]))
        if details is None:
            return HTMLResponse("no such call", status_code=404)
        return self.render(request, "call.html", call=details, chart=_latency_chart(details["turns"]))

    async def recording(self, request: Request) -> Response:
        path = self.store.recording(int(request.path_params["conversation_id"]))
        if not path or not Path(path).is_file():
            return Response("no recording", status_code=404)
        return FileResponse(path, media_type="audio/wav")


def _same(given: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def _done(request: Request, payload: dict) -> Response:
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(payload)
    return RedirectResponse("/", status_code=303)


def _latency_chart(turns: list[dict[str, Any]]) -> str:
    """A small stacked bar per turn (endpoint, STT, first token, first audio), as inline SVG."""
    stages = [("endpoint_ms", "#8aa"), ("stt_wait_s", "#68c"), ("first_token_s", "#c86"), ("first_audio_s", "#6a6")]
    bars, width = [], 18
    for index, turn in enumerate(turns):
        timings = turn.get("timings") or {}
        y, x = 150, 10 + index * (width + 6)
        for key, colour in stages:
            value = timings.get(key)
            if value is None:
                continue
            ms = value if key.endswith("_ms") else value * 1000
            height = min(140, ms / 20)
            y -= height
            bars.append(f'<rect x="{x}" y="{y:.0f}" width="{width}" height="{height:.0f}" fill="{colour}">'
                        f"<title>turn {index + 1} {key}: {ms:.0f} ms</title></rect>")
    legend = " ".join(f'<tspan fill="{c}">■ {k.split("_")[0]}</tspan>' for k, c in stages)
    return (f'<svg class="chart" width="{max(200, 20 + len(turns) * 24)}" height="170" role="img" '
            f'aria-label="latency per turn">{"".join(bars)}<text x="10" y="166" font-size="10">{legend}</text></svg>')


def create_app(board: "Switchboard", session_secret: str | None = None) -> Starlette:
    console = Console(board)

    def guarded(handler, *, action: bool = False):
        async def endpoint(request: Request) -> Response:
            session = request.session
            if not session.get("operator") or session.get("expires", 0) < time.time():
                session.clear()
                if request.url.path.startswith("/api/") or request.method != "GET":
                    return JSONResponse({"error": "log in first"}, status_code=401)
                return RedirectResponse("/login", status_code=303)
            if action:
                form = await request.form()
                token = request.headers.get("x-csrf-token") or str(form.get("csrf", ""))
                if not _same(token, session.get("csrf", "")):
                    return JSONResponse({"error": "bad or missing CSRF token"}, status_code=403)
            return await handler(request)

        return endpoint

    routes = [
        Route("/login", console.login_page, methods=["GET"]),
        Route("/login", console.login, methods=["POST"]),
        Route("/logout", guarded(console.logout, action=True), methods=["POST"]),
        Route("/", guarded(console.live_page)),
        Route("/api/live", guarded(console.live_json)),
        Route("/events", guarded(console.events)),
        Route("/calls", guarded(console.calls_page)),
        Route("/calls/{conversation_id:int}", guarded(console.call_page)),
        Route("/calls/{conversation_id:int}/recording.wav", guarded(console.recording)),
        Route("/live/{call_id:path}/hangup", guarded(console.hang_up, action=True), methods=["POST"]),
        Route("/live/{call_id:path}/transfer", guarded(console.transfer, action=True), methods=["POST"]),
    ]
    middleware = [Middleware(SessionMiddleware, secret_key=session_secret or secrets.token_urlsafe(32),
                             session_cookie="employai_console", same_site="strict", https_only=False,
                             max_age=int(board.settings.console.session_hours * 3600))]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.console = console
    return app
